"""What the matching loop tells the matcher about a helper: capacity per local day (offers for
another day never use up today), the hours they already hold, recent service for fairness, and
the elder's priority flags."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import date, datetime, timedelta
from uuid import uuid4

import httpx
import pytest

import matching
from market.models import Booking, HelperProfile, Offer, Payment
from market.policy import PriorityFlag
from market.services.districts import policy_in_force
from market.services.matching_loop import (
    LOCAL_TIME,
    candidate_helpers,
    capacity_windows,
    free_windows,
    planning_days,
    priority_groups,
    reach_box,
)
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


class TestHeldHours:
    async def test_a_helper_is_never_offered_two_jobs_at_the_same_hour(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await place_helper(city["volunteer"])
        start = now() + timedelta(minutes=1)
        first = await book(client, city["elder"], duration_minutes=30, **window(start))
        assert await run_round() == 1
        second = await book(client, city["elder"], duration_minutes=30, **window(start))
        assert await run_round() == 0
        assert await state_of(first["id"]) == "offered"
        assert await state_of(second["id"]) == "requested"

    async def test_the_next_free_hour_is_still_offered(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await place_helper(city["volunteer"])
        start = now() + timedelta(minutes=1)
        await book(client, city["elder"], duration_minutes=30, **window(start))
        assert await run_round() == 1
        later = await book(
            client, city["elder"], duration_minutes=30, **window(start + timedelta(hours=2))
        )
        assert await run_round() == 1
        assert await state_of(later["id"]) == "offered"


W = matching.TimeWindow


class TestFreeWindows:
    def test_a_held_span_cuts_the_window_in_two(self) -> None:
        assert free_windows((W(0, 100),), [W(30, 50)]) == (W(0, 30), W(50, 100))

    def test_spans_at_the_edges_and_outside(self) -> None:
        windows = (W(0, 100), W(200, 300))
        held = [W(-10, 20), W(90, 210), W(400, 500)]
        assert free_windows(windows, held) == (W(20, 90), W(210, 300))

    def test_a_span_covering_the_window_removes_it(self) -> None:
        assert free_windows((W(10, 20),), [W(0, 30)]) == ()


class TestPriorityGroups:
    def test_every_flag_the_centre_can_set_counts_for_matching(self) -> None:
        for flag in PriorityFlag:
            assert priority_groups([flag.value]), flag

    def test_dispersed_destitute_counts_as_economic_hardship(self) -> None:
        assert priority_groups(["dispersed_destitute"]) == {
            matching.PriorityGroup.ECONOMIC_HARDSHIP
        }

    def test_unknown_flags_are_ignored(self) -> None:
        assert priority_groups(["no_such_flag"]) == frozenset()


class TestNeighbourhood:
    def test_the_box_holds_every_place_a_helper_could_come_from(self) -> None:
        policy = matching.Policy()
        booking = Booking(latitude=30.0, longitude=120.0)
        box = reach_box([booking], policy)
        km = policy.travel.reach_km(15)
        for bearing_lat, bearing_lon in ((1, 0), (-1, 0), (0, 1), (0, -1), (0.7, 0.7)):
            lat = 30.0 + bearing_lat * km / 111.2
            lon = 120.0 + bearing_lon * km / (111.2 * math.cos(math.radians(30.0)))
            assert box.south <= lat <= box.north and box.west <= lon <= box.east

    async def test_helpers_far_away_are_not_loaded(self, city: City) -> None:
        await place_helper(city["volunteer"])
        await place_helper(city["provider_staff"], lat=31.0, lon=121.0)
        version, policy = await policy_in_force(city.east.id, now())
        booking = Booking(latitude=30.0, longitude=120.0, elder_id=city["elder"].user.id)
        booking.id = uuid4()
        booking.excluded_helpers = []
        booking.payment = Payment.public
        match_policy, helpers, _ = await candidate_helpers([booking], version, policy, now())
        assert [h.id for h in helpers] == [str(city["volunteer"].user.id)]
        # The district's lifting rule reaches the matcher too.
        assert match_policy.lifting_any_of
