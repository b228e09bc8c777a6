"""Short-hands for the payment tests: serve a booking through HTTP, read what it moved."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from market.models import Booking, ElderHelperList, ElderProfile, FamilyLink, LinkStatus, Role
from market.services.ledger import LedgerGateway
from market.services.runtime import Runtime
from tests.market.bookings.world import HOME, book, offer_for, post, run_round
from tests.market.conftest import Actor, City, make_actor

POSITION = {"latitude": HOME[0], "longitude": HOME[1]}
Line = tuple[str, str, str, str, int]  # (district, kind, debit, credit, minutes)


async def serve(client: httpx.AsyncClient, helper: Actor, booking_id: str) -> dict[str, Any]:
    """The helper accepts their offer, goes, checks in and out: the booking is completed."""
    offer = await offer_for(client, helper, booking_id)
    response = await post(client, helper, f"/api/v1/offers/{offer['id']}/accept")
    assert response.status_code == 200, response.text
    base = f"/api/v1/bookings/{booking_id}"
    assert (await post(client, helper, f"{base}/start")).status_code == 200
    response = await post(client, helper, f"{base}/check-in", POSITION)
    assert response.status_code == 200, response.text
    response = await post(client, helper, f"{base}/check-out", POSITION)
    assert response.status_code == 200, response.text
    return response.json()["booking"]  # type: ignore[no-any-return]


async def confirm(client: httpx.AsyncClient, who: Actor, booking_id: str) -> dict[str, Any]:
    response = await post(client, who, f"/api/v1/bookings/{booking_id}/confirm")
    assert response.status_code == 200, response.text
    return response.json()["booking"]  # type: ignore[no-any-return]


async def booked_and_served(
    client: httpx.AsyncClient, city: City, helper: Actor, booker: Actor, **overrides: Any
) -> dict[str, Any]:
    """Booked by `booker`, offered to `helper` by one matching round, served, confirmed."""
    booking = await book(client, booker, **overrides)
    assert await run_round() == 1
    await serve(client, helper, booking["id"])
    return await confirm(client, city["elder"], booking["id"])


async def entries_of(gateway: LedgerGateway, booking_id: str) -> list[Line]:
    """Every entry, in every chain, that a booking's settlement or charges wrote, in order."""
    lines = []
    prefix = f"booking-{booking_id}"
    for chain in await gateway.local_chains():
        for e in await gateway.store.entries(chain):
            transfer = e.transfer_id or ""
            if e.ref == booking_id or e.id.startswith(prefix) or transfer.startswith(prefix):
                lines.append((e.district, str(e.kind), e.debit, e.credit, e.minutes))
    return lines


async def balance(gateway: LedgerGateway, user_id: UUID) -> int:
    holder = await gateway.holder(user_id)
    return await gateway.store.balance(holder.chain, holder.account)


async def only_provider_staff(city: City) -> None:
    """The elder blocks the volunteer: only the provider's staff can be matched."""
    await ElderHelperList.create(
        elder_id=city["elder"].user.id,
        helper_id=city["volunteer"].user.id,
        kind="blocked",
        added_by_id=city["elder"].user.id,
    )


async def west_child(client: httpx.AsyncClient, runtime: Runtime, city: City) -> Actor:
    """A child of the east elder who lives, and keeps hours, in the west district."""
    child = await make_actor(client, runtime, Role.family, city.west)
    await FamilyLink.create(
        family=child.user, elder=city["elder"].user, relation="child", status=LinkStatus.approved
    )
    return child


async def make_pool_elder(city: City) -> None:
    """The elder is one the pool serves first: 80 or older and living alone."""
    from tests.market.bookings.world import now

    await ElderProfile.filter(user_id=city["elder"].user.id).update(
        birth_year=now().year - 82, flags=["living_alone"]
    )


async def row(booking_id: str) -> Booking:
    return await Booking.get(id=booking_id)
