// A mock app backend: the HTTP endpoints an app exposes to switchboard
// (CONTRACT §5). It verifies the signature of every call and records any
// failure, so a test can assert that there were none.

import { createServer } from "node:http";
import { verifyWebhook } from "../../../examples/webhook-verify/verify.js";
import { Inbox } from "./util.js";

/** The schema the mock serves (CONTRACT §4). */
export const SCHEMA = {
  version: "e2e-1",
  channels: [
    {
      pattern: "room:{id}",
      variables: { id: { type: "string", format: "slug" } },
      permissions: { join: ["read:room:{id}"] },
    },
    {
      pattern: "vault:{id}",
      variables: { id: { type: "string", format: "slug" } },
      permissions: { join: ["read:vault:{id}"] },
    },
  ],
  events: [
    { name: "echo", allowedChannels: ["room:*"], delivery: "forward" },
    { name: "fanout", allowedChannels: ["room:*"], delivery: "forward" },
    {
      name: "chat",
      allowedChannels: ["room:*"],
      delivery: "broadcast",
      payload: {
        type: "object",
        properties: { body: { type: "string" } },
        required: ["body"],
      },
    },
    { name: "vault:open", allowedChannels: ["vault:*"], delivery: "forward" },
  ],
};

/** Permissions every authenticated client gets unless a test says otherwise. */
export const DEFAULT_PERMISSIONS = ["read:room:*"];

// The verifier of examples/webhook-verify, so every e2e test exercises the
// documented example against the real gateway.
function verify(secret, req, raw) {
  const verdict = verifyWebhook(secret, req.headers, raw);
  if (verdict.ok) return null;
  const { "x-switchboard-timestamp": timestamp, "x-switchboard-signature": signature } = req.headers;
  return `${verdict.reason} (timestamp ${timestamp}, signature ${signature})`;
}

/**
 * Starts the mock on 127.0.0.1:0. `appId` and `secret` are what the gateway
 * must send and sign with.
 */
export async function startBackend({ appId, secret, schema = SCHEMA }) {
  const backend = {
    appId,
    secret,
    schema,
    /** client id → permissions (else DEFAULT_PERMISSIONS). */
    permissions: new Map(),
    /** Every request: {path, headers, body}. */
    requests: new Inbox("backend requests"),
    /** Human-readable signature/protocol failures. */
    signatureFailures: [],
    /**
     * Optional `(body) => answer`: a test's own message webhook. When it
     * returns something other than undefined, that is the 200 answer;
     * otherwise the built-in events below answer.
     */
    onMessage: null,
    url: null,
  };

  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const path = new URL(req.url, "http://x").pathname;
      const failure = verify(secret, req, raw);
      if (failure) backend.signatureFailures.push(`${req.method} ${path}: ${failure}`);
      if (req.headers["x-switchboard-app"] !== appId) {
        backend.signatureFailures.push(
          `${req.method} ${path}: x-switchboard-app is ${req.headers["x-switchboard-app"]}, expected ${appId}`,
        );
      }
      let body = null;
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw.toString("utf8"));
        } catch {
          backend.signatureFailures.push(`${req.method} ${path}: body is not JSON`);
        }
      }
      backend.requests.push({ method: req.method, path, headers: req.headers, body });
      const send = (status, value) => {
        const text = JSON.stringify(value);
        res.writeHead(status, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
        });
        res.end(text);
      };
      if (failure) return send(401, { error: "bad signature" });
      switch (path) {
        case "/schema":
          return send(200, backend.schema);
        case "/auth":
          return auth(backend, body, send);
        case "/messages": {
          const custom = backend.onMessage ? backend.onMessage(body) : undefined;
          if (custom !== undefined) return send(200, custom);
          return message(body, send);
        }
        default:
          return send(404, { error: "no such endpoint" });
      }
    });
  });
  server.keepAliveTimeout = 60000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  backend.url = `http://127.0.0.1:${port}`;
  backend.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return backend;
}

function auth(backend, body, send) {
  const token = body && body.token;
  const match = typeof token === "string" && /^good-(.+)$/.exec(token);
  if (!match) return send(401, { error: "unauthorized" });
  const clientId = match[1];
  return send(200, {
    client_id: clientId,
    permissions: backend.permissions.get(clientId) || DEFAULT_PERMISSIONS,
    metadata: { name: clientId.toUpperCase(), via: body.connection_type },
  });
}

function message(body, send) {
  switch (body && body.event) {
    case "echo":
      return send(200, {
        action: "reply",
        data: { ...body.payload, from: body.client_id, channel: body.channel },
      });
    case "fanout":
      return send(200, {
        actions: [
          { action: "broadcast", event: "fanned", data: { ...body.payload, from: body.client_id } },
          { action: "reply", data: {} },
        ],
      });
    default:
      return send(200, { action: "reply", status: "error", data: { reason: "unknown event" } });
  }
}

/** The `[[apps]]` TOML entry for an app served by this backend. */
export function appToml(backend, { messages = true, extra = "" } = {}) {
  return [
    "[[apps]]",
    `id = ${JSON.stringify(backend.appId)}`,
    `secret = ${JSON.stringify(backend.secret)}`,
    `auth_endpoint = "${backend.url}/auth"`,
    `schema_endpoint = "${backend.url}/schema"`,
    messages ? `message_endpoint = "${backend.url}/messages"` : "",
    extra,
  ].join("\n");
}
