// The cluster (CONTRACT §9): three real `switchboard` processes sharing a
// real Redis, with phoenix.js clients spread over them. Each test starts its
// own mock backend and its own three nodes under a key prefix of its own on
// the shared Redis (127.0.0.1:6379), or on a private redis-server for the
// outage test, and deletes every key under that prefix when it ends.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Presence } from "phoenix";
import WebSocket from "ws";
import { SCHEMA, appToml, startBackend } from "../lib/backend.js";
import { connected, disconnectAll, joined, outcome } from "../lib/client.js";
import { readiness, startCluster } from "../lib/cluster.js";
import { serverApi } from "../lib/gateway.js";
import { SHARED_REDIS, hashFields, keysUnder, redisCli, startPrivateRedis } from "../lib/redis.js";
import { Inbox, poll, withTimeout } from "../lib/util.js";

const APP = "e2e-cluster";

/** The mock's schema plus a presence channel. */
const CLUSTER_SCHEMA = {
  ...SCHEMA,
  channels: [
    ...SCHEMA.channels,
    { pattern: "lobby:{id}", variables: { id: { type: "string", format: "slug" } }, presence: true },
  ],
};

/**
 * A backend and a three-node cluster for one test, torn down (clients,
 * nodes, keys, backend, then `last`) when the test ends.
 */
async function setup(t, { redis = SHARED_REDIS, nodeTtlSecs = null, serverExtra = "", last = null } = {}) {
  const secret = `secret-${randomBytes(8).toString("hex")}`;
  const env = { secret, backend: null, cluster: null };
  t.after(async () => {
    try {
      await disconnectAll();
    } finally {
      try {
        if (env.cluster) await env.cluster.stop();
      } finally {
        try {
          if (env.backend) await env.backend.stop();
        } finally {
          if (last) await last();
        }
      }
    }
    if (env.backend) assert.deepEqual(env.backend.signatureFailures, []);
  });
  env.backend = await startBackend({ appId: APP, secret, schema: CLUSTER_SCHEMA });
  env.cluster = await startCluster({
    appsToml: appToml(env.backend),
    apps: [{ appId: APP, secret }],
    redis,
    nodeTtlSecs,
    serverExtra,
  });
  [env.a, env.b, env.c] = env.cluster.nodes;
  env.api = (node, method, apiPath, body) => serverApi(node, APP, secret, method, apiPath, body);
  return env;
}

/** A connected phoenix.js client of `id` on `node`. */
function clientOn(node, id) {
  return connected(node, { params: { app: APP, token: `good-${id}` } });
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

async function connectionsOn(env, node, query = "") {
  const body = await expectJson(
    await env.api(node, "GET", `connections${query}`),
    200,
    `connections API on ${node.name}`,
  );
  return body.connections;
}

/**
 * Joins `topic` with a phoenix.js `Presence`; `syncs` records the list
 * (sorted ids) after every sync.
 */
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

/** Raw `presence_diff` frames on `topic` whose leaves include `key`. */
function isLeave(topic, key) {
  return (m) =>
    m.topic === topic && m.event === "presence_diff" && m.payload && m.payload.leaves && key in m.payload.leaves;
}

/**
 * One WebSocket upgrade attempt: `{open: true}`, or `{open: false, status,
 * body}` for a refusal (or the failure).
 */
function probeConnect(node, appId, token) {
  return new Promise((resolve) => {
    const query = new URLSearchParams({ app: appId, token, vsn: "2.0.0" });
    const ws = new WebSocket(`${node.socketUrl}/websocket?${query}`);
    const done = (result) => {
      clearTimeout(timer);
      resolve(result);
    };
    const timer = setTimeout(() => {
      ws.terminate();
      done({ open: false, status: "no answer within 2 s" });
    }, 2000);
    ws.on("open", () => {
      ws.close(1000);
      done({ open: true });
    });
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => {
        done({ open: false, status: res.statusCode, body });
        ws.terminate();
      });
    });
    ws.on("error", (error) => done({ open: false, status: error.message }));
  });
}

test("cluster: phoenix.js clients on different nodes exchange broadcasts", async (t) => {
  const env = await setup(t);
  // The nodes really use the test's own prefix on the shared Redis.
  const keys = await keysUnder(SHARED_REDIS, env.cluster.prefix);
  assert.ok(keys.includes(`${env.cluster.prefix}:node:${env.a.name}`), `keys: ${keys.join(", ")}`);

  const alice = await clientOn(env.a, "alice");
  const bob = await clientOn(env.b, "bob");
  const carol = await clientOn(env.c, "carol");
  const events = ["chat", "fanned", "end"];
  const at = {
    alice: await joined(alice, "room:chat", { events }),
    bob: await joined(bob, "room:chat", { events }),
    carol: await joined(carol, "room:chat", { events }),
  };

  // delivery: broadcast, from A and from C.
  assert.deepEqual(await outcome(at.alice.channel.push("chat", { body: "from A" }), "alice's chat reply"), {
    status: "ok",
    response: {},
  });
  for (const who of ["alice", "bob", "carol"]) {
    const got = await at[who].events.next((m) => m.event === "chat" && m.payload.body === "from A", `"from A" at ${who}`);
    assert.deepEqual(got.payload, { body: "from A" });
  }
  assert.equal((await outcome(at.carol.channel.push("chat", { body: "from C" }), "carol's chat reply")).status, "ok");
  for (const who of ["alice", "bob", "carol"]) {
    await at[who].events.next((m) => m.event === "chat" && m.payload.body === "from C", `"from C" at ${who}`);
  }

  // A webhook broadcast action of a push on B.
  assert.deepEqual(await outcome(at.bob.channel.push("fanout", { seq: 1 }), "bob's fanout reply"), {
    status: "ok",
    response: {},
  });
  for (const who of ["alice", "bob", "carol"]) {
    const got = await at[who].events.next((m) => m.event === "fanned", `the fanned event at ${who}`);
    assert.deepEqual(got.payload, { seq: 1, from: "bob" });
  }

  // Nothing arrives twice: a marker from every node, then count.
  for (const node of env.cluster.nodes) {
    const response = await env.api(node, "POST", "broadcast", { topic: "room:chat", event: "end", payload: { from: node.name } });
    assert.equal(response.status, 202);
  }
  for (const who of ["alice", "bob", "carol"]) {
    await at[who].events.count(3, (m) => m.event === "end", `end markers at ${who}`);
    assert.deepEqual(
      at[who].events.items.filter((m) => m.event !== "end").map((m) => m.payload.body ?? m.event),
      ["from A", "from C", "fanned"],
      `what ${who} received`,
    );
  }
});

test("cluster: the server API broadcast on node A reaches clients on nodes B and C", async (t) => {
  const env = await setup(t);
  const bob = await clientOn(env.b, "bob");
  const carol = await clientOn(env.c, "carol");
  const alice = await clientOn(env.a, "alice");
  // Broadcast right after each join's ok reply: the subscription is live
  // cluster-wide by then (§9), so no retry.
  const b = await joined(bob, "room:news", { events: ["headline"] });
  const c = await joined(carol, "room:news", { events: ["headline"] });
  const a = await joined(alice, "room:news", { events: ["headline"] });
  const response = await env.api(env.a, "POST", "broadcast", { topic: "room:news", event: "headline", payload: { n: 1 } });
  assert.equal(response.status, 202, await response.clone().text());
  for (const [who, inbox] of [["bob on B", b.events], ["carol on C", c.events], ["alice on A", a.events]]) {
    const got = await inbox.next((m) => m.payload.n === 1, `headline 1 at ${who}`);
    assert.deepEqual(got.payload, { n: 1 });
  }

  // A fresh subscriber on C, then a broadcast from B at once.
  const dave = await clientOn(env.c, "dave");
  const d = await joined(dave, "room:fresh", { events: ["headline"] });
  const second = await env.api(env.b, "POST", "broadcast", { topic: "room:fresh", event: "headline", payload: { n: 2 } });
  assert.equal(second.status, 202);
  assert.deepEqual((await d.events.next((m) => m.payload.n === 2, "headline 2 at dave on C")).payload, { n: 2 });
  // room:fresh's broadcast did not reach room:news subscribers.
  assert.deepEqual(
    [b, c, a].flatMap((x) => x.events.items.map((m) => m.payload.n)),
    [1, 1, 1],
  );
});

test("cluster: presence lists span nodes; a client's disconnect reaches the others as a leave", async (t) => {
  const env = await setup(t);
  const topic = "lobby:main";
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
  // The metas of a client on another node, as phoenix.js Presence sees them.
  const benAtAnn = at.ann.list().find((p) => p.id === "ben");
  assert.equal(benAtAnn.metas.length, 1);
  assert.equal(benAtAnn.metas[0].device, "on-b");
  assert.equal(benAtAnn.metas[0].name, "BEN");
  assert.equal(typeof benAtAnn.metas[0].phx_ref, "string");
  // The presence API of every node lists all three.
  for (const node of env.cluster.nodes) {
    await poll(
      async () => same(["ann", "ben", "cat"])(await presenceIds(env, node, topic)),
      async () => `ann, ben and cat in the presence API on ${node.name} (have ${await presenceIds(env, node, topic)})`,
      3000,
    );
  }

  // ben's socket goes away: ann (A) and cat (C) get his leave.
  await new Promise((resolve) => ben.socket.disconnect(resolve, 1000, "bye"));
  for (const [who, client] of [["ann", ann], ["cat", cat]]) {
    const diff = await client.messages.next(isLeave(topic, "ben"), `ben's leave at ${who}`);
    assert.equal(diff.payload.leaves.ben.metas[0].device, "on-b");
    await at[who].syncs.next(same(["ann", "cat"]), `ben gone from ${who}'s presence list`);
  }
  for (const node of [env.a, env.c]) {
    await poll(
      async () => same(["ann", "cat"])(await presenceIds(env, node, topic)),
      async () => `ben gone from the presence API on ${node.name} (have ${await presenceIds(env, node, topic)})`,
      3000,
    );
  }
});

test("cluster: the connections API on one node lists every node's connections with their node", async (t) => {
  const env = await setup(t);
  const ann = await clientOn(env.a, "ann");
  const ben = await clientOn(env.b, "ben");
  await clientOn(env.c, "cat");
  await clientOn(env.b, "dan");
  await clientOn(env.c, "dan");
  await joined(ben, "room:listed");
  await joined(ann, "room:other");
  const want = [
    ["ann", env.a.name],
    ["ben", env.b.name],
    ["cat", env.c.name],
    ["dan", env.b.name],
    ["dan", env.c.name],
  ];
  const summary = (list) => list.map((c) => [c.client_id, c.node]).sort((x, y) => (x.join() < y.join() ? -1 : 1));
  for (const node of env.cluster.nodes) {
    const list = await poll(
      async () => {
        const list = await connectionsOn(env, node);
        const ok =
          JSON.stringify(summary(list)) === JSON.stringify(want) &&
          list.find((c) => c.client_id === "ben").topics.includes("room:listed");
        return ok && list;
      },
      async () => `all five connections on ${node.name} (have ${JSON.stringify(summary(await connectionsOn(env, node)))})`,
      3000,
    );
    for (const c of list) {
      for (const field of ["id", "client_id", "client_type", "metadata", "topics", "connected_at", "node"]) {
        assert.ok(field in c, `${field} missing in ${JSON.stringify(c)}`);
      }
      assert.deepEqual(c.metadata, { name: c.client_id.toUpperCase(), via: "websocket" });
    }
    const ids = list.map((c) => `${c.node}/${c.id}`);
    assert.equal(new Set(ids).size, 5, `ids: ${ids}`);
  }
  // The filters apply cluster-wide.
  const dans = await connectionsOn(env, env.a, "?client_id=dan");
  assert.deepEqual(dans.map((c) => c.node).sort(), [env.b.name, env.c.name].sort());
  const listed = await connectionsOn(env, env.c, `?topic=${encodeURIComponent("room:listed")}`);
  assert.deepEqual(listed.map((c) => [c.client_id, c.node]), [["ben", env.b.name]]);
});

test("cluster: the disconnect API on node A closes the client's connections on nodes B and C", async (t) => {
  const env = await setup(t);
  const danB = await clientOn(env.b, "dan");
  const danC = await clientOn(env.c, "dan");
  const eve = await clientOn(env.b, "eve");
  const ann = await clientOn(env.a, "ann");
  const e = await joined(eve, "room:after", { events: ["ping"] });
  const a = await joined(ann, "room:after", { events: ["ping"] });
  await poll(
    async () => (await connectionsOn(env, env.a, "?client_id=dan")).length === 2,
    "dan's two connections listed on A",
    3000,
  );
  const oldIds = (await connectionsOn(env, env.a, "?client_id=dan")).map((c) => `${c.node}/${c.id}`);

  const response = await env.api(env.a, "POST", "clients/dan/disconnect");
  assert.equal(response.status, 200, await response.clone().text());
  for (const [where, client] of [["B", danB], ["C", danC]]) {
    const closed = await client.closes.next(() => true, `dan's socket on ${where} to close`);
    assert.equal(closed.code, 1001, `close code on ${where}`);
    // phoenix.js reconnects (the app's auth decides again).
    await client.opens.count(2, () => true, `dan on ${where} to reconnect`);
  }
  // The old connections are gone from the listing; the reconnected ones are there.
  await poll(
    async () => {
      const now = (await connectionsOn(env, env.a, "?client_id=dan")).map((c) => `${c.node}/${c.id}`);
      return now.length === 2 && now.every((id) => !oldIds.includes(id));
    },
    "dan's reconnected connections (and only those) listed on A",
    3000,
  );
  // Others are untouched: a broadcast sent after the disconnect arrives, and
  // they never closed.
  assert.equal((await env.api(env.a, "POST", "broadcast", { topic: "room:after", event: "ping", payload: { n: 1 } })).status, 202);
  await e.events.next((m) => m.payload.n === 1, "the ping at eve on B");
  await a.events.next((m) => m.payload.n === 1, "the ping at ann on A");
  assert.deepEqual(eve.closes.items, []);
  assert.deepEqual(ann.closes.items, []);
  assert.equal(eve.opens.items.length, 1);
  assert.equal(ann.opens.items.length, 1);
});

test("cluster: an app registered through the admin API on node A is usable on nodes B and C within 5 s", async (t) => {
  const adminToken = `admin-${randomBytes(8).toString("hex")}`;
  const env = await setup(t, { serverExtra: `admin_token = "${adminToken}"` });
  const appId = `e2e-admin-${randomBytes(4).toString("hex")}`;
  const other = await startBackend({ appId, secret: `secret-${randomBytes(8).toString("hex")}`, schema: CLUSTER_SCHEMA });
  t.after(() => other.stop());
  const admin = (node, method, body) =>
    fetch(`${node.http}/admin/v1/apps/${appId}`, {
      method,
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: body && JSON.stringify(body),
    });

  // Unknown everywhere before.
  for (const node of env.cluster.nodes) {
    const probe = await probeConnect(node, appId, "good-probe");
    assert.deepEqual([probe.status, JSON.parse(probe.body).reason], [403, "unknown_app"]);
  }
  const put = await admin(env.a, "PUT", {
    secret: other.secret,
    auth_endpoint: `${other.url}/auth`,
    schema_endpoint: `${other.url}/schema`,
    message_endpoint: `${other.url}/messages`,
  });
  assert.equal(put.status, 201, await put.clone().text());
  const registeredAt = Date.now();
  for (const node of [env.b, env.c]) {
    let last;
    await poll(
      async () => (last = await probeConnect(node, appId, "good-probe")).open,
      () => `${appId} to accept connections on ${node.name} (last answer: ${JSON.stringify(last)})`,
      Math.max(0, registeredAt + 5000 - Date.now()),
    );
  }
  const elapsed = Date.now() - registeredAt;
  assert.ok(elapsed <= 5000, `usable on B and C after ${elapsed} ms`);

  // Clients of the new app on B and C talk to each other.
  const bob = await connected(env.b, { params: { app: appId, token: "good-bob" } });
  const carol = await connected(env.c, { params: { app: appId, token: "good-carol" } });
  const b = await joined(bob, "room:registered", { events: ["chat"] });
  const c = await joined(carol, "room:registered", { events: ["chat"] });
  assert.equal((await outcome(b.channel.push("chat", { body: "hi from B" }), "bob's chat reply")).status, "ok");
  await c.events.next((m) => m.payload.body === "hi from B", "bob's chat at carol on C");
  // The other nodes list it (secret not returned).
  const list = await expectJson(
    await fetch(`${env.c.http}/admin/v1/apps`, { headers: { authorization: `Bearer ${adminToken}` } }),
    200,
    "GET /admin/v1/apps on C",
  );
  const entry = list.apps.find((app) => app.id === appId);
  assert.ok(entry, JSON.stringify(list));
  assert.ok(!JSON.stringify(entry).includes(other.secret), "the secret is not returned");

  // Removed on A: gone on B and C too.
  const removed = await admin(env.a, "DELETE");
  assert.equal(removed.status, 204);
  const removedAt = Date.now();
  for (const node of [env.b, env.c]) {
    let last;
    await poll(
      async () => (last = await probeConnect(node, appId, "good-probe")).status === 403,
      () => `${appId} to be refused on ${node.name} after its removal (last answer: ${JSON.stringify(last)})`,
      Math.max(0, removedAt + 5000 - Date.now()),
    );
  }
  assert.deepEqual(other.signatureFailures, []);
});

test("cluster: kill -9 of a node clears its presence and connections within 3 × node_ttl", async (t) => {
  const ttl = 2;
  const env = await setup(t, { nodeTtlSecs: ttl });
  const topic = "lobby:kill";
  const ann = await clientOn(env.a, "ann");
  const ben = await clientOn(env.b, "ben");
  const cat = await clientOn(env.c, "cat");
  const at = {
    ann: await presenceOn(ann, topic, {}),
    ben: await presenceOn(ben, topic, {}),
    cat: await presenceOn(cat, topic, {}),
  };
  for (const who of ["ann", "ben", "cat"]) {
    await at[who].syncs.next(same(["ann", "ben", "cat"]), `all three in ${who}'s presence list`);
  }
  const presenceKey = `${env.cluster.prefix}:presence:${APP}:${topic}`;
  await poll(
    async () => (await connectionsOn(env, env.a)).some((c) => c.node === env.c.name) &&
      (await hashFields(SHARED_REDIS, presenceKey)).some((f) => f.startsWith(`${env.c.name}:`)),
    "node C's connection and presence entry in Redis",
    3000,
  );

  await env.c.kill("SIGKILL");
  const killedAt = Date.now();
  const bound = 3 * ttl * 1000 + 2000;
  const left = () => Math.max(0, killedAt + bound - Date.now());

  for (const [who, client] of [["ann on A", ann], ["ben on B", ben]]) {
    await client.messages.next(isLeave(topic, "cat"), `cat's presence leave at ${who}`, left());
  }
  await at.ann.syncs.next(same(["ann", "ben"]), "cat gone from ann's presence list", left());
  await at.ben.syncs.next(same(["ann", "ben"]), "cat gone from ben's presence list", left());
  for (const node of [env.a, env.b]) {
    await poll(
      async () => same(["ann", "ben"])(await presenceIds(env, node, topic)),
      async () => `cat gone from the presence API on ${node.name} (have ${await presenceIds(env, node, topic)})`,
      left(),
    );
    await poll(
      async () => (await connectionsOn(env, node)).every((c) => c.node !== env.c.name),
      async () => `node C's connections gone from the connections API on ${node.name}`,
      left(),
    );
  }
  // Gone from Redis too, not only filtered out of the views.
  await poll(
    async () => !(await hashFields(SHARED_REDIS, presenceKey)).some((f) => f.startsWith(`${env.c.name}:`)),
    "node C's presence entry deleted from Redis",
    left(),
  );
  t.diagnostic(`dead node cleared ${Date.now() - killedAt} ms after kill -9 (bound ${bound} ms)`);
  // The survivors still talk to each other.
  const a = await joined(ann, "room:survivors", { events: ["ping"] });
  await joined(ben, "room:survivors", { events: ["ping"] });
  assert.equal((await env.api(env.b, "POST", "broadcast", { topic: "room:survivors", event: "ping", payload: {} })).status, 202);
  await a.events.next(() => true, "a ping from B at ann on A");
});

test("cluster: a node restarted under its old name clears what its previous run left", async (t) => {
  // The default node_ttl_secs (10): the restarted node renews its liveness
  // key long before the old one could expire, so no other node would ever
  // reap its previous run's entries; the node must clear them itself.
  const env = await setup(t);
  const topic = "lobby:restart";
  const ann = await clientOn(env.a, "ann");
  const ben = await clientOn(env.b, "ben");
  const cat = await clientOn(env.c, "cat");
  const at = {
    ann: await presenceOn(ann, topic, {}),
    ben: await presenceOn(ben, topic, {}),
    cat: await presenceOn(cat, topic, {}),
  };
  for (const who of ["ann", "ben", "cat"]) {
    await at[who].syncs.next(same(["ann", "ben", "cat"]), `all three in ${who}'s presence list`);
  }
  const nodeC = env.c.name;
  const presenceKey = `${env.cluster.prefix}:presence:${APP}:${topic}`;
  const catOld = await poll(
    async () => {
      const listed = (await connectionsOn(env, env.a, "?client_id=cat")).filter((c) => c.node === nodeC);
      const inRedis = (await hashFields(SHARED_REDIS, presenceKey)).some((f) => f.startsWith(`${nodeC}:`));
      return listed.length === 1 && inRedis && listed[0];
    },
    "cat's connection on C listed on A and its presence entry in Redis",
    3000,
  );
  assert.deepEqual(await presenceIds(env, env.a, topic), ["ann", "ben", "cat"]);

  await env.c.kill("SIGKILL");
  const killedAt = Date.now();
  const bound = 5000;
  const left = () => Math.max(0, killedAt + bound - Date.now());
  // cat's phoenix.js socket must not reconnect (a reused port could bring
  // cat back to the restarted node): stop it once it saw the close.
  await cat.closes.next(() => true, "cat's socket to close after kill -9 of C", left());
  await withTimeout(
    new Promise((resolve) => cat.socket.disconnect(resolve, 1000, "node gone")),
    "cat's socket to stop reconnecting",
    left(),
  );
  env.c = await env.cluster.restart(env.c);
  t.diagnostic(`node C restarted under ${nodeC} and ready ${Date.now() - killedAt} ms after kill -9`);

  for (const [who, client] of [["ann on A", ann], ["ben on B", ben]]) {
    await client.messages.next(isLeave(topic, "cat"), `cat's presence leave at ${who}`, left());
  }
  await at.ann.syncs.next(same(["ann", "ben"]), "cat gone from ann's presence list", left());
  await at.ben.syncs.next(same(["ann", "ben"]), "cat gone from ben's presence list", left());
  await poll(
    async () => same(["ann", "ben"])(await presenceIds(env, env.a, topic)),
    async () => `cat gone from the presence API on A (have ${await presenceIds(env, env.a, topic)})`,
    left(),
  );
  await poll(
    async () => (await connectionsOn(env, env.a)).every((c) => c.client_id !== "cat"),
    async () =>
      `cat's old connection (${nodeC}/${catOld.id}) gone from the connections API on A (have ${JSON.stringify(
        (await connectionsOn(env, env.a)).map((c) => [c.client_id, c.node, c.id]),
      )})`,
    left(),
  );
  // Deleted from Redis, not only filtered out of the views.
  await poll(
    async () => !(await hashFields(SHARED_REDIS, presenceKey)).some((f) => f.startsWith(`${nodeC}:`)),
    async () => `the old run's presence entry deleted from Redis (have ${await hashFields(SHARED_REDIS, presenceKey)})`,
    left(),
  );
  const elapsed = Date.now() - killedAt;
  assert.ok(elapsed <= bound, `cleared ${elapsed} ms after kill -9 (bound ${bound} ms)`);
  t.diagnostic(`previous run cleared ${elapsed} ms after kill -9 (node_ttl_secs 10)`);

  // The restarted node works normally: a new client there joins everyone's lists.
  const dan = await clientOn(env.c, "dan");
  const atDan = await presenceOn(dan, topic, {});
  await atDan.syncs.next(same(["ann", "ben", "dan"]), "ann, ben and dan in dan's presence list");
  await at.ann.syncs.next(same(["ann", "ben", "dan"]), "dan in ann's presence list");
  await at.ben.syncs.next(same(["ann", "ben", "dan"]), "dan in ben's presence list");
  await poll(
    async () => same(["ann", "ben", "dan"])(await presenceIds(env, env.a, topic)),
    async () => `ann, ben and dan in the presence API on A (have ${await presenceIds(env, env.a, topic)})`,
    3000,
  );
  await poll(
    async () => {
      const list = await connectionsOn(env, env.a);
      return list.some((c) => c.client_id === "dan" && c.node === nodeC) && list.every((c) => c.client_id !== "cat");
    },
    async () =>
      `dan on the restarted C (and no cat) in the connections API on A (have ${JSON.stringify(
        (await connectionsOn(env, env.a)).map((c) => [c.client_id, c.node, c.id]),
      )})`,
    3000,
  );
});

/** The `switchboard_dropped_messages_total` of the app for `reason` on a node. */
async function droppedTotal(node, reason) {
  const text = await (await fetch(`${node.http}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n")) {
    if (
      line.startsWith("switchboard_dropped_messages_total{") &&
      line.includes(`app="${APP}"`) &&
      line.includes(`reason="${reason}"`)
    ) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

test("cluster: Redis stopped and restarted while clients stay connected; readiness and cross-node delivery return", async (t) => {
  const redis = await startPrivateRedis();
  let env;
  try {
    env = await setup(t, { redis, last: () => redis.stop() });
  } catch (error) {
    await redis.stop();
    throw error;
  }
  const alice = await clientOn(env.a, "alice");
  const al2 = await clientOn(env.a, "al2");
  const bob = await clientOn(env.b, "bob");
  const carol = await clientOn(env.c, "carol");
  const clients = { alice, al2, bob, carol };
  const at = {};
  for (const [who, client] of Object.entries(clients)) {
    at[who] = await joined(client, "room:outage", { events: ["chat", "news"] });
    await presenceOn(client, "lobby:outage", {});
  }
  const sockets = Object.fromEntries(Object.entries(clients).map(([who, c]) => [who, c.socket.conn]));

  // Cross-node delivery before the outage.
  assert.equal((await outcome(at.alice.channel.push("chat", { body: "before" }), "the chat reply")).status, "ok");
  for (const who of ["bob", "carol"]) {
    await at[who].events.next((m) => m.payload.body === "before", `"before" at ${who}`);
  }

  /** Kills Redis and waits until every node reports not ready (§9: within 10 s). */
  async function killRedis(what) {
    await redis.kill();
    const killedAt = Date.now();
    for (const node of env.cluster.nodes) {
      await poll(
        async () => (await readiness(node)) === 503,
        async () => `/health/ready on ${node.name} to answer 503 without Redis (now ${await readiness(node)})`,
        Math.max(0, killedAt + 10000 - Date.now()),
      );
    }
    t.diagnostic(`${what}: every node not ready ${Date.now() - killedAt} ms after Redis died`);
  }

  /**
   * Restarts Redis (empty, same port; unless `restart` is false) and waits
   * until every node is ready again and broadcasts cross nodes both ways
   * (§9: within 30 s).
   */
  async function restartRedis(phase, { restart = true } = {}) {
    if (restart) await redis.restart();
    const backAt = Date.now();
    const left = () => Math.max(0, backAt + 30000 - Date.now());
    for (const node of env.cluster.nodes) {
      await poll(
        async () => (await readiness(node)) === 200,
        async () => `/health/ready on ${node.name} to answer 200 again (now ${await readiness(node)})\n${await node.diagnose()}`,
        left(),
      );
    }
    // Keep broadcasting from A and from C until B and C hear A and A hears C.
    let seq = 0;
    const heard = (who, from) =>
      at[who].events.items.some((m) => m.event === "news" && m.payload.phase === phase && m.payload.from === from);
    const state = () =>
      ["bob:A", "carol:A", "alice:C", "bob:C"].map((x) => `${x}=${heard(...x.split(":"))}`).join(" ");
    await poll(
      async () => {
        seq += 1;
        for (const [node, from] of [[env.a, "A"], [env.c, "C"]]) {
          const response = await env.api(node, "POST", "broadcast", {
            topic: "room:outage",
            event: "news",
            payload: { phase, from, seq },
          });
          assert.equal(response.status, 202);
        }
        return heard("bob", "A") && heard("carol", "A") && heard("alice", "C") && heard("bob", "C");
      },
      () => `cross-node delivery after Redis came back (${phase}: ${state()})`,
      left(),
      250,
    );
    // A phoenix.js push crosses nodes too.
    const body = `chat ${phase}`;
    assert.equal((await outcome(at.carol.channel.push("chat", { body }), "carol's chat reply")).status, "ok");
    for (const who of ["alice", "al2", "bob"]) {
      await at[who].events.next((m) => m.payload.body === body, `carol's "${body}" at ${who}`, left());
    }
    t.diagnostic(`${phase}: ready and delivering across nodes ${Date.now() - backAt} ms after Redis was back`);
    return left;
  }

  // 0. Redis drops every node's subscriber connection but keeps running
  //    (and its data): the reconnected ones must subscribe again, although
  //    the outage is too short for any health check to notice.
  const killed = await redisCli(redis, "client", "kill", "type", "pubsub");
  assert.ok(Number(killed) >= 3, `CLIENT KILL TYPE pubsub closed ${killed.trim()} connections`);
  await restartRedis("after-drop", { restart: false });

  // 1. A quick outage: Redis is back as soon as every node noticed, which
  //    can be before a node's own once-a-second check saw it go.
  await killRedis("quick outage");
  await restartRedis("after-quick");

  // 2. A long outage: local delivery on A goes on, cross-node sends are
  //    dropped and counted, readiness stays 503.
  await killRedis("long outage");
  const droppedBefore = await droppedTotal(env.a, "cluster_unavailable");
  assert.deepEqual(await outcome(at.alice.channel.push("chat", { body: "during" }), "the chat reply without Redis"), {
    status: "ok",
    response: {},
  });
  await at.al2.events.next((m) => m.payload.body === "during", `"during" at al2 on A`);
  const local = await env.api(env.a, "POST", "broadcast", { topic: "room:outage", event: "news", payload: { phase: "during" } });
  assert.equal(local.status, 202, await local.clone().text());
  await at.al2.events.next((m) => m.event === "news" && m.payload.phase === "during", "the API broadcast at al2 on A");
  await at.alice.events.next((m) => m.event === "news" && m.payload.phase === "during", "the API broadcast at alice on A");
  await poll(
    async () => (await droppedTotal(env.a, "cluster_unavailable")) > droppedBefore,
    "node A to count the cross-node messages it could not send",
    10000,
  );
  for (const node of env.cluster.nodes) {
    assert.equal(await readiness(node), 503, `${node.name} still not ready while Redis is down`);
  }
  const left = await restartRedis("after-long");

  // The restarted Redis holds every node's connections and presence again.
  await poll(
    async () => {
      const list = await connectionsOn(env, env.b);
      const nodes = new Set(list.filter((c) => c.topics.includes("room:outage")).map((c) => c.node));
      return list.length === 4 && nodes.size === 3;
    },
    async () =>
      `the four connections of three nodes listed on B (have ${JSON.stringify((await connectionsOn(env, env.b)).map((c) => [c.client_id, c.node]))})`,
    left(),
  );
  await poll(
    async () => same(["al2", "alice", "bob", "carol"])(await presenceIds(env, env.b, "lobby:outage")),
    async () => `every client in the presence API on B (have ${await presenceIds(env, env.b, "lobby:outage")})`,
    left(),
  );
  // Nobody reconnected: the same sockets, one open each, no close.
  for (const [who, client] of Object.entries(clients)) {
    assert.equal(client.opens.items.length, 1, `${who} opened again`);
    assert.deepEqual(client.closes.items, [], `${who}'s socket closed`);
    assert.equal(client.socket.conn, sockets[who], `${who} has a new socket`);
  }
});
