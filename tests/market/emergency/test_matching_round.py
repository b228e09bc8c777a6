"""An emergency whose fan-out fails does not stop the matching round of its district: the
district's other emergencies and its routine requests are still offered, and the failure is
logged; the next round tries the failed one again."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import pytest

from market.emergency.models import EmergencyCall
from market.models import Booking, BookingState, Offer
from market.services import offers
from tests.market.bookings.world import book, neighbourhood, run_round
from tests.market.conftest import City


async def test_a_failing_fan_out_is_logged_and_the_round_goes_on(
    client: httpx.AsyncClient,
    city: City,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await neighbourhood(city)
    real_fanout = offers.emergency_fanout

    async def not_yet(booking_id: UUID, *, now: datetime) -> int:
        return 0

    # Booked while the fan-out does nothing: both emergencies wait for the matching round.
    monkeypatch.setattr(offers, "emergency_fanout", not_yet)
    first = await book(client, city["elder"], service="emergency")
    second = await book(client, city["elder"], service="emergency")
    routine = await book(client, city["elder"])
    # Booked first, so its window starts first and the round takes it first.
    broken = first["id"]

    async def failing_for_one(booking_id: UUID, *, now: datetime) -> Any:
        if str(booking_id) == broken:
            raise OverflowError("date value out of range")
        return await real_fanout(booking_id, now=now)

    monkeypatch.setattr(offers, "emergency_fanout", failing_for_one)
    with caplog.at_level(logging.ERROR, logger="eldercare.matching"):
        offered = await run_round()
    assert offered >= 2
    healthy = second["id"]
    for booking_id in (healthy, routine["id"]):
        assert (await Booking.get(id=booking_id)).state is BookingState.offered
        assert await Offer.filter(booking_id=booking_id).exists()
    assert await EmergencyCall.exists(booking_id=healthy)
    assert (await Booking.get(id=broken)).state is BookingState.requested
    assert not await EmergencyCall.exists(booking_id=broken)
    (record,) = [r for r in caplog.records if broken in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is OverflowError

    monkeypatch.setattr(offers, "emergency_fanout", real_fanout)
    await run_round()
    assert (await Booking.get(id=broken)).state is BookingState.offered
    assert await EmergencyCall.exists(booking_id=broken)
