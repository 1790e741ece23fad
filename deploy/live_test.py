#!/usr/bin/env python3
"""Live check of the compose load-balancer setup, without Docker.

Runs, all on 127.0.0.1 and on free ports: a Redis of its own, the compose
demo's auth backend (compose/demo-auth.py), three switchboard nodes with the
compose config (compose/switchboard.toml, only addresses rewritten) and nginx
with compose/nginx.conf (only upstream addresses, listen port and file paths
rewritten). Then, through nginx, as a client would:

- health answers, /metrics is not exposed through the load balancer;
- two WebSocket clients join `room:lobby`, land on different nodes, and see
  each other's broadcasts and the server API's (cross-node, via Redis), and
  the presence API lists both;
- a long-poll client opens a session, joins and polls repeatedly through
  nginx (sticky upstream), receives a WebSocket client's broadcast; its
  session token is unknown to the other nodes (why stickiness is needed);
- SIGTERM on a node: its WebSocket client gets close 1012, reconnects
  through nginx to another node and joins again; the node exits 0.

Python standard library only. Exits non-zero on the first failed check, and
always stops everything it started.

    live_test.py --binary target/release/switchboard [--nginx nginx]
                 [--redis-server redis-server] [--keep-dir]
"""

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
COMPOSE = os.path.join(HERE, "compose")
NODES = ("switchboard-1", "switchboard-2", "switchboard-3")


class CheckFailed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise CheckFailed(what)
    print(f"  ok: {what}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, timeout=20.0, interval=0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last = error
        time.sleep(interval)
    raise CheckFailed(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))


def http(method, url, body=None, headers=None, timeout=15):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None and "content-type" not in {k.lower() for k in (headers or {})}:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def http_json(method, url, body=None, headers=None, timeout=15):
    status, raw = http(method, url, body, headers, timeout)
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


class Closed(Exception):
    def __init__(self, code, reason):
        super().__init__(f"closed with {code} {reason!r}")
        self.code = code
        self.reason = reason


class WebSocket:
    """A minimal RFC 6455 client: text frames, ping/pong, close."""

    def __init__(self, port, path, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise CheckFailed(f"connection closed during the handshake: {head!r}")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        self.status_line = head.split(b"\r\n")[0].decode()
        if " 101 " not in self.status_line + " ":
            raise CheckFailed(f"upgrade refused: {head.decode(errors='replace')}")
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        ).decode()
        if f"sec-websocket-accept: {accept}".lower() not in head.decode().lower():
            raise CheckFailed("bad Sec-WebSocket-Accept")
        self.ref = 0

    def _read(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(1006, "connection lost")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _send_frame(self, opcode, payload):
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, message):
        self._send_frame(0x1, json.dumps(message).encode())

    def recv(self, timeout=10):
        """The next Phoenix message [join_ref, ref, topic, event, payload]."""
        self.sock.settimeout(timeout)
        while True:
            first, second = self._read(2)
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            if opcode == 0x1:
                return json.loads(payload)
            if opcode == 0x9:
                self._send_frame(0xA, payload)
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                raise Closed(code, payload[2:].decode(errors="replace"))

    def wait(self, what, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CheckFailed(f"timed out waiting for {what}")
            try:
                message = self.recv(remaining)
            except socket.timeout:
                raise CheckFailed(f"timed out waiting for {what}") from None
            if predicate(message):
                return message

    def push(self, topic, event, payload, join_ref=None):
        self.ref += 1
        ref = str(self.ref)
        self.send([join_ref, ref, topic, event, payload])
        return ref

    def join(self, topic, payload=None):
        # The join's own ref is its join_ref, as phoenix.js sends it.
        self.ref += 1
        ref = str(self.ref)
        self.send([ref, ref, topic, "phx_join", payload or {}])
        return ref

    def close(self):
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()


def lp_messages(body):
    """A long-poll answer's messages: each one is a serialized frame (a JSON
    text), as Phoenix's long-poll sends them."""
    return [json.loads(m) if isinstance(m, str) else m for m in body.get("messages") or []]


def reply_to(ref):
    return lambda m: m[3] == "phx_reply" and m[1] == ref


class Stack:
    """The processes of the test; stopped in reverse order."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def start(self, name, argv, env=None, cwd=None):
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        self.procs.append((name, proc, log))
        return proc

    def log_tail(self, name, lines=20):
        try:
            with open(os.path.join(self.workdir, f"{name}.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def stop_all(self):
        for name, proc, log in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()


def rewrite(text, replacements, what):
    """Applies (pattern, replacement, expected count) regex replacements."""
    for pattern, replacement, count in replacements:
        text, done = re.subn(pattern, replacement, text, flags=re.M)
        if done != count:
            raise CheckFailed(f"{what}: expected {count} match(es) of {pattern!r}, found {done}")
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--nginx", default="nginx")
    parser.add_argument("--redis-server", default="redis-server")
    parser.add_argument("--keep-dir", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)

    workdir = tempfile.mkdtemp(prefix="switchboard-deploy-test-")
    stack = Stack(workdir)
    failed = False
    try:
        run(stack, binary, args)
    except (CheckFailed, Closed, OSError) as error:
        failed = True
        print(f"FAILED: {error}", file=sys.stderr)
        for name, _, _ in stack.procs:
            print(f"--- {name} (last lines)\n{stack.log_tail(name)}", file=sys.stderr)
    finally:
        stack.stop_all()
        if args.keep_dir or failed:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if failed:
        sys.exit(1)
    print("live test: all checks passed")


def run(stack, binary, args):
    wd = stack.workdir
    admin_token = base64.b16encode(os.urandom(16)).decode()
    app_secret = base64.b16encode(os.urandom(16)).decode()
    redis_port, auth_port, lb_port = free_port(), free_port(), free_port()
    node_ports = {name: free_port() for name in NODES}
    bearer = {"authorization": f"Bearer {app_secret}"}

    print(f"work directory {wd}")
    print("starting redis, demo-auth, three switchboard nodes and nginx on 127.0.0.1")
    stack.start(
        "redis",
        [args.redis_server, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
         "--appendonly", "no"],
        cwd=wd,
    )
    env = dict(os.environ, DEMO_APP_SECRET=app_secret, DEMO_AUTH_HOST="127.0.0.1",
               DEMO_AUTH_PORT=str(auth_port))
    stack.start("demo-auth", [sys.executable, os.path.join(COMPOSE, "demo-auth.py")], env=env)

    with open(os.path.join(COMPOSE, "switchboard.toml")) as f:
        config = f.read()
    shutil.copy(os.path.join(COMPOSE, "demo-schema.json"), wd)
    nodes = {}
    for name, port in node_ports.items():
        text = rewrite(config, [
            (r'^listen = "0\.0\.0\.0:4000"', f'listen = "127.0.0.1:{port}"', 1),
            (r'"redis://redis:6379"', f'"redis://127.0.0.1:{redis_port}"', 1),
            (r'"http://demo-auth:8000/auth"', f'"http://127.0.0.1:{auth_port}/auth"', 1),
        ], "compose/switchboard.toml")
        path = os.path.join(wd, f"{name}.toml")
        with open(path, "w") as f:
            f.write(text)
        node_env = dict(os.environ, ADMIN_TOKEN=admin_token, DEMO_APP_SECRET=app_secret,
                        SWITCHBOARD_NODE=name, SWITCHBOARD_LOG_FORMAT="json")
        nodes[name] = stack.start(name, [binary, "serve", "--config", path], env=node_env, cwd=wd)

    with open(os.path.join(COMPOSE, "nginx.conf")) as f:
        nginx_conf = f.read()
    os.makedirs(os.path.join(wd, "nginx-temp"), exist_ok=True)
    temp = os.path.join(wd, "nginx-temp")
    replacements = [
        (r"^user nginx;\n", "", 1),
        (r"/var/log/nginx/error\.log", f"{wd}/nginx-error.log", 1),
        (r"/var/log/nginx/access\.log", f"{wd}/nginx-access.log", 1),
        (r"/var/run/nginx\.pid", f"{wd}/nginx.pid", 1),
        (r"^(\s*)listen 80;", rf"\g<1>listen 127.0.0.1:{lb_port};", 1),
        (r"^http \{\n", "http {\n" + "".join(
            f"    {d}_temp_path {temp}/{d};\n"
            for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")), 1),
    ]
    for name, port in node_ports.items():
        replacements.append((rf"server {name}:4000", f"server 127.0.0.1:{port}", 2))
    conf_path = os.path.join(wd, "nginx.conf")
    with open(conf_path, "w") as f:
        f.write(rewrite(nginx_conf, replacements, "compose/nginx.conf"))
    test = subprocess.run([args.nginx, "-t", "-p", wd, "-c", conf_path], capture_output=True, text=True)
    check(test.returncode == 0, f"nginx -t accepts compose/nginx.conf ({test.stderr.strip().splitlines()[-1]})")
    stack.start("nginx", [args.nginx, "-p", wd, "-c", conf_path, "-g", "daemon off;"])

    lb = f"http://127.0.0.1:{lb_port}"
    node_url = {name: f"http://127.0.0.1:{port}" for name, port in node_ports.items()}

    print("health")
    for name in NODES:
        wait_for(f"{name} ready (Redis connected)",
                 lambda n=name: http("GET", f"{node_url[n]}/health/ready", timeout=2)[0] == 200)
    check(True, "every node's /health/ready is 200 (cluster formed over Redis)")
    wait_for("nginx", lambda: http("GET", f"{lb}/health", timeout=2)[0] == 200)
    status, body = http_json("GET", f"{lb}/health")
    check(status == 200 and body == {"status": "ok"}, f"GET /health through nginx: {status} {body}")
    status, body = http_json("GET", f"{lb}/health/ready")
    check(status == 200, f"GET /health/ready through nginx: {status} {body}")
    status, _ = http("GET", f"{lb}/metrics")
    check(status == 404, "GET /metrics through nginx is 404 (scrape nodes directly)")
    status, raw = http("GET", f"{node_url['switchboard-1']}/metrics")
    check(status == 200 and b"switchboard_connections" in raw, "GET /metrics on a node is 200")

    print("WebSocket through nginx")
    ws_path = "/socket/websocket?app=demo&token={}&vsn=2.0.0"
    alice = WebSocket(lb_port, ws_path.format("alice"))
    check(True, f"alice's upgrade through nginx: {alice.status_line}")
    ref = alice.join("room:lobby", {"meta": {"mood": "curious"}})
    reply = alice.wait("alice's join reply", reply_to(ref))
    check(reply[4]["status"] == "ok", f"alice joined room:lobby: {reply[4]}")
    alice_join = ref
    bob = WebSocket(lb_port, ws_path.format("bob"))
    ref = bob.join("room:lobby")
    reply = bob.wait("bob's join reply", reply_to(ref))
    check(reply[4]["status"] == "ok", f"bob joined room:lobby: {reply[4]}")
    bob_join = ref

    status, body = http_json("GET", f"{lb}/api/v1/apps/demo/connections?topic=room:lobby", headers=bearer)
    placed = {c["client_id"]: c["node"] for c in body["connections"]}
    check(status == 200 and set(placed) == {"alice", "bob"}, f"connections API through nginx: {placed}")
    check(placed["alice"] != placed["bob"], "least_conn put alice and bob on different nodes")

    ref = alice.push("room:lobby", "message", {"body": "hello through nginx"}, join_ref=alice_join)
    alice.wait("alice's push reply", reply_to(ref))
    got = bob.wait("alice's message at bob", lambda m: m[3] == "message")
    check(got[4] == {"body": "hello through nginx"},
          f"bob ({placed['bob']}) got alice's ({placed['alice']}) broadcast across nodes")

    status, _ = http_json("POST", f"{lb}/api/v1/apps/demo/broadcast", headers=bearer,
                          body={"topic": "room:lobby", "event": "message", "payload": {"body": "from the API"}})
    check(status == 202, "server API broadcast through nginx: 202")
    for client, who in ((alice, "alice"), (bob, "bob")):
        got = client.wait(f"the API broadcast at {who}",
                          lambda m: m[3] == "message" and m[4].get("body") == "from the API")
        check(True, f"{who} got the server API broadcast")

    status, body = http_json("GET", f"{lb}/api/v1/apps/demo/presence/room:lobby", headers=bearer)
    check(status == 200 and set(body["presence"]) == {"alice", "bob"},
          f"presence API through nginx lists {sorted(body['presence'])}")

    print("long-poll through nginx (sticky upstream)")
    lp = f"{lb}/socket/longpoll?app=demo&token=carol&vsn=2.0.0"
    status, body = http_json("GET", lp)
    check(status == 200 and body["status"] == 410 and body.get("token"),
          "long-poll session opened (status 410 with a session token)")
    session = body["token"]
    status, body = http_json("POST", f"{lp}&token={session}",
                             body=["1", "1", "room:lobby", "phx_join", {}],
                             headers={"content-type": "application/json"})
    check(status == 200 and body["status"] == 200, "long-poll POST phx_join accepted")
    joined = False
    for _ in range(3):
        status, body = http_json("GET", f"{lp}&token={session}")
        if body.get("token"):
            session = body["token"]
        if any(m[3] == "phx_reply" and m[1] == "1" and m[4]["status"] == "ok" for m in lp_messages(body)):
            joined = True
            break
    check(joined, "carol (long-poll) joined room:lobby")
    ref = bob.push("room:lobby", "message", {"body": "to the long-poller"}, join_ref=bob_join)
    bob.wait("bob's push reply", reply_to(ref))
    seen = False
    polls = 0
    deadline = time.monotonic() + 15
    while not seen and time.monotonic() < deadline:
        status, body = http_json("GET", f"{lp}&token={session}")
        polls += 1
        if body["status"] == 410:
            raise CheckFailed("long-poll session lost between polls (not sticky?)")
        session = body.get("token", session)
        seen = any(m[3] == "message" and m[4].get("body") == "to the long-poller" for m in lp_messages(body))
    check(seen, f"carol got bob's broadcast after {polls} poll(s), same session throughout")
    answers = [
        http_json("POST", f"{lp}&token={session}", body=["1", str(9 + i), "phoenix", "heartbeat", {}])[1]["status"]
        for i in range(5)
    ]
    check(answers == [200] * 5, f"5 more long-poll POSTs through nginx all reached carol's node: {answers}")
    status, body = http_json("GET", f"{lb}/api/v1/apps/demo/connections?client_id=carol", headers=bearer)
    carol_node = body["connections"][0]["node"]
    other = next(n for n in NODES if n != carol_node)
    status, body = http_json("POST", f"{node_url[other]}/socket/longpoll?app=demo&token=carol&vsn=2.0.0&token={session}",
                             body=["1", "20", "phoenix", "heartbeat", {}])
    check(body["status"] == 410,
          f"carol's session token is unknown on {other} (410): long-poll needs the sticky upstream")

    print("drain through nginx (SIGTERM on alice's node)")
    victim = placed["alice"]
    nodes[victim].send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    try:
        while True:  # messages still queued for alice (presence diffs, ...) come first
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CheckFailed("alice got no close frame within 15 s of the SIGTERM")
            try:
                alice.recv(remaining)
            except socket.timeout:
                raise CheckFailed("alice got no close frame within 15 s of the SIGTERM") from None
    except Closed as closed:
        check(closed.code == 1012, f"alice got close {closed.code} ({closed.reason!r}) from draining {victim}")
    alice.sock.close()
    code = nodes[victim].wait(45)
    check(code == 0, f"{victim} exited {code} after draining")
    alice = WebSocket(lb_port, ws_path.format("alice"))
    ref = alice.join("room:lobby")
    reply = alice.wait("alice's join reply after the drain", reply_to(ref))
    check(reply[4]["status"] == "ok", "alice reconnected through nginx and joined again")
    status, body = http_json("GET", f"{lb}/api/v1/apps/demo/connections?client_id=alice", headers=bearer)
    new_node = body["connections"][0]["node"]
    check(new_node != victim, f"alice is now on {new_node}")
    for i in range(6):
        probe = WebSocket(lb_port, ws_path.format(f"probe{i}"))
        probe.close()
    check(True, "6 more WebSocket upgrades through nginx with one node down all succeeded")
    bob.close()
    alice.close()


if __name__ == "__main__":
    main()
