"""Ratings after settlement feed the helper's average, which the matcher reads; a low or
marked rating is a complaint that reaches the centre."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from market.models import Booking, HelperProfile
from market.realtime.events import admin_stream, read_stream
from tests.market.bookings.world import (
    HOME,
    accepted_booking,
    completed_booking,
    neighbourhood,
    post,
    set_policy,
    snapshot,
)
from tests.market.conftest import City


@pytest.fixture
async def town(city: City) -> City:
    return await neighbourhood(city)


async def settled_booking(client: httpx.AsyncClient, town: City) -> str:
    booking = await completed_booking(client, town)
    confirmed = await post(client, town["elder"], f"/api/v1/bookings/{booking['id']}/confirm")
    assert confirmed.json()["booking"]["state"] == "settled", confirmed.text
    return booking["id"]  # type: ignore[no-any-return]


class TestRatings:
    async def test_ratings_given_at_once_all_count(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        ids = [await settled_booking(client, town) for _ in range(3)]
        answers = await asyncio.gather(
            *(
                post(client, town["elder"], f"/api/v1/bookings/{i}/rate", {"stars": stars})
                for i, stars in zip(ids, (5, 4, 2), strict=True)
            )
        )
        assert [a.status_code for a in answers] == [200, 200, 200]
        profile = await HelperProfile.get(user_id=town["volunteer"].user.id)
        assert (profile.rating_sum, profile.rating_count) == (11, 3)

    async def test_a_booking_is_rated_once(self, client: httpx.AsyncClient, town: City) -> None:
        booking_id = await settled_booking(client, town)
        path = f"/api/v1/bookings/{booking_id}/rate"
        assert (await post(client, town["elder"], path, {"stars": 5})).status_code == 200
        again = await post(client, town["elder"], path, {"stars": 1})
        assert again.status_code == 409
        profile = await HelperProfile.get(user_id=town["volunteer"].user.id)
        assert (profile.rating_sum, profile.rating_count) == (5, 1)

    @pytest.mark.parametrize("body", [{"stars": 0}, {"stars": 6}, {"stars": "5"}, {}])
    async def test_stars_outside_one_to_five_are_refused(
        self, client: httpx.AsyncClient, town: City, body: dict[str, object]
    ) -> None:
        booking_id = await settled_booking(client, town)
        response = await post(client, town["elder"], f"/api/v1/bookings/{booking_id}/rate", body)
        assert response.status_code == 422
        profile = await HelperProfile.get(user_id=town["volunteer"].user.id)
        assert profile.rating_count == 0


async def complaint_events(town: City) -> list[dict[str, object]]:
    stream = admin_stream(town.east_community.id)
    return [e.payload for e in await read_stream(stream, 0, 100) if e.kind == "booking.complaint"]


async def booking_rows() -> dict[str, list[str]]:
    """The booking tables; events are checked by kind, since the ledger's background
    checkpoint pass may announce a checkpoint on the admin feed at any moment."""
    return {k: v for k, v in (await snapshot()).items() if k != "StoredEvent"}


async def rate_events(town: City) -> list[dict[str, object]]:
    stream = admin_stream(town.east_community.id)
    return [
        e.payload
        for e in await read_stream(stream, 0, 100)
        if e.kind == "booking.complaint" or e.payload.get("action") == "rate"
    ]


async def flagged_ids(client: httpx.AsyncClient, town: City) -> list[str]:
    response = await client.get(
        "/api/v1/bookings?flagged=true", headers=town["centre_admin"].headers
    )
    assert response.status_code == 200, response.text
    return [b["id"] for b in response.json()["bookings"]]


async def rated(
    client: httpx.AsyncClient, town: City, body: dict[str, object], who: str = "elder"
) -> dict[str, object]:
    """A settled booking rated with `body` by `who`; the booking's view after the rating."""
    booking_id = await settled_booking(client, town)
    response = await post(client, town[who], f"/api/v1/bookings/{booking_id}/rate", body)
    assert response.status_code == 200, response.text
    return response.json()["booking"]  # type: ignore[no-any-return]


class TestComplaints:
    async def test_a_low_rating_with_a_comment_reaches_the_centre(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        view = await rated(client, town, {"stars": 2, "comment": "left the kitchen wet"}, "family")
        assert view["state"] == "rated" and view["flagged"] is True
        flag = {"step": "rating", "stars": 2, "marked": False, "reason": "left the kitchen wet"}
        assert view["flags"] == [flag]
        helper = str(town["volunteer"].user.id)
        assert await complaint_events(town) == [
            {"booking_id": view["id"], "helper_id": helper, **flag}
        ]
        assert await flagged_ids(client, town) == [view["id"]]

    async def test_a_good_rating_is_no_complaint(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        view = await rated(client, town, {"stars": 4, "comment": "fine"})
        assert view["flagged"] is False
        assert await complaint_events(town) == []
        assert await flagged_ids(client, town) == []

    async def test_a_complaint_can_come_with_good_stars(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        body = {"stars": 4, "comment": "kind, but came an hour late", "complaint": True}
        view = await rated(client, town, body)
        assert view["flags"] == [
            {"step": "rating", "stars": 4, "marked": True, "reason": body["comment"]}
        ]
        (event,) = await complaint_events(town)
        assert event["stars"] == 4 and event["reason"] == "kind, but came an hour late"

    async def test_a_complaint_without_a_comment_is_refused_and_nothing_written(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking_id = await settled_booking(client, town)
        path = f"/api/v1/bookings/{booking_id}/rate"
        for body in (
            {"stars": 3, "complaint": True},
            {"stars": 1, "comment": "", "complaint": True},
        ):
            before = await booking_rows()
            response = await post(client, town["elder"], path, body)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "rating.comment_required"
            assert await booking_rows() == before
        assert await rate_events(town) == []
        row = await Booking.get(id=booking_id)
        assert (row.state.value, row.rating, row.flagged) == ("settled", None, False)
        profile = await HelperProfile.get(user_id=town["volunteer"].user.id)
        assert profile.rating_count == 0

    async def test_the_threshold_is_the_districts_policy(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await set_policy(town, complaint_max_stars=0)
        view = await rated(client, town, {"stars": 1, "comment": "not great"})
        assert view["flagged"] is False
        assert await complaint_events(town) == []

    async def test_a_complaint_keeps_the_check_in_flag_before_it(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        base = f"/api/v1/bookings/{booking['id']}"
        far = {"latitude": 30.02, "longitude": 120.0, "reason": "met at the gate"}
        assert (await post(client, town["volunteer"], f"{base}/check-in", far)).status_code == 200
        near = {"latitude": HOME[0], "longitude": HOME[1]}
        assert (await post(client, town["volunteer"], f"{base}/check-out", near)).status_code == 200
        assert (await post(client, town["elder"], f"{base}/confirm")).status_code == 200
        response = await post(client, town["elder"], f"{base}/rate", {"stars": 1})
        assert response.status_code == 200, response.text
        steps = [f["step"] for f in response.json()["booking"]["flags"]]
        assert steps == ["check_in", "rating"]
        # The helper sees their own check-in flag, not the elder's complaint.
        for path in (base, "/api/v1/bookings"):
            seen = await client.get(path, headers=town["volunteer"].headers)
            body = seen.json()
            view = body["booking"] if "booking" in body else body["bookings"][0]
            assert [f["step"] for f in view["flags"]] == ["check_in"], path

    @pytest.mark.parametrize("complaint", ["true", 1, None])
    async def test_complaint_must_be_a_boolean(
        self, client: httpx.AsyncClient, town: City, complaint: object
    ) -> None:
        booking_id = await settled_booking(client, town)
        body = {"stars": 2, "comment": "late", "complaint": complaint}
        response = await post(client, town["elder"], f"/api/v1/bookings/{booking_id}/rate", body)
        assert response.status_code == 422
        assert [d["field"] for d in response.json()["error"]["details"]] == ["complaint"]
        assert await complaint_events(town) == []
