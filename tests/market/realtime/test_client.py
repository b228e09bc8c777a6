"""The client library against a scripted websocket server: bounded connects, close, keepalive.

The protocol itself (resume, duplicates, refusals) is tested against the real endpoint in
test_websocket.py; here a small websockets server misbehaves on purpose, which the real one
does not do on demand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from websockets.asyncio.server import ServerConnection, serve
from websockets.frames import Opcode
from websockets.http11 import Request, Response

from market.realtime.client import RealtimeClient, Reset
from market.realtime.events import Event

STREAM = "user:00000000-0000-0000-0000-000000000001"


class CountingConnection(ServerConnection):
    """Counts the protocol pings the client sends (the library answers them by itself)."""

    pings = 0

    def process_event(self, event: object) -> None:
        if getattr(event, "opcode", None) is Opcode.PING:
            CountingConnection.pings += 1
        super().process_event(event)  # type: ignore[arg-type]


@dataclass
class Script:
    """What the scripted server does; the test flips the gates."""

    answer: bool = True  # send `subscribed` after the client's subscribe frame
    handshake: asyncio.Event = field(default_factory=asyncio.Event)  # set: finish handshakes
    requested: asyncio.Event = field(default_factory=asyncio.Event)  # a handshake has begun
    subscribes: list[dict[str, object]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)  # a connection has ended
    url: str = ""


@pytest_asyncio.fixture
async def script() -> AsyncIterator[Script]:
    plan = Script()
    plan.handshake.set()
    CountingConnection.pings = 0

    async def process_request(_conn: ServerConnection, _request: Request) -> Response | None:
        plan.requested.set()
        await plan.handshake.wait()
        return None

    async def handler(ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "subscribe":
                    plan.subscribes.append(frame)
                    if plan.answer:
                        await ws.send(json.dumps({"type": "subscribed", "streams": {STREAM: 0}}))
        finally:
            plan.closed.set()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        process_request=process_request,
        create_connection=CountingConnection,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        plan.url = f"ws://127.0.0.1:{port}/api/v1/ws"
        yield plan


async def test_a_server_that_never_subscribes_times_out_and_the_socket_is_closed(
    script: Script,
) -> None:
    script.answer = False
    client = RealtimeClient(script.url, "token", open_timeout=0.3)
    with pytest.raises(TimeoutError):
        await client.__aenter__()
    # The server sees the client leave instead of holding a half-open subscription.
    await asyncio.wait_for(script.closed.wait(), 5)
    assert client.connects == 1
    assert len(script.subscribes) == 1


async def test_a_stalled_handshake_is_bounded_by_open_timeout(script: Script) -> None:
    script.handshake.clear()
    client = RealtimeClient(script.url, "token", open_timeout=0.3)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.__aenter__(), 5)
    assert client.connects == 0
    script.handshake.set()  # lets the server finish the abandoned handshake and stop


async def test_close_stops_a_client_that_keeps_failing_to_reconnect(script: Script) -> None:
    script.answer = False
    client = RealtimeClient(script.url, "token", open_timeout=0.2, max_backoff=0.2)
    items: list[Event | Reset] = []

    async def read() -> None:
        async for item in client:
            items.append(item)

    reader = asyncio.create_task(read())
    async with asyncio.timeout(5):
        while client.connects < 2:  # noqa: ASYNC110 (the client offers no event for attempts)
            await asyncio.sleep(0.01)
    await client.close()
    await asyncio.wait_for(reader, 5)
    assert items == []


async def test_close_during_a_handshake_closes_the_connection_it_yields(script: Script) -> None:
    script.handshake.clear()
    client = RealtimeClient(script.url, "token")

    async def first() -> Event | Reset | None:
        return await anext(aiter(client), None)

    reader = asyncio.create_task(first())
    await asyncio.wait_for(script.requested.wait(), 5)
    await client.close()  # nothing is open yet: the attempt under way must notice afterwards
    script.handshake.set()
    assert await asyncio.wait_for(reader, 5) is None
    await asyncio.wait_for(script.closed.wait(), 5)
    assert client.connects == 1
    assert client.subscribed == {STREAM: 0}


async def test_subscribe_frame_resumes_from_the_given_positions(script: Script) -> None:
    async with RealtimeClient(script.url, "token", resume={STREAM: 7}) as client:
        assert client.positions == {STREAM: 7}
    assert script.subscribes == [{"type": "subscribe", "resume": {STREAM: 7}}]


@pytest.mark.parametrize(("interval", "pinged"), [(0.05, True), (None, False)])
async def test_protocol_pings_follow_ping_interval(
    script: Script, interval: float | None, pinged: bool
) -> None:
    async with RealtimeClient(script.url, "token", ping_interval=interval):
        await asyncio.sleep(0.5)
    assert (CountingConnection.pings > 0) is pinged
