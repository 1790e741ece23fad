// A minimal app backend for switchboard that verifies every webhook before
// acting on it: auth, schema and message calls with a bad or missing
// signature, a tampered body or an old timestamp get 401 and are not acted on.
//
//   SWITCHBOARD_APP_SECRET=... PORT=8080 node server.js
//
// Replace the auth and message logic with your own; keep the verification.

import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { readRawBody, verifyWebhook } from "./verify.js";

/** The schema this backend publishes: `room:{id}` and a forwarded `ask` event. */
export const SCHEMA = {
  version: "webhook-verify-1",
  channels: [{ pattern: "room:{id}", variables: { id: { type: "string", format: "slug" } } }],
  events: [{ name: "ask", allowedChannels: ["room:*"], delivery: "forward" }],
};

/**
 * An `http.Server` (not yet listening) answering switchboard's webhooks for
 * an app whose secret is `secret`. `onCall({ method, path, headers, raw,
 * verdict })` sees every call and its verification result.
 */
export function createVerifyingBackend({ secret, onCall = () => {} }) {
  return createServer(async (req, res) => {
    const send = (status, value) => {
      const text = JSON.stringify(value);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(text);
    };
    let raw;
    try {
      raw = await readRawBody(req);
    } catch {
      return send(413, { error: "body too large" });
    }
    const path = new URL(req.url, "http://localhost").pathname;
    const verdict = verifyWebhook(secret, req.headers, raw);
    onCall({ method: req.method, path, headers: req.headers, raw, verdict });
    if (!verdict.ok) {
      console.warn(`rejected ${req.method} ${path}: ${verdict.reason}`);
      return send(401, { error: verdict.reason });
    }
    // Only now is the body trusted enough to parse.
    const body = raw.length ? JSON.parse(raw.toString("utf8")) : null;
    switch (path) {
      case "/schema":
        return send(200, SCHEMA);
      case "/auth":
        // Demo only: the token is the client id. Check real credentials here.
        return body?.token ? send(200, { client_id: String(body.token) }) : send(401, {});
      case "/messages":
        return send(200, { action: "reply", data: { got: body.event, from: body.client_id } });
      default:
        return send(404, { error: "no such endpoint" });
    }
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const secret = process.env.SWITCHBOARD_APP_SECRET;
  if (!secret) {
    console.error("set SWITCHBOARD_APP_SECRET to the app's secret");
    process.exit(1);
  }
  const port = Number(process.env.PORT || 8080);
  createVerifyingBackend({ secret }).listen(port, "127.0.0.1", () =>
    console.log(`verifying backend on http://127.0.0.1:${port}`),
  );
}
