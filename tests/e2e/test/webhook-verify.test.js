// The webhook verification example (examples/webhook-verify) as the app
// backend in front of the real gateway: the gateway's real auth, schema and
// message webhooks verify; a captured call replayed with an old timestamp,
// one whose timestamp was refreshed without the secret, a tampered body and
// an unsigned call are all rejected with 401 and never acted on.

import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createVerifyingBackend } from "../../../examples/webhook-verify/server.js";
import { signWebhook, verifyWebhook } from "../../../examples/webhook-verify/verify.js";
import { connected, disconnectAll, joined, outcome } from "../lib/client.js";
import { refreshSchema, startGateway } from "../lib/gateway.js";
import { Inbox } from "../lib/util.js";

const appId = "verify";
const secret = `secret-${randomBytes(8).toString("hex")}`;
/** Every call the example backend saw: {method, path, headers, raw, verdict}. */
const calls = new Inbox("calls to the example backend");
const env = {};

before(async () => {
  env.server = createVerifyingBackend({ secret, onCall: (call) => calls.push(call) });
  await new Promise((resolve) => env.server.listen(0, "127.0.0.1", resolve));
  env.url = `http://127.0.0.1:${env.server.address().port}`;
  env.gateway = await startGateway({
    apps: [
      "[[apps]]",
      `id = "${appId}"`,
      `secret = "${secret}"`,
      `auth_endpoint = "${env.url}/auth"`,
      `schema_endpoint = "${env.url}/schema"`,
      `message_endpoint = "${env.url}/messages"`,
    ].join("\n"),
  });
  await refreshSchema(env.gateway, appId, secret);
});

afterEach(async () => {
  await disconnectAll();
});

after(async () => {
  if (env.gateway) await env.gateway.stop();
  if (env.server) {
    env.server.closeAllConnections();
    await new Promise((resolve) => env.server.close(resolve));
  }
});

/** Sends a captured (or altered) call straight to the example backend. */
async function resend(path, headers, raw) {
  const response = await fetch(`${env.url}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      ...Object.fromEntries(
        ["x-switchboard-app", "x-switchboard-timestamp", "x-switchboard-signature"]
          .filter((name) => headers[name] !== undefined)
          .map((name) => [name, headers[name]]),
      ),
    },
    body: raw,
    signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, body: await response.json() };
}

/** The gateway's own message webhook call, made by a real push. */
async function realMessageCall() {
  const client = await connected(env.gateway, { params: { app: appId, token: "ann" } });
  const { channel } = await joined(client, "room:lobby");
  const reply = await outcome(channel.push("ask", { q: "ping" }), "the ask reply");
  assert.deepEqual(reply, { status: "ok", response: { got: "ask", from: "ann" } });
  return calls.next((c) => c.path === "/messages" && c.verdict.ok, "a verified message call");
}

test("every real webhook from the gateway verifies", async () => {
  await realMessageCall();
  for (const path of ["/schema", "/auth", "/messages"]) {
    const call = await calls.next((c) => c.path === path, `a ${path} call`);
    assert.ok(call.verdict.ok, `${path}: ${JSON.stringify(call.verdict)}`);
  }
  assert.deepEqual(
    calls.items.filter((c) => !c.verdict.ok).map((c) => `${c.path}: ${c.verdict.reason}`),
    [],
    "the gateway's calls were all accepted",
  );
});

test("a captured call replayed with an old timestamp is rejected", async () => {
  const call = await realMessageCall();
  const timestamp = Number(call.headers["x-switchboard-timestamp"]);

  // The same bytes, arriving 6 minutes after they were signed.
  assert.deepEqual(verifyWebhook(secret, call.headers, call.raw, { now: timestamp + 360 }), {
    ok: false,
    reason: "stale_timestamp",
  });

  // Over HTTP: a genuinely signed call whose timestamp is 10 minutes old...
  const old = String(timestamp - 600);
  const stale = await resend("/messages", {
    ...call.headers,
    "x-switchboard-timestamp": old,
    "x-switchboard-signature": signWebhook(secret, old, call.raw),
  }, call.raw);
  assert.deepEqual(stale, { status: 401, body: { error: "stale_timestamp" } });

  // ...and an attacker's change of the timestamp (to a later, fresh one)
  // without the secret.
  const refreshed = await resend("/messages", {
    ...call.headers,
    "x-switchboard-timestamp": String(timestamp + 1),
  }, call.raw);
  assert.deepEqual(refreshed, { status: 401, body: { error: "bad_signature" } });
});

test("a tampered body or an unsigned call is rejected", async () => {
  const call = await realMessageCall();
  const tampered = Buffer.from(call.raw.toString("utf8").replace('"client_id":"ann"', '"client_id":"eve"'));
  assert.notDeepEqual(tampered, call.raw, "the body was changed");
  assert.deepEqual(await resend("/messages", call.headers, tampered), {
    status: 401,
    body: { error: "bad_signature" },
  });

  const unsigned = { ...call.headers };
  delete unsigned["x-switchboard-signature"];
  assert.deepEqual(await resend("/messages", unsigned, call.raw), {
    status: 401,
    body: { error: "missing_signature" },
  });

  // Every rejection was one of these forgeries, never a gateway call.
  const rejected = calls.items.filter((c) => !c.verdict.ok).map((c) => c.verdict.reason);
  assert.deepEqual(rejected.sort(), ["bad_signature", "bad_signature", "missing_signature", "stale_timestamp"]);
});
