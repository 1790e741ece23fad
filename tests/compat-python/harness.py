"""Test harness: a mock app backend (CONTRACT §5) and the real switchboard
binary (CONTRACT §2), both on 127.0.0.1 with ephemeral ports.

Nothing here sleeps to wait for a result: every wait is a timed wait on a
condition, a queue or a future.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

APP_ID = "compat"
APP_SECRET = "compat-secret"

# Every wait in the suite is bounded by this (seconds).
TIMEOUT = 10.0

# The schema the gateway loads from a file (CONTRACT §4).
SCHEMA = {
    "version": "compat-1",
    "channels": [
        # Plain channels: no presence, so nothing but what a test sends arrives.
        {"pattern": "room:{id}", "variables": {"id": {"type": "string", "format": "slug"}}},
        # Presence on: the gateway pushes presence_state to each joiner.
        {
            "pattern": "lobby:{id}",
            "variables": {"id": {"type": "string", "format": "slug"}},
            "presence": True,
        },
    ],
    "events": [
        {"name": "echo", "allowedChannels": ["room:*", "lobby:*"], "delivery": "forward"},
        {"name": "fanout", "allowedChannels": ["room:*"], "delivery": "forward"},
        {"name": "binecho", "allowedChannels": ["room:*"], "delivery": "forward"},
        {"name": "binfan", "allowedChannels": ["room:*"], "delivery": "forward"},
        {
            "name": "chat",
            "allowedChannels": ["room:*"],
            "delivery": "broadcast",
            "payload": {
                "type": "object",
                "properties": {"body": {"type": "string"}},
                "required": ["body"],
            },
        },
    ],
}


class Backend:
    """The app's webhooks: auth (token "good-<id>" -> client <id>, else 401)
    and messages. Verifies every call's HMAC signature and records failures
    so tests can assert there were none."""

    def __init__(self, app_id: str = APP_ID, secret: str = APP_SECRET) -> None:
        self.app_id = app_id
        self.secret = secret
        self.requests: queue.Queue[dict] = queue.Queue()
        self.signature_failures: list[str] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                failure = backend._verify(self.headers, raw)
                if failure:
                    backend.signature_failures.append(f"{self.path}: {failure}")
                    return self._send(401, {"error": "bad signature"})
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    backend.signature_failures.append(f"{self.path}: body is not JSON")
                    return self._send(400, {"error": "bad json"})
                backend.requests.put({"path": self.path, "body": body})
                if self.path == "/auth":
                    return self._send(*backend._auth(body))
                if self.path == "/messages":
                    return self._send(200, backend._message(body))
                return self._send(404, {"error": "no such endpoint"})

            def _send(self, status: int, value: object) -> None:
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _verify(self, headers, raw: bytes) -> str | None:
        if headers.get("x-switchboard-app") != self.app_id:
            return f"x-switchboard-app is {headers.get('x-switchboard-app')!r}"
        timestamp = headers.get("x-switchboard-timestamp") or ""
        signature = headers.get("x-switchboard-signature") or ""
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return f"bad x-switchboard-timestamp {timestamp!r}"
        if not signature.startswith("sha256="):
            return f"bad x-switchboard-signature {signature!r}"
        expected = hmac.new(
            self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(signature[len("sha256=") :], expected):
            return "signature mismatch"
        return None

    @staticmethod
    def _auth(body: dict) -> tuple[int, dict]:
        token = (body or {}).get("token")
        if isinstance(token, str) and token.startswith("good-") and len(token) > 5:
            return 200, {"client_id": token[5:]}
        return 401, {"error": "unauthorized"}

    @staticmethod
    def _message(body: dict) -> dict:
        event = body.get("event")
        if event == "echo":
            return {"action": "reply", "data": body.get("payload")}
        if event == "fanout":
            return {
                "actions": [
                    {"action": "broadcast", "event": "fanned", "data": body.get("payload")},
                    {"action": "reply", "data": {}},
                ]
            }
        if event == "binecho":
            # Binary in (payload_base64), the same bytes reversed back out.
            data = base64.b64decode(body["payload_base64"])[::-1]
            return {"action": "reply", "data_base64": base64.b64encode(data).decode()}
        if event == "binfan":
            return {
                "actions": [
                    {
                        "action": "broadcast",
                        "event": "binfanned",
                        "data_base64": body["payload_base64"],
                    },
                    {"action": "reply", "data": {}},
                ]
            }
        return {"action": "reply", "status": "error", "data": {"reason": "unknown event"}}


def _toml(value: str) -> str:
    return json.dumps(str(value))


class Gateway:
    """`switchboard serve --config <tmp>/switchboard.toml`, started with an
    ephemeral port; ready once it printed its listening line."""

    def __init__(self, backend: Backend) -> None:
        self.binary = Path(
            os.environ.get("SWITCHBOARD_BIN") or REPO_ROOT / "target" / "debug" / "switchboard"
        ).resolve()
        if not self.binary.is_file():
            raise RuntimeError(
                f"switchboard binary not found at {self.binary}: run `cargo build -p switchboard` "
                "or set SWITCHBOARD_BIN"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="switchboard-compat-py-")
        d = Path(self._dir.name)
        (d / "schema.json").write_text(json.dumps(SCHEMA))
        config = "\n".join(
            [
                "[server]",
                'listen = "127.0.0.1:0"',
                f"state_file = {_toml(d / 'state.json')}",
                "[[apps]]",
                f"id = {_toml(backend.app_id)}",
                f"secret = {_toml(backend.secret)}",
                f"auth_endpoint = {_toml(backend.url + '/auth')}",
                f"message_endpoint = {_toml(backend.url + '/messages')}",
                f"schema_file = {_toml(d / 'schema.json')}",
                "",
            ]
        )
        config_path = d / "switchboard.toml"
        config_path.write_text(config)
        env = dict(os.environ)
        env.pop("SWITCHBOARD_CONFIG", None)
        env.setdefault("RUST_LOG", "info")
        self.log_path = d / "switchboard.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--config", str(config_path)],
            cwd=d,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        lines: queue.Queue[bytes] = queue.Queue()

        def pump() -> None:  # keep stdout drained for the process's lifetime
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(b"")

        threading.Thread(target=pump, daemon=True).start()
        try:
            first = lines.get(timeout=TIMEOUT).decode().strip()
        except queue.Empty:
            self.stop()
            raise RuntimeError(f"switchboard printed nothing within {TIMEOUT}s; log:\n{self.log()}")
        prefix = "switchboard listening on http://"
        if not first.startswith(prefix):
            self.stop()
            raise RuntimeError(f"unexpected first stdout line {first!r}; log:\n{self.log()}")
        self.addr = first[len(prefix) :]
        self.http_url = f"http://{self.addr}"
        self.socket_url = f"ws://{self.addr}/socket/websocket"
        # The listening line can come before the app's schema is loaded (the
        # app then refuses connections, CONTRACT §1); loading it on demand
        # and waiting for the answer means no test races the startup load.
        status, body = self.api("POST", "schema/refresh")
        if status != 200:
            self.stop()
            raise RuntimeError(f"schema refresh answered {status} {body}; log:\n{self.log()}")

    def api(self, method: str, path: str, body: object = None, secret: str = APP_SECRET):
        """A server API call (CONTRACT §6); returns (status, parsed JSON or None)."""
        req = urllib.request.Request(
            f"{self.http_url}/api/v1/apps/{APP_ID}/{path}",
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {secret}", "content-type": "application/json"},
            method=method,
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def ws_url(self, token: str | None = None, vsn: str | None = None, **params: str) -> str:
        from urllib.parse import urlencode

        query = {"app": APP_ID, **params}
        if token is not None:
            query["token"] = token
        if vsn is not None:
            query["vsn"] = vsn
        return f"{self.socket_url}?{urlencode(query)}"

    def broadcast(self, topic: str, event: str, payload: dict, secret: str = APP_SECRET) -> int:
        """POST /api/v1/apps/{app}/broadcast; returns the HTTP status."""
        body = {"topic": topic, "event": event, "payload": payload}
        return self.api("POST", "broadcast", body, secret=secret)[0]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=TIMEOUT)
        self._log.close()

    def cleanup(self) -> None:
        self._dir.cleanup()
