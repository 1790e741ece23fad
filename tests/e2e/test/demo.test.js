// The demo app's semantics (CONTRACT §1): its schema
// (crates/gateway/src/config/demo_schema.json) and no message_endpoint, so
// every event is validated and broadcast directly. The embedded demo binds
// 127.0.0.1:4000, which a test cannot rely on being free, so the same schema
// is served from a temp config; auth is the mock's, granting `user:<id>` as
// the demo does.

import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { Presence } from "phoenix";
import { connected, join, joined, outcome } from "../lib/client.js";
import { REPO_ROOT, toml } from "../lib/gateway.js";
import { useGateway } from "../lib/fixture.js";
import { Inbox } from "../lib/util.js";

const DEMO_SCHEMA = path.join(REPO_ROOT, "crates/gateway/src/config/demo_schema.json");

const env = useGateway({
  appId: "demo-e2e",
  appEntry: (backend) =>
    [
      "[[apps]]",
      `id = ${toml(backend.appId)}`,
      `secret = ${toml(backend.secret)}`,
      `auth_endpoint = ${toml(`${backend.url}/auth`)}`,
      `schema_file = ${toml(DEMO_SCHEMA)}`,
    ].join("\n"),
});

/** A connected client whose auth grants `user:<id>`, as the demo's does. */
function demoClient(id) {
  env.backend.permissions.set(id, [`user:${id}`]);
  return connected(env.gateway, { params: { app: env.appId, token: `good-${id}` } });
}

test("demo: a message is broadcast to every subscriber of the room, sender included", async () => {
  const ann = await demoClient("ann");
  const ben = await demoClient("ben");
  const a = await joined(ann, "room:lobby", { events: ["message"] });
  const b = await joined(ben, "room:lobby", { events: ["message"] });

  const reply = await outcome(a.channel.push("message", { body: "hello lobby" }), "the message reply");
  assert.deepEqual(reply, { status: "ok", response: {} });
  for (const [who, inbox] of [["ben", b.events], ["ann", a.events]]) {
    const got = await inbox.next((m) => m.event === "message", `the message at ${who}`);
    assert.deepEqual(got.payload, { body: "hello lobby" });
  }
  // No backend: nothing but auth was called.
  assert.deepEqual(
    env.backend.requests.items.filter((r) => r.path !== "/auth").map((r) => r.path),
    [],
  );
});

test("demo: typing on a room and shout on a demo:* topic broadcast too", async () => {
  const ann = await demoClient("ann");
  const ben = await demoClient("ben");
  const a = await joined(ann, "room:typing", { events: ["typing"] });
  const b = await joined(ben, "room:typing", { events: ["typing"] });
  assert.equal((await outcome(a.channel.push("typing", { on: true }), "the typing reply")).status, "ok");
  assert.deepEqual((await b.events.next((m) => m.event === "typing", "typing at ben")).payload, { on: true });

  const x = await joined(ann, "demo:any:thing", { events: ["shout"] });
  const y = await joined(ben, "demo:any:thing", { events: ["shout"] });
  assert.equal((await outcome(x.channel.push("shout", { loud: 1 }), "the shout reply")).status, "ok");
  assert.deepEqual((await y.events.next((m) => m.event === "shout", "shout at ben")).payload, { loud: 1 });
});

test("demo: the schema's checks refuse bad pushes", async () => {
  const ann = await demoClient("ann");
  const { channel } = await joined(ann, "room:checks");
  const missing = await outcome(channel.push("message", { text: "no body" }), "the reply to a body-less message");
  assert.equal(missing.status, "error");
  assert.equal(missing.response.reason, "invalid_payload");
  assert.ok(missing.response.errors.length > 0);
  const tooLong = await outcome(channel.push("message", { body: "x".repeat(2001) }), "the reply to a long body");
  assert.equal(tooLong.response.reason, "invalid_payload");
  assert.deepEqual(await outcome(channel.push("nope", {}), "the reply to an unknown event"), {
    status: "error",
    response: { reason: "invalid_event_for_channel" },
  });
  // typing is allowed on room:* only.
  const other = await joined(ann, "demo:checks");
  assert.deepEqual(await outcome(other.channel.push("typing", {}), "the reply to typing on demo:*"), {
    status: "error",
    response: { reason: "invalid_event_for_channel" },
  });
});

test("demo: user:{id} is joinable by its own user only; bad room names are refused", async () => {
  const ann = await demoClient("ann");
  assert.equal((await join(ann, "user:ann")).join.status, "ok");
  assert.deepEqual((await join(ann, "user:ben")).join, { status: "error", response: { reason: "unauthorized" } });
  assert.deepEqual((await join(ann, "room:has space")).join, {
    status: "error",
    response: { reason: "invalid_channel_pattern" },
  });
  assert.deepEqual((await join(ann, "lobby")).join, { status: "error", response: { reason: "unmatched topic" } });
});

test("demo: presence on rooms works with phoenix.js Presence", async () => {
  const ann = await demoClient("ann");
  const ben = await demoClient("ben");

  const channel = ann.socket.channel("room:presence", { meta: { device: "cli" } });
  const presence = new Presence(channel);
  const syncs = new Inbox("presence syncs at ann");
  presence.onSync(() => syncs.push(presence.list((id, { metas }) => ({ id, metas }))));
  assert.equal((await outcome(channel.join(), "ann's join")).status, "ok");
  const alone = await syncs.next((list) => list.some((p) => p.id === "ann"), "ann in her own presence list");
  assert.deepEqual(alone.map((p) => p.id), ["ann"]);
  const meta = alone[0].metas[0];
  assert.equal(meta.device, "cli", "join params' meta are in the presence metas");
  assert.equal(meta.name, "ANN", "auth metadata is in the presence metas");
  assert.equal(typeof meta.phx_ref, "string");

  const benJoin = await joined(ben, "room:presence", { params: { meta: { device: "web" } } });
  const both = await syncs.next((list) => list.length === 2, "ann and ben in ann's presence list");
  assert.deepEqual(both.map((p) => p.id).sort(), ["ann", "ben"]);

  await outcome(benJoin.channel.leave(), "ben's leave");
  const after = await syncs.next(
    (list) => list.length === 1 && list[0].id === "ann",
    "ben gone from ann's presence list",
  );
  assert.deepEqual(after.map((p) => p.id), ["ann"]);
});

test("every webhook call carried a valid signature", () => {
  assert.ok(env.backend.requests.items.some((r) => r.path === "/auth"), "no auth calls recorded");
  assert.deepEqual(env.backend.signatureFailures, []);
});
