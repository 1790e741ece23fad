// One mock backend and one gateway per test file, started in `before` and
// stopped in `after`; every phoenix.js client is disconnected after each test.

import { after, afterEach, before } from "node:test";
import { randomBytes } from "node:crypto";
import { appToml, startBackend } from "./backend.js";
import { refreshSchema, startGateway } from "./gateway.js";
import { disconnectAll } from "./client.js";

/**
 * Registers the hooks and returns an object whose `backend`, `gateway`,
 * `appId` and `secret` are set once `before` has run.
 * `appEntry(backend)` may replace the default `[[apps]]` entry; `schema`, when
 * given, is the schema the mock backend serves instead of its default.
 */
export function useGateway({ appId = "e2e", appEntry, schema } = {}) {
  const env = { appId, secret: `secret-${randomBytes(8).toString("hex")}` };
  before(async () => {
    env.backend = await startBackend({ appId, secret: env.secret, ...(schema ? { schema } : {}) });
    const apps = appEntry ? appEntry(env.backend) : appToml(env.backend);
    env.gateway = await startGateway({ apps });
    await refreshSchema(env.gateway, appId, env.secret);
  });
  afterEach(async () => {
    await disconnectAll();
  });
  after(async () => {
    if (env.gateway) await env.gateway.stop();
    if (env.backend) await env.backend.stop();
  });
  return env;
}

/** Socket params for `token` on the fixture's app. */
export function params(env, token) {
  return { app: env.appId, token };
}
