"""`GET /api/v1/bookings`: the latest window first, paged, and the helper's name for the parties
who may see it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from market.models import Booking
from tests.market.bookings.world import accepted_booking, book, neighbourhood, now
from tests.market.conftest import City


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


async def book_at(client: httpx.AsyncClient, town: City, hours: int) -> str:
    start = now() + timedelta(hours=hours)
    booking = await book(
        client,
        town["elder"],
        window_start=start.isoformat(),
        window_end=(start + timedelta(hours=1)).isoformat(),
    )
    return str(booking["id"])


async def listing(client: httpx.AsyncClient, town: City, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/v1/bookings{query}", headers=town["centre_admin"].headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class TestOrderAndPaging:
    async def test_the_latest_window_comes_first(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        ids = [await book_at(client, town, hours) for hours in (5, 30, 2)]
        body = await listing(client, town)
        assert [b["id"] for b in body["bookings"]] == [ids[1], ids[0], ids[2]]
        assert body["next_offset"] is None

    async def test_pages_follow_each_other_without_gaps(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        ids = [await book_at(client, town, hours) for hours in (1, 2, 3, 4, 5)]
        first = await listing(client, town, "?limit=2")
        second = await listing(client, town, f"?limit=2&offset={first['next_offset']}")
        third = await listing(client, town, f"?limit=2&offset={second['next_offset']}")
        seen = [b["id"] for page in (first, second, third) for b in page["bookings"]]
        assert seen == list(reversed(ids))
        assert (first["next_offset"], second["next_offset"], third["next_offset"]) == (2, 4, None)

    async def test_soonest_first_pages_from_the_earliest_window(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        # The centre's queue: a request due in an hour must not wait behind next month's.
        ids = [await book_at(client, town, hours) for hours in (700, 1, 30, 2)]
        first = await listing(client, town, "?order=soonest&limit=3")
        assert [b["id"] for b in first["bookings"]] == [ids[1], ids[3], ids[2]]
        rest = await listing(client, town, f"?order=soonest&limit=3&offset={first['next_offset']}")
        assert [b["id"] for b in rest["bookings"]] == [ids[0]] and rest["next_offset"] is None
        latest = await listing(client, town, "?order=latest")
        assert [b["id"] for b in latest["bookings"]] == [ids[0], ids[2], ids[3], ids[1]]

    async def test_recent_bookings_stay_visible_behind_a_long_history(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        # The list used to be the oldest 500: a district's this week vanished behind its past.
        template = await Booking.get(id=await book_at(client, town, 1))
        fields = {
            f: getattr(template, f)
            for f in template._meta.db_fields
            if f not in ("id", "window_start", "window_end")
        }
        long_ago = now() - timedelta(days=400)
        await Booking.bulk_create(
            [
                Booking(
                    **fields,
                    window_start=long_ago + timedelta(hours=i),
                    window_end=long_ago + timedelta(hours=i + 1),
                )
                for i in range(520)
            ]
        )
        latest = await book_at(client, town, 48)
        body = await listing(client, town, "?limit=500")
        assert [b["id"] for b in body["bookings"][:2]] == [latest, str(template.id)]
        assert body["next_offset"] == 500
        rest = await listing(client, town, "?limit=500&offset=500")
        assert len(rest["bookings"]) == 22 and rest["next_offset"] is None

    async def test_the_state_filter_pages_too(self, client: httpx.AsyncClient, town: City) -> None:
        accepted = await accepted_booking(client, town)
        await book_at(client, town, 3)
        body = await listing(client, town, "?state=accepted&limit=1")
        assert [b["id"] for b in body["bookings"]] == [accepted["id"]]
        assert body["next_offset"] is None

    async def test_the_service_filter_keeps_one_kind(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        cleaning = await book_at(client, town, 3)
        start = now() + timedelta(hours=4)
        visit = await book(
            client,
            town["elder"],
            service="visit",
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=2)).isoformat(),
        )
        body = await listing(client, town, "?service=visit")
        assert [b["id"] for b in body["bookings"]] == [visit["id"]]
        body = await listing(client, town, "?service=cleaning&state=requested")
        assert [b["id"] for b in body["bookings"]] == [cleaning]


class TestBadQueries:
    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("?limit=0", "limit"),
            ("?limit=501", "limit"),
            ("?limit=ten", "limit"),
            ("?limit=%EF%BC%91", "limit"),  # a full-width digit one
            ("?offset=-1", "offset"),
            ("?state=lost", "state"),
            ("?service=gardening", "service"),
            ("?colour=blue", "colour"),
            ("?limit=1&limit=2", "limit"),
            ("?order=newest", "order"),
            ("?order=", "order"),
        ],
    )
    async def test_is_refused_naming_the_field(
        self, client: httpx.AsyncClient, town: City, query: str, field: str
    ) -> None:
        response = await client.get(
            f"/api/v1/bookings{query}", headers=town["centre_admin"].headers
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert [d["field"] for d in error["details"]] == [field]


class TestHelperName:
    async def test_the_elder_side_and_the_centre_see_who_accepted(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        name = town["volunteer"].user.name
        for role in ("elder", "family", "centre_admin"):
            one = await client.get(f"/api/v1/bookings/{booking['id']}", headers=town[role].headers)
            assert one.json()["booking"]["helper_name"] == name, role
            listed = await client.get("/api/v1/bookings", headers=town[role].headers)
            assert [b["helper_name"] for b in listed.json()["bookings"]] == [name], role

    async def test_nobody_is_named_before_a_helper_accepts(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking_id = await book_at(client, town, 2)
        response = await client.get(
            f"/api/v1/bookings/{booking_id}", headers=town["family"].headers
        )
        assert response.json()["booking"]["helper_name"] is None

    async def test_the_helper_view_carries_no_name(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        response = await client.get(
            f"/api/v1/bookings/{booking['id']}", headers=town["volunteer"].headers
        )
        assert response.json()["booking"]["helper_name"] is None
