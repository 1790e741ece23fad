"""switchboard against an independent Phoenix Channels client from PyPI:
phoenix-channels-python-client (asyncio, serializers V1 and V2).

The library does the socket, the serializer, the join/leave handshakes, the
heartbeats, reconnects and the routing of every incoming message. It has no
public "push an event" call, so `push()` below hands a message built with the
library's own `make_message` to the library's protocol handler to encode and
send on its connection; the reply comes back through the library's routing.

Known limitation of the library (not of the server; a Phoenix server is
treated the same): with V2 it drops every message whose join_ref differs
from the channel's. A broadcast (`[null, null, topic, event, payload]`) and
the refusal of a join to an unmatched topic both carry a null join_ref, as
Phoenix's do, so a V2 subscriber never sees them. Those cases therefore use
the library with V1 here, and test_raw_protocol.py checks the V2 frames byte
for byte.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from contextlib import asynccontextmanager

import pytest
from phoenix_channels_python_client import (
    PHXChannelsClient,
    PhoenixChannelsProtocolVersion,
    ReconnectPolicy,
)
from phoenix_channels_python_client.exceptions import PHXConnectionError, PHXTopicError
from phoenix_channels_python_client.utils import make_message

from harness import APP_SECRET, TIMEOUT

V1 = PhoenixChannelsProtocolVersion.V1
V2 = PhoenixChannelsProtocolVersion.V2

_push_refs = itertools.count(1)


def run_async(test):
    """Runs an async test body in a fresh event loop, bounded as a whole."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(test(*args, **kwargs), 6 * TIMEOUT))

    return wrapper


class Inbox:
    """Every message the library routed to one topic's message handler."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.seen: list = []

    async def handler(self, message) -> None:
        await self.queue.put(message)

    async def next(self, predicate, what: str):
        """The first message (already seen or arriving within TIMEOUT) matching."""
        for message in self.seen:
            if predicate(message):
                self.seen.remove(message)
                return message
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            remaining = deadline - loop.time()
            try:
                message = await asyncio.wait_for(self.queue.get(), max(remaining, 0))
            except TimeoutError:
                raise AssertionError(
                    f"no {what} within {TIMEOUT}s; other messages: {self.seen}"
                ) from None
            if predicate(message):
                return message
            self.seen.append(message)

    async def event(self, name: str):
        return await self.next(lambda m: str(m.event) == name, f"{name!r} message")


@asynccontextmanager
async def connected(gateway, client_id: str, version=V2, **options):
    """A library client connected as `client_id` (token good-<id>)."""
    # The library sends its api_key as the `api_key` query parameter; the
    # gateway reads `token` (CONTRACT §3), which the library leaves in the URL.
    client = PHXChannelsClient(
        gateway.ws_url(token=f"good-{client_id}"),
        "unused-api-key",
        protocol_version=version,
        join_timeout_s=TIMEOUT,
        leave_timeout_s=TIMEOUT,
        **options,
    )
    async with client:
        yield client


async def join(client, topic: str) -> Inbox:
    inbox = Inbox()
    await client.subscribe_to_topic(topic, inbox.handler)
    assert client.is_topic_joined(topic)
    return inbox


async def push(client, inbox: Inbox, topic: str, event: str, payload: dict):
    """Pushes `event` on a joined topic and returns the library's phx_reply."""
    ref = f"push-{next(_push_refs)}"
    join_ref = client.get_current_subscriptions()[topic].join_ref
    message = make_message(
        event=event, topic=topic, ref=ref, payload=payload, join_ref=join_ref
    )
    await client.get_protocol_handler().send_message(client.connection, message)
    reply = await inbox.next(
        lambda m: str(m.event) == "phx_reply" and m.ref == ref, f"phx_reply to {ref}"
    )
    assert reply.topic == topic
    if client.get_protocol_handler().protocol_version == V2:
        # A channel reply carries the channel's join_ref (PHOENIX_PROTOCOL §2).
        assert reply.join_ref == join_ref
    else:
        # V1 output never carries a join_ref (PHOENIX_PROTOCOL §2.2).
        assert reply.join_ref is None
    return reply


def backend_calls(backend, path: str) -> list[dict]:
    """Drains the backend's request log, keeping the calls to `path`."""
    calls = []
    while not backend.requests.empty():
        request = backend.requests.get_nowait()
        if request["path"] == path:
            calls.append(request["body"])
    return calls


# -- connect -----------------------------------------------------------------


@pytest.mark.parametrize("version", [V2, V1], ids=["v2", "v1"])
@run_async
async def test_connect_and_join(gateway, backend, uniq, version):
    backend_calls(backend, "/auth")
    client_id, topic = uniq("alice"), f"room:{uniq('lobby')}"
    async with connected(gateway, client_id, version) as client:
        await join(client, topic)
        status, body = gateway.api("GET", f"connections?client_id={client_id}")
        assert status == 200
        assert [c["topics"] for c in body["connections"]] == [[topic]]
    auth = [b for b in backend_calls(backend, "/auth") if b["token"] == f"good-{client_id}"]
    assert len(auth) == 1
    assert auth[0]["connection_type"] == "websocket"
    assert auth[0]["app"] == "compat"


@run_async
async def test_connect_refused_with_bad_token(gateway):
    client = PHXChannelsClient(gateway.ws_url(token="bad"), "unused-api-key")
    with pytest.raises(PHXConnectionError, match="403"):
        async with client:
            pass


# -- join --------------------------------------------------------------------


@pytest.mark.parametrize("version", [V2, V1], ids=["v2", "v1"])
@run_async
async def test_join_refused(gateway, uniq, version):
    async with connected(gateway, uniq("bob"), version) as client:
        # A topic matching a channel pattern whose variable breaks its rules.
        with pytest.raises(PHXTopicError, match="invalid_channel_pattern"):
            await client.subscribe_to_topic("room:not a slug!")
        if version == V1:
            # No channel pattern at all. Phoenix answers this one with a null
            # join_ref (PHOENIX_PROTOCOL §4 rule 2), which the library drops
            # under V2 (see the module docstring), so only V1 sees it here;
            # test_raw_protocol.py checks the V2 frame.
            with pytest.raises(PHXTopicError, match="unmatched topic"):
                await client.subscribe_to_topic(f"nowhere:{uniq('x')}")
        # The refusals cost nothing else: the same socket still joins.
        await join(client, f"room:{uniq('after-refusal')}")


@run_async
async def test_presence_state_is_pushed_on_join(gateway, uniq):
    # A channel push (join_ref set), which the library delivers under V2 too.
    client_id, topic = uniq("carol"), f"lobby:{uniq('presence')}"
    async with connected(gateway, client_id) as client:
        inbox = await join(client, topic)
        state = await inbox.event("presence_state")
        assert state.join_ref == client.get_current_subscriptions()[topic].join_ref
        assert state.ref is None
        assert list(state.payload) == [client_id]
        assert state.payload[client_id]["metas"][0]["phx_ref"]


# -- push and reply ----------------------------------------------------------


@pytest.mark.parametrize("version", [V2, V1], ids=["v2", "v1"])
@run_async
async def test_push_with_reply(gateway, uniq, version):
    topic = f"room:{uniq('echo')}"
    async with connected(gateway, uniq("dave"), version) as client:
        inbox = await join(client, topic)
        payload = {"text": "hello", "n": 42, "nested": {"list": [1, "two", None]}}
        reply = await push(client, inbox, topic, "echo", payload)
        assert reply.payload == {"status": "ok", "response": payload}

        # An event the schema does not allow on the topic: an error reply.
        reply = await push(client, inbox, topic, "nope", {})
        assert reply.payload["status"] == "error"
        assert reply.payload["response"]["reason"] == "invalid_event_for_channel"

        # A payload failing the event's JSON Schema.
        reply = await push(client, inbox, topic, "chat", {"body": 7})
        assert reply.payload["status"] == "error"
        assert reply.payload["response"]["reason"] == "invalid_payload"


@run_async
async def test_heartbeat_is_acknowledged(gateway, uniq):
    acked = asyncio.Event()
    async with connected(
        gateway,
        uniq("erin"),
        heartbeat_interval_s=0.2,
        heartbeat_dead_threshold_s=TIMEOUT,
        on_heartbeat_ack=acked.set,
    ):
        # The library matches the reply's ref on topic "phoenix" to its heartbeat.
        await asyncio.wait_for(acked.wait(), TIMEOUT)


# -- broadcasts --------------------------------------------------------------


@run_async
async def test_broadcast_from_one_client_reaches_another(gateway, uniq):
    topic = f"room:{uniq('chat')}"
    async with (
        connected(gateway, uniq("sender"), V2) as sender,
        connected(gateway, uniq("receiver"), V1) as receiver,
    ):
        sender_inbox = await join(sender, topic)
        receiver_inbox = await join(receiver, topic)

        # delivery "broadcast": the gateway fans the push out itself.
        reply = await push(sender, sender_inbox, topic, "chat", {"body": "hi all"})
        assert reply.payload == {"status": "ok", "response": {}}
        chat = await receiver_inbox.event("chat")
        assert (chat.topic, chat.payload, chat.ref) == (topic, {"body": "hi all"}, None)

        # delivery "forward": the app answers with a broadcast action.
        reply = await push(sender, sender_inbox, topic, "fanout", {"wave": 1})
        assert reply.payload == {"status": "ok", "response": {}}
        fanned = await receiver_inbox.event("fanned")
        assert (fanned.topic, fanned.payload, fanned.ref) == (topic, {"wave": 1}, None)


@run_async
async def test_server_api_broadcast_reaches_client(gateway, uniq):
    topic = f"room:{uniq('api')}"
    async with connected(gateway, uniq("frank"), V1) as client:
        inbox = await join(client, topic)
        status = await asyncio.to_thread(
            gateway.broadcast, topic, "announcement", {"text": "from the app"}
        )
        assert status == 202
        message = await inbox.event("announcement")
        assert (message.topic, message.payload) == (topic, {"text": "from the app"})
        assert message.ref is None

        status = await asyncio.to_thread(
            gateway.broadcast, topic, "forged", {}, secret=APP_SECRET + "-wrong"
        )
        assert status == 401


# -- leave and disconnect ----------------------------------------------------


@pytest.mark.parametrize("version", [V2, V1], ids=["v2", "v1"])
@run_async
async def test_leave(gateway, uniq, version):
    client_id, kept, left = uniq("grace"), f"room:{uniq('kept')}", f"room:{uniq('left')}"
    async with connected(gateway, client_id, version) as client:
        await join(client, kept)
        await join(client, left)
        # Waits for the leave's ok reply; raises on an error reply or timeout.
        await client.unsubscribe_from_topic(left)
        assert list(client.get_current_subscriptions()) == [kept]

        status, body = gateway.api("GET", f"connections?client_id={client_id}")
        assert status == 200
        assert [c["topics"] for c in body["connections"]] == [[kept]]

        # Joining the topic again after leaving it works.
        await join(client, left)


@run_async
async def test_disconnect_api_makes_client_reconnect_and_rejoin(gateway, uniq):
    client_id, topic = uniq("heidi"), f"room:{uniq('resume')}"
    reconnected = asyncio.Event()
    disconnects: list = []

    async def on_reconnect() -> None:
        reconnected.set()

    async def on_disconnect(error) -> None:
        disconnects.append(error)

    fast = ReconnectPolicy(
        base_delay_s=0.05, max_delay_s=0.2, rapid_disconnect_uptime_s=0.0
    )
    async with connected(
        gateway,
        client_id,
        reconnect_policy=fast,
        on_reconnect=on_reconnect,
        on_disconnect=on_disconnect,
    ) as client:
        inbox = await join(client, topic)
        status, _ = await asyncio.to_thread(
            gateway.api, "POST", f"clients/{client_id}/disconnect"
        )
        assert status == 200
        # The library only reconnects after a close it did not expect; then
        # it rejoins the topic with a fresh join_ref (PHOENIX_PROTOCOL §6).
        await asyncio.wait_for(reconnected.wait(), TIMEOUT)
        assert client.is_topic_joined(topic)
        # A clean close (1001, checked in test_raw_protocol.py) reports None.
        assert disconnects == [None]
        # The rejoined channel works.
        reply = await push(client, inbox, topic, "echo", {"again": True})
        assert reply.payload == {"status": "ok", "response": {"again": True}}
