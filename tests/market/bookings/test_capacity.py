"""A helper's capacity is per local day: offers for another day never use up today."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date, datetime, timedelta

import httpx
import pytest

from market.models import HelperProfile, Offer
from market.services.matching_loop import LOCAL_TIME, capacity_windows, planning_days
from tests.market.bookings.world import book, now, place_helper, run_round, state_of
from tests.market.conftest import City


def window(start: datetime) -> dict[str, str]:
    return {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(minutes=40)).isoformat(),
    }


@pytest.fixture
async def one_a_day(city: City) -> City:
    """Only the volunteer can help, and takes one job a day."""
    await place_helper(city["volunteer"])
    await HelperProfile.filter(user_id=city["volunteer"].user.id).update(capacity_per_day=1)
    return city


class TestPerDayCapacity:
    async def test_an_offer_for_next_week_leaves_today_free(
        self, client: httpx.AsyncClient, one_a_day: City
    ) -> None:
        elder = one_a_day["elder"]
        later = await book(client, elder, **window(now() + timedelta(days=6)))
        assert await run_round() == 1
        today = await book(client, elder, **window(now() + timedelta(minutes=1)))
        assert await run_round() == 1
        assert await state_of(later["id"]) == "offered"
        assert await state_of(today["id"]) == "offered"

    async def test_a_second_job_on_a_full_day_waits(
        self, client: httpx.AsyncClient, one_a_day: City
    ) -> None:
        elder = one_a_day["elder"]
        first = await book(client, elder, **window(now() + timedelta(minutes=1)))
        assert await run_round() == 1
        second = await book(client, elder, **window(now() + timedelta(minutes=2)))
        assert await run_round() == 0
        assert await state_of(first["id"]) == "offered"
        assert await state_of(second["id"]) == "requested"
        assert await Offer.filter(helper_id=one_a_day["volunteer"].user.id).count() == 1

    async def test_one_round_gives_one_job_per_day(
        self, client: httpx.AsyncClient, one_a_day: City
    ) -> None:
        elder = one_a_day["elder"]
        for days in (3, 3, 4):
            await book(client, elder, **window(now() + timedelta(days=days)))
        assert await run_round() == 2


class TestCapacityWindows:
    def test_the_horizon_is_cut_at_local_midnight(self) -> None:
        days = planning_days(datetime(2026, 11, 23, 17, 30, tzinfo=LOCAL_TIME))
        assert days[0][0] == date(2026, 11, 23)
        assert days[-1][0] == date(2026, 12, 1)
        for (day, span), (_, after) in itertools.pairwise(days):
            assert span.end == after.start
            assert span.end - span.start == 24 * 60
            assert datetime.fromtimestamp(span.start * 60, LOCAL_TIME).date() == day

    def test_jobs_left_per_day_never_negative(self) -> None:
        days = planning_days(datetime(2026, 11, 23, 9, 0, tzinfo=LOCAL_TIME))[:3]
        load = Counter({days[0][0]: 5, days[1][0]: 1})
        assert [w.jobs for w in capacity_windows(2, load, days)] == [0, 1, 2]
