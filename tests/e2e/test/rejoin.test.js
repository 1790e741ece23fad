// Reconnect and rejoin after the server drops a connection
// (PHOENIX_PROTOCOL.md §6, CONTRACT §10): the disconnect API closes with
// 1001 and phoenix.js reconnects and rejoins every channel with new join
// refs, over WebSocket and over long-poll; a schema refresh that removes a
// joined channel's pattern ends the channel with `phx_error` on its next
// push, phoenix.js's rejoin is refused with `unmatched topic`, and once the
// schema is back its periodic rejoin (1 s, 2 s, 5 s, 10 s backoff) succeeds.

import { test } from "node:test";
import assert from "node:assert/strict";
import { LongPoll } from "phoenix";
import { SCHEMA } from "../lib/backend.js";
import { connected, joined, outcome } from "../lib/client.js";
import { refreshSchema, serverApi } from "../lib/gateway.js";
import { params, useGateway } from "../lib/fixture.js";
import { Inbox } from "../lib/util.js";

/** The mock's schema plus `shift:{id}`, which the schema test removes and restores. */
const FULL_SCHEMA = {
  ...SCHEMA,
  version: "e2e-rejoin-full",
  channels: [...SCHEMA.channels, { pattern: "shift:{id}", variables: { id: { type: "string", format: "slug" } } }],
  events: SCHEMA.events.map((e) => (e.name === "echo" ? { ...e, allowedChannels: ["room:*", "shift:*"] } : e)),
};
const WITHOUT_SHIFT = {
  ...FULL_SCHEMA,
  version: "e2e-rejoin-without-shift",
  channels: FULL_SCHEMA.channels.filter((c) => c.pattern !== "shift:{id}"),
};

const env = useGateway({ appId: "e2e-rejoin", schema: FULL_SCHEMA });

function api(method, apiPath, body) {
  return serverApi(env.gateway, env.appId, env.secret, method, apiPath, body);
}

/** The ok replies to joins of `topic` seen on `client`'s socket (ref = join_ref). */
function joinOks(client, topic) {
  return client.messages.items.filter(
    (m) => m.topic === topic && m.event === "phx_reply" && m.payload.status === "ok" && m.ref === m.join_ref,
  );
}

async function disconnectedByApi(client, clientId) {
  const response = await api("POST", `clients/${encodeURIComponent(clientId)}/disconnect`);
  assert.equal(response.status, 200, await response.clone().text());
}

test("rejoin: after the disconnect API (1001) phoenix.js reconnects, rejoins every channel with new join refs, and messages flow", async () => {
  const client = await connected(env.gateway, { params: params(env, "good-gina") });
  const one = await joined(client, "room:first", { events: ["after"] });
  const two = await joined(client, "room:second", { events: ["after"] });
  const before = { one: one.channel.joinRef(), two: two.channel.joinRef() };
  assert.notEqual(before.one, before.two);

  await disconnectedByApi(client, "gina");
  const close = await client.closes.next(() => true, "the socket to close");
  assert.equal(close.code, 1001, `close code ${close.code}`);
  // Pushed while the channel is errored: phoenix.js buffers it and sends it
  // (with a new ref) once the rejoin is ok.
  const buffered = one.channel.push("echo", { buffered: true });

  await client.opens.count(2, () => true, "socket opens (the reconnect)");
  for (const [name, { channel }] of [["room:first", one], ["room:second", two]]) {
    await client.messages.next(
      (m) =>
        m.topic === name &&
        m.event === "phx_reply" &&
        m.payload.status === "ok" &&
        m.ref === m.join_ref &&
        m.join_ref !== (name === "room:first" ? before.one : before.two),
      `the rejoin's ok reply for ${name}`,
    );
    assert.equal(channel.state, "joined", `${name} is ${channel.state}`);
    assert.equal(joinOks(client, name).length, 2, `${name} was not joined exactly twice`);
  }
  const afterRefs = { one: one.channel.joinRef(), two: two.channel.joinRef() };
  for (const ref of Object.values(afterRefs)) {
    assert.ok(!Object.values(before).includes(ref), `join ref ${ref} was reused after the reconnect`);
  }

  assert.deepEqual(await outcome(buffered, "the buffered echo's reply"), {
    status: "ok",
    response: { buffered: true, from: "gina", channel: "room:first" },
  });
  // The reconnect was authenticated again, and the gateway sees one
  // connection with both topics.
  assert.equal(
    env.backend.requests.items.filter((r) => r.path === "/auth" && r.body.token === "good-gina").length,
    2,
  );
  const listing = await (await api("GET", "connections?client_id=gina")).json();
  assert.equal(listing.connections.length, 1, JSON.stringify(listing));
  assert.deepEqual([...listing.connections[0].topics].sort(), ["room:first", "room:second"]);

  // Broadcasts reach both rejoined channels, carried with the new join refs
  // on replies.
  for (const [topic, { events }] of [["room:first", one], ["room:second", two]]) {
    assert.equal((await api("POST", "broadcast", { topic, event: "after", payload: { topic } })).status, 202);
    assert.deepEqual((await events.next((m) => m.event === "after", `a broadcast on ${topic}`)).payload, { topic });
  }
  const echo = await outcome(two.channel.push("echo", { n: 2 }), "an echo after the rejoin");
  assert.equal(echo.status, "ok");
  const echoReply = client.messages.items.find(
    (m) => m.topic === "room:second" && m.event === "phx_reply" && m.payload.response && m.payload.response.n === 2,
  );
  assert.equal(echoReply.join_ref, afterRefs.two);
});

test("rejoin: a long-poll session ended by the disconnect API: phoenix.js reconnects and rejoins", async () => {
  const client = await connected(env.gateway, { transport: LongPoll, params: params(env, "good-lars") });
  const { channel, events } = await joined(client, "room:lp-comeback", { events: ["after"] });
  const firstJoinRef = channel.joinRef();
  const firstToken = client.socket.conn.token;

  await disconnectedByApi(client, "lars");
  // The held poll comes back with 410 while LongPoll holds a token: session
  // gone (local close code 3410), so phoenix.js reconnects and rejoins.
  const close = await client.closes.next(() => true, "the long-poll socket to close");
  assert.equal(close.code, 3410, `close ${JSON.stringify(close)}`);
  await client.opens.count(2, () => true, "long-poll socket opens (the reconnect)");
  await client.messages.next(
    (m) =>
      m.topic === "room:lp-comeback" &&
      m.event === "phx_reply" &&
      m.payload.status === "ok" &&
      m.ref === m.join_ref &&
      m.join_ref !== firstJoinRef,
    "the long-poll rejoin's ok reply",
  );
  assert.equal(channel.state, "joined");
  assert.notEqual(channel.joinRef(), firstJoinRef);
  assert.notEqual(client.socket.conn.token, firstToken, "the new session reuses the old token");

  assert.equal((await api("POST", "broadcast", { topic: "room:lp-comeback", event: "after", payload: { back: 1 } })).status, 202);
  assert.deepEqual((await events.next((m) => m.event === "after", "a broadcast after the rejoin")).payload, { back: 1 });
  assert.equal((await outcome(channel.push("echo", { lp: true }), "an echo after the rejoin")).status, "ok");
});

test("rejoin: a schema refresh removing a joined channel's pattern: phx_error, rejoin refused, then rejoined once restored", async () => {
  // Restore the full schema whatever happens, for the tests after this one.
  try {
    const client = await connected(env.gateway, { params: params(env, "good-sam") });
    const steady = await joined(client, "room:steady", { events: ["marker"] });
    const steadyRef = steady.channel.joinRef();

    const channel = client.socket.channel("shift:night", {});
    const errors = new Inbox("onError calls of shift:night");
    channel.onError((reason) => errors.push(reason));
    const joinReplies = new Inbox("join replies of shift:night");
    const joinPush = channel.join(); // phoenix.js resends this same Push on every rejoin
    joinPush
      .receive("ok", (response) => joinReplies.push({ status: "ok", response, ref: joinPush.ref }))
      .receive("error", (response) => joinReplies.push({ status: "error", response, ref: joinPush.ref }));
    await joinReplies.next((r) => r.status === "ok", "the first join of shift:night");
    const firstJoinRef = channel.joinRef();
    assert.equal((await outcome(channel.push("echo", { before: true }), "an echo before the change")).status, "ok");

    env.backend.schema = WITHOUT_SHIFT;
    assert.match(await refreshSchema(env.gateway, env.appId, env.secret), /e2e-rejoin-without-shift/);

    // The next push ends the channel abnormally, as a crashed Phoenix channel.
    // (No reply comes for the push that crashed the channel, as in Phoenix; a
    // short timeout keeps its timer from outliving the test.)
    channel.push("echo", { after: true }, 1500);
    await errors.next(() => true, "channel.onError after the push under the new schema");
    const phxError = await client.messages.next(
      (m) => m.topic === "shift:night" && m.event === "phx_error",
      "the gateway's phx_error for shift:night",
    );
    assert.equal(phxError.join_ref, firstJoinRef, "phx_error must carry the channel's join_ref");
    assert.equal(phxError.ref, firstJoinRef, "phx_error's ref must equal its join_ref");
    assert.deepEqual(phxError.payload, { reason: "channel_crash" });
    assert.notEqual(channel.state, "joined");

    // The server dropped the subscription: a broadcast on the topic does not
    // reach the socket (checked before the marker on a joined topic arrives).
    assert.equal((await api("POST", "broadcast", { topic: "shift:night", event: "ghost", payload: {} })).status, 202);
    assert.equal((await api("POST", "broadcast", { topic: "room:steady", event: "marker", payload: { n: 1 } })).status, 202);
    await steady.events.next((m) => m.payload.n === 1, "the marker on room:steady");
    assert.deepEqual(
      client.messages.items.filter((m) => m.topic === "shift:night" && m.event === "ghost"),
      [],
      "a broadcast on the crashed channel's topic still reached the socket",
    );

    // phoenix.js rejoins after 1 s; the gateway refuses: unmatched topic,
    // with a null join_ref as Phoenix sends it.
    const refused = await joinReplies.next((r) => r.status === "error", "the refused rejoin", 5000);
    assert.deepEqual(refused.response, { reason: "unmatched topic" });
    assert.notEqual(refused.ref, firstJoinRef, "the rejoin did not use a new join ref");
    const refusalOnWire = client.messages.items.find(
      (m) => m.topic === "shift:night" && m.event === "phx_reply" && m.ref === refused.ref,
    );
    assert.equal(refusalOnWire.join_ref, null);
    assert.equal(channel.state, "errored");

    env.backend.schema = FULL_SCHEMA;
    assert.match(await refreshSchema(env.gateway, env.appId, env.secret), /e2e-rejoin-full/);
    // The rejoin backoff is 1 s, 2 s, 5 s, 10 s: the next retry is 2 s after
    // the refusal, at most 5 s if a retry raced the refresh.
    const rejoined = await joinReplies.next(
      (r) => r.status === "ok" && r.ref !== firstJoinRef,
      "the periodic rejoin to succeed after the schema is restored",
      15000,
    );
    assert.equal(channel.state, "joined");
    assert.equal(channel.joinRef(), rejoined.ref);
    assert.notEqual(rejoined.ref, refused.ref);

    assert.deepEqual(await outcome(channel.push("echo", { again: true }), "an echo after the rejoin"), {
      status: "ok",
      response: { again: true, from: "sam", channel: "shift:night" },
    });
    // The other channel never noticed.
    assert.equal(steady.channel.state, "joined");
    assert.equal(steady.channel.joinRef(), steadyRef);
    assert.equal(joinOks(client, "room:steady").length, 1);
    assert.equal(client.opens.items.length, 1, "the socket reconnected");
  } finally {
    env.backend.schema = FULL_SCHEMA;
    await refreshSchema(env.gateway, env.appId, env.secret);
  }
});

test("rejoin: every webhook call carried a valid signature", () => {
  assert.ok(env.backend.requests.items.some((r) => r.path === "/auth"), "no auth calls recorded");
  assert.deepEqual(env.backend.signatureFailures, []);
});
