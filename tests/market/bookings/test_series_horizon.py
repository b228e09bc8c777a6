"""Open-ended series and the rolling horizon (`series_horizon.extend_all`, a periodic duty)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from market import policy as rules
from market.models import (
    Booking,
    FamilyLink,
    LinkStatus,
    Offer,
    RecurringSeries,
    User,
    UserStatus,
)
from market.policy import ServiceCode
from market.realtime.events import elder_stream, read_stream
from market.services import payments
from market.services.runtime import Runtime
from market.services.series_horizon import UNBOOKED_EVENT, extend_all
from tests.market.bookings.world import (
    fund,
    neighbourhood,
    now,
    request_body,
    run_round,
    snapshot,
)
from tests.market.conftest import City

HORIZON = 28  # the default ELDERCARE_SERIES_HORIZON_DAYS
WEEK = timedelta(days=7)


@pytest.fixture
async def town(city: City) -> City:
    return await neighbourhood(city)


def weekly_body(start: datetime, **recurrence: Any) -> dict[str, Any]:
    """A weekly cleaning on `start`'s weekday, 40-minute windows."""
    return request_body(
        window_start=start.isoformat(),
        window_end=(start + timedelta(minutes=40)).isoformat(),
        recurrence={"weekdays": [start.weekday()], **recurrence},
    )


async def create(client: httpx.AsyncClient, town: City, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/api/v1/requests", json=body, headers=town["elder"].headers)
    assert response.status_code == 201, response.text
    series_id = response.json()["bookings"][0]["series_id"]
    return await view(client, town, series_id)


async def view(client: httpx.AsyncClient, town: City, series_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/series/{series_id}", headers=town["elder"].headers)
    assert response.status_code == 200, response.text
    return response.json()["series"]  # type: ignore[no-any-return]


def days(series: dict[str, Any]) -> list[str]:
    return [o["occurrence"] for o in series["occurrences"]]


def weekly_days(first: date, through: date) -> list[str]:
    out = []
    while first <= through:
        out.append(first.isoformat())
        first += WEEK
    return out


class TestOpenEnded:
    async def test_a_series_without_end_is_booked_up_to_the_horizon(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start))
        horizon = start.date() + timedelta(days=HORIZON)
        assert series["until"] is None
        assert series["booked_through"] == horizon.isoformat()
        assert days(series) == weekly_days(start.date(), horizon)

    async def test_the_horizon_moves_on_with_the_same_bookings(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start, skip=[]))
        assert await extend_all(runtime, now() + WEEK) == 1
        later = await view(client, town, series["id"])
        assert days(later) == weekly_days(start.date(), start.date() + timedelta(days=35))
        assert later["booked_through"] == (start.date() + timedelta(days=HORIZON + 7)).isoformat()
        first, new = (
            await Booking.filter(series_id=series["id"]).order_by("window_start").first(),
            (await Booking.filter(series_id=series["id"]).order_by("-window_start").first()),
        )
        assert first is not None and new is not None
        assert new.window_start == first.window_start + timedelta(days=35)
        assert new.window_end - new.window_start == first.window_end - first.window_start
        for column in ("service", "payment", "duration_minutes", "latitude", "longitude"):
            assert getattr(new, column) == getattr(first, column)
        assert new.state.value == "requested"

    async def test_the_next_tick_books_nothing_more(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start))
        await extend_all(runtime, now() + WEEK)
        assert await extend_all(runtime, now() + WEEK + timedelta(hours=1)) == 0
        assert await Booking.filter(series_id=series["id"]).count() == 6

    async def test_two_ticks_at_once_book_each_occurrence_once(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        # Two server processes running the duty together: the series row's lock serialises.
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start))
        at = now() + 3 * WEEK
        made = await asyncio.gather(extend_all(runtime, at), extend_all(runtime, at))
        assert sum(made) == 3
        booked = await Booking.filter(series_id=series["id"]).values_list("occurrence", flat=True)
        assert len(booked) == len(set(booked)) == 8

    async def test_skips_and_moves_given_at_creation_apply_beyond_the_horizon(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        skipped = start.date() + timedelta(days=35)
        moved = start.date() + timedelta(days=42)
        to = start + timedelta(days=42, hours=2)
        body = weekly_body(
            start,
            skip=[skipped.isoformat()],
            move=[{"occurrence": moved.isoformat(), "to": to.isoformat()}],
        )
        series = await create(client, town, body)
        await extend_all(runtime, now() + 2 * WEEK)
        booked = {
            o["occurrence"]: o for o in (await view(client, town, series["id"]))["occurrences"]
        }
        assert skipped.isoformat() not in booked
        assert datetime.fromisoformat(booked[moved.isoformat()]["window_start"]) == to

    async def test_the_series_helper_is_offered_the_rolled_occurrence(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        # The provider is the farther helper, but served the series before.
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start))
        await Booking.filter(series_id=series["id"]).update(
            helper_id=town["provider_staff"].user.id, state="confirmed"
        )
        await extend_all(runtime, now() + WEEK)
        rolled = await Booking.filter(series_id=series["id"], state="requested").get()
        await run_round(rolled.window_start - timedelta(minutes=1))
        offer = await Offer.get(booking_id=rolled.id)
        assert offer.helper_id == town["provider_staff"].user.id  # type: ignore[attr-defined]


class TestAheadOfTheHorizon:
    async def test_a_day_not_booked_yet_is_skipped_and_never_booked(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start))
        later = start.date() + timedelta(days=42)  # beyond the 28-day horizon
        response = await client.post(
            f"/api/v1/series/{series['id']}/skip",
            json={"occurrence": later.isoformat(), "reason": "in hospital that week"},
            headers=town["elder"].headers,
        )
        assert response.status_code == 200, response.text
        assert later.isoformat() in response.json()["series"]["exceptions"]["skip"]
        await extend_all(runtime, now() + 3 * WEEK)
        booked = days(await view(client, town, series["id"]))
        assert later.isoformat() not in booked
        assert (later + WEEK).isoformat() in booked and (later - WEEK).isoformat() in booked

    async def test_a_day_not_booked_yet_is_moved_and_booked_at_the_new_time(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start))
        later = start.date() + timedelta(days=42)
        to = start + timedelta(days=43, hours=1)
        response = await client.post(
            f"/api/v1/series/{series['id']}/move",
            json={"occurrence": later.isoformat(), "to": to.isoformat(), "reason": "clinic"},
            headers=town["elder"].headers,
        )
        assert response.status_code == 200, response.text
        await extend_all(runtime, now() + 3 * WEEK)
        booked = {
            o["occurrence"]: o for o in (await view(client, town, series["id"]))["occurrences"]
        }
        assert datetime.fromisoformat(booked[later.isoformat()]["window_start"]) == to

    @pytest.mark.parametrize(
        ("offset_days", "to_days", "status"),
        [(43, 43, 404), (42, 52, 422)],  # off the pattern; moved more than 7 days
    )
    async def test_a_bad_day_or_move_ahead_is_refused_and_nothing_noted(
        self,
        client: httpx.AsyncClient,
        town: City,
        offset_days: int,
        to_days: int,
        status: int,
    ) -> None:
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start))
        day = start.date() + timedelta(days=offset_days)
        to = start + timedelta(days=to_days)
        response = await client.post(
            f"/api/v1/series/{series['id']}/move",
            json={"occurrence": day.isoformat(), "to": to.isoformat(), "reason": "x"},
            headers=town["elder"].headers,
        )
        assert response.status_code == status, response.text
        stored = await RecurringSeries.get(id=series["id"])
        assert not (stored.exceptions or {}).get("move")


class TestEnd:
    async def test_a_series_with_a_last_day_is_not_booked_past_it(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        until = start.date() + timedelta(days=40)
        series = await create(client, town, weekly_body(start, until=until.isoformat()))
        assert days(series) == weekly_days(start.date(), start.date() + timedelta(days=HORIZON))
        assert await extend_all(runtime, now() + 2 * WEEK) == 1
        later = await view(client, town, series["id"])
        assert days(later) == weekly_days(start.date(), until)
        assert later["booked_through"] == until.isoformat()
        assert await extend_all(runtime, now() + 3 * WEEK) == 0
        assert await Booking.filter(series_id=series["id"]).count() == len(days(later))

    async def test_an_ended_series_is_not_booked_further(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        series = await create(client, town, weekly_body(now() + timedelta(minutes=1)))
        response = await client.post(
            f"/api/v1/series/{series['id']}/end",
            json={"reason": "moving to her daughter's"},
            headers=town["elder"].headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["series"]["until"] is not None
        assert await extend_all(runtime, now() + 4 * WEEK) == 0
        assert await Booking.filter(series_id=series["id"]).exclude(state="cancelled").count() == 0


async def unbooked_events(elder_id: UUID) -> list[list[str]]:
    stream = await read_stream(elder_stream(elder_id), 0, 1000)
    return [list(e.payload["occurrences"]) for e in stream if e.kind == UNBOOKED_EVENT]


class TestUnbooked:
    async def test_occurrences_the_hours_cannot_cover_are_recorded_and_announced(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        elder = town["elder"].user
        minutes = payments.booked_minutes(rules.DEFAULT_POLICY, ServiceCode("cleaning"), 5)
        await fund(runtime, elder.id, 5 * minutes)
        start = now() + timedelta(minutes=1)
        series = await create(client, town, {**weekly_body(start), "payment": "hours"})
        assert len(series["occurrences"]) == 5
        assert await extend_all(runtime, now() + WEEK) == 0
        later = await view(client, town, series["id"])
        unbooked = (start.date() + timedelta(days=35)).isoformat()
        assert later["exceptions"]["unbooked"] == {unbooked: "payment.insufficient_hours"}
        assert later["booked_through"] == (start.date() + timedelta(days=35)).isoformat()
        assert len(later["occurrences"]) == 5
        assert await unbooked_events(elder.id) == [[unbooked]]
        assert await extend_all(runtime, now() + WEEK + timedelta(hours=1)) == 0
        assert await unbooked_events(elder.id) == [[unbooked]]

    async def test_a_relative_no_longer_linked_pays_for_no_later_occurrence(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        family, elder = town["family"].user, town["elder"].user
        minutes = payments.booked_minutes(rules.DEFAULT_POLICY, ServiceCode("cleaning"), 10)
        await fund(runtime, family.id, 10 * minutes)
        start = now() + timedelta(minutes=1)
        body = {**weekly_body(start), "payment": "hours", "elder_id": str(elder.id)}
        response = await client.post("/api/v1/requests", json=body, headers=town["family"].headers)
        assert response.status_code == 201, response.text
        series_id = response.json()["bookings"][0]["series_id"]
        await FamilyLink.filter(family_id=family.id, elder_id=elder.id).update(
            status=LinkStatus.revoked
        )
        before = await Booking.filter(series_id=series_id).count()
        assert await extend_all(runtime, now() + WEEK) == 0
        assert await Booking.filter(series_id=series_id).count() == before
        later = await view(client, town, series_id)
        unbooked = (start.date() + timedelta(days=35)).isoformat()
        assert later["exceptions"]["unbooked"] == {unbooked: "series.payer_unlinked"}

    async def test_a_suspended_elder_is_not_booked_further(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        series = await create(client, town, weekly_body(start))
        await User.filter(id=town["elder"].user.id).update(status=UserStatus.suspended)
        assert await extend_all(runtime, now() + WEEK) == 0
        assert await Booking.filter(series_id=series["id"]).count() == len(series["occurrences"])
        stored = await RecurringSeries.get(id=series["id"])
        unbooked = (start.date() + timedelta(days=35)).isoformat()
        assert stored.exceptions["unbooked"] == {unbooked: "series.elder_inactive"}


class TestValidation:
    async def test_a_last_day_before_the_first_window_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        start = now() + timedelta(days=2)
        before = await snapshot()
        body = weekly_body(start, until=(start.date() - timedelta(days=1)).isoformat())
        response = await client.post("/api/v1/requests", json=body, headers=town["elder"].headers)
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "recurrence.until"
        assert await snapshot() == before

    async def test_a_move_of_a_day_off_the_pattern_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        start = now() + timedelta(minutes=1)
        off = start.date() + timedelta(days=40)  # not the start's weekday
        move = [{"occurrence": off.isoformat(), "to": (start + timedelta(days=40)).isoformat()}]
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests", json=weekly_body(start, move=move), headers=town["elder"].headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "recurrence.move"
        assert await snapshot() == before
        assert await RecurringSeries.all().count() == 0

    async def test_an_until_that_is_not_a_date_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        body = weekly_body(now() + timedelta(minutes=1), until="someday")
        response = await client.post("/api/v1/requests", json=body, headers=town["elder"].headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"]
        assert await Booking.all().count() == 0
