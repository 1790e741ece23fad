// JWT auth (`jwt_secret`, HS256) with the official phoenix.js client: a
// connection is closed with 4001 `token_expired` when its token expires, and
// phoenix.js, whose `params` option is a function, reconnects with a fresh
// token and rejoins its channel.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { connected, joined } from "../lib/client.js";
import { toml } from "../lib/gateway.js";
import { useGateway } from "../lib/fixture.js";

const JWT_SECRET = "e2e-hs256-secret-long-enough-for-tests";

const env = useGateway({
  appEntry: (backend) =>
    [
      "[[apps]]",
      `id = ${toml(backend.appId)}`,
      `secret = ${toml(backend.secret)}`,
      `jwt_secret = ${toml(JWT_SECRET)}`,
      `schema_endpoint = "${backend.url}/schema"`,
    ].join("\n"),
});

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** An HS256 JWT for `sub` that expires at `exp` (Unix seconds). */
function hs256(sub, exp) {
  const unsigned = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({
    sub,
    exp,
    permissions: ["read:room:*"],
    metadata: { name: sub },
  })}`;
  const signature = createHmac("sha256", JWT_SECRET).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

const now = () => Math.floor(Date.now() / 1000);

test("token expiry: close 4001 token_expired, then phoenix.js reconnects with a fresh token and rejoins", async () => {
  // The gateway allows 30 s of clock skew (jwt_leeway_secs) and closes at
  // exp + 30: a first token that expired 27 s ago is accepted and lasts
  // about 3 s more. Every later token is good for ten minutes.
  const issued = [];
  const params = () => {
    const exp = issued.length === 0 ? now() - 27 : now() + 600;
    const token = hs256("hana", exp);
    issued.push(token);
    return { app: env.appId, token };
  };
  const client = await connected(env.gateway, { params });
  const { channel } = await joined(client, "room:expiring");
  const firstJoinRef = channel.joinRef();

  const close = await client.closes.next(() => true, "the socket to close when the token expires", 10000);
  assert.equal(close.code, 4001, `close code ${close.code}`);
  assert.equal(close.reason, "token_expired");

  await client.opens.count(2, () => true, "the socket to reopen");
  await client.messages.next(
    (m) =>
      m.topic === "room:expiring" &&
      m.event === "phx_reply" &&
      m.payload.status === "ok" &&
      m.join_ref !== firstJoinRef &&
      m.ref === m.join_ref,
    "the rejoin's ok reply",
  );
  assert.equal(channel.state, "joined");
  assert.ok(issued.length >= 2, `params was called ${issued.length} time(s)`);
  assert.notEqual(issued.at(-1), issued[0], "the reconnect must carry a fresh token");
  assert.deepEqual(env.backend.signatureFailures, []);
});
