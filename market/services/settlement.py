"""Settlement of a confirmed booking: the ledger entry, then confirmed -> settled.

`settle_booking` runs after the confirming transaction has committed, because the ledger
serialises appends in its own transaction per chain. It is idempotent: the entry id is derived
from the booking, so a retry (or the matching loop's sweep of confirmed bookings) appends
nothing twice, and the state change is a conditional UPDATE that only one caller wins.

Done here: `public` payment, a deposit from the district's issuance account to the helper for
the served minutes weighted by the service's hour weight. `hours`, `subsidy` and `self`
payments stay `confirmed` until the settlement engineer's code handles them.
"""

from __future__ import annotations

from datetime import datetime

from tortoise.connection import get_connection

from ledger.entries import ISSUANCE, USER_PREFIX, Kind
from ledger.rules import Proposal
from ledger.service import append
from ledger.storage.tortoise_store import TortoiseStore
from market.errors import Conflict
from market.lifecycle import SYSTEM, Action, Change
from market.models import Booking, BookingState, District, Payment
from market.policy import ServiceCode
from market.services.districts import policy_in_force

LEDGER_ACTOR = "market.settlement"


async def ledger_district(district_id: object) -> str:
    """The ledger of a booking's district: the chain of its top-level district (by code)."""
    district = await District.get(id=district_id)
    while district.parent_id is not None:  # type: ignore[attr-defined]
        district = await District.get(id=district.parent_id)  # type: ignore[attr-defined]
    return district.code


def entry_id(booking: Booking) -> str:
    return f"booking-{booking.id}"


async def settle_booking(booking: Booking, *, now: datetime) -> Booking:
    if booking.state is not BookingState.confirmed or booking.payment is not Payment.public:
        return booking
    from market.services.bookings import transition

    _, policy = await policy_in_force(booking.district_id, booking.confirmed_at or now)
    weight = policy.services.rule(ServiceCode(booking.service)).hour_weight
    minutes = weight.apply_floor(booking.served_minutes or 0)
    detail: dict[str, object] = {"minutes": minutes}
    if minutes > 0:
        confirmed = booking.confirmed_at or now
        proposal = Proposal(
            district=await ledger_district(booking.district_id),
            id=entry_id(booking),
            kind=Kind.DEPOSIT,
            debit=ISSUANCE,
            credit=f"{USER_PREFIX}{booking.helper_id}",  # type: ignore[attr-defined]
            minutes=minutes,
            actor=LEDGER_ACTOR,
            policy=booking.policy_version,
            at_ms=int(confirmed.timestamp() * 1000),
            category=booking.service,
            ref=str(booking.id),
        )
        entry = await append(TortoiseStore(get_connection("default")), proposal)
        detail.update(entry_id=entry.id, seq=entry.seq, district=entry.district)
    change = Change(Action.settle, "public funding", detail=detail, columns={"settled_at": now})
    try:
        return await transition(booking, change, SYSTEM, now=now)
    except Conflict:
        # Settled meanwhile by the loop's sweep: the same entry, so the same outcome.
        current = await Booking.get(id=booking.id)
        if current.state in (BookingState.settled, BookingState.rated):
            return current
        raise
