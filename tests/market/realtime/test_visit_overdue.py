"""Overdue visits reach the centre's websocket feed, once per period, in its district only."""

from __future__ import annotations

from datetime import timedelta

import httpx

from market.realtime.client import RealtimeClient
from market.realtime.events import Event, admin_stream
from market.services.runtime import Runtime
from market.visits.overdue import OVERDUE_EVENT, announce_overdue
from tests.market.conftest import City
from tests.market.realtime.conftest import Live
from tests.market.realtime.helpers import collect, quiet
from tests.market.visits.conftest import elder_with, now, seed_visit


class TestOverdueOnTheAdminFeed:
    async def test_the_district_admin_hears_once_and_another_district_not_at_all(
        self, live: Live, client: httpx.AsyncClient, runtime: Runtime, city: City
    ) -> None:
        admin, west_admin = city["centre_admin"], city.west_admin
        elder = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        await seed_visit(elder, admin, now() - timedelta(days=10), runtime)
        async with (
            RealtimeClient(live.ws_url, admin.token) as east_feed,
            RealtimeClient(live.ws_url, west_admin.token) as west_feed,
        ):
            assert admin_stream(city.east_community.id) in east_feed.subscribed
            await announce_overdue(now())
            [event] = await collect(east_feed, 1)
            await announce_overdue(now() + timedelta(minutes=5))  # the next tick: nothing new
            again = await quiet(east_feed, 1.0)
            west = await quiet(west_feed, 0.5)
        assert isinstance(event, Event)
        assert event.kind == OVERDUE_EVENT
        assert event.stream == admin_stream(city.east_community.id)
        assert event.payload["elder"] == str(elder.user.id)
        assert again == []
        assert west == []
