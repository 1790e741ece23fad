// Several real `switchboard` processes sharing one Redis (CONTRACT §9), each
// cluster under a key prefix of its own so tests never see each other's
// keys, and every key deleted when the cluster stops.

import { randomBytes } from "node:crypto";
import { refreshSchema, startGateway, toml } from "./gateway.js";
import { SHARED_REDIS, deleteKeysUnder, keysUnder } from "./redis.js";
import { poll } from "./util.js";

/** GET /health/ready → its status code (0 when the node does not answer). */
export async function readiness(node) {
  try {
    const response = await fetch(`${node.http}/health/ready`, { signal: AbortSignal.timeout(1000) });
    await response.text();
    return response.status;
  } catch {
    return 0;
  }
}

/**
 * Starts `size` nodes (named `<prefix>-a`, `-b`, ... through
 * `SWITCHBOARD_NODE`) on `redis` under a fresh key prefix, waits until every
 * node reports ready (Redis reachable), then makes each load the schemas of
 * `apps` ([{appId, secret}]). `appsToml` is the `[[apps]]` text of every node.
 */
export async function startCluster({
  appsToml,
  apps = [],
  redis = SHARED_REDIS,
  size = 3,
  nodeTtlSecs = null,
  serverExtra = "",
}) {
  const prefix = `sbe2e-${randomBytes(6).toString("hex")}`;
  const clusterToml = [
    `redis_url = ${toml(redis.url)}`,
    `key_prefix = ${toml(prefix)}`,
    nodeTtlSecs === null ? "" : `node_ttl_secs = ${nodeTtlSecs}`,
  ].join("\n");
  const names = "abcdefgh".slice(0, size).split("").map((letter) => `${prefix}-${letter}`);
  const started = await Promise.allSettled(
    names.map((name) =>
      startGateway({ apps: appsToml, serverExtra, cluster: clusterToml, env: { SWITCHBOARD_NODE: name } }),
    ),
  );
  const nodes = started.filter((s) => s.status === "fulfilled").map((s) => s.value);
  names.forEach((name, i) => {
    if (started[i].status === "fulfilled") started[i].value.name = name;
  });

  const cluster = {
    prefix,
    redis,
    nodes,
    /** Stops every node, then deletes every key under the prefix. */
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      await deleteKeysUnder(redis, prefix);
      const left = await keysUnder(redis, prefix);
      if (left.length > 0) throw new Error(`keys left under ${prefix}: ${left.join(", ")}`);
    },
    /**
     * Starts a new process for `node` (same `SWITCHBOARD_NODE` name, same
     * config; a new port) after stopping the old one (SIGTERM unless it is
     * already dead, e.g. after `node.kill("SIGKILL")`), puts it in `nodes` in
     * the old one's place, waits until it reports ready and has loaded the
     * schemas of `apps`, and resolves with it.
     */
    async restart(node) {
      const index = nodes.indexOf(node);
      if (index < 0) throw new Error(`restart: ${node.name} is not a running node of this cluster`);
      await node.stop();
      const fresh = await startGateway({
        apps: appsToml,
        serverExtra,
        cluster: clusterToml,
        env: { SWITCHBOARD_NODE: node.name },
      });
      fresh.name = node.name;
      nodes[index] = fresh;
      await poll(
        async () => (await readiness(fresh)) === 200,
        async () => `restarted node ${fresh.name} to report ready\n${await fresh.diagnose()}`,
        10000,
      );
      for (const { appId, secret } of apps) await refreshSchema(fresh, appId, secret);
      return fresh;
    },
  };

  try {
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    for (const node of nodes) {
      await poll(
        async () => (await readiness(node)) === 200,
        async () => `node ${node.name} to report ready\n${await node.diagnose()}`,
        10000,
      );
    }
    for (const node of nodes) {
      for (const { appId, secret } of apps) await refreshSchema(node, appId, secret);
    }
  } catch (error) {
    await cluster.stop().catch(() => {});
    throw error;
  }
  return cluster;
}
