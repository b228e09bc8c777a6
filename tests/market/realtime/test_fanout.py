"""Fan-out across processes on PostgreSQL: gap-free seqs, LISTEN/NOTIFY, listener loss."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import httpx
import pytest

from market.realtime.backends import LISTENER_NAME, asyncpg_dsn
from market.realtime.client import RealtimeClient
from market.realtime.events import Event, elder_stream, read_stream, user_stream
from market.settings import Settings
from tests.market.bookings.world import request_body
from tests.market.conftest import City
from tests.market.realtime.conftest import Live
from tests.market.realtime.helpers import collect, publish, run_publisher, server_process, until

pytestmark = pytest.mark.postgres


def seqs(items: list[object]) -> list[int]:
    return [item.seq for item in items if isinstance(item, Event)]


class TestGapFreeSequences:
    async def test_publishers_in_several_processes_share_one_gap_free_sequence(
        self, live: Live, settings: Settings
    ) -> None:
        stream = user_stream(uuid4())
        per_process = 40
        in_process = asyncio.gather(*(publish([stream], "tick", proc="t", n=n) for n in range(20)))
        await asyncio.gather(
            in_process,
            *(run_publisher(settings.database_url, stream, per_process, f"p{i}") for i in range(3)),
        )
        events = await read_stream(stream, 0, 1000)
        total = 3 * per_process + 20
        assert [e.seq for e in events] == list(range(1, total + 1))
        for label in ("p0", "p1", "p2"):
            mine = [e.payload["n"] for e in events if e.payload["proc"] == label]
            assert mine == list(range(per_process))  # each process's commits in its order


class TestAcrossProcesses:
    async def test_commit_in_one_process_reaches_a_client_of_another(
        self, live: Live, city: City, settings: Settings
    ) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        async with server_process(settings) as port_b:
            url_b = f"ws://127.0.0.1:{port_b}/api/v1/ws"
            async with (
                RealtimeClient(url_b, elder.token, streams=[stream]) as on_b,
                RealtimeClient(live.ws_url, elder.token, streams=[stream]) as on_a,
            ):
                await publish([stream], "from.test.process")
                await run_publisher(settings.database_url, stream, 10, "c")
                got_b = await collect(on_b, 11)
                got_a = await collect(on_a, 11)
        assert seqs(got_b) == seqs(got_a) == list(range(1, 12))
        assert [e.kind for e in got_b][:1] == ["from.test.process"]  # type: ignore[union-attr]

    async def test_a_booking_changed_over_http_on_server_a_reaches_a_client_of_server_b(
        self, live: Live, city: City, settings: Settings
    ) -> None:
        # Two server processes besides the test's own: the request and the cancellation go
        # through A's HTTP API and transactions; B hears of them only through PostgreSQL.
        elder = city["elder"]
        stream = elder_stream(elder.user.id)
        quiet_loops = {"ELDERCARE_MATCHING_ENABLED": "0"}
        async with (
            server_process(settings, **quiet_loops) as port_a,
            server_process(settings, **quiet_loops) as port_b,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_a}") as on_a,
            RealtimeClient(
                f"ws://127.0.0.1:{port_b}/api/v1/ws", elder.token, streams=[stream]
            ) as on_b,
        ):
            made = await on_a.post("/api/v1/requests", json=request_body(), headers=elder.headers)
            assert made.status_code == 201, made.text
            booking_id = made.json()["bookings"][0]["id"]
            cancelled = await on_a.post(
                f"/api/v1/bookings/{booking_id}/cancel",
                json={"reason": "feeling better"},
                headers=elder.headers,
            )
            assert cancelled.status_code == 200, cancelled.text
            got = await collect(on_b, 2)
        changes = [
            (e.kind, e.payload["booking_id"], e.payload["state"])
            for e in got
            if isinstance(e, Event)
        ]
        assert changes == [
            ("booking.state", booking_id, "requested"),
            ("booking.state", booking_id, "cancelled"),
        ]
        assert seqs(got) == [1, 2]


class TestListenerLoss:
    async def test_killing_the_listener_connection_loses_no_event(
        self, live: Live, city: City, settings: Settings
    ) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        listener = live.runtime.realtime.listener  # type: ignore[union-attr]
        assert listener is not None
        await asyncio.wait_for(listener.connected.wait(), 10)
        admin = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        total = 60
        try:
            async with RealtimeClient(live.ws_url, elder.token, streams=[stream]) as client:
                # Published from another process, so only the database can tell this one.
                publisher = asyncio.create_task(
                    run_publisher(settings.database_url, stream, total, "p", 0.02)
                )
                kills = 0
                for _ in range(3):
                    await asyncio.sleep(0.25)
                    pid = listener.backend_pid
                    if pid is None:
                        continue
                    name = await admin.fetchval(
                        "SELECT application_name FROM pg_stat_activity WHERE pid = $1", pid
                    )
                    assert name == LISTENER_NAME
                    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
                    kills += 1
                    await until(lambda killed=pid: listener.backend_pid not in (None, killed))
                await publisher
                items = await collect(client, total, within=20)
        finally:
            await admin.close()
        assert kills >= 2
        assert listener.connections >= kills + 1
        assert seqs(items) == list(range(1, total + 1))
