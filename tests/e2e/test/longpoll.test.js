// The long-poll transport through phoenix.js `LongPoll` (PHOENIX_PROTOCOL.md
// §8, CONTRACT §3 and §10): connecting, joining, a push answered by the
// message webhook, broadcasts between a long-poll and a WebSocket client in
// both directions, a refused connect, and phoenix.js's `longPollFallbackMs`
// fallback from a WebSocket that cannot work.
//
// In Node 20 phoenix.js's Ajax has no XMLHttpRequest and uses the global
// `fetch` with an AbortController, as it would in a browser without XHR.

import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { LongPoll } from "phoenix";
import WebSocket from "ws";
import { connected, joined, outcome, phoenixClient } from "../lib/client.js";
import { serverApi } from "../lib/gateway.js";
import { params, useGateway } from "../lib/fixture.js";

const env = useGateway({ appId: "e2e-longpoll" });

function longPollClient(id, opts = {}) {
  return connected(env.gateway, { transport: LongPoll, params: params(env, `good-${id}`), ...opts });
}

function broadcastViaApi(topic, event, payload) {
  return serverApi(env.gateway, env.appId, env.secret, "POST", "broadcast", { topic, event, payload });
}

async function connectionsOf(clientId, topic) {
  const query = new URLSearchParams({ client_id: clientId, ...(topic ? { topic } : {}) });
  const response = await serverApi(env.gateway, env.appId, env.secret, "GET", `connections?${query}`);
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text).connections;
}

test("long-poll: phoenix.js LongPoll connects; auth sees connection_type longpoll", async () => {
  const client = await longPollClient("lena");
  assert.ok(client.socket.conn instanceof LongPoll, "the socket is not on the LongPoll transport");
  assert.equal(client.socket.isConnected(), true);
  assert.equal(typeof client.socket.conn.token, "string", "no session token after the 410 open");
  const auth = await env.backend.requests.next(
    (r) => r.path === "/auth" && r.body.token === "good-lena",
    "the auth webhook for good-lena",
  );
  assert.equal(auth.body.connection_type, "longpoll");
  assert.equal(auth.body.app, env.appId);
  // phoenix.js's session token (a second `token`) is not taken for the auth token.
  const auths = env.backend.requests.items.filter((r) => r.path === "/auth" && r.body.connection_type === "longpoll");
  assert.deepEqual(
    auths.map((r) => r.body.token),
    ["good-lena"],
  );
  const connections = await connectionsOf("lena");
  assert.equal(connections.length, 1, JSON.stringify(connections));
});

test("long-poll: join, and a push answered through the message webhook", async () => {
  const client = await longPollClient("lena");
  const { channel, join } = await joined(client, "room:lp-echo");
  assert.deepEqual(join, { status: "ok", response: {} });
  assert.equal(channel.state, "joined");

  const result = await outcome(channel.push("echo", { n: 1, text: "over long-poll" }), "the echo reply");
  assert.deepEqual(result, {
    status: "ok",
    response: { n: 1, text: "over long-poll", from: "lena", channel: "room:lp-echo" },
  });
  const request = await env.backend.requests.next(
    (r) => r.path === "/messages" && r.body.event === "echo" && r.body.channel === "room:lp-echo",
    "the echo message webhook",
  );
  assert.deepEqual(request.body.metadata, { name: "LENA", via: "longpoll" });

  // A refused push is answered over long-poll too.
  assert.deepEqual(await outcome(channel.push("no-such-event", {}), "the refusal"), {
    status: "error",
    response: { reason: "invalid_event_for_channel" },
  });
  // (A long-poll session phoenix.js walked away from lingers on the server
  // until its inactivity timeout, as in Phoenix, so look by topic.)
  const connections = await connectionsOf("lena", "room:lp-echo");
  assert.equal(connections.length, 1, JSON.stringify(connections));
  assert.deepEqual(connections[0].topics, ["room:lp-echo"]);
});

test("long-poll: broadcasts flow both ways between a long-poll and a WebSocket client", async () => {
  const lp = await longPollClient("lena");
  const ws = await connected(env.gateway, { params: params(env, "good-walt") });
  const atLp = await joined(lp, "room:mixed", { events: ["chat", "headline"] });
  const atWs = await joined(ws, "room:mixed", { events: ["chat"] });

  // long-poll → WebSocket (and back to the long-poll sender).
  assert.deepEqual(await outcome(atLp.channel.push("chat", { body: "from lp" }), "lp's chat reply"), {
    status: "ok",
    response: {},
  });
  assert.deepEqual((await atWs.events.next((m) => m.payload.body === "from lp", "lp's chat at ws")).payload, {
    body: "from lp",
  });
  await atLp.events.next((m) => m.payload.body === "from lp", "lp's chat back at lp");

  // WebSocket → long-poll.
  assert.equal((await outcome(atWs.channel.push("chat", { body: "from ws" }), "ws's chat reply")).status, "ok");
  assert.deepEqual((await atLp.events.next((m) => m.payload.body === "from ws", "ws's chat at lp")).payload, {
    body: "from ws",
  });

  // The server API reaches the long-poll client as a broadcast.
  assert.equal((await broadcastViaApi("room:mixed", "headline", { title: "to lp" })).status, 202);
  await atLp.events.next((m) => m.event === "headline" && m.payload.title === "to lp", "the headline at lp");
  const raw = lp.messages.items.find((m) => m.topic === "room:mixed" && m.event === "headline");
  assert.equal(raw.join_ref, null);
  assert.equal(raw.ref, null);
});

test("long-poll: a refused connect (bad token) errors and never opens", async () => {
  const client = phoenixClient(env.gateway, { transport: LongPoll, params: params(env, "bad") });
  client.socket.connect();
  // LongPoll reports the 403 as an error, closes (1008) and phoenix.js
  // retries with its reconnect backoff: wait for a first refusal and a retry.
  await client.errors.count(2, () => true, "socket errors");
  assert.equal(client.opens.items.length, 0, "the long-poll socket opened although auth refused the token");
  assert.equal(client.socket.isConnected(), false);
  assert.equal(client.errors.items[0].error, 403);

  // The body phoenix.js read (it looks at the JSON `status`, not the HTTP one).
  const url = `${env.gateway.http}/socket/longpoll?${new URLSearchParams({ app: env.appId, token: "bad", vsn: "2.0.0" })}`;
  const response = await fetch(url, { headers: { accept: "application/json" } });
  assert.deepEqual(await response.json(), { status: 403, reason: "unauthorized" });
});

// --- longPollFallbackMs ------------------------------------------------------
//
// phoenix 1.8.16 `Socket.connect()` calls `connectWithFallback(LongPoll, ms)`
// when `longPollFallbackMs` is set and the transport is not LongPoll: it falls
// back at once when the primary transport reports an error before it opened,
// or when the timer runs out before the primary opened and answered a ping.
// Once connected over the fallback it stores `phx:fallback:LongPoll` in
// `opts.sessionStorage || global.sessionStorage`. Node has no global
// sessionStorage (phoenix.js then simply skips the memo), so the tests pass
// the documented `sessionStorage` option, an in-memory store, both to see the
// fallback remembered and so no memo leaks between tests.

class MemoryStorage {
  constructor() {
    this.storage = new Map();
  }
  getItem(key) {
    return this.storage.has(key) ? this.storage.get(key) : null;
  }
  setItem(key, value) {
    this.storage.set(key, String(value));
  }
  removeItem(key) {
    this.storage.delete(key);
  }
}

/** URLs every fake WebSocket below was asked to open. */
const wsAttempts = [];

/**
 * A WebSocket whose endpoint is blocked, as behind a proxy that strips the
 * upgrade: it dials the gateway's `/socket/blocked` path instead, which
 * answers 404, so `ws` emits error then close (1006) like a browser would.
 */
class BlockedWebSocket extends WebSocket {
  constructor(url, protocols) {
    wsAttempts.push(url);
    super(url.replace("/socket/websocket", "/socket/blocked"), protocols);
  }
}

// A TCP server that accepts and never answers: a WebSocket to it stays
// "connecting" until phoenix.js gives up on it.
const silentSockets = new Set();
const silent = createServer((socket) => {
  silentSockets.add(socket);
  socket.on("close", () => silentSockets.delete(socket));
});
const silentReady = new Promise((resolve) => silent.listen(0, "127.0.0.1", resolve));
after(() => {
  for (const socket of silentSockets) socket.destroy();
  silent.close();
});

/** A WebSocket whose handshake never completes (and never errors by itself). */
class HangingWebSocket extends WebSocket {
  constructor(url, protocols) {
    wsAttempts.push(url);
    const { port } = silent.address();
    super(url.replace(/^ws:\/\/[^/]+/, `ws://127.0.0.1:${port}`), protocols);
  }
}

async function fallbackScenario(WebSocketClass, name) {
  await silentReady;
  const attemptsBefore = wsAttempts.length;
  const sessionStorage = new MemoryStorage();
  const started = Date.now();
  const client = await connected(env.gateway, {
    transport: WebSocketClass,
    longPollFallbackMs: 500,
    sessionStorage,
    params: params(env, `good-${name}`),
  });
  assert.ok(wsAttempts.length > attemptsBefore, "phoenix.js never tried the WebSocket transport");
  assert.ok(wsAttempts[attemptsBefore].includes("/socket/websocket?"), wsAttempts[attemptsBefore]);
  assert.equal(client.socket.transport, LongPoll, "the socket did not switch to LongPoll");
  assert.ok(client.socket.conn instanceof LongPoll, "the open connection is not a LongPoll one");
  assert.equal(sessionStorage.getItem("phx:fallback:LongPoll"), "true", "phoenix.js did not memorize the fallback");
  const auth = await env.backend.requests.next(
    (r) => r.path === "/auth" && r.body.token === `good-${name}`,
    `the auth webhook for good-${name}`,
  );
  assert.equal(auth.body.connection_type, "longpoll");

  // The channel joins over the fallback and receives broadcasts, from the
  // server API and from a WebSocket client.
  const topic = `room:fallback-${name}`;
  const { channel, events } = await joined(client, topic, { events: ["headline", "chat"] });
  assert.equal(channel.state, "joined");
  assert.equal((await broadcastViaApi(topic, "headline", { title: "fallback works" })).status, 202);
  await events.next((m) => m.event === "headline" && m.payload.title === "fallback works", "the headline");
  const walt = await connected(env.gateway, { params: params(env, "good-walt") });
  const atWalt = await joined(walt, topic, { events: ["chat"] });
  assert.equal((await outcome(atWalt.channel.push("chat", { body: "ws to fallback" }), "walt's chat")).status, "ok");
  await events.next((m) => m.event === "chat" && m.payload.body === "ws to fallback", "walt's chat at the fallback");
  assert.equal((await outcome(channel.push("chat", { body: "fallback to ws" }), "the fallback's chat")).status, "ok");
  await atWalt.events.next((m) => m.payload.body === "fallback to ws", "the fallback's chat at walt");
  return { client, elapsed: Date.now() - started };
}

test("long-poll fallback: a WebSocket that errors at once falls back to LongPoll, joins and receives", async () => {
  const { client } = await fallbackScenario(BlockedWebSocket, "fbblocked");
  // The error came from the primary transport before it ever opened.
  assert.ok(client.errors.items.length >= 1, "no transport error was reported for the blocked WebSocket");
});

test("long-poll fallback: a WebSocket that never opens falls back after longPollFallbackMs", async () => {
  const { client, elapsed } = await fallbackScenario(HangingWebSocket, "fbhanging");
  // Nothing errored: only the 500 ms timer can have switched transports.
  assert.equal(client.errors.items.length, 0, JSON.stringify(client.errors.items.map((e) => String(e.error))));
  assert.ok(elapsed >= 450, `fell back after ${elapsed} ms, before longPollFallbackMs ran out`);
});

test("long-poll: every webhook call carried a valid signature", () => {
  assert.ok(env.backend.requests.items.some((r) => r.path === "/messages"), "no message webhook calls recorded");
  assert.deepEqual(env.backend.signatureFailures, []);
});
