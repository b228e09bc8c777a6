"""The request's own fan-out and the matching round may reach one emergency at once."""

from __future__ import annotations

import asyncio
from uuid import UUID

import httpx

from market.models import Booking, BookingState, Offer
from market.services.auth import now_utc
from market.services.offers import emergency_fanout
from tests.market.bookings.world import book, neighbourhood
from tests.market.conftest import City


async def test_two_fan_outs_at_once_offer_once_and_neither_fails(
    client: httpx.AsyncClient, city: City
) -> None:
    town = await neighbourhood(city)
    booking = await book(client, town["elder"], service="emergency")
    booking_id = UUID(booking["id"])
    offered = await Offer.filter(booking_id=booking_id).count()
    assert offered > 0
    # As if the request's fan-out had not committed yet when the round read the booking.
    await Offer.filter(booking_id=booking_id).delete()
    await Booking.filter(id=booking_id).update(state=BookingState.requested)
    now = now_utc()
    results = await asyncio.gather(
        emergency_fanout(booking_id, now=now), emergency_fanout(booking_id, now=now)
    )
    assert sorted(results) == [0, offered]
    assert await Offer.filter(booking_id=booking_id).count() == offered
    assert (await Booking.get(id=booking_id)).state is BookingState.offered
