"""The compose demo's auth backend: switchboard's auth webhook (CONTRACT §5).

A config-file app needs an auth source, so this stands in for "your backend"
and behaves like the embedded demo app: any non-empty token is accepted and
becomes the client id, with permission `user:<token>` (the demo schema's
`user:{id}` channel). It checks the webhook signature and timestamp the way a
real app should. Python standard library only. Not for production: it
authenticates nobody.
"""

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["DEMO_APP_SECRET"].encode()
MAX_SKEW_SECS = 300


def signature_ok(headers, body):
    timestamp = headers.get("x-switchboard-timestamp", "")
    signature = headers.get("x-switchboard-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW_SECS:
        return False
    mac = hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(signature, "sha256=" + mac.hexdigest())


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != "/auth":
            return self.answer(404, {"error": "not found"})
        if not signature_ok(self.headers, body):
            return self.answer(401, {"error": "bad signature"})
        token = json.loads(body).get("token") or ""
        if not token:
            return self.answer(401, {"error": "no token"})
        self.answer(200, {"client_id": token, "permissions": [f"user:{token}"]})

    def do_GET(self):
        self.answer(200 if self.path == "/health" else 404, {})

    def answer(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        sys.stderr.write("demo-auth: " + (format % args) + "\n")


if __name__ == "__main__":
    host = os.environ.get("DEMO_AUTH_HOST", "0.0.0.0")
    port = int(os.environ.get("DEMO_AUTH_PORT", "8000"))
    print(f"demo-auth listening on {host}:{port}", flush=True)
    ThreadingHTTPServer((host, port), Handler).serve_forever()
