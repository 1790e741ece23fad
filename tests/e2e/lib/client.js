// The official phoenix.js client over the `ws` package, with everything it
// reports recorded so tests can wait on it.

import { Socket } from "phoenix";
import WebSocket from "ws";
import { Inbox, deferred, withTimeout } from "./util.js";

const open = new Set();

/**
 * A phoenix.js `Socket` on `gateway` with `opts` merged in (e.g. `params`,
 * `authToken`). Records opens, errors, closes and every decoded message.
 * Does not connect; call `client.socket.connect()` or `connected()`.
 */
export function phoenixClient(gateway, opts = {}) {
  const socket = new Socket(gateway.socketUrl, { transport: WebSocket, ...opts });
  const client = {
    socket,
    opens: new Inbox("socket opens"),
    errors: new Inbox("socket errors"),
    closes: new Inbox("socket closes"),
    /** Every message phoenix.js decoded, for any topic: {topic, event, payload, ref, join_ref}. */
    messages: new Inbox("socket messages"),
  };
  socket.onOpen(() => client.opens.push(Date.now()));
  socket.onError((error, transport, establishedConnections) =>
    client.errors.push({ error, establishedConnections }),
  );
  socket.onClose((event) => client.closes.push({ code: event && event.code, reason: event && event.reason }));
  socket.onMessage((message) => client.messages.push(message));
  open.add(client);
  return client;
}

/** A connected phoenix.js socket (waits for onOpen). */
export async function connected(gateway, opts = {}) {
  const client = phoenixClient(gateway, opts);
  client.socket.connect();
  try {
    await client.opens.next(() => true, "the socket to open");
  } catch (error) {
    const errors = client.errors.items.map((e) => String(e.error && (e.error.message || e.error.type || e.error)));
    error.message +=
      `\nsocket errors so far: ${JSON.stringify(errors)}` +
      `\nsocket closes so far: ${JSON.stringify(client.closes.items)}` +
      `\n${await gateway.diagnose()}`;
    throw error;
  }
  return client;
}

/** Disconnects every client made by this module (for `afterEach`). */
export async function disconnectAll() {
  const closing = [...open].map(
    (client) =>
      new Promise((resolve) => {
        open.delete(client);
        client.socket.disconnect(() => resolve(), 1000, "test over");
      }),
  );
  await withTimeout(Promise.all(closing), "every socket to disconnect", 5000);
}

/**
 * Waits for the outcome of a `Push` (join, push or leave): resolves with
 * `{status, response}` for the first of ok / error / timeout.
 */
export function outcome(push, what, ms = 5000) {
  const done = deferred();
  push
    .receive("ok", (response) => done.resolve({ status: "ok", response }))
    .receive("error", (response) => done.resolve({ status: "error", response }))
    .receive("timeout", () => done.resolve({ status: "timeout", response: null }));
  return withTimeout(done.promise, what, ms);
}

/**
 * Joins `topic` on `client` and records every event phoenix.js hands the
 * channel (`channel.on`) for the given `events`. Resolves with
 * {channel, join: {status, response}, events: Inbox}.
 */
export async function join(client, topic, { params = {}, events = [] } = {}) {
  const channel = client.socket.channel(topic, params);
  const inbox = new Inbox(`events on ${topic}`);
  for (const event of events) {
    channel.on(event, (payload) => inbox.push({ event, payload }));
  }
  const result = await outcome(channel.join(), `the join of ${topic}`);
  return { channel, join: result, events: inbox };
}

/** Joins and asserts the join was ok. */
export async function joined(client, topic, options) {
  const result = await join(client, topic, options);
  if (result.join.status !== "ok") {
    throw new Error(`join of ${topic} answered ${result.join.status}: ${JSON.stringify(result.join.response)}`);
  }
  return result;
}
