"""Check-in outside the district's time tolerance, the flag the centre is told of on its admin
stream, the centre's list of flagged bookings (`GET /api/v1/bookings?flagged=`) and its review
of a flagged booking (`POST /api/v1/bookings/{id}/flags/review`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from market.models import Booking, BookingEvent
from market.realtime.events import admin_stream, elder_stream, read_stream, user_stream
from tests.market.bookings.world import (
    HOME,
    accepted_booking,
    book,
    neighbourhood,
    now,
    post,
    snapshot,
)
from tests.market.conftest import City

POSITION = {"latitude": HOME[0], "longitude": HOME[1]}


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


async def accepted_in(client: httpx.AsyncClient, town: City, minutes: int) -> dict[str, Any]:
    """A booking accepted by the volunteer whose window opens `minutes` from now."""
    start = now() + timedelta(minutes=minutes)
    return await accepted_booking(
        client,
        town,
        window_start=start.isoformat(),
        window_end=(start + timedelta(hours=1)).isoformat(),
    )


async def check_in(
    client: httpx.AsyncClient, town: City, booking: dict[str, Any], **body: Any
) -> httpx.Response:
    """The volunteer checks in at the elder's door, or wherever `body` says, with its reason."""
    path = f"/api/v1/bookings/{booking['id']}/check-in"
    return await post(client, town["volunteer"], path, {**POSITION, **body})


async def early_and_flagged(client: httpx.AsyncClient, town: City) -> dict[str, Any]:
    """A booking checked in two hours before its window, with a reason: flagged for time."""
    booking = await accepted_in(client, town, 120)
    response = await check_in(client, town, booking, reason="early bus")
    assert response.status_code == 200, response.text
    return booking


async def flag_events(stream: str) -> list[dict[str, Any]]:
    return [e.payload for e in await read_stream(stream, 0, 100) if e.kind == "booking.flagged"]


class TestCheckInTime:
    async def test_two_hours_early_needs_a_reason(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_in(client, town, 120)
        response = await check_in(client, town, booking)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "checkin.reason_required"
        assert "time tolerance" in error["message"]
        row = await Booking.get(id=booking["id"])
        assert (row.state.value, row.flagged, row.checkin_at) == ("accepted", False, None)
        assert await flag_events(admin_stream(town.east_community.id)) == []

    async def test_two_hours_early_with_a_reason_is_flagged_for_time(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_in(client, town, 120)
        response = await check_in(client, town, booking, reason="the elder asked me to come early")
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert view["state"] == "in_service" and view["flagged"] is True
        (flag,) = view["flags"]
        assert flag["step"] == "check_in" and flag["outside"] == ["time"]
        assert flag["distance_m"] == 0
        # About two hours before the window opens (a minute either way for the test's pace).
        assert -121 <= flag["minutes_off"] <= -118
        assert flag["reason"] == "the elder asked me to come early"

    async def test_inside_the_tolerance_needs_no_reason(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        # The default tolerance is 30 minutes; the window opens in 20.
        booking = await accepted_in(client, town, 20)
        response = await check_in(client, town, booking)
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert view["state"] == "in_service"
        assert (view["flagged"], view["flags"]) == (False, [])
        assert await flag_events(admin_stream(town.east_community.id)) == []


class TestFlagEvent:
    async def test_a_flagged_check_in_reaches_the_district_admin_stream(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_in(client, town, 120)
        response = await check_in(client, town, booking, latitude=30.02, reason="met at the clinic")
        assert response.status_code == 200, response.text
        (event,) = await flag_events(admin_stream(town.east_community.id))
        assert event["booking_id"] == booking["id"]
        assert event["step"] == "check_in" and event["outside"] == ["distance", "time"]
        assert event["distance_m"] > 2000 and event["reason"] == "met at the clinic"
        # The flag is for the centre: the elder's and the helper's streams do not carry it.
        assert await flag_events(elder_stream(town["elder"].user.id)) == []
        assert await flag_events(user_stream(town["volunteer"].user.id)) == []


async def centre_list(client: httpx.AsyncClient, town: City, query: str) -> httpx.Response:
    return await client.get(f"/api/v1/bookings{query}", headers=town["centre_admin"].headers)


class TestFlaggedFilter:
    async def test_true_keeps_only_the_flagged_and_false_the_others(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        flagged = await early_and_flagged(client, town)
        plain = await book(client, town["elder"])
        only = await centre_list(client, town, "?flagged=true")
        assert [b["id"] for b in only.json()["bookings"]] == [flagged["id"]]
        others = await centre_list(client, town, "?flagged=false")
        assert [b["id"] for b in others.json()["bookings"]] == [plain["id"]]
        both = await centre_list(client, town, "?flagged=true&state=in_service")
        assert [b["id"] for b in both.json()["bookings"]] == [flagged["id"]]
        none = await centre_list(client, town, "?flagged=true&state=requested")
        assert none.json()["bookings"] == []

    async def test_another_districts_centre_sees_none_of_them(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await early_and_flagged(client, town)
        response = await client.get(
            "/api/v1/bookings?flagged=true", headers=town.west_admin.headers
        )
        assert response.status_code == 200
        assert response.json()["bookings"] == []

    @pytest.mark.parametrize("value", ["yes", "1", "True", "", "true,false"])
    async def test_anything_but_true_or_false_is_refused(
        self, client: httpx.AsyncClient, town: City, value: str
    ) -> None:
        response = await centre_list(client, town, f"?flagged={value}")
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_input"
        assert [d["field"] for d in error["details"]] == ["flagged"]

    async def test_given_twice_is_refused(self, client: httpx.AsyncClient, town: City) -> None:
        response = await centre_list(client, town, "?flagged=true&flagged=false")
        assert response.status_code == 422
        assert [d["field"] for d in response.json()["error"]["details"]] == ["flagged"]


async def review(
    client: httpx.AsyncClient, town: City, booking_id: str, note: str = "called the helper"
) -> httpx.Response:
    path = f"/api/v1/bookings/{booking_id}/flags/review"
    return await post(client, town["centre_admin"], path, {"note": note})


class TestReview:
    async def test_a_reviewed_booking_leaves_the_list_and_keeps_its_record(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await early_and_flagged(client, town)
        before = await Booking.get(id=booking["id"])
        response = await review(client, town, booking["id"], "the bus was early; fine")
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert (view["state"], view["flagged"]) == ("in_service", False)
        assert [f["step"] for f in view["flags"]] == ["check_in"]
        assert view["version"] == before.version + 1
        only = await centre_list(client, town, "?flagged=true")
        assert only.json()["bookings"] == []
        logged = await BookingEvent.filter(booking_id=booking["id"], action="review_flags").get()
        assert (logged.reason, logged.from_state, logged.to_state) == (
            "the bus was early; fine",
            "in_service",
            "in_service",
        )
        events = await read_stream(admin_stream(town.east_community.id), 0, 100)
        reviewed = [e.payload for e in events if e.kind == "booking.flags_reviewed"]
        assert reviewed == [
            {
                "booking_id": booking["id"],
                "state": "in_service",
                "version": before.version + 1,
                "note": "the bus was early; fine",
            }
        ]

    async def test_the_service_goes_on_after_a_review(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await early_and_flagged(client, town)
        assert (await review(client, town, booking["id"])).status_code == 200
        path = f"/api/v1/bookings/{booking['id']}/check-out"
        response = await post(client, town["volunteer"], path, {**POSITION, "reason": "early"})
        assert response.status_code == 200, response.text

    async def test_a_second_review_is_409_and_writes_nothing(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await early_and_flagged(client, town)
        assert (await review(client, town, booking["id"])).status_code == 200
        before = await snapshot()
        again = await review(client, town, booking["id"])
        assert again.status_code == 409, again.text
        assert again.json()["error"]["code"] == "booking.not_flagged"
        assert await snapshot() == before

    async def test_helpers_and_the_elder_side_may_not_review(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await early_and_flagged(client, town)
        path = f"/api/v1/bookings/{booking['id']}/flags/review"
        for who in ("volunteer", "elder", "family"):
            response = await post(client, town[who], path, {"note": "fine"})
            assert response.status_code == 403, who
        assert (await Booking.get(id=booking["id"])).flagged is True
