"""`GET /api/v1/districts/{id}/stats`: per local day of service, bookings, hours, match rate
and time to match from the transition log; and the pure arithmetic behind it."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from market.models import Booking, BookingEvent, BookingState, District, DistrictLevel, Role
from market.services.stats import BookingRow, day_figures, local_today, nearest_rank
from tests.market.bookings.world import (
    accepted_booking,
    book,
    completed_booking,
    neighbourhood,
    now,
    post,
    snapshot,
)
from tests.market.conftest import City, make_actor


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


def stats_path(district_id: object, query: str = "") -> str:
    return f"/api/v1/districts/{district_id}/stats{query}"


async def stats(client: httpx.AsyncClient, town: City, query: str = "") -> dict[str, Any]:
    response = await client.get(
        stats_path(town.east.id, query), headers=town["centre_admin"].headers
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def today(body: dict[str, Any]) -> dict[str, Any]:
    return body["days"][-1]  # type: ignore[no-any-return]


async def move_to_day(booking_id: str, days_ago: int) -> None:
    """Shift a booking's window into the past (requests cannot be made for the past)."""
    row = await Booking.get(id=booking_id)
    shift = timedelta(days=days_ago)
    await Booking.filter(id=row.id).update(
        window_start=row.window_start - shift, window_end=row.window_end - shift
    )


class TestFigures:
    def test_nearest_rank_takes_an_observed_value(self) -> None:
        assert nearest_rank([], 50) is None
        assert nearest_rank([7], 90) == 7
        assert nearest_rank([1, 2, 3, 4], 50) == 2
        assert nearest_rank(list(range(1, 11)), 90) == 9
        assert nearest_rank(list(range(1, 11)), 100) == 10

    def test_withdrawn_bookings_leave_the_match_rate(self) -> None:
        day = date(2026, 3, 2)
        t0 = datetime(2026, 3, 1, 8, 0)
        rows = [
            BookingRow(UUID(int=1), day, BookingState.settled, False, 60),
            BookingRow(UUID(int=2), day, BookingState.cancelled, False, 0),
            BookingRow(UUID(int=3), day, BookingState.expired, True, 0),
            BookingRow(UUID(int=4), day, BookingState.cancelled, False, 0),
        ]
        requested = {UUID(int=i): t0 for i in range(1, 5)}
        # Booking 4 was accepted and then cancelled: matched, not withdrawn.
        accepted = {UUID(int=1): t0 + timedelta(minutes=12), UUID(int=4): t0 + timedelta(minutes=3)}
        (figures,) = day_figures([day], rows, requested, accepted)
        assert (figures.bookings, figures.withdrawn, figures.matched) == (4, 1, 2)
        assert figures.match_rate_bp == 6666
        assert figures.emergencies == 1 and figures.served_minutes == 60
        assert (figures.median_minutes, figures.p90_minutes) == (3, 12)

    def test_a_day_without_bookings_has_zeros_and_no_rate(self) -> None:
        (figures,) = day_figures([date(2026, 3, 2)], [], {}, {})
        assert (figures.bookings, figures.match_rate_bp, figures.median_minutes) == (0, None, None)


class TestDistrictStats:
    async def test_a_fortnight_ending_today_by_default(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        body = await stats(client, town)
        assert len(body["days"]) == 14
        assert body["until"] == local_today(now()).isoformat()
        assert body["time_zone"] == "Asia/Shanghai"
        assert today(body)["bookings"] == 0 and body["totals"]["match_rate_bp"] is None

    async def test_todays_bookings_matches_and_withdrawals(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        served = await completed_booking(client, town)
        waiting = await book(client, town["elder"])
        withdrawn = await book(client, town["family"], elder_id=str(town["elder"].user.id))
        reason = {"reason": "changed plans"}
        cancel = f"/api/v1/bookings/{withdrawn['id']}/cancel"
        assert (await post(client, town["family"], cancel, reason)).status_code == 200
        # The helper accepted seventeen minutes after the request, as the log now says.
        request = await BookingEvent.get(booking_id=served["id"], action="request")
        await BookingEvent.filter(booking_id=served["id"], to_state="accepted").update(
            at=request.at + timedelta(minutes=17)
        )
        figures = today(await stats(client, town))
        assert (figures["bookings"], figures["withdrawn"], figures["matched"]) == (3, 1, 1)
        # One of the two bookings still wanted was matched.
        assert figures["match_rate_bp"] == 5000
        assert figures["time_to_match"] == {"matched": 1, "median_minutes": 17, "p90_minutes": 17}
        assert figures["served_minutes"] == served["served_minutes"]
        assert waiting["id"] != served["id"]

    async def test_days_are_counted_by_the_window_and_limited_to_the_range(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        earlier = await accepted_booking(client, town)
        await move_to_day(earlier["id"], 3)
        await book(client, town["elder"])
        body = await stats(client, town, "?days=3")
        assert [d["bookings"] for d in body["days"]] == [0, 0, 1]
        body = await stats(client, town, "?days=4")
        assert [d["bookings"] for d in body["days"]] == [1, 0, 0, 1]
        assert body["days"][0]["matched"] == 1
        assert body["totals"]["bookings"] == 2

    async def test_until_moves_the_range(self, client: httpx.AsyncClient, town: City) -> None:
        await book(client, town["elder"])
        yesterday = local_today(now()) - timedelta(days=1)
        body = await stats(client, town, f"?days=2&until={yesterday.isoformat()}")
        assert body["until"] == yesterday.isoformat()
        assert body["totals"]["bookings"] == 0

    async def test_a_street_sees_its_communities_and_not_its_neighbours(
        self, client: httpx.AsyncClient, town: City, runtime: Any
    ) -> None:
        await book(client, town["elder"])
        other_street = await District.create(
            code="east-s2", name="Second Street", level=DistrictLevel.street, parent=town.east
        )
        street_admin = await make_actor(client, runtime, Role.centre_admin, town.east_street)
        response = await client.get(stats_path(town.east_street.id), headers=street_admin.headers)
        assert today(response.json())["bookings"] == 1
        response = await client.get(
            stats_path(other_street.id), headers=town["centre_admin"].headers
        )
        assert today(response.json())["bookings"] == 0

    async def test_asking_writes_nothing(self, client: httpx.AsyncClient, town: City) -> None:
        await book(client, town["elder"])
        before = await snapshot()
        await stats(client, town)
        assert await snapshot() == before


class TestStatsRefusals:
    @pytest.mark.parametrize("role", ["elder", "family", "volunteer", "provider_staff", "auditor"])
    async def test_only_a_centre_admin_may_ask(
        self, client: httpx.AsyncClient, town: City, role: str
    ) -> None:
        response = await client.get(stats_path(town.east.id), headers=town[role].headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_forbidden"

    async def test_another_districts_admin_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        response = await client.get(stats_path(town.east.id), headers=town.west_admin.headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "district_forbidden"

    async def test_a_community_admin_may_not_see_the_district_above(
        self, client: httpx.AsyncClient, town: City, runtime: Any
    ) -> None:
        local = await make_actor(client, runtime, Role.centre_admin, town.east_community)
        response = await client.get(stats_path(town.east.id), headers=local.headers)
        assert response.status_code == 403

    async def test_without_a_token_it_is_401(self, client: httpx.AsyncClient, town: City) -> None:
        assert (await client.get(stats_path(town.east.id))).status_code == 401

    async def test_an_unknown_district_is_404(self, client: httpx.AsyncClient, town: City) -> None:
        response = await client.get(stats_path(uuid.uuid4()), headers=town["centre_admin"].headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "district_not_found"

    async def test_a_bad_id_is_422(self, client: httpx.AsyncClient, town: City) -> None:
        response = await client.get(stats_path("east"), headers=town["centre_admin"].headers)
        assert response.status_code == 422

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("?days=0", "days"),
            ("?days=93", "days"),
            ("?days=two", "days"),
            ("?until=2026-13-01", "until"),
            ("?until=yesterday", "until"),
            ("?days=3&days=4", "days"),
            ("?from=2026-01-01", "from"),
        ],
    )
    async def test_a_bad_query_is_422(
        self, client: httpx.AsyncClient, town: City, query: str, field: str
    ) -> None:
        response = await client.get(
            stats_path(town.east.id, query), headers=town["centre_admin"].headers
        )
        assert response.status_code == 422, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]
