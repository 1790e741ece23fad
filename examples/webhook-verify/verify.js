// Verifying a switchboard webhook (docs/webhooks.md, "Verifying a webhook").
//
// Every call switchboard makes to an app backend carries
//   x-switchboard-timestamp: <Unix seconds when sent>
//   x-switchboard-signature: sha256=<hex HMAC-SHA256(app secret, "<timestamp>.<raw body>")>
// An app that checks both rejects forged calls (no secret, no signature),
// tampered calls (the signature covers every body byte) and replayed calls
// (the timestamp is signed too, and old ones are refused).
//
// No dependencies beyond node:crypto. Run `node verify.js` for a self-check
// on the worked example of docs/webhooks.md.

import { createHmac, timingSafeEqual } from "node:crypto";
import { fileURLToPath } from "node:url";

/** Calls older (or further in the future) than this are refused. */
export const MAX_AGE_SECONDS = 5 * 60;

const SIGNATURE = /^sha256=([0-9a-f]{64})$/;

/** The `x-switchboard-signature` value for `rawBody` sent at `timestamp`. */
export function signWebhook(secret, timestamp, rawBody) {
  const mac = createHmac("sha256", secret).update(`${timestamp}.`).update(rawBody).digest("hex");
  return `sha256=${mac}`;
}

/**
 * Checks one webhook call.
 *
 * - `headers`: Node's `req.headers` (lower-case names).
 * - `rawBody`: a Buffer (or string) of the body exactly as received, before
 *   any JSON parsing: re-serialized JSON would not match. Empty for the
 *   schema `GET`.
 * - `now`: the clock in Unix seconds (for tests); `maxAgeSeconds`: the
 *   freshness window.
 *
 * Returns `{ ok: true, timestamp }`, or `{ ok: false, reason }` with reason
 * `missing_timestamp`, `missing_signature`, `bad_signature` or
 * `stale_timestamp`. The signature is checked first, so a stale reason is
 * only ever given for a genuine (replayed or delayed) call.
 */
export function verifyWebhook(
  secret,
  headers,
  rawBody,
  { now = Date.now() / 1000, maxAgeSeconds = MAX_AGE_SECONDS } = {},
) {
  const timestamp = headers["x-switchboard-timestamp"];
  const signature = headers["x-switchboard-signature"];
  if (typeof timestamp !== "string" || !/^\d{1,12}$/.test(timestamp)) {
    return { ok: false, reason: "missing_timestamp" };
  }
  const given = typeof signature === "string" ? SIGNATURE.exec(signature) : null;
  if (!given) return { ok: false, reason: "missing_signature" };

  const expected = createHmac("sha256", secret).update(`${timestamp}.`).update(rawBody).digest();
  // Both are 32 bytes (the pattern above fixed the length), and
  // timingSafeEqual takes the same time wherever they differ.
  if (!timingSafeEqual(Buffer.from(given[1], "hex"), expected)) {
    return { ok: false, reason: "bad_signature" };
  }
  if (Math.abs(now - Number(timestamp)) > maxAgeSeconds) {
    return { ok: false, reason: "stale_timestamp" };
  }
  return { ok: true, timestamp: Number(timestamp) };
}

/** Reads a request's raw body, refusing more than `limit` bytes. */
export function readRawBody(req, limit = 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error("body too large"));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

// `node verify.js`: the worked example of docs/webhooks.md.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const body =
    '{"event":"task:assigned","payload":{"taskId":"t-1"},"channel":"project:6f1c2b7e-3d4a-4c5b-9e8f-0123456789ab","client_id":"alice","client_type":"web","metadata":{"name":"Alice"},"ref":"7","request_id":"9b1f0c2e4d5a4e7f8a6b3c2d1e0f9a8b"}';
  const headers = {
    "x-switchboard-timestamp": "1767225600",
    "x-switchboard-signature": "sha256=610720dfc952e51e536414f5545b352290538ac28893ef48eb82574c79f44520",
  };
  const checks = [
    ["genuine, 10 s old", verifyWebhook("my-app-secret", headers, body, { now: 1767225610 }), true],
    ["replayed 6 minutes later", verifyWebhook("my-app-secret", headers, body, { now: 1767225960 }), false],
    ["body tampered", verifyWebhook("my-app-secret", headers, body.replace("t-1", "t-2"), { now: 1767225610 }), false],
    ["wrong secret", verifyWebhook("other-secret", headers, body, { now: 1767225610 }), false],
  ];
  let failed = 0;
  for (const [what, result, expected] of checks) {
    const pass = result.ok === expected;
    if (!pass) failed += 1;
    console.log(`${pass ? "ok  " : "FAIL"} ${what}: ${JSON.stringify(result)}`);
  }
  process.exitCode = failed ? 1 : 0;
}
