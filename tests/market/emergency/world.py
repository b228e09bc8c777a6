"""Short-hands for the emergency tests: an emergency booked, its call, its steps, a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from market.emergency.models import EmergencyCall, EmergencyStep
from market.realtime.events import Event, admin_stream, read_stream
from tests.market.bookings.world import book
from tests.market.conftest import Actor, City

SECRET = b"sixteen-byte-secret-for-tests"


class Clock:
    """An injected clock for the deliveries' step times; rounds get their `now` directly."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def emergency(
    client: httpx.AsyncClient, booker: Actor
) -> tuple[dict[str, Any], EmergencyCall]:
    booking = await book(client, booker, service="emergency")
    return booking, await EmergencyCall.get(booking_id=booking["id"])


def after(call: EmergencyCall, seconds: float) -> datetime:
    return call.created_at + timedelta(seconds=seconds)


async def steps_of(call: EmergencyCall) -> list[EmergencyStep]:
    steps = list(await EmergencyStep.filter(call_id=call.id).order_by("seq"))
    # The log is numbered without gaps.
    assert [s.seq for s in steps] == list(range(1, len(steps) + 1))
    return steps


async def kinds(call: EmergencyCall) -> list[str]:
    return [s.kind.value for s in await steps_of(call)]


async def admin_events(city: City, kind: str) -> list[Event]:
    events = await read_stream(admin_stream(city.east_community.id), 0, 1000)
    return [e for e in events if e.kind == kind]


async def reload(call: EmergencyCall) -> EmergencyCall:
    return await EmergencyCall.get(id=call.id)


def recorder(into: list[float]) -> Callable[[float], Any]:
    async def sleep(seconds: float) -> None:
        into.append(seconds)

    return sleep
