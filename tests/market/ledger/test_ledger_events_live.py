"""Ledger entries and checkpoints reach the right people live, over the websocket, as the web
client hears them (`ledger.*` events): the giver and the recipient of a gift, the district's
admins for a checkpoint, nobody else."""

from __future__ import annotations

import asyncio

import pytest

from market.realtime.client import RealtimeClient
from market.realtime.events import Event
from market.services import checkpoints
from tests.market.conftest import City
from tests.market.ledger.conftest import fund, link

# The realtime suite's live uvicorn server and quick city, for this module only.
from tests.market.realtime.conftest import (  # noqa: F401
    Live,
    city,
    client,
    live,
    realtime_overrides,
    runtime,
    settings,
)
from tests.market.realtime.helpers import quiet


@pytest.fixture
def server(live: Live) -> Live:  # noqa: F811 (the imported fixture, by name)
    return live


@pytest.fixture
def town(city: City) -> City:  # noqa: F811
    return city


async def next_ledger_event(socket: RealtimeClient, *, within: float = 10.0) -> Event:
    async with asyncio.timeout(within):
        async for item in socket:
            if isinstance(item, Event) and item.kind.startswith("ledger."):
                return item
    raise AssertionError("the connection ended before a ledger event came")


async def test_a_gift_reaches_giver_and_recipient_live(server: Live, town: City) -> None:
    from market.models import LinkStatus

    volunteer, elder = town["volunteer"], town["elder"]
    await link(volunteer, elder, "child", LinkStatus.approved)
    await fund(server.runtime.ledger, volunteer.user.id, 90)
    async with (
        RealtimeClient(server.ws_url, volunteer.token) as giver,
        RealtimeClient(server.ws_url, elder.token) as parent,
        RealtimeClient(server.ws_url, town["family"].token) as stranger,
    ):
        body = {"recipient_id": str(elder.user.id), "minutes": 30, "request_id": "live-1"}
        response = await server.http.post(
            "/api/v1/ledger/gifts", json=body, headers=volunteer.headers
        )
        assert response.status_code == 201, response.text
        entry_id = response.json()["entry"]["id"]
        gave = await next_ledger_event(giver)
        assert (gave.kind, gave.payload["kind"]) == ("ledger.entry", "gift")
        assert (gave.payload["entry_id"], gave.payload["balance_minutes"]) == (entry_id, 60)
        received = await next_ledger_event(parent)
        assert (received.kind, received.payload["kind"]) == ("ledger.entry", "gift")
        assert received.payload["balance_minutes"] == 30
        assert [e for e in await quiet(stranger, 0.5) if e.kind.startswith("ledger.")] == []


async def test_a_checkpoint_reaches_the_districts_admins_only(server: Live, town: City) -> None:
    await fund(server.runtime.ledger, town["volunteer"].user.id, 10)
    async with (
        RealtimeClient(server.ws_url, town["centre_admin"].token) as admin,
        RealtimeClient(server.ws_url, town.west_admin.token) as west,
    ):
        cp = await checkpoints.sign_now(server.runtime.ledger, "east")
        assert cp is not None
        event = await next_ledger_event(admin)
        assert (event.kind, event.payload["size"]) == ("ledger.checkpoint", cp.size)
        assert [e for e in await quiet(west, 0.5) if e.kind.startswith("ledger.")] == []
