// A private Redis Cluster (three primaries, no replicas) for the sharded
// pub/sub tests, and switchboard nodes on it. Like `lib/redis.js`, only the
// `redis-server` and `redis-cli` binaries are used.
//
// Each `redis-server` gets a free client port and a free cluster-bus port
// (`--cluster-port`, Redis ≥ 7), so nothing depends on `port + 10000` being
// free. Everything lives in one temp dir, removed by `stop()`.

import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { readiness } from "./cluster.js";
import { refreshSchema, startGateway, toml } from "./gateway.js";
import { freePort, redisCli } from "./redis.js";
import { poll } from "./util.js";

const run = promisify(execFile);

/** `count` distinct ports that were free a moment ago. */
async function distinctFreePorts(count) {
  const ports = new Set();
  for (let tries = 0; ports.size < count; tries += 1) {
    if (tries > count * 20) throw new Error(`cannot find ${count} distinct free ports`);
    ports.add(await freePort());
  }
  return [...ports];
}

/** Lines of a multi-line redis-cli answer, without empty ones. */
function lines(text) {
  return text.split("\n").map((line) => line.trim()).filter((line) => line.length > 0);
}

/**
 * `CLUSTER NODES` of `node` as [{id, host, port, flags, slots: [[from, to]]}]
 * for the primaries.
 */
export async function clusterPrimaries(node) {
  return lines(await redisCli(node, "cluster", "nodes"))
    .map((line) => line.split(" "))
    .filter((fields) => fields[2].split(",").includes("master"))
    .map((fields) => {
      const [hostPort] = fields[1].split("@");
      const colon = hostPort.lastIndexOf(":");
      return {
        id: fields[0],
        host: hostPort.slice(0, colon),
        port: Number(hostPort.slice(colon + 1)),
        flags: fields[2],
        slots: fields
          .slice(8)
          .filter((s) => !s.startsWith("["))
          .map((s) => s.split("-").map(Number))
          .map(([from, to]) => [from, to ?? from]),
      };
    });
}

/**
 * Starts `shards` `redis-server --cluster-enabled yes` processes, joins them
 * with `redis-cli --cluster create ... --cluster-replicas 0`, and waits until
 * every one reports `cluster_state:ok` and sees all `shards` primaries with
 * slots. Resolves with
 * `{host, port, url, nodes: [{host, port}], ...helpers, stop()}` where
 * `url` is the `redis-cluster://` URL switchboard takes and `host`/`port`
 * are those of the first node.
 */
export async function startRedisCluster({ shards = 3, timeoutMs = 20000 } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), "switchboard-e2e-redis-cluster-"));
  const ports = await distinctFreePorts(shards * 2);
  const nodes = Array.from({ length: shards }, (_, i) => ({
    host: "127.0.0.1",
    port: ports[i],
    busPort: ports[shards + i],
    child: null,
    log: [],
  }));
  const [first, ...rest] = nodes;
  const cluster = {
    host: first.host,
    port: first.port,
    url: `redis-cluster://${first.host}:${first.port}?${rest.map((n) => `node=${n.host}:${n.port}`).join("&")}`,
    nodes,
    dir,
  };

  const killAll = () => {
    for (const node of nodes) if (node.child) node.child.kill("SIGKILL");
  };
  process.once("exit", killAll);

  cluster.stop = async () => {
    await Promise.all(
      nodes.map(async (node) => {
        const child = node.child;
        if (child && child.exitCode === null && child.signalCode === null) {
          child.kill("SIGKILL");
          await child.exited;
        }
      }),
    );
    process.removeListener("exit", killAll);
    rmSync(dir, { recursive: true, force: true });
  };

  /** The last log lines of every node, for failure messages. */
  const logs = () =>
    nodes.map((n) => `--- redis-server :${n.port} (exit ${n.child && n.child.exitCode})\n${n.log.slice(-10).join("\n")}`).join("\n");

  try {
    for (const node of nodes) {
      const child = spawn(
        "redis-server",
        [
          "--port", String(node.port),
          "--cluster-port", String(node.busPort),
          "--cluster-enabled", "yes",
          "--cluster-config-file", path.join(dir, `nodes-${node.port}.conf`),
          "--dir", dir,
          "--save", "",
          "--appendonly", "no",
          "--bind", "127.0.0.1",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      child.exited = new Promise((resolve) => child.once("exit", resolve));
      child.once("error", (error) => node.log.push(`cannot run redis-server: ${error.message}`));
      for (const stream of [child.stdout, child.stderr]) {
        stream.on("data", (chunk) => node.log.push(...chunk.toString().split("\n").filter(Boolean)));
      }
      node.child = child;
    }
    for (const node of nodes) {
      await poll(
        async () => node.child.exitCode === null && (await redisCli(node, "ping")).trim() === "PONG",
        () => `redis-server on port ${node.port} to answer PING\n${logs()}`,
        10000,
      );
    }
    let created;
    try {
      created = await run(
        "redis-cli",
        [
          "--cluster", "create",
          ...nodes.map((n) => `${n.host}:${n.port}`),
          "--cluster-replicas", "0",
          "--cluster-yes",
        ],
        { timeout: timeoutMs },
      );
    } catch (error) {
      throw new Error(`redis-cli --cluster create failed: ${error.message}\n${error.stdout ?? ""}\n${logs()}`);
    }
    let last = "";
    await poll(
      async () => {
        for (const node of nodes) {
          const info = await redisCli(node, "cluster", "info");
          last = `:${node.port} ${lines(info).find((l) => l.startsWith("cluster_state:"))}`;
          if (!/^cluster_state:ok\r?$/m.test(info)) return false;
          const primaries = await clusterPrimaries(node);
          last = `:${node.port} sees ${primaries.filter((p) => p.slots.length > 0).length} primaries with slots`;
          if (primaries.filter((p) => p.slots.length > 0).length !== shards) return false;
        }
        return true;
      },
      () => `every node of the Redis Cluster to report cluster_state:ok (last: ${last})\n${created.stdout}\n${logs()}`,
      timeoutMs,
    );
  } catch (error) {
    await cluster.stop();
    throw error;
  }

  /** The hash slot of a key or shard channel (`CLUSTER KEYSLOT`). */
  cluster.keyslot = async (name) => Number((await redisCli(first, "cluster", "keyslot", name)).trim());

  /** The node ({host, port}) owning the slot of a key or shard channel. */
  cluster.ownerOf = async (name) => {
    const slot = await cluster.keyslot(name);
    const owner = (await clusterPrimaries(first)).find((p) => p.slots.some(([from, to]) => from <= slot && slot <= to));
    if (!owner) throw new Error(`no primary owns slot ${slot} of ${name}`);
    const node = nodes.find((n) => n.port === owner.port);
    if (!node) throw new Error(`slot ${slot} of ${name} is on unknown node ${owner.host}:${owner.port}`);
    return node;
  };

  /** `PUBSUB SHARDCHANNELS pattern` on one node. */
  cluster.shardChannels = async (node, pattern) => lines(await redisCli(node, "pubsub", "shardchannels", pattern));

  /** `PUBSUB CHANNELS pattern` (classic pub/sub) on one node. */
  cluster.classicChannels = async (node, pattern) => lines(await redisCli(node, "pubsub", "channels", pattern));

  /** `PUBSUB SHARDNUMSUB channel` on one node: the subscriber count. */
  cluster.shardNumsub = async (node, channel) => {
    const [, count] = lines(await redisCli(node, "pubsub", "shardnumsub", channel));
    return Number(count);
  };

  /** `PUBSUB NUMSUB channel` (classic) on one node: the subscriber count there. */
  cluster.classicNumsub = async (node, channel) => {
    const [, count] = lines(await redisCli(node, "pubsub", "numsub", channel));
    return Number(count);
  };

  /** Every key under `<prefix>:` on every node: [{node, key}]. */
  cluster.keysUnder = async (prefix) => {
    const found = [];
    for (const node of nodes) {
      for (const key of lines(await redisCli(node, "--scan", "--pattern", `${prefix}:*`))) found.push({ node, key });
    }
    return found;
  };

  /** Deletes every key under `<prefix>:` (one DEL per key, on its own node). */
  cluster.deleteKeysUnder = async (prefix) => {
    const found = await cluster.keysUnder(prefix);
    for (const { node, key } of found) await redisCli(node, "del", key);
    return found.length;
  };

  return cluster;
}

/**
 * Starts `size` switchboard nodes (named `<prefix>-a`, `-b`, ...) on a Redis
 * Cluster from `startRedisCluster` under a fresh key prefix, like
 * `startCluster` in `lib/cluster.js` (which deletes keys with one
 * multi-key DEL on one server, which a Redis Cluster refuses). `stop()` stops
 * the nodes, then deletes every key under the prefix on every shard.
 */
export async function startGatewaysOnRedisCluster({ redisCluster, appsToml, apps = [], size = 3, serverExtra = "" }) {
  const prefix = `sbe2e-${randomBytes(6).toString("hex")}`;
  const clusterToml = [`redis_url = ${toml(redisCluster.url)}`, `key_prefix = ${toml(prefix)}`].join("\n");
  const names = "abcdefgh".slice(0, size).split("").map((letter) => `${prefix}-${letter}`);
  const started = await Promise.allSettled(
    names.map((name) =>
      startGateway({ apps: appsToml, serverExtra, cluster: clusterToml, env: { SWITCHBOARD_NODE: name } }),
    ),
  );
  const nodes = [];
  started.forEach((s, i) => {
    if (s.status === "fulfilled") {
      s.value.name = names[i];
      nodes.push(s.value);
    }
  });
  const gateways = {
    prefix,
    nodes,
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      await redisCluster.deleteKeysUnder(prefix);
      const left = await redisCluster.keysUnder(prefix);
      if (left.length > 0) throw new Error(`keys left under ${prefix}: ${left.map((k) => k.key).join(", ")}`);
    },
  };
  try {
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    for (const node of nodes) {
      await poll(
        async () => (await readiness(node)) === 200,
        async () => `node ${node.name} to report ready on the Redis Cluster\n${await node.diagnose()}`,
        15000,
      );
    }
    for (const node of nodes) {
      for (const { appId, secret } of apps) await refreshSchema(node, appId, secret);
    }
  } catch (error) {
    await gateways.stop().catch(() => {});
    throw error;
  }
  return gateways;
}
