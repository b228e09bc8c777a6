"""Overdue visits on the admin feed: `announce_overdue`, the lifespan's periodic duty."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx

from market.realtime.events import admin_stream
from market.services.runtime import Runtime
from market.visits.models import OverdueNotice
from market.visits.overdue import OVERDUE_EVENT, announce_overdue
from tests.market.conftest import Actor, City
from tests.market.visits.conftest import elder_with, events, now, seed_visit

WEEK = timedelta(days=7)


async def weekly_elder_overdue(
    client: httpx.AsyncClient, runtime: Runtime, city: City, *, days_since_visit: int = 10
) -> Actor:
    """A high-risk elder (weekly visits) in east's community, last visited days ago."""
    elder = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
    await seed_visit(elder, city["centre_admin"], now() - timedelta(days=days_since_visit), runtime)
    return elder


async def announced_for(elder: Actor) -> list[dict[str, object]]:
    return [
        dict(e.payload)
        for e in await events(OVERDUE_EVENT)
        if e.payload["elder"] == str(elder.user.id)
    ]


class TestAnnouncement:
    async def test_an_overdue_elder_is_announced_on_the_district_admin_stream(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        elder = await weekly_elder_overdue(client, runtime, city)
        assert await announce_overdue(now()) == 1
        [event] = await events(OVERDUE_EVENT)
        assert event.stream == admin_stream(city.east_community.id)
        assert event.payload["elder"] == str(elder.user.id)
        assert event.payload["tier"] == "high_risk"
        assert abs(int(event.payload["overdue_minutes"]) - 3 * 24 * 60) <= 1  # type: ignore[call-overload]
        assert event.payload["period_due_at"] == event.payload["due_at"]

    async def test_the_next_tick_does_not_announce_it_again(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        elder = await weekly_elder_overdue(client, runtime, city)
        await announce_overdue(now())
        assert await announce_overdue(now() + timedelta(minutes=5)) == 0
        assert await announce_overdue(now() + timedelta(days=3)) == 0
        assert len(await announced_for(elder)) == 1
        assert await OverdueNotice.filter(elder_id=elder.user.id).count() == 1

    async def test_still_overdue_a_tier_interval_later_it_is_announced_again(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        elder = await weekly_elder_overdue(client, runtime, city)
        t = now()
        await announce_overdue(t)
        assert await announce_overdue(t + WEEK) == 1
        assert await announce_overdue(t + WEEK + timedelta(hours=1)) == 0
        first, second = await announced_for(elder)
        assert first["due_at"] == second["due_at"]  # still the same missed visit
        assert first["period_due_at"] != second["period_due_at"]

    async def test_a_visit_ends_the_reminders(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        elder = await weekly_elder_overdue(client, runtime, city)
        await announce_overdue(now())
        await seed_visit(elder, city["centre_admin"], now(), runtime)
        assert await announce_overdue(now() + timedelta(days=6)) == 0
        assert len(await announced_for(elder)) == 1

    async def test_two_ticks_at_once_announce_a_period_once(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        # Two server processes ticking together: the (elder, period) key lets one win.
        elder = await weekly_elder_overdue(client, runtime, city)
        t = now()
        made = await asyncio.gather(announce_overdue(t), announce_overdue(t))
        assert sorted(made) == [0, 1]
        assert len(await announced_for(elder)) == 1
        assert await OverdueNotice.filter(elder_id=elder.user.id).count() == 1


class TestNotAnnounced:
    async def test_an_elder_not_yet_due_is_not_announced(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        await weekly_elder_overdue(client, runtime, city, days_since_visit=2)
        assert await announce_overdue(now()) == 0
        assert await events(OVERDUE_EVENT) == []
        assert await OverdueNotice.all().count() == 0

    async def test_an_elder_of_another_district_goes_to_that_district_only(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        west_elder = await elder_with(client, runtime, city.west, flags=["living_alone"])
        await seed_visit(west_elder, city.west_admin, now() - timedelta(days=10), runtime)
        await announce_overdue(now())
        streams = {e.stream for e in await events(OVERDUE_EVENT)}
        assert streams == {admin_stream(city.west.id)}
