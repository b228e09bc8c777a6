"""A bookable neighbourhood on top of the `city` fixture, and short-hands for the HTTP calls."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
from tortoise.connection import get_connection

from ledger.storage.tortoise_store import TortoiseStore
from market import policy as rules
from market.models import (
    Booking,
    BookingEvent,
    DistrictPolicy,
    ElderHelperList,
    FamilyLink,
    HelperProfile,
    IdempotencyRecord,
    LinkStatus,
    Offer,
    Provider,
    RecurringSeries,
)
from market.realtime.models import StoredEvent
from market.services import matching_loop
from market.services.runtime import Runtime
from tests.market.conftest import Actor, City

HOME = (30.0, 120.0)
ALL_SKILLS = ["meal", "bathing", "cleaning", "escort", "medical", "emergency", "visit"]
BOOKING_TABLES = [Booking, BookingEvent, Offer, IdempotencyRecord, ElderHelperList, RecurringSeries]


def now() -> datetime:
    return datetime.now(UTC)


async def place_helper(actor: Actor, *, lat: float = 30.002, lon: float = 120.002) -> None:
    await HelperProfile.filter(user_id=actor.user.id).update(
        latitude=lat, longitude=lon, skills=ALL_SKILLS, availability=[], capacity_per_day=50
    )


async def neighbourhood(city: City) -> City:
    """Helpers placed near the elder with every skill; the family member linked and approved."""
    await place_helper(city["volunteer"])
    await place_helper(city["provider_staff"], lat=30.01, lon=120.01)
    await FamilyLink.create(
        family=city["family"].user,
        elder=city["elder"].user,
        relation="child",
        status=LinkStatus.approved,
    )
    return city


async def priced_provider(city: City, **prices: int) -> Provider:
    """A provider of the east district with these prices (fen), employing the city's staff."""
    services = sorted(prices)
    provider = await Provider.create(
        district=city.east,
        name="Golden Years Care",
        services=services,
        prices=prices,
        capacity_per_day=20,
    )
    await HelperProfile.filter(user_id=city["provider_staff"].user.id).update(
        provider_id=provider.id
    )
    return provider


async def set_policy(city: City, **bookings: int) -> None:
    """A new policy version for the east district with these booking rules, already in force."""
    policy = dataclasses.replace(
        rules.DEFAULT_POLICY,
        bookings=dataclasses.replace(rules.DEFAULT_POLICY.bookings, **bookings),
    )
    await adopt_policy(city, policy)


async def adopt_policy(city: City, policy: rules.DistrictPolicy) -> None:
    """`policy` as the east district's next version, in force since yesterday."""
    latest = await DistrictPolicy.filter(district=city.east).count()
    await DistrictPolicy.create(
        district=city.east,
        version=latest + 1,
        effective_from=now() - timedelta(days=1),
        content=rules.policy_to_json(policy),
    )


def request_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service": "cleaning",
        "window_start": (now() + timedelta(minutes=1)).isoformat(),
        # Slack for the helper's travel: the matcher plans arrival after now plus travel.
        "window_end": (now() + timedelta(minutes=40)).isoformat(),
        "duration_minutes": 5,
        "payment": "public",
    }
    body.update(overrides)
    return body


async def book(client: httpx.AsyncClient, actor: Actor, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/requests", json=request_body(**overrides), headers=actor.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["bookings"][0]  # type: ignore[no-any-return]


async def run_round(at: datetime | None = None) -> int:
    return await matching_loop.run_round(now=at or now())


async def offer_for(client: httpx.AsyncClient, helper: Actor, booking_id: str) -> dict[str, Any]:
    response = await client.get("/api/v1/offers", headers=helper.headers)
    assert response.status_code == 200, response.text
    offers = [o for o in response.json()["offers"] if o["booking_id"] == booking_id]
    assert len(offers) == 1, response.json()
    return offers[0]  # type: ignore[no-any-return]


async def post(
    client: httpx.AsyncClient, actor: Actor, path: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(path, json=body if body is not None else {}, headers=actor.headers)


async def state_of(booking_id: str) -> str:
    booking = await Booking.get(id=UUID(booking_id))
    return booking.state.value


async def accepted_booking(
    client: httpx.AsyncClient, city: City, booker: Actor | None = None, **overrides: Any
) -> dict[str, Any]:
    """A booking matched to and accepted by the volunteer."""
    booking = await book(client, booker or city["elder"], **overrides)
    # The volunteer is the nearer helper, so the matcher picks them.
    assert await run_round() == 1
    offer = await offer_for(client, city["volunteer"], booking["id"])
    response = await post(client, city["volunteer"], f"/api/v1/offers/{offer['id']}/accept")
    assert response.status_code == 200, response.text
    return response.json()["booking"]  # type: ignore[no-any-return]


async def completed_booking(
    client: httpx.AsyncClient, city: City, booker: Actor | None = None, **overrides: Any
) -> dict[str, Any]:
    booking = await accepted_booking(client, city, booker, **overrides)
    base = f"/api/v1/bookings/{booking['id']}"
    helper = city["volunteer"]
    assert (await post(client, helper, f"{base}/start")).status_code == 200
    position = {"latitude": HOME[0], "longitude": HOME[1]}
    response = await post(client, helper, f"{base}/check-in", position)
    assert response.status_code == 200, response.text
    response = await post(client, helper, f"{base}/check-out", position)
    assert response.status_code == 200, response.text
    return response.json()["booking"]  # type: ignore[no-any-return]


async def fund(runtime: Runtime, user_id: UUID, minutes: int, entry_id: str | None = None) -> None:
    """Hours for a user, minted as if earned earlier (a deposit from issuance)."""
    await runtime.ledger.deposit(
        volunteer_id=user_id,
        minutes=minutes,
        entry_id=entry_id or f"fund-{user_id}-{minutes}",
        actor="test",
    )


async def ledger_minutes(user_id: UUID, district: str = "east") -> int:
    return await TortoiseStore(get_connection("default")).balance(district, f"user:{user_id}")


async def snapshot() -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {
        model.__name__: sorted(map(str, await model.all().values())) for model in BOOKING_TABLES
    }
    tables["StoredEvent"] = sorted(map(str, await StoredEvent.all().values()))
    return tables
