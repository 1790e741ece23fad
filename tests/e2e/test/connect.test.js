// Connecting through the official phoenix.js client: admission, refusal,
// the phoenix 1.8 `authToken` option, and the disconnect API's
// reconnect-and-rejoin.

import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, joined, phoenixClient } from "../lib/client.js";
import { serverApi } from "../lib/gateway.js";
import { params, useGateway } from "../lib/fixture.js";

const env = useGateway();

test("connect ok: the socket opens and the app's auth saw the token", async () => {
  const client = await connected(env.gateway, { params: { ...params(env, "good-erin"), room: "42" } });
  assert.equal(client.socket.isConnected(), true);
  assert.equal(client.errors.items.length, 0);
  const auth = await env.backend.requests.next(
    (r) => r.path === "/auth" && r.body.token === "good-erin",
    "the auth webhook for good-erin",
  );
  assert.equal(auth.body.app, env.appId);
  assert.equal(auth.body.connection_type, "websocket");
  // Every other query parameter reaches the auth as params; app, token and
  // vsn (phoenix.js appends vsn=2.0.0) are not among them.
  assert.deepEqual(auth.body.params, { room: "42" });
});

test("refused connect: a bad token makes the socket error and never open", async () => {
  const client = phoenixClient(env.gateway, { params: params(env, "bad") });
  client.socket.connect();
  // phoenix.js retries a refused handshake with backoff (10 ms, 50 ms, ...):
  // wait for the first attempt and a retry to fail.
  await client.errors.count(2, () => true, "socket errors");
  assert.equal(client.opens.items.length, 0, "the socket opened although auth refused the token");
  assert.equal(client.socket.isConnected(), false);
  const refusals = env.backend.requests.items.filter((r) => r.path === "/auth" && r.body.token === "bad");
  assert.ok(refusals.length >= 2, `expected at least 2 auth calls for "bad", saw ${refusals.length}`);
});

test("refused connect: the 403 JSON body of the websocket URL", async () => {
  const url = (query) => `${env.gateway.http}/socket/websocket?${new URLSearchParams(query)}`;
  const cases = [
    [{ app: env.appId, token: "bad", vsn: "2.0.0" }, "unauthorized"],
    [{ app: env.appId, vsn: "2.0.0" }, "unauthorized"],
    [{ app: "no-such-app", token: "good-erin", vsn: "2.0.0" }, "unknown_app"],
    [{ token: "good-erin", vsn: "2.0.0" }, "unknown_app"],
    [{ app: env.appId, token: "good-erin", vsn: "123.1.1" }, "unsupported_vsn"],
  ];
  for (const [query, reason] of cases) {
    const response = await fetch(url(query));
    assert.equal(response.status, 403, `status for ${JSON.stringify(query)}`);
    assert.match(response.headers.get("content-type") || "", /application\/json/);
    assert.deepEqual(await response.json(), { status: 403, reason }, `body for ${JSON.stringify(query)}`);
  }
});

test("authToken option: phoenix 1.8 sends the token in Sec-WebSocket-Protocol and connects", async () => {
  // No token in the URL at all: only the subprotocol carries it. (The `ws`
  // package rejects subprotocols containing "/", so the token is chosen to
  // have none in its base64.)
  const client = await connected(env.gateway, { params: { app: env.appId }, authToken: "good-frank" });
  assert.equal(client.socket.conn.protocol, "phoenix", "the gateway must echo the phoenix subprotocol");
  assert.ok(!client.socket.endPointURL().includes("token="));
  const auth = await env.backend.requests.next(
    (r) => r.path === "/auth" && r.body.token === "good-frank",
    "the auth webhook for good-frank",
  );
  assert.equal(auth.body.app, env.appId);
  // And the identity is the one auth answered: the client can join.
  const { join } = await joined(client, "room:token");
  assert.equal(join.status, "ok");
});

test("authToken option with a bad token: refused, never opens", async () => {
  const client = phoenixClient(env.gateway, { params: { app: env.appId }, authToken: "bad" });
  client.socket.connect();
  await client.errors.count(2, () => true, "socket errors");
  assert.equal(client.opens.items.length, 0);
});

test("disconnect API: phoenix.js reconnects (close 1001) and rejoins its channel", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-gina") });
  const { channel, events } = await joined(client, "room:comeback", { events: ["after"] });
  const joinOks = () =>
    client.messages.items.filter(
      (m) => m.topic === "room:comeback" && m.event === "phx_reply" && m.payload.status === "ok" && m.ref === m.join_ref,
    );
  assert.equal(joinOks().length, 1);
  const firstJoinRef = channel.joinRef();

  const response = await serverApi(env.gateway, env.appId, env.secret, "POST", "clients/gina/disconnect");
  assert.equal(response.status, 200, await response.clone().text());

  const close = await client.closes.next(() => true, "the socket to close");
  assert.equal(close.code, 1001, `close code ${close.code} (phoenix.js reconnects unless 1000)`);
  await client.opens.count(2, () => true, "socket opens");
  await client.messages.next(
    (m) =>
      m.topic === "room:comeback" &&
      m.event === "phx_reply" &&
      m.payload.status === "ok" &&
      m.join_ref !== firstJoinRef &&
      m.ref === m.join_ref,
    "the rejoin's ok reply",
  );
  assert.equal(channel.state, "joined");
  assert.notEqual(channel.joinRef(), firstJoinRef);
  // Auth decided again on the reconnect.
  const auths = env.backend.requests.items.filter((r) => r.path === "/auth" && r.body.token === "good-gina");
  assert.equal(auths.length, 2);

  // The rejoined channel receives again.
  const sent = await serverApi(env.gateway, env.appId, env.secret, "POST", "broadcast", {
    topic: "room:comeback",
    event: "after",
    payload: { back: true },
  });
  assert.equal(sent.status, 202);
  const got = await events.next((m) => m.event === "after", "a broadcast after the rejoin");
  assert.deepEqual(got.payload, { back: true });
});

test("every webhook call carried a valid signature", () => {
  assert.ok(env.backend.requests.items.some((r) => r.path === "/auth"), "no auth calls recorded");
  assert.deepEqual(env.backend.signatureFailures, []);
});
