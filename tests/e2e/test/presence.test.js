// Presence through phoenix.js `Presence` (CONTRACT §4 `presence: true`,
// §10; PHOENIX_PROTOCOL.md §9): two and three clients converging on one
// list, a leave, a socket disconnect, one client id on two connections,
// join metas against auth metadata, and the server API agreeing with what
// the clients see.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Presence } from "phoenix";
import { SCHEMA } from "../lib/backend.js";
import { connected, outcome } from "../lib/client.js";
import { serverApi } from "../lib/gateway.js";
import { params, useGateway } from "../lib/fixture.js";
import { Inbox, withTimeout, deferred } from "../lib/util.js";

const PRESENCE_SCHEMA = {
  ...SCHEMA,
  channels: [
    ...SCHEMA.channels,
    { pattern: "lobby:{id}", variables: { id: { type: "string", format: "slug" } }, presence: true },
  ],
};

const env = useGateway({ appId: "e2e-presence", schema: PRESENCE_SCHEMA });

/**
 * Joins `topic` on `client` with a phoenix.js `Presence` on the channel.
 * `view.list()` is the current list as [{id, metas}] sorted by id, with each
 * key's metas sorted by phx_ref; `view.until(predicate, what)` waits (bounded)
 * until the current list satisfies `predicate`.
 */
async function presenceView(client, topic, joinParams = {}) {
  const channel = client.socket.channel(topic, joinParams);
  const presence = new Presence(channel);
  const syncs = new Inbox(`presence syncs on ${topic}`);
  const list = () =>
    presence
      .list((id, { metas }) => ({ id, metas: [...metas].sort((a, b) => cmp(a.phx_ref, b.phx_ref)) }))
      .sort((a, b) => cmp(a.id, b.id));
  let seq = 0;
  presence.onSync(() => syncs.push({ seq: ++seq, list: list() }));
  const joinResult = await outcome(channel.join(), `the join of ${topic}`);
  assert.equal(joinResult.status, "ok", `join of ${topic}: ${JSON.stringify(joinResult.response)}`);
  return {
    channel,
    presence,
    list,
    /** Waits until the current list satisfies `predicate`; resolves with it. */
    async until(predicate, what, ms = 5000) {
      const now = list();
      if (predicate(now)) return now;
      const since = seq;
      const item = await syncs.next((s) => s.seq > since && predicate(s.list), what, ms);
      // A later sync may have changed it again; report the state it settled on.
      return predicate(list()) ? list() : item.list;
    },
  };
}

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

const ids = (list) => list.map((p) => p.id);
const hasIds = (expected) => (list) => JSON.stringify(ids(list)) === JSON.stringify([...expected].sort());

/** The server API's presence for `topic`, in the same shape as `view.list()`. */
async function apiList(topic) {
  const response = await serverApi(env.gateway, env.appId, env.secret, "GET", `presence/${encodeURIComponent(topic)}`);
  const text = await response.text();
  assert.equal(response.status, 200, `GET presence/${topic}: ${text}`);
  const body = JSON.parse(text);
  assert.ok(body.presence && typeof body.presence === "object", `no presence object in ${text}`);
  return Object.entries(body.presence)
    .map(([id, { metas }]) => ({ id, metas: [...metas].sort((a, b) => cmp(a.phx_ref, b.phx_ref)) }))
    .sort((a, b) => cmp(a.id, b.id));
}

function client(id) {
  return connected(env.gateway, { params: params(env, `good-${id}`) });
}

test("presence: two then three clients converge on the same list, which the server API agrees with", async () => {
  const topic = "lobby:converge";
  const ann = await presenceView(await client("ann"), topic);
  const ben = await presenceView(await client("ben"), topic);
  for (const [who, view] of [["ann", ann], ["ben", ben]]) {
    await view.until(hasIds(["ann", "ben"]), `ann and ben in ${who}'s list`);
  }
  assert.deepEqual(ben.list(), ann.list(), "ann and ben see different presences");

  const cat = await presenceView(await client("cat"), topic);
  const views = { ann, ben, cat };
  for (const [who, view] of Object.entries(views)) {
    await view.until(hasIds(["ann", "ben", "cat"]), `all three in ${who}'s list`);
  }
  // Same keys, same metas (phx_refs included) everywhere.
  const reference = ann.list();
  for (const [who, view] of Object.entries(views)) {
    assert.deepEqual(view.list(), reference, `${who}'s list differs from ann's`);
  }
  for (const { id, metas } of reference) {
    assert.equal(metas.length, 1, `${id} has ${metas.length} metas`);
    assert.equal(typeof metas[0].phx_ref, "string");
  }
  assert.equal(new Set(reference.map((p) => p.metas[0].phx_ref)).size, 3, "phx_refs are not unique");
  assert.deepEqual(await apiList(topic), reference, "the server API disagrees with the clients");
});

test("presence: channel.leave() removes the client from the others' lists and the API", async () => {
  const topic = "lobby:leave";
  const ann = await presenceView(await client("ann"), topic);
  const ben = await presenceView(await client("ben"), topic);
  const cat = await presenceView(await client("cat"), topic);
  for (const view of [ann, ben, cat]) await view.until(hasIds(["ann", "ben", "cat"]), "all three present");

  await outcome(ben.channel.leave(), "ben's leave");
  for (const [who, view] of [["ann", ann], ["cat", cat]]) {
    await view.until(hasIds(["ann", "cat"]), `ben gone from ${who}'s list`);
  }
  assert.deepEqual(cat.list(), ann.list());
  assert.deepEqual(await apiList(topic), ann.list());
});

test("presence: a socket disconnect removes the client from the others' lists and the API", async () => {
  const topic = "lobby:disconnect";
  const ann = await presenceView(await client("ann"), topic);
  const benClient = await client("ben");
  await presenceView(benClient, topic);
  const cat = await presenceView(await client("cat"), topic);
  for (const view of [ann, cat]) await view.until(hasIds(["ann", "ben", "cat"]), "all three present");

  const gone = deferred();
  benClient.socket.disconnect(() => gone.resolve());
  await withTimeout(gone.promise, "ben's socket to disconnect");
  for (const [who, view] of [["ann", ann], ["cat", cat]]) {
    await view.until(hasIds(["ann", "cat"]), `ben gone from ${who}'s list after his disconnect`);
  }
  assert.deepEqual(await apiList(topic), ann.list());
});

test("presence: one client id on two connections is one key with two metas; one leaving leaves one", async () => {
  const topic = "lobby:devices";
  const web = await presenceView(await client("ann"), topic, { meta: { device: "web" } });
  const ios = await presenceView(await client("ann"), topic, { meta: { device: "ios" } });
  const ben = await presenceView(await client("ben"), topic);

  const twoMetas = (list) => hasIds(["ann", "ben"])(list) && list[0].metas.length === 2;
  for (const [who, view] of [["ann (web)", web], ["ann (ios)", ios], ["ben", ben]]) {
    await view.until(twoMetas, `ann with two metas in ${who}'s list`);
  }
  const both = ben.list();
  assert.deepEqual(both[0].metas.map((m) => m.device).sort(), ["ios", "web"]);
  assert.notEqual(both[0].metas[0].phx_ref, both[0].metas[1].phx_ref);
  assert.deepEqual(web.list(), both);
  assert.deepEqual(ios.list(), both);
  assert.deepEqual(await apiList(topic), both);

  await outcome(ios.channel.leave(), "ann's ios leave");
  const oneMeta = (list) => hasIds(["ann", "ben"])(list) && list[0].metas.length === 1;
  for (const [who, view] of [["ann (web)", web], ["ben", ben]]) {
    await view.until(oneMeta, `ann with one meta in ${who}'s list`);
  }
  const after = ben.list();
  assert.equal(after[0].metas[0].device, "web", "the meta that stayed is not the web one");
  assert.equal(
    after[0].metas[0].phx_ref,
    both[0].metas.find((m) => m.device === "web").phx_ref,
    "the remaining meta's phx_ref changed",
  );
  assert.deepEqual(web.list(), after);
  assert.deepEqual(await apiList(topic), after);
});

test("presence: join params' meta appear in the metas; auth metadata wins a shared key", async () => {
  const topic = "lobby:metas";
  const ann = await presenceView(await client("ann"), topic, {
    meta: { device: "cli", status: "away", name: "impostor", via: "spoofed" },
  });
  const ben = await presenceView(await client("ben"), topic);
  for (const view of [ann, ben]) await view.until(hasIds(["ann", "ben"]), "ann and ben present");

  const [annAtBen] = ben.list();
  assert.equal(annAtBen.id, "ann");
  const meta = annAtBen.metas[0];
  assert.equal(meta.device, "cli", "join meta missing");
  assert.equal(meta.status, "away", "join meta missing");
  // The mock's auth vouches for {name: "ANN", via: "websocket"}.
  assert.equal(meta.name, "ANN", "a join meta overwrote the auth metadata's name");
  assert.equal(meta.via, "websocket", "a join meta overwrote the auth metadata's via");
  assert.equal(typeof meta.phx_ref, "string");
  // ben joined without a meta: just the auth metadata and the phx_ref.
  const benMeta = ben.list()[1].metas[0];
  assert.deepEqual(Object.keys(benMeta).sort(), ["name", "phx_ref", "via"]);
  assert.deepEqual(ann.list(), ben.list());
  assert.deepEqual(await apiList(topic), ben.list());
});

test("presence: every webhook call carried a valid signature", () => {
  assert.ok(env.backend.requests.items.some((r) => r.path === "/auth"), "no auth calls recorded");
  assert.deepEqual(env.backend.signatureFailures, []);
});
