// Redis for the cluster tests: the shared server on 127.0.0.1:6379, or a
// private `redis-server` a test starts (and kills, and restarts) itself.
// Everything goes through the `redis-cli` and `redis-server` binaries, so
// the suite needs no Redis package.

import { execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { poll } from "./util.js";

const run = promisify(execFile);

/** The shared Redis every cluster test uses unless it starts its own. */
export const SHARED_REDIS = { host: "127.0.0.1", port: 6379, url: "redis://127.0.0.1:6379" };

/** Runs `redis-cli -h host -p port ...args`; resolves with its stdout. */
export async function redisCli(redis, ...args) {
  const { stdout } = await run("redis-cli", ["-h", redis.host, "-p", String(redis.port), ...args], {
    timeout: 5000,
  });
  return stdout;
}

/** Every key under `<prefix>:`. */
export async function keysUnder(redis, prefix) {
  const out = await redisCli(redis, "--scan", "--pattern", `${prefix}:*`);
  return out.split("\n").filter((line) => line.length > 0);
}

/** Deletes every key under `<prefix>:`; resolves with how many there were. */
export async function deleteKeysUnder(redis, prefix) {
  const keys = await keysUnder(redis, prefix);
  for (let i = 0; i < keys.length; i += 100) {
    await redisCli(redis, "del", ...keys.slice(i, i + 100));
  }
  return keys.length;
}

/** The fields of a hash (empty when the key does not exist). */
export async function hashFields(redis, key) {
  const out = await redisCli(redis, "hkeys", key);
  return out.split("\n").filter((line) => line.length > 0);
}

/** A TCP port that was free a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function pingable(redis) {
  try {
    return (await redisCli(redis, "ping")).trim() === "PONG";
  } catch {
    return false;
  }
}

/**
 * Starts a private `redis-server` on a free port with no persistence.
 * `kill()` SIGKILLs it (its data is gone); `restart()` starts a fresh one on
 * the same port; `stop()` kills it for good.
 */
export async function startPrivateRedis() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), "switchboard-e2e-redis-"));
  const redis = { host: "127.0.0.1", port, url: `redis://127.0.0.1:${port}`, child: null, log: [] };

  const killOnExit = () => redis.child && redis.child.kill("SIGKILL");
  process.once("exit", killOnExit);

  redis.start = async () => {
    const child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.exited = new Promise((resolve) => child.once("exit", resolve));
    child.once("error", (error) => redis.log.push(`cannot run redis-server: ${error.message}`));
    for (const stream of [child.stdout, child.stderr]) {
      stream.on("data", (chunk) => redis.log.push(...chunk.toString().split("\n").filter(Boolean)));
    }
    redis.child = child;
    await poll(
      async () => child.exitCode === null && (await pingable(redis)),
      () => `the private redis-server on port ${port} to answer PING; its log:\n${redis.log.slice(-20).join("\n")}`,
      10000,
    );
  };
  redis.kill = async () => {
    const child = redis.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await child.exited;
  };
  redis.restart = () => redis.start();
  redis.stop = async () => {
    await redis.kill();
    process.removeListener("exit", killOnExit);
    rmSync(dir, { recursive: true, force: true });
  };

  await redis.start();
  return redis;
}
