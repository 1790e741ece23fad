// Starts the real `switchboard` binary with a temporary config and stops it
// afterwards.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { withTimeout } from "./util.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** tests/e2e */
export const E2E_DIR = path.resolve(here, "..");
/** The repository root. */
export const REPO_ROOT = path.resolve(E2E_DIR, "../..");

/** The binary under test: $SWITCHBOARD_BIN, else ../../target/debug/switchboard. */
export const SWITCHBOARD_BIN = path.resolve(
  E2E_DIR,
  process.env.SWITCHBOARD_BIN || "../../target/debug/switchboard",
);

/** TOML string literal. */
export function toml(value) {
  return JSON.stringify(String(value));
}

/**
 * Starts `switchboard serve --config <tmp>/switchboard.toml` where the file
 * is `configText` (its `[server]` section is written here: an ephemeral
 * listen port and a temp state file, plus `serverExtra` lines; `cluster`, when
 * given, is the body of a `[cluster]` section; `env` adds environment
 * variables, e.g. `SWITCHBOARD_NODE`). Resolves once the binary printed
 * `switchboard listening on http://ADDR`.
 */
export async function startGateway({ apps, serverExtra = "", limits = "", cluster = null, env: extraEnv = {} }) {
  const dir = mkdtempSync(path.join(tmpdir(), "switchboard-e2e-"));
  const config = [
    "[server]",
    `listen = "127.0.0.1:0"`,
    `state_file = ${toml(path.join(dir, "state.json"))}`,
    serverExtra,
    limits ? `[limits]\n${limits}` : "",
    cluster !== null ? `[cluster]\n${cluster}` : "",
    apps,
  ].join("\n");
  const configPath = path.join(dir, "switchboard.toml");
  writeFileSync(configPath, config);

  const env = { ...process.env, ...extraEnv };
  delete env.SWITCHBOARD_CONFIG;
  env.RUST_LOG = env.RUST_LOG || "info";
  const child = spawn(SWITCHBOARD_BIN, ["serve", "--config", configPath], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });

  // Never leave a gateway behind if this test process dies first.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  child.once("exit", () => process.removeListener("exit", killOnExit));

  // Keep the log for failure reports; print it when E2E_LOG is set.
  const log = [];
  createInterface({ input: child.stderr }).on("line", (line) => {
    log.push(line);
    if (process.env.E2E_LOG) process.stderr.write(`[switchboard] ${line}\n`);
  });

  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const listening = new Promise((resolve, reject) => {
    child.once("error", (error) => reject(new Error(`cannot run ${SWITCHBOARD_BIN}: ${error.message}`)));
    const lines = createInterface({ input: child.stdout });
    let first = true;
    lines.on("line", (line) => {
      if (!first) return;
      first = false;
      const match = /^switchboard listening on http:\/\/(\S+)$/.exec(line);
      if (match) resolve(match[1]);
      else reject(new Error(`unexpected first stdout line: ${JSON.stringify(line)}`));
    });
    exited.then(({ code, signal }) =>
      reject(
        new Error(
          `switchboard exited (code ${code}, signal ${signal}) before listening:\n${log.join("\n")}`,
        ),
      ),
    );
  });

  let addr;
  try {
    addr = await withTimeout(listening, "the 'switchboard listening on' line", 15000);
  } catch (error) {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  return {
    addr,
    http: `http://${addr}`,
    /** The socket endpoint for `new Socket(...)`. */
    socketUrl: `ws://${addr}/socket`,
    child,
    log,
    configPath,
    /** Whether the process runs, whether /health answers, and the log's tail. */
    async diagnose() {
      let health;
      try {
        const response = await fetch(`http://${addr}/health`, { signal: AbortSignal.timeout(1000) });
        health = `${response.status} ${await response.text()}`;
      } catch (error) {
        health = `no answer (${error.message})`;
      }
      const state =
        child.exitCode === null && child.signalCode === null
          ? "running"
          : `exited (code ${child.exitCode}, signal ${child.signalCode})`;
      return `switchboard (pid ${child.pid}) ${state}; GET /health: ${health}\nlast log lines:\n${log.slice(-40).join("\n")}`;
    },
    /** Sends `signal` (default SIGKILL) and waits until the process is gone. */
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        await exited;
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const done = await Promise.race([
          exited.then(() => true),
          new Promise((resolve) => setTimeout(() => resolve(false), 10000).unref()),
        ]);
        if (!done) {
          child.kill("SIGKILL");
          await exited;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** POST /api/v1/apps/{app}/<path> with the app secret; returns the Response. */
export function serverApi(gateway, app, secret, method, apiPath, body) {
  return fetch(`${gateway.http}/api/v1/apps/${encodeURIComponent(app)}/${apiPath}`, {
    method,
    headers: {
      authorization: `Bearer ${secret}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/**
 * Makes the gateway (re)load the app's schema now and waits for the answer,
 * so no test races the startup fetch.
 */
export async function refreshSchema(gateway, app, secret) {
  const response = await serverApi(gateway, app, secret, "POST", "schema/refresh");
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`schema refresh of ${app} answered ${response.status}: ${text}`);
  }
  return text;
}
