"""Recurring series after creation: read, skip an occurrence, move one, end the series."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from market.models import Booking, BookingEvent, Offer, OfferState, RecurringSeries
from market.services.matching_loop import LOCAL_TIME
from tests.market.bookings.world import (
    neighbourhood,
    now,
    offer_for,
    post,
    request_body,
    run_round,
    snapshot,
    state_of,
)
from tests.market.conftest import Actor, City


@pytest.fixture
async def town(city: City) -> City:
    return await neighbourhood(city)


async def weekly(client: httpx.AsyncClient, actor: Actor, town: City) -> dict[str, Any]:
    """A weekly cleaning on today's weekday: three occurrences, a week apart."""
    start = now() + timedelta(minutes=1)
    body = request_body(
        elder_id=str(town["elder"].user.id),
        window_start=start.isoformat(),
        window_end=(start + timedelta(minutes=40)).isoformat(),
        recurrence={"weekdays": [start.weekday()], "until": (start + timedelta(days=14)).date()},
    )
    body["recurrence"]["until"] = body["recurrence"]["until"].isoformat()
    response = await client.post("/api/v1/requests", json=body, headers=actor.headers)
    assert response.status_code == 201, response.text
    series_id = response.json()["bookings"][0]["series_id"]
    response = await client.get(f"/api/v1/series/{series_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()["series"]  # type: ignore[no-any-return]


def path(series: dict[str, Any], action: str = "") -> str:
    return f"/api/v1/series/{series['id']}" + (f"/{action}" if action else "")


def occurrence(series: dict[str, Any], index: int) -> dict[str, Any]:
    return series["occurrences"][index]  # type: ignore[no-any-return]


class TestRead:
    async def test_the_elder_side_and_the_centre_see_the_series(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["family"], town)
        assert len(series["occurrences"]) == 3
        assert [o["state"] for o in series["occurrences"]] == ["requested"] * 3
        for role in ("elder", "family", "centre_admin"):
            response = await client.get(path(series), headers=town[role].headers)
            assert response.status_code == 200, (role, response.text)
        listed = await client.get(
            "/api/v1/series",
            params={"elder_id": str(town["elder"].user.id)},
            headers=town["elder"].headers,
        )
        assert [s["id"] for s in listed.json()["series"]] == [series["id"]]

    async def test_another_district_and_helpers_are_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["elder"], town)
        refused = await client.get(path(series), headers=town.west_admin.headers)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "series_forbidden"
        for role in ("volunteer", "provider_staff", "auditor"):
            response = await client.get(path(series), headers=town[role].headers)
            assert response.status_code == 403, role

    async def test_unlinked_family_is_refused(self, client: httpx.AsyncClient, city: City) -> None:
        series = await weekly(client, city["elder"], city)
        response = await client.get(path(series), headers=city["family"].headers)
        assert response.status_code == 403

    async def test_unknown_series_and_bad_ids(self, client: httpx.AsyncClient, town: City) -> None:
        headers = town["elder"].headers
        missing = await client.get(f"/api/v1/series/{town.east.id}", headers=headers)
        assert missing.status_code == 404
        bad = await client.get("/api/v1/series/not-a-uuid", headers=headers)
        assert bad.status_code == 422
        no_elder = await client.get("/api/v1/series", headers=headers)
        assert no_elder.status_code == 422


class TestSkip:
    async def test_skipping_cancels_only_that_occurrence(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["family"], town)
        second = occurrence(series, 1)
        body = {"occurrence": second["occurrence"], "reason": "visiting her sister"}
        response = await post(client, town["family"], path(series, "skip"), body)
        assert response.status_code == 200, response.text
        states = [o["state"] for o in response.json()["series"]["occurrences"]]
        assert states == ["requested", "cancelled", "requested"]
        assert response.json()["series"]["exceptions"]["skip"] == [second["occurrence"]]
        booking = await Booking.get(id=second["booking_id"])
        assert booking.outcome == "free"

    async def test_skipping_twice_is_a_conflict_naming_the_state(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["elder"], town)
        body = {"occurrence": occurrence(series, 2)["occurrence"], "reason": "away"}
        assert (await post(client, town["elder"], path(series, "skip"), body)).status_code == 200
        again = await post(client, town["elder"], path(series, "skip"), body)
        assert again.status_code == 409
        assert again.json()["error"]["details"]["state"] == "cancelled"

    async def test_a_day_that_is_no_occurrence_is_404_and_writes_nothing(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["elder"], town)
        before = await snapshot()
        day = (now() + timedelta(days=1)).date().isoformat()
        body = {"occurrence": day, "reason": "away"}
        response = await post(client, town["elder"], path(series, "skip"), body)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "occurrence_not_found"
        assert await snapshot() == before


class TestMove:
    async def test_a_requested_occurrence_moves_and_is_matched_again(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["elder"], town)
        last = occurrence(series, 2)
        to = (now() + timedelta(days=15)).replace(microsecond=0)
        body = {"occurrence": last["occurrence"], "to": to.isoformat(), "reason": "doctor"}
        response = await post(client, town["elder"], path(series, "move"), body)
        assert response.status_code == 200, response.text
        moved = occurrence(response.json()["series"], 2)
        assert moved["state"] == "requested"
        booking = await Booking.get(id=last["booking_id"])
        assert booking.window_start == to
        assert booking.window_end - booking.window_start == timedelta(minutes=40)
        event = await BookingEvent.filter(booking_id=booking.id).order_by("-at").first()
        assert event is not None and event.action == "reschedule"
        stored = await RecurringSeries.get(id=series["id"])
        assert stored.exceptions["move"] == {last["occurrence"]: to.isoformat()}

    async def test_an_offered_occurrence_withdraws_the_offer(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["elder"], town)
        first = occurrence(series, 0)
        await run_round()
        assert await state_of(first["booking_id"]) == "offered"
        offer = await offer_for(client, town["volunteer"], first["booking_id"])
        to = now() + timedelta(hours=3)
        body = {"occurrence": first["occurrence"], "to": to.isoformat(), "reason": "later"}
        response = await post(client, town["centre_admin"], path(series, "move"), body)
        assert response.status_code == 200, response.text
        assert await state_of(first["booking_id"]) == "requested"
        withdrawn = await Offer.get(id=offer["id"])
        assert withdrawn.state is OfferState.withdrawn

    async def test_an_accepted_occurrence_cannot_move(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["elder"], town)
        first = occurrence(series, 0)
        await run_round()
        offer = await offer_for(client, town["volunteer"], first["booking_id"])
        accept = await post(client, town["volunteer"], f"/api/v1/offers/{offer['id']}/accept")
        assert accept.status_code == 200
        before = await snapshot()
        to = now() + timedelta(hours=3)
        body = {"occurrence": first["occurrence"], "to": to.isoformat(), "reason": "later"}
        response = await post(client, town["elder"], path(series, "move"), body)
        assert response.status_code == 409
        assert response.json()["error"]["details"]["state"] == "accepted"
        assert await snapshot() == before

    @pytest.mark.parametrize(
        ("shift", "problem"),
        [
            (timedelta(days=-2), "must not be in the past"),
            (timedelta(days=9), "must be within 7 days of the occurrence's time"),
        ],
    )
    async def test_bad_targets_are_422_and_write_nothing(
        self, client: httpx.AsyncClient, town: City, shift: timedelta, problem: str
    ) -> None:
        series = await weekly(client, town["elder"], town)
        first = occurrence(series, 0)
        before = await snapshot()
        to = now() + shift
        body = {"occurrence": first["occurrence"], "to": to.isoformat(), "reason": "x"}
        response = await post(client, town["elder"], path(series, "move"), body)
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["problem"] == problem
        assert await snapshot() == before

    async def test_helpers_may_not_move(self, client: httpx.AsyncClient, town: City) -> None:
        series = await weekly(client, town["elder"], town)
        body = {"occurrence": occurrence(series, 0)["occurrence"], "to": now().isoformat()}
        body["reason"] = "x"
        response = await post(client, town["volunteer"], path(series, "move"), body)
        assert response.status_code == 403


class TestEnd:
    async def test_ending_cancels_what_is_ahead_and_keeps_what_was_served(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        series = await weekly(client, town["elder"], town)
        first = occurrence(series, 0)
        await run_round()
        offer = await offer_for(client, town["volunteer"], first["booking_id"])
        await post(client, town["volunteer"], f"/api/v1/offers/{offer['id']}/accept")
        base = f"/api/v1/bookings/{first['booking_id']}"
        position = {"latitude": 30.0, "longitude": 120.0}
        await post(client, town["volunteer"], f"{base}/check-in", position)
        assert await state_of(first["booking_id"]) == "in_service"
        response = await post(client, town["family"], path(series, "end"), {"reason": "moved"})
        assert response.status_code == 200, response.text
        ended = response.json()["series"]
        assert [o["state"] for o in ended["occurrences"]] == [
            "in_service",
            "cancelled",
            "cancelled",
        ]
        # The series ends on the elder's local day, not the server's UTC date.
        assert ended["until"] == datetime.now(LOCAL_TIME).date().isoformat()

    @pytest.mark.parametrize(
        "body",
        [{}, {"reason": ""}, {"reason": "x", "extra": 1}, {"reason": 5}],
    )
    async def test_bad_bodies_are_422_and_write_nothing(
        self, client: httpx.AsyncClient, town: City, body: dict[str, Any]
    ) -> None:
        series = await weekly(client, town["elder"], town)
        before = await snapshot()
        response = await post(client, town["elder"], path(series, "end"), body)
        assert response.status_code == 422
        assert "error" in response.json()
        assert await snapshot() == before

    async def test_malformed_json_is_400(self, client: httpx.AsyncClient, town: City) -> None:
        series = await weekly(client, town["elder"], town)
        response = await client.post(
            path(series, "end"),
            content=b"{not json",
            headers={**town["elder"].headers, "content-type": "application/json"},
        )
        assert response.status_code == 400
