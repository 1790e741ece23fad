// The cluster on a real Redis Cluster (docs/cluster.md, "Redis Cluster"):
// three `redis-server --cluster-enabled yes` shards started by this file
// (`lib/redis-cluster.js`), and three switchboard nodes per test on
// `redis-cluster://...` under a key prefix of their own. Topic channels
// (`<prefix>:topic:<app>:<topic>`) must be shard channels (SSUBSCRIBE /
// SPUBLISH) on the shard owning their slot; the control channel stays a
// classic channel.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Presence } from "phoenix";
import { SCHEMA, appToml, startBackend } from "../lib/backend.js";
import { connected, disconnectAll, joined, outcome } from "../lib/client.js";
import { serverApi } from "../lib/gateway.js";
import { startGatewaysOnRedisCluster, startRedisCluster } from "../lib/redis-cluster.js";
import { Inbox, poll } from "../lib/util.js";

const APP = "e2e-rcluster";

/** The mock's schema plus a presence channel. */
const CLUSTER_SCHEMA = {
  ...SCHEMA,
  channels: [
    ...SCHEMA.channels,
    { pattern: "lobby:{id}", variables: { id: { type: "string", format: "slug" } }, presence: true },
  ],
};

/** The Redis Cluster every test of this file uses (each under its own prefix). */
let rc = null;

before(async () => {
  rc = await startRedisCluster({ shards: 3 });
});

after(async () => {
  if (rc) await rc.stop();
});

/** A backend and three switchboard nodes on the Redis Cluster, torn down when the test ends. */
async function setup(t) {
  const secret = `secret-${randomBytes(8).toString("hex")}`;
  const env = { secret, backend: null, gateways: null };
  t.after(async () => {
    try {
      await disconnectAll();
    } finally {
      try {
        if (env.gateways) await env.gateways.stop();
      } finally {
        if (env.backend) await env.backend.stop();
      }
    }
    if (env.backend) assert.deepEqual(env.backend.signatureFailures, []);
  });
  assert.ok(rc, "the Redis Cluster started");
  env.backend = await startBackend({ appId: APP, secret, schema: CLUSTER_SCHEMA });
  env.gateways = await startGatewaysOnRedisCluster({
    redisCluster: rc,
    appsToml: appToml(env.backend),
    apps: [{ appId: APP, secret }],
  });
  env.prefix = env.gateways.prefix;
  [env.a, env.b, env.c] = env.gateways.nodes;
  env.api = (node, method, apiPath, body) => serverApi(node, APP, secret, method, apiPath, body);
  env.channelOf = (topic) => `${env.prefix}:topic:${APP}:${topic}`;
  return env;
}

/** A connected phoenix.js client of `id` on `node`. */
function clientOn(node, id) {
  return connected(node, { params: { app: APP, token: `good-${id}` } });
}

/**
 * One topic `<kind>:<base>-<n>` per shard, its channel's slot owned by that
 * shard (checked with CLUSTER KEYSLOT and CLUSTER NODES): [{topic, channel,
 * shard}] in shard order.
 */
async function topicPerShard(env, kind, base) {
  const found = new Map();
  for (let n = 0; found.size < rc.nodes.length; n += 1) {
    assert.ok(n < 500, `no ${kind}:${base}-N topic for every shard after ${n} tries`);
    const topic = `${kind}:${base}-${n}`;
    const channel = env.channelOf(topic);
    const shard = await rc.ownerOf(channel);
    if (!found.has(shard.port)) found.set(shard.port, { topic, channel, shard });
  }
  return rc.nodes.map((node) => found.get(node.port));
}

/** JSON of a response that must have `status`. */
async function expectJson(response, status, what) {
  const text = await response.text();
  assert.equal(response.status, status, `${what}: ${text}`);
  return JSON.parse(text);
}

async function presenceIds(env, node, topic) {
  const body = await expectJson(
    await env.api(node, "GET", `presence/${encodeURIComponent(topic)}`),
    200,
    `presence API on ${node.name}`,
  );
  return Object.keys(body.presence).sort();
}

/** Joins `topic` with a phoenix.js `Presence`; `syncs` records the sorted ids after every sync. */
async function presenceOn(client, topic, meta) {
  const channel = client.socket.channel(topic, { meta });
  const presence = new Presence(channel);
  const syncs = new Inbox(`presence syncs on ${topic}`);
  const list = () => presence.list((id, { metas }) => ({ id, metas }));
  presence.onSync(() => syncs.push(list().map((p) => p.id).sort()));
  const result = await outcome(channel.join(), `the join of ${topic}`);
  assert.equal(result.status, "ok", JSON.stringify(result.response));
  return { channel, presence, syncs, list };
}

const same = (want) => (ids) => JSON.stringify(ids) === JSON.stringify([...want].sort());

/** Every topic channel of the test's prefix listed by PUBSUB SHARDCHANNELS, per shard port. */
async function shardTopicChannels(env) {
  const out = {};
  for (const node of rc.nodes) out[node.port] = await rc.shardChannels(node, `${env.prefix}:topic:*`);
  return out;
}

/** Every channel of the test's prefix listed by classic PUBSUB CHANNELS, over all shards. */
async function classicChannels(env) {
  const all = [];
  for (const node of rc.nodes) all.push(...(await rc.classicChannels(node, `${env.prefix}:*`)));
  return all.sort();
}

/** Classic subscribers of the control channel, summed over all shards. */
async function controlSubscribers(env) {
  let total = 0;
  for (const node of rc.nodes) total += await rc.classicNumsub(node, `${env.prefix}:control`);
  return total;
}

test("redis cluster: phoenix.js clients on different nodes exchange broadcasts on topics of every shard", async (t) => {
  const env = await setup(t);
  const topics = await topicPerShard(env, "room", "chat");
  assert.equal(new Set(topics.map((x) => x.shard.port)).size, 3, "the topics' channels hash to three shards");
  t.diagnostic(topics.map((x) => `${x.topic} → :${x.shard.port}`).join(", "));

  const clients = {
    alice: await clientOn(env.a, "alice"),
    bob: await clientOn(env.b, "bob"),
    carol: await clientOn(env.c, "carol"),
  };
  const events = ["chat", "end"];
  const at = {};
  for (const [who, client] of Object.entries(clients)) {
    at[who] = {};
    for (const { topic } of topics) at[who][topic] = await joined(client, topic, { events });
  }

  // On each topic a different node's client speaks; everybody hears it.
  const speakers = ["alice", "bob", "carol"];
  for (const [i, { topic }] of topics.entries()) {
    const speaker = speakers[i];
    const body = `${speaker} on ${topic}`;
    assert.deepEqual(await outcome(at[speaker][topic].channel.push("chat", { body }), `${speaker}'s chat reply`), {
      status: "ok",
      response: {},
    });
    for (const who of speakers) {
      await at[who][topic].events.next((m) => m.event === "chat" && m.payload.body === body, `"${body}" at ${who}`);
    }
  }

  // An end marker from every node on every topic, then count: nothing
  // arrived twice and nothing crossed topics.
  for (const node of env.gateways.nodes) {
    for (const { topic } of topics) {
      const response = await env.api(node, "POST", "broadcast", { topic, event: "end", payload: { from: node.name } });
      assert.equal(response.status, 202, await response.clone().text());
    }
  }
  for (const [i, { topic }] of topics.entries()) {
    for (const who of speakers) {
      const inbox = at[who][topic].events;
      await inbox.count(3, (m) => m.event === "end", `end markers on ${topic} at ${who}`);
      assert.deepEqual(
        inbox.items.filter((m) => m.event === "chat").map((m) => m.payload.body),
        [`${speakers[i]} on ${topic}`],
        `the chats ${who} received on ${topic}`,
      );
      assert.deepEqual(
        inbox.items.filter((m) => m.event === "end").map((m) => m.payload.from).sort(),
        env.gateways.nodes.map((n) => n.name).sort(),
        `the end markers ${who} received on ${topic}`,
      );
    }
  }
});

test("redis cluster: the server API broadcast on node A reaches a client on node B (and C's on B reaches A)", async (t) => {
  const env = await setup(t);
  const topics = await topicPerShard(env, "room", "news");
  // Only bob on B subscribes: A, publishing, holds no subscription of its own.
  const bob = await clientOn(env.b, "bob");
  const b = {};
  for (const { topic } of topics) b[topic] = await joined(bob, topic, { events: ["headline"] });
  for (const [n, { topic }] of topics.entries()) {
    // Right after the join's ok reply, no retry (§9).
    const response = await env.api(env.a, "POST", "broadcast", { topic, event: "headline", payload: { n } });
    assert.equal(response.status, 202, await response.clone().text());
  }
  for (const [n, { topic }] of topics.entries()) {
    const got = await b[topic].events.next((m) => m.payload.n === n, `headline ${n} on ${topic} at bob on B`);
    assert.deepEqual(got.payload, { n });
  }

  // A fresh subscriber on A, the broadcast from C.
  const alice = await clientOn(env.a, "alice");
  const fresh = topics[2].topic;
  const a = await joined(alice, fresh, { events: ["headline"] });
  const response = await env.api(env.c, "POST", "broadcast", { topic: fresh, event: "headline", payload: { n: 99 } });
  assert.equal(response.status, 202);
  await a.events.next((m) => m.payload.n === 99, "headline 99 at alice on A");
  await b[fresh].events.next((m) => m.payload.n === 99, "headline 99 at bob on B");
  // Each topic's subscribers got that topic's broadcasts only, once.
  assert.deepEqual(
    topics.map(({ topic }) => b[topic].events.items.map((m) => m.payload.n)),
    [[0], [1], [2, 99]],
  );
  assert.deepEqual(a.events.items.map((m) => m.payload.n), [99]);
});

test("redis cluster: presence lists span nodes; a client's leave reaches the other nodes", async (t) => {
  const env = await setup(t);
  const [{ topic }] = await topicPerShard(env, "lobby", "main");
  const ann = await clientOn(env.a, "ann");
  const ben = await clientOn(env.b, "ben");
  const cat = await clientOn(env.c, "cat");
  const at = {
    ann: await presenceOn(ann, topic, { device: "on-a" }),
    ben: await presenceOn(ben, topic, { device: "on-b" }),
    cat: await presenceOn(cat, topic, { device: "on-c" }),
  };
  for (const who of ["ann", "ben", "cat"]) {
    await at[who].syncs.next(same(["ann", "ben", "cat"]), `ann, ben and cat in ${who}'s presence list`);
  }
  const benAtAnn = at.ann.list().find((p) => p.id === "ben");
  assert.equal(benAtAnn.metas.length, 1);
  assert.equal(benAtAnn.metas[0].device, "on-b");
  for (const node of env.gateways.nodes) {
    await poll(
      async () => same(["ann", "ben", "cat"])(await presenceIds(env, node, topic)),
      async () => `ann, ben and cat in the presence API on ${node.name} (have ${await presenceIds(env, node, topic)})`,
      3000,
    );
  }

  // ben leaves the topic on B: ann (A) and cat (C) get his leave.
  assert.equal((await outcome(at.ben.channel.leave(), "ben's leave")).status, "ok");
  for (const [who, client] of [["ann", ann], ["cat", cat]]) {
    const diff = await client.messages.next(
      (m) => m.topic === topic && m.event === "presence_diff" && m.payload?.leaves && "ben" in m.payload.leaves,
      `ben's presence leave at ${who}`,
    );
    assert.equal(diff.payload.leaves.ben.metas[0].device, "on-b");
    await at[who].syncs.next(same(["ann", "cat"]), `ben gone from ${who}'s presence list`);
  }
  for (const node of env.gateways.nodes) {
    await poll(
      async () => same(["ann", "cat"])(await presenceIds(env, node, topic)),
      async () => `ben gone from the presence API on ${node.name} (have ${await presenceIds(env, node, topic)})`,
      3000,
    );
  }
});

test("redis cluster: the disconnect API on node A closes the client's connections on nodes B and C (classic control channel)", async (t) => {
  const env = await setup(t);
  // The control channel is a classic channel with one subscription per
  // node (PUBSUB CHANNELS / NUMSUB report only the server asked: sum them).
  // Readiness does not wait for that subscription, so poll.
  const control = `${env.prefix}:control`;
  await poll(
    async () => (await controlSubscribers(env)) === 3,
    async () => `three classic subscribers of ${control} over all shards (have ${await controlSubscribers(env)})`,
    5000,
  );
  assert.deepEqual([...new Set(await classicChannels(env))], [control], "classic channels of the prefix");

  const danB = await clientOn(env.b, "dan");
  const danC = await clientOn(env.c, "dan");
  const eve = await clientOn(env.b, "eve");
  const ann = await clientOn(env.a, "ann");
  const e = await joined(eve, "room:after", { events: ["ping"] });
  const a = await joined(ann, "room:after", { events: ["ping"] });
  await poll(
    async () => {
      const body = await expectJson(await env.api(env.a, "GET", "connections?client_id=dan"), 200, "connections API on A");
      return body.connections.length === 2;
    },
    "dan's two connections listed on A",
    3000,
  );

  const response = await env.api(env.a, "POST", "clients/dan/disconnect");
  assert.equal(response.status, 200, await response.clone().text());
  for (const [where, client] of [["B", danB], ["C", danC]]) {
    const closed = await client.closes.next(() => true, `dan's socket on ${where} to close`);
    assert.equal(closed.code, 1001, `close code on ${where}`);
    await client.opens.count(2, () => true, `dan on ${where} to reconnect`);
  }
  // Others are untouched.
  assert.equal((await env.api(env.a, "POST", "broadcast", { topic: "room:after", event: "ping", payload: { n: 1 } })).status, 202);
  await e.events.next((m) => m.payload.n === 1, "the ping at eve on B");
  await a.events.next((m) => m.payload.n === 1, "the ping at ann on A");
  assert.deepEqual(eve.closes.items, []);
  assert.deepEqual(ann.closes.items, []);
});

test("redis cluster: topic channels are shard channels on their own shard while joined, gone after the leave; never classic", async (t) => {
  const env = await setup(t);
  const topics = await topicPerShard(env, "room", "sharded");
  const alice = await clientOn(env.a, "alice");
  const bob = await clientOn(env.b, "bob");
  const at = { alice: {}, bob: {} };
  for (const { topic } of topics) {
    at.alice[topic] = await joined(alice, topic, { events: ["news"] });
    at.bob[topic] = await joined(bob, topic, { events: ["news"] });
  }

  // The joins answered ok, so the subscriptions are in place: each channel
  // is a shard channel of its owning shard only, with two subscribers
  // (nodes A and B; C has no client on it).
  const listed = await shardTopicChannels(env);
  for (const { topic, channel, shard } of topics) {
    for (const node of rc.nodes) {
      assert.equal(
        listed[node.port].includes(channel),
        node.port === shard.port,
        `${channel} (${topic}) in PUBSUB SHARDCHANNELS of :${node.port} (owner :${shard.port}); listed: ${JSON.stringify(listed)}`,
      );
    }
    assert.equal(await rc.shardNumsub(shard, channel), 2, `PUBSUB SHARDNUMSUB ${channel} on its shard`);
  }
  // Classic pub/sub holds no topic channel (only the control channel).
  assert.deepEqual(
    (await classicChannels(env)).filter((c) => c !== `${env.prefix}:control`),
    [],
    "classic channels of the prefix other than the control channel",
  );

  // They carry messages: a broadcast from C (not subscribed) on each topic.
  for (const [n, { topic }] of topics.entries()) {
    const response = await env.api(env.c, "POST", "broadcast", { topic, event: "news", payload: { n } });
    assert.equal(response.status, 202);
  }
  for (const [n, { topic }] of topics.entries()) {
    for (const who of ["alice", "bob"]) {
      await at[who][topic].events.next((m) => m.payload.n === n, `news ${n} on ${topic} at ${who}`);
    }
  }

  // alice leaves the first topic: node A unsubscribes, node B stays.
  const [first, ...others] = topics;
  assert.equal((await outcome(at.alice[first.topic].channel.leave(), "alice's leave")).status, "ok");
  await poll(
    async () => (await rc.shardNumsub(first.shard, first.channel)) === 1,
    async () => `one subscriber of ${first.channel} left (have ${await rc.shardNumsub(first.shard, first.channel)})`,
    5000,
  );
  // bob leaves it too: the shard channel is gone; the others stay.
  assert.equal((await outcome(at.bob[first.topic].channel.leave(), "bob's leave")).status, "ok");
  await poll(
    async () => !(await rc.shardChannels(first.shard, `${env.prefix}:topic:*`)).includes(first.channel),
    async () => `${first.channel} gone from PUBSUB SHARDCHANNELS (have ${JSON.stringify(await shardTopicChannels(env))})`,
    5000,
  );
  for (const { channel, shard } of others) {
    assert.ok((await rc.shardChannels(shard, `${env.prefix}:topic:*`)).includes(channel), `${channel} still listed`);
    assert.equal(await rc.shardNumsub(shard, channel), 2, `${channel} still has both subscribers`);
  }

  // Both sockets close: every topic channel goes.
  await new Promise((resolve) => alice.socket.disconnect(resolve, 1000, "bye"));
  await new Promise((resolve) => bob.socket.disconnect(resolve, 1000, "bye"));
  await poll(
    async () => Object.values(await shardTopicChannels(env)).every((list) => list.length === 0),
    async () => `every topic shard channel gone after the sockets closed (have ${JSON.stringify(await shardTopicChannels(env))})`,
    5000,
  );
  assert.deepEqual(
    (await classicChannels(env)).filter((c) => c !== `${env.prefix}:control`),
    [],
    "classic channels of the prefix other than the control channel, at the end",
  );
});
