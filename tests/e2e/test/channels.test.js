// Channels through the official phoenix.js client: joins, pushes, replies,
// broadcasts (direct, by webhook action, by server API) and leaving.

import { test } from "node:test";
import assert from "node:assert/strict";
import { connected, join, joined, outcome } from "../lib/client.js";
import { serverApi } from "../lib/gateway.js";
import { params, useGateway } from "../lib/fixture.js";

const env = useGateway();

function broadcastViaApi(topic, event, payload) {
  return serverApi(env.gateway, env.appId, env.secret, "POST", "broadcast", { topic, event, payload });
}

test("join ok", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-ann") });
  const { channel, join: result } = await join(client, "room:lobby");
  assert.deepEqual(result, { status: "ok", response: {} });
  assert.equal(channel.state, "joined");
});

test("join refused without the join permission: unauthorized", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-ann") });
  const { channel, join: result } = await join(client, "vault:gold");
  assert.deepEqual(result, { status: "error", response: { reason: "unauthorized" } });
  assert.notEqual(channel.state, "joined");
});

test("join with the permission granted by auth succeeds", async () => {
  env.backend.permissions.set("keymaster", ["read:room:*", "read:vault:gold"]);
  const client = await connected(env.gateway, { params: params(env, "good-keymaster") });
  assert.equal((await join(client, "vault:gold")).join.status, "ok");
  assert.deepEqual((await join(client, "vault:silver")).join, {
    status: "error",
    response: { reason: "unauthorized" },
  });
});

test("join refused for a topic no channel matches: unmatched topic", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-ann") });
  const { join: result } = await join(client, "nowhere:at:all");
  assert.deepEqual(result, { status: "error", response: { reason: "unmatched topic" } });
});

test("join refused for a variable that breaks its rules: invalid_channel_pattern", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-ann") });
  const { join: result } = await join(client, "room:not a slug!");
  assert.deepEqual(result, { status: "error", response: { reason: "invalid_channel_pattern" } });
});

test("push with reply: the message webhook's reply action answers the push", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-ann") });
  const { channel } = await joined(client, "room:echo");
  const result = await outcome(channel.push("echo", { n: 1, text: "hello" }), "the echo reply");
  assert.deepEqual(result, {
    status: "ok",
    response: { n: 1, text: "hello", from: "ann", channel: "room:echo" },
  });
  // The webhook saw the push as the contract describes it.
  const request = await env.backend.requests.next(
    (r) => r.path === "/messages" && r.body.event === "echo" && r.body.channel === "room:echo",
    "the echo message webhook",
  );
  assert.deepEqual(request.body.payload, { n: 1, text: "hello" });
  assert.equal(request.body.client_id, "ann");
  assert.deepEqual(request.body.metadata, { name: "ANN", via: "websocket" });
  assert.equal(typeof request.body.ref, "string");
  assert.equal(request.headers["x-request-id"], request.body.request_id);
});

test("push refused: an event not allowed on the channel is invalid_event_for_channel", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-ann") });
  const { channel } = await joined(client, "room:strict");
  const before = env.backend.requests.items.length;
  assert.deepEqual(await outcome(channel.push("vault:open", {}), "the vault:open reply"), {
    status: "error",
    response: { reason: "invalid_event_for_channel" },
  });
  assert.deepEqual(await outcome(channel.push("no-such-event", {}), "the no-such-event reply"), {
    status: "error",
    response: { reason: "invalid_event_for_channel" },
  });
  // The channel still works afterwards, and nothing refused reached the app.
  assert.equal((await outcome(channel.push("echo", { ok: true }), "the echo reply")).status, "ok");
  const forwarded = env.backend.requests.items.slice(before).filter((r) => r.path === "/messages");
  assert.deepEqual(
    forwarded.map((r) => r.body.event),
    ["echo"],
  );
});

test("push refused: a payload breaking the event's JSON Schema is invalid_payload", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-ann") });
  const { channel } = await joined(client, "room:strict");
  const result = await outcome(channel.push("chat", { nobody: 1 }), "the chat reply");
  assert.equal(result.status, "error");
  assert.equal(result.response.reason, "invalid_payload");
  assert.ok(Array.isArray(result.response.errors) && result.response.errors.length > 0, JSON.stringify(result.response));
});

test("broadcast delivery: a second client (and the sender) get the event", async () => {
  const alice = await connected(env.gateway, { params: params(env, "good-alice") });
  const bob = await connected(env.gateway, { params: params(env, "good-bob") });
  const a = await joined(alice, "room:chat", { events: ["chat"] });
  const b = await joined(bob, "room:chat", { events: ["chat"] });
  const requestsBefore = env.backend.requests.items.filter((r) => r.path === "/messages").length;

  const reply = await outcome(a.channel.push("chat", { body: "hi bob" }), "the chat reply");
  assert.deepEqual(reply, { status: "ok", response: {} });
  const atBob = await b.events.next((m) => m.event === "chat", "chat at bob");
  assert.deepEqual(atBob.payload, { body: "hi bob" });
  const atAlice = await a.events.next((m) => m.event === "chat", "chat at alice (the sender)");
  assert.deepEqual(atAlice.payload, { body: "hi bob" });
  // Broadcast delivery skips the backend.
  assert.equal(env.backend.requests.items.filter((r) => r.path === "/messages").length, requestsBefore);
  // Fan-out is a broadcast on the wire: no join_ref, no ref.
  const raw = bob.messages.items.find((m) => m.topic === "room:chat" && m.event === "chat");
  assert.equal(raw.join_ref, null);
  assert.equal(raw.ref, null);
});

test("webhook broadcast action: the app's broadcast reaches a second client", async () => {
  const alice = await connected(env.gateway, { params: params(env, "good-alice") });
  const bob = await connected(env.gateway, { params: params(env, "good-bob") });
  const a = await joined(alice, "room:fan", { events: ["fanned"] });
  const b = await joined(bob, "room:fan", { events: ["fanned"] });

  const reply = await outcome(a.channel.push("fanout", { seq: 7 }), "the fanout reply");
  assert.deepEqual(reply, { status: "ok", response: {} });
  const atBob = await b.events.next((m) => m.event === "fanned", "fanned at bob");
  assert.deepEqual(atBob.payload, { seq: 7, from: "alice" });
  const atAlice = await a.events.next((m) => m.event === "fanned", "fanned at alice");
  assert.deepEqual(atAlice.payload, { seq: 7, from: "alice" });
});

test("server API broadcast reaches a joined client", async () => {
  const carol = await connected(env.gateway, { params: params(env, "good-carol") });
  const { events } = await joined(carol, "room:news", { events: ["headline"] });

  const response = await broadcastViaApi("room:news", "headline", { title: "switchboard ships" });
  assert.equal(response.status, 202, await response.clone().text());
  const got = await events.next((m) => m.event === "headline", "the headline");
  assert.deepEqual(got.payload, { title: "switchboard ships" });

  // A wrong secret is refused and delivers nothing.
  const forged = await serverApi(env.gateway, env.appId, "not-the-secret", "POST", "broadcast", {
    topic: "room:news",
    event: "headline",
    payload: { title: "forged" },
  });
  assert.equal(forged.status, 401);
  await broadcastViaApi("room:news", "headline", { title: "second" });
  await events.next((m) => m.payload.title === "second", "the second headline");
  assert.deepEqual(
    events.items.map((m) => m.payload.title),
    ["switchboard ships", "second"],
  );
});

test("leave: after channel.leave() a server API broadcast no longer reaches the client", async () => {
  const dave = await connected(env.gateway, { params: params(env, "good-dave") });
  const left = await joined(dave, "room:left", { events: ["ping"] });
  const stays = await joined(dave, "room:stays", { events: ["ping"] });

  // Before leaving, the topic delivers.
  await broadcastViaApi("room:left", "ping", { n: 0 });
  await left.events.next((m) => m.payload.n === 0, "ping 0 on room:left");

  // phoenix.js fires the leave's "ok" at once, locally (the channel is no
  // longer "joined" so it cannot wait for the server), so the test waits for
  // the gateway's own reply to the phx_leave and its phx_close on the socket.
  const leavePush = left.channel.leave();
  assert.equal((await outcome(leavePush, "the leave ok")).status, "ok");
  assert.equal(left.channel.state, "closed");
  const serverReply = await dave.messages.next(
    (m) => m.topic === "room:left" && m.event === "phx_reply" && m.ref === leavePush.ref,
    "the gateway's reply to phx_leave",
  );
  assert.deepEqual(serverReply.payload, { status: "ok", response: {} });
  await dave.messages.next(
    (m) => m.topic === "room:left" && m.event === "phx_close",
    "the gateway's phx_close for room:left",
  );

  // Broadcast on the left topic, then on a joined one: the connection is one
  // ordered stream, so once the second arrives the first would have too.
  assert.equal((await broadcastViaApi("room:left", "ping", { n: 1 })).status, 202);
  assert.equal((await broadcastViaApi("room:stays", "ping", { n: 2 })).status, 202);
  await stays.events.next((m) => m.payload.n === 2, "ping 2 on room:stays");

  // Checked on the raw socket, not the (closed) channel, so a server that
  // still delivers is caught even though phoenix.js would drop it.
  const leaked = dave.messages.items.filter((m) => m.topic === "room:left" && m.event === "ping" && m.payload.n === 1);
  assert.deepEqual(leaked, [], "room:left still delivered after the leave");
});

test("every webhook call carried a valid signature", () => {
  assert.ok(env.backend.requests.items.length > 0, "no webhook calls were recorded");
  for (const path of ["/schema", "/auth", "/messages"]) {
    assert.ok(
      env.backend.requests.items.some((r) => r.path === path),
      `no ${path} call was recorded`,
    );
  }
  assert.deepEqual(env.backend.signatureFailures, []);
});
