// Binary payloads through phoenix.js (PHOENIX_PROTOCOL.md §2.3; CONTRACT §5
// `payload_base64` / `data_base64`, §10): an ArrayBuffer push is a V2
// binary frame; a binary broadcast reaches V2 WebSocket clients as an
// ArrayBuffer and long-poll clients as `{"payload_base64": ...}`; a
// forwarded binary push reaches the message webhook as `payload_base64` and
// the webhook's `data_base64` comes back as binary.

import { test } from "node:test";
import assert from "node:assert/strict";
import { LongPoll } from "phoenix";
import { SCHEMA } from "../lib/backend.js";
import { connected, joined, outcome } from "../lib/client.js";
import { serverApi } from "../lib/gateway.js";
import { params, useGateway } from "../lib/fixture.js";

const BINARY_SCHEMA = {
  ...SCHEMA,
  events: [
    ...SCHEMA.events,
    // No payload schema: any bytes go.
    { name: "bin", allowedChannels: ["room:*"], delivery: "broadcast" },
    { name: "binfwd", allowedChannels: ["room:*"], delivery: "forward" },
  ],
};

const env = useGateway({ appId: "e2e-binary", schema: BINARY_SCHEMA });

/** Every byte value, plus a few, in an awkward order: a fresh ArrayBuffer. */
function sampleBytes(seed) {
  const bytes = new Uint8Array(300);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + seed) & 0xff;
  bytes[0] = 0x00; // a leading zero byte must survive as data
  bytes[1] = 0xff;
  return bytes.buffer;
}

const b64 = (buffer) => Buffer.from(buffer).toString("base64");
const hex = (buffer) => Buffer.from(buffer).toString("hex");

function assertArrayBuffer(value, expected, what) {
  assert.ok(
    value instanceof ArrayBuffer,
    `${what} is not an ArrayBuffer but ${value === null ? "null" : value.constructor && value.constructor.name}: ${JSON.stringify(value)}`,
  );
  assert.equal(hex(value), hex(expected), `${what} has other bytes`);
}

function wsClient(id) {
  return connected(env.gateway, { params: params(env, `good-${id}`) });
}

/** The message webhook answers `binfwd` with `answer(body)`; others as usual. */
function onBinfwd(answer) {
  env.backend.onMessage = (body) => (body && body.event === "binfwd" ? answer(body) : undefined);
}

test("binary: an ArrayBuffer push on a broadcast event reaches another V2 client as the same ArrayBuffer", async () => {
  const alice = await wsClient("alice");
  const bob = await wsClient("bob");
  const a = await joined(alice, "room:bytes", { events: ["bin"] });
  const b = await joined(bob, "room:bytes", { events: ["bin"] });
  const payload = sampleBytes(1);

  const reply = await outcome(a.channel.push("bin", payload), "the bin reply");
  assert.deepEqual(reply, { status: "ok", response: {} });
  const atBob = await b.events.next((m) => m.event === "bin", "bin at bob");
  assertArrayBuffer(atBob.payload, payload, "the payload at bob");
  const atAlice = await a.events.next((m) => m.event === "bin", "bin at alice (the sender)");
  assertArrayBuffer(atAlice.payload, payload, "the payload at alice");
  // A broadcast (kind 2) frame: no join_ref, no ref.
  const raw = bob.messages.items.find((m) => m.topic === "room:bytes" && m.event === "bin");
  assert.equal(raw.join_ref, null);
  assert.equal(raw.ref, null);
  // The broadcast event skipped the backend.
  assert.equal(
    env.backend.requests.items.filter((r) => r.path === "/messages" && r.body.channel === "room:bytes").length,
    0,
  );

  // Text and binary mix on one socket: a JSON chat still works afterwards.
  assert.equal((await outcome(a.channel.push("chat", { body: "text again" }), "the chat reply")).status, "ok");
});

test("binary: a forwarded binary push reaches the webhook as payload_base64; data_base64 comes back binary", async () => {
  const reversed = (base64) => Buffer.from(base64, "base64").reverse().toString("base64");
  onBinfwd((body) => ({
    actions: [
      { action: "broadcast", event: "binout", data_base64: reversed(body.payload_base64) },
      { action: "reply", data_base64: reversed(body.payload_base64) },
    ],
  }));
  try {
    const alice = await wsClient("alice");
    const bob = await wsClient("bob");
    const a = await joined(alice, "room:binfwd");
    const b = await joined(bob, "room:binfwd", { events: ["binout"] });
    const payload = sampleBytes(2);
    // (a copy: Buffer.from(arrayBuffer) would share, and reverse, the payload)
    const expectedBuffer = new Uint8Array(payload).slice().reverse().buffer;

    const reply = await outcome(a.channel.push("binfwd", payload), "the binfwd reply");
    assert.equal(reply.status, "ok", JSON.stringify(reply.response));
    assertArrayBuffer(reply.response, expectedBuffer, "the reply's response");

    const request = await env.backend.requests.next(
      (r) => r.path === "/messages" && r.body.event === "binfwd" && r.body.channel === "room:binfwd",
      "the binfwd message webhook",
    );
    assert.equal(request.body.payload_base64, b64(payload));
    assert.ok(!("payload" in request.body), `the webhook got a payload besides payload_base64: ${JSON.stringify(request.body.payload)}`);
    assert.equal(request.body.client_id, "alice");

    const atBob = await b.events.next((m) => m.event === "binout", "the binout broadcast at bob");
    assertArrayBuffer(atBob.payload, expectedBuffer, "the binout payload at bob");
  } finally {
    env.backend.onMessage = null;
  }
});

test("binary: long-poll clients get binary as {payload_base64}; their ArrayBuffer pushes arrive as binary", async () => {
  onBinfwd((body) => ({ action: "reply", data_base64: body.payload_base64 }));
  try {
    const lp = await connected(env.gateway, { transport: LongPoll, params: params(env, "good-lena") });
    assert.ok(lp.socket.conn instanceof LongPoll);
    const ws = await wsClient("walt");
    const atLp = await joined(lp, "room:lpbin", { events: ["bin"] });
    const atWs = await joined(ws, "room:lpbin", { events: ["bin"] });

    // WebSocket → long-poll: the broadcast arrives as JSON with the bytes in base64.
    const fromWs = sampleBytes(3);
    assert.equal((await outcome(atWs.channel.push("bin", fromWs), "walt's bin reply")).status, "ok");
    const got = await atLp.events.next((m) => m.event === "bin", "walt's bin at lena (long-poll)");
    assert.deepEqual(got.payload, { payload_base64: b64(fromWs) });
    assertArrayBuffer((await atWs.events.next((m) => m.event === "bin", "walt's own bin")).payload, fromWs, "walt's own bin");

    // Long-poll → WebSocket: phoenix.js LongPoll posts the ArrayBuffer as a
    // base64 ndjson line; the WebSocket client gets the bytes as a binary frame.
    const fromLp = sampleBytes(4);
    assert.equal((await outcome(atLp.channel.push("bin", fromLp), "lena's bin reply")).status, "ok");
    const atWalt = await atWs.events.next((m) => m.event === "bin" && m.payload instanceof ArrayBuffer && hex(m.payload) === hex(fromLp), "lena's bin at walt");
    assertArrayBuffer(atWalt.payload, fromLp, "lena's bin at walt");
    const echoed = await atLp.events.next(
      (m) => m.event === "bin" && m.payload.payload_base64 === b64(fromLp),
      "lena's own bin back at lena",
    );
    assert.deepEqual(echoed.payload, { payload_base64: b64(fromLp) });

    // A forwarded binary push from long-poll; the binary reply comes back in base64.
    const forwarded = sampleBytes(5);
    const reply = await outcome(atLp.channel.push("binfwd", forwarded), "lena's binfwd reply");
    assert.deepEqual(reply, { status: "ok", response: { payload_base64: b64(forwarded) } });
    const request = await env.backend.requests.next(
      (r) => r.path === "/messages" && r.body.event === "binfwd" && r.body.channel === "room:lpbin",
      "lena's binfwd message webhook",
    );
    assert.equal(request.body.payload_base64, b64(forwarded));
    assert.deepEqual(request.body.metadata, { name: "LENA", via: "longpoll" });
  } finally {
    env.backend.onMessage = null;
  }
});

test("binary: a server API broadcast with payload_base64 reaches WebSocket and long-poll clients", async () => {
  const ws = await wsClient("walt");
  const lp = await connected(env.gateway, { transport: LongPoll, params: params(env, "good-lena") });
  const atWs = await joined(ws, "room:apibin", { events: ["blob"] });
  const atLp = await joined(lp, "room:apibin", { events: ["blob"] });
  const bytes = sampleBytes(6);
  const response = await serverApi(env.gateway, env.appId, env.secret, "POST", "broadcast", {
    topic: "room:apibin",
    event: "blob",
    payload_base64: b64(bytes),
  });
  assert.equal(response.status, 202, await response.clone().text());
  assertArrayBuffer((await atWs.events.next((m) => m.event === "blob", "the blob at walt")).payload, bytes, "the blob at walt");
  assert.deepEqual((await atLp.events.next((m) => m.event === "blob", "the blob at lena")).payload, {
    payload_base64: b64(bytes),
  });
});

test("binary: every webhook call carried a valid signature", () => {
  assert.ok(env.backend.requests.items.some((r) => r.path === "/messages"), "no message webhook calls recorded");
  assert.deepEqual(env.backend.signatureFailures, []);
});
