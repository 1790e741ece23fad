"""The wire protocol with no Phoenix client library at all: the `websockets`
package and frames written by hand from PHOENIX_PROTOCOL.md, so both
serializers (V1 JSON objects, V2 JSON arrays and V2 binary frames) are
checked exactly as a Phoenix server would produce them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import queue

import pytest
import websockets

from harness import TIMEOUT


def run_async(test):
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 6 * TIMEOUT))

    return wrapper


class Raw:
    """One WebSocket; text frames are decoded from JSON, binary kept as bytes."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.seen: list = []

    @classmethod
    async def open(cls, url: str) -> Raw:
        return cls(await websockets.connect(url))

    async def send(self, message) -> None:
        await self.ws.send(message if isinstance(message, bytes) else json.dumps(message))

    async def next(self, predicate, what: str):
        for frame in self.seen:
            if predicate(frame):
                self.seen.remove(frame)
                return frame
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), max(deadline - loop.time(), 0))
            except TimeoutError:
                raise AssertionError(f"no {what} within {TIMEOUT}s; got {self.seen}") from None
            frame = raw if isinstance(raw, bytes) else json.loads(raw)
            if predicate(frame):
                return frame
            self.seen.append(frame)

    async def close(self) -> None:
        await self.ws.close()


# V2 frames are arrays; these pick them by position.
def v2_reply(ref):
    return lambda f: isinstance(f, list) and f[3] == "phx_reply" and f[1] == ref


def v2_event(event):
    return lambda f: isinstance(f, list) and f[3] == event


def v1_reply(ref):
    return lambda f: isinstance(f, dict) and f.get("event") == "phx_reply" and f.get("ref") == ref


def v1_event(event):
    return lambda f: isinstance(f, dict) and f.get("event") == event


def binary(kind):
    return lambda f: isinstance(f, bytes) and f[:1] == bytes([kind])


def ok(response=None):
    return {"status": "ok", "response": {} if response is None else response}


def encode_push(join_ref: str, ref: str, topic: str, event: str, data: bytes) -> bytes:
    """Client push, kind 0 (PHOENIX_PROTOCOL §2.3)."""
    fields = [s.encode() for s in (join_ref, ref, topic, event)]
    return bytes([0, *(len(f) for f in fields)]) + b"".join(fields) + data


def test_binary_push_encoding_matches_the_spec_example():
    # The byte-exact example of PHOENIX_PROTOCOL §2.3, so the frames the
    # tests below send are the spec's and not this file's invention.
    expected = bytes.fromhex(
        "00 02 01 08 0c 31 31 32 72 6f 6f 6d 3a 62 69 6e"
        " 62 69 6e 61 72 79 5f 65 76 65 6e 74 01 02"
    )
    assert encode_push("11", "2", "room:bin", "binary_event", b"\x01\x02") == expected


# -- serializer negotiation --------------------------------------------------


@pytest.mark.parametrize(
    ("vsn", "expect_v1"), [(None, True), ("1.0.0", True), ("2.0.0", False)]
)
@run_async
async def test_vsn_selects_the_serializer(gateway, uniq, vsn, expect_v1):
    sock = await Raw.open(gateway.ws_url(token=f"good-{uniq('vsn')}", vsn=vsn))
    try:
        if expect_v1:
            await sock.send({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"})
            frame = await sock.next(v1_reply("1"), "V1 heartbeat reply")
            assert frame == {"topic": "phoenix", "event": "phx_reply", "payload": ok(), "ref": "1"}
        else:
            await sock.send([None, "1", "phoenix", "heartbeat", {}])
            frame = await sock.next(v2_reply("1"), "V2 heartbeat reply")
            assert frame == [None, "1", "phoenix", "phx_reply", ok()]
    finally:
        await sock.close()


@run_async
async def test_unsupported_vsn_is_refused_before_upgrade(gateway, uniq):
    with pytest.raises(websockets.InvalidStatus) as refused:
        await Raw.open(gateway.ws_url(token=f"good-{uniq('vsn')}", vsn="123.1.1"))
    response = refused.value.response
    assert response.status_code == 403
    assert json.loads(response.body) == {"status": 403, "reason": "unsupported_vsn"}


# -- V1: JSON objects --------------------------------------------------------


@run_async
async def test_v1_object_format(gateway, uniq):
    topic = f"room:{uniq('v1')}"
    sock = await Raw.open(gateway.ws_url(token=f"good-{uniq('v1')}", vsn="1.0.0"))
    try:
        # Join with a join_ref, as phoenix.js 1.x on V1 would.
        await sock.send(
            {"topic": topic, "event": "phx_join", "payload": {}, "ref": "1", "join_ref": "1"}
        )
        # Outbound V1 never has a join_ref key and always has ref (§2.2).
        assert await sock.next(v1_reply("1"), "join reply") == {
            "topic": topic, "event": "phx_reply", "payload": ok(), "ref": "1"
        }

        # A push with the join_ref, and one without (older V1 clients).
        await sock.send(
            {"topic": topic, "event": "echo", "payload": {"a": 1}, "ref": "2", "join_ref": "1"}
        )
        assert await sock.next(v1_reply("2"), "echo reply") == {
            "topic": topic, "event": "phx_reply", "payload": ok({"a": 1}), "ref": "2"
        }
        await sock.send({"topic": topic, "event": "echo", "payload": {"b": 2}, "ref": "3"})
        assert await sock.next(v1_reply("3"), "echo reply") == {
            "topic": topic, "event": "phx_reply", "payload": ok({"b": 2}), "ref": "3"
        }

        # A broadcast: ref null, no join_ref.
        assert await asyncio.to_thread(gateway.broadcast, topic, "news", {"n": 1}) == 202
        assert await sock.next(v1_event("news"), "broadcast") == {
            "topic": topic, "event": "news", "payload": {"n": 1}, "ref": None
        }

        # No route: an error reply.
        await sock.send({"topic": "nowhere:1", "event": "phx_join", "payload": {}, "ref": "4"})
        assert await sock.next(v1_reply("4"), "refused join reply") == {
            "topic": "nowhere:1",
            "event": "phx_reply",
            "payload": {"status": "error", "response": {"reason": "unmatched topic"}},
            "ref": "4",
        }

        # Leave: ok, then phx_close whose ref is the channel's join_ref (§2).
        await sock.send(
            {"topic": topic, "event": "phx_leave", "payload": {}, "ref": "5", "join_ref": "1"}
        )
        assert await sock.next(v1_reply("5"), "leave reply") == {
            "topic": topic, "event": "phx_reply", "payload": ok(), "ref": "5"
        }
        assert await sock.next(v1_event("phx_close"), "phx_close") == {
            "topic": topic, "event": "phx_close", "payload": {}, "ref": "1"
        }
        # Left: a push on the topic is now unmatched.
        await sock.send({"topic": topic, "event": "echo", "payload": {}, "ref": "6"})
        frame = await sock.next(v1_reply("6"), "reply after leave")
        assert frame["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
    finally:
        await sock.close()


# -- V2: JSON arrays ---------------------------------------------------------


@run_async
async def test_v2_text_frames(gateway, uniq):
    topic = f"room:{uniq('v2')}"
    sock = await Raw.open(gateway.ws_url(token=f"good-{uniq('v2')}", vsn="2.0.0"))
    try:
        await sock.send(["1", "1", topic, "phx_join", {}])
        assert await sock.next(v2_reply("1"), "join reply") == ["1", "1", topic, "phx_reply", ok()]

        # Unmatched topic: join_ref null, ref echoed (§4 rule 2).
        await sock.send(["2", "2", "nowhere:1", "phx_join", {}])
        assert await sock.next(v2_reply("2"), "refused join reply") == [
            None, "2", "nowhere:1", "phx_reply",
            {"status": "error", "response": {"reason": "unmatched topic"}},
        ]

        await sock.send(["1", "3", topic, "echo", {"x": [1, 2]}])
        assert await sock.next(v2_reply("3"), "echo reply") == [
            "1", "3", topic, "phx_reply", ok({"x": [1, 2]})
        ]

        # Extra elements after the fifth are ignored (§2.1).
        await sock.send(["1", "4", topic, "echo", {"y": 1}, "extra"])
        assert await sock.next(v2_reply("4"), "echo reply") == [
            "1", "4", topic, "phx_reply", ok({"y": 1})
        ]

        assert await asyncio.to_thread(gateway.broadcast, topic, "news", {"n": 2}) == 202
        assert await sock.next(v2_event("news"), "broadcast") == [None, None, topic, "news", {"n": 2}]

        await sock.send(["1", "5", topic, "phx_leave", {}])
        assert await sock.next(v2_reply("5"), "leave reply") == ["1", "5", topic, "phx_reply", ok()]
        assert await sock.next(v2_event("phx_close"), "phx_close") == [
            "1", "1", topic, "phx_close", {}
        ]
    finally:
        await sock.close()


# -- V2: binary frames -------------------------------------------------------


@run_async
async def test_v2_binary_frames(gateway, uniq):
    topic = f"room:{uniq('bin')}"
    sender = await Raw.open(gateway.ws_url(token=f"good-{uniq('bin-a')}", vsn="2.0.0"))
    receiver = await Raw.open(gateway.ws_url(token=f"good-{uniq('bin-b')}", vsn="2.0.0"))
    v1 = await Raw.open(gateway.ws_url(token=f"good-{uniq('bin-c')}", vsn="1.0.0"))
    try:
        await sender.send(["10", "10", topic, "phx_join", {}])
        await sender.next(v2_reply("10"), "sender join reply")
        await receiver.send(["20", "20", topic, "phx_join", {}])
        await receiver.next(v2_reply("20"), "receiver join reply")
        await v1.send({"topic": topic, "event": "phx_join", "payload": {}, "ref": "30"})
        await v1.next(v1_reply("30"), "V1 join reply")

        # Binary push (kind 0) -> the app gets payload_base64 and answers with
        # data_base64 (the bytes reversed) -> a binary reply (kind 1) whose
        # "event" slot carries the status.
        data = bytes([1, 2, 3, 4, 0, 255])
        await sender.send(encode_push("10", "11", topic, "binecho", data))
        frame = await sender.next(binary(1), "binary reply")
        t, s = topic.encode(), b"ok"
        assert frame == bytes([1, 2, 2, len(t), len(s)]) + b"10" + b"11" + t + s + data[::-1]

        # Binary push whose app answer broadcasts the bytes: a V2 subscriber
        # gets a kind 2 frame, a V1 one the JSON form (CONTRACT §10).
        data = b"\x00\x01binary\xfe\xff"
        await sender.send(encode_push("10", "12", topic, "binfan", data))
        assert await sender.next(v2_reply("12"), "binfan reply") == [
            "10", "12", topic, "phx_reply", ok()
        ]
        e = b"binfanned"
        assert await receiver.next(binary(2), "binary broadcast") == (
            bytes([2, len(t), len(e)]) + t + e + data
        )
        assert await v1.next(v1_event("binfanned"), "V1 form of binary broadcast") == {
            "topic": topic,
            "event": "binfanned",
            "payload": {"payload_base64": base64.b64encode(data).decode()},
            "ref": None,
        }

        # Text and binary frames mix on one socket: a text push still works.
        await sender.send(["10", "13", topic, "echo", {"after": "binary"}])
        assert await sender.next(v2_reply("13"), "echo reply") == [
            "10", "13", topic, "phx_reply", ok({"after": "binary"})
        ]
    finally:
        for sock in (sender, receiver, v1):
            await sock.close()


# -- close codes -------------------------------------------------------------


@run_async
async def test_disconnect_api_closes_with_1001(gateway, uniq):
    client_id = uniq("closeme")
    sock = await Raw.open(gateway.ws_url(token=f"good-{client_id}", vsn="2.0.0"))
    try:
        # A round trip first, so the connection is registered.
        await sock.send([None, "1", "phoenix", "heartbeat", {}])
        await sock.next(v2_reply("1"), "heartbeat reply")
        status, _ = await asyncio.to_thread(gateway.api, "POST", f"clients/{client_id}/disconnect")
        assert status == 200
        await asyncio.wait_for(sock.ws.wait_closed(), TIMEOUT)
        assert sock.ws.close_code == 1001
    finally:
        await sock.close()


# -- integer refs ------------------------------------------------------------

INTEGER_REFS = (
    "switchboard turns integer refs into strings in its replies; Phoenix echoes "
    "the JSON value as sent (Message.from_map! keeps it, the reply encodes it "
    "back), and clients that send integer refs (phxsocket, chunnel) match replies "
    "by that value"
)


@pytest.mark.xfail(strict=True, reason=INTEGER_REFS)
@pytest.mark.parametrize("vsn", ["1.0.0", "2.0.0"])
@run_async
async def test_integer_refs_are_echoed_as_sent(gateway, uniq, vsn):
    sock = await Raw.open(gateway.ws_url(token=f"good-{uniq('intref')}", vsn=vsn))
    try:
        if vsn == "1.0.0":
            await sock.send({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": 7})
            frame = await sock.next(lambda f: f.get("event") == "phx_reply", "heartbeat reply")
            assert frame["ref"] == 7
        else:
            await sock.send([None, 7, "phoenix", "heartbeat", {}])
            frame = await sock.next(v2_event("phx_reply"), "heartbeat reply")
            assert frame[1] == 7
    finally:
        await sock.close()


@pytest.mark.xfail(strict=True, reason=INTEGER_REFS)
def test_phxsocket_client_join_and_push(gateway, uniq):
    """phxsocket 0.1.5 (PyPI), a V1 client that numbers its refs 0, 1, 2..."""
    import phxsocket

    topic = f"room:{uniq('phxsocket')}"
    client = phxsocket.Client(gateway.socket_url, {"app": "compat", "token": f"good-{uniq('p')}"})
    replies: queue.Queue = queue.Queue()

    def on_message(message):
        # The library calls this after it has routed the message itself.
        if message.event == "phx_reply" and message.topic == topic:
            replies.put(message)

    def reply_matched(sent, what):
        try:
            reply = replies.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no reply at all to the {what}") from None
        # The server did answer; what can fail is the library recognising the
        # answer as the reply to its push.
        assert sent.event.is_set(), (
            f"phxsocket did not match the reply (ref {reply.ref!r}) to its {what}"
        )
        return sent.message

    client.on_message = on_message
    assert client.connect() is True
    try:
        channel = client.channel(topic, {})
        join = client.push(topic, "phx_join", {}, reply=True)
        assert reply_matched(join, "join") == ok()
        echo = channel.push("echo", {"via": "phxsocket"}, reply=True)
        assert reply_matched(echo, "echo push") == ok({"via": "phxsocket"})
    finally:
        client.close()
