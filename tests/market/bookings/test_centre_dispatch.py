"""A booking the centre staffs by hand past its latest start stays with that helper."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.market.bookings.world import (
    book,
    neighbourhood,
    now,
    offer_for,
    post,
    run_round,
    state_of,
)
from tests.market.conftest import City


@pytest.fixture
async def town(city: City) -> City:
    return await neighbourhood(city)


async def dispatched(client: httpx.AsyncClient, town: City) -> str:
    """A booking escalated past its latest start, then dispatched by the centre."""
    # Window: 8 minutes, service 5; the latest start is 3 minutes from now, and the offer
    # the centre makes now is open for the policy's 5 minutes.
    end = now() + timedelta(minutes=8)
    booking = await book(client, town["elder"], window_end=end.isoformat())
    await run_round(now() + timedelta(minutes=4))
    assert await state_of(booking["id"]) == "escalated"
    path = f"/api/v1/bookings/{booking['id']}/dispatch"
    body = {"helper_id": str(town["provider_staff"].user.id), "reason": "called them"}
    response = await post(client, town["centre_admin"], path, body)
    assert response.status_code == 201, response.text
    return booking["id"]  # type: ignore[no-any-return]


class TestSweepAfterDispatch:
    async def test_the_next_round_leaves_the_dispatched_offer_open(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking_id = await dispatched(client, town)
        await run_round(now() + timedelta(minutes=4))
        assert await state_of(booking_id) == "offered"
        offer = await offer_for(client, town["provider_staff"], booking_id)
        accept = await post(client, town["provider_staff"], f"/api/v1/offers/{offer['id']}/accept")
        assert accept.json()["booking"]["state"] == "accepted"

    async def test_a_declined_dispatch_goes_back_to_the_centre(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking_id = await dispatched(client, town)
        offer = await offer_for(client, town["provider_staff"], booking_id)
        decline = await post(
            client,
            town["provider_staff"],
            f"/api/v1/offers/{offer['id']}/decline",
            {"reason": "on another job"},
        )
        assert decline.status_code == 200, decline.text
        await run_round(now() + timedelta(minutes=4))
        assert await state_of(booking_id) == "escalated"

    async def test_the_window_closing_still_expires_it(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking_id = await dispatched(client, town)
        await run_round(now() + timedelta(minutes=9))
        assert await state_of(booking_id) == "expired"
