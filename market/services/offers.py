"""Offers: a booking put to a helper with a deadline; accept, decline, lapse, emergency fan-out.

Exactly one accept wins, also when fifty helpers answer an emergency at once: the winner's
transaction moves the booking with a conditional UPDATE on (state, version); every other
transaction finds no row to update, rolls back and answers 409 `offer.taken`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import matching
from market import lifecycle
from market.emergency import calls as emergency_calls
from market.errors import Conflict, Forbidden, NotFound
from market.lifecycle import Action, ActorRef, Change, Party
from market.models import Booking, BookingState, Offer, OfferState
from market.policy import DistrictPolicy
from market.realtime.events import admin_stream, user_stream
from market.schemas.bookings import DeclineOffer
from market.services.auth import now_utc
from market.services.booking_tx import BookingTransaction, booking_transaction
from market.services.bookings import get_booking, streams_for, withdraw_open_offers
from market.services.districts import policy_in_force
from market.services.eligibility import check_booking_helper
from market.services.scope import Principal


def offer_json(offer: Offer, booking: Booking | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(offer.id),
        "booking_id": str(offer.booking_id),  # type: ignore[attr-defined]
        "helper_id": str(offer.helper_id),  # type: ignore[attr-defined]
        "state": offer.state.value,
        "deadline": offer.deadline.isoformat(),
        "planned_start": offer.planned_start.isoformat(),
        "travel_minutes": offer.travel_minutes,
    }
    if booking is not None:
        view["booking"] = {
            "service": booking.service,
            "emergency": booking.emergency,
            "window_start": booking.window_start.isoformat(),
            "window_end": booking.window_end.isoformat(),
            "location": {"latitude": booking.latitude, "longitude": booking.longitude},
            "notes": booking.notes,
        }
    return view


async def create_offer(
    tx: BookingTransaction,
    booking: Booking,
    helper_id: UUID,
    *,
    deadline: datetime,
    planned_start: datetime,
    now: datetime,
    travel_minutes: int = 0,
    cost: dict[str, int] | None = None,
) -> Offer:
    offer = await Offer.create(
        booking_id=booking.id,
        district_id=booking.district_id,
        helper_id=helper_id,
        deadline=deadline,
        planned_start=planned_start,
        travel_minutes=travel_minutes,
        cost=cost or {},
        created_at=now,
        using_db=tx.connection,
    )
    await tx.publish([user_stream(helper_id)], "offer.new", offer_json(offer, booking))
    return offer


async def _own_open_offer(principal: Principal, offer_id: UUID, now: datetime) -> Offer:
    offer = await Offer.get_or_none(id=offer_id)
    if offer is None:
        raise NotFound("offer_not_found", f"no offer {offer_id}")
    if offer.helper_id != principal.user_id:  # type: ignore[attr-defined]
        raise Forbidden("offer_forbidden", "this offer was made to another helper")
    if offer.state is OfferState.withdrawn:
        raise Conflict(
            "offer.taken",
            "another helper took this booking first, or it was cancelled",
            {"state": offer.state.value},
        )
    if offer.state is not OfferState.open:
        raise Conflict(
            "offer.closed", f"this offer is {offer.state.value}", {"state": offer.state.value}
        )
    if now >= offer.deadline:
        raise Conflict("offer.expired", "the offer's deadline has passed", {"state": "expired"})
    return offer


async def accept(principal: Principal, offer_id: UUID) -> Booking:
    now = now_utc()
    offer = await _own_open_offer(principal, offer_id, now)
    booking = await get_booking(offer.booking_id)  # type: ignore[attr-defined]
    if booking.state is not BookingState.offered:
        raise Conflict(
            "offer.taken",
            f"booking {booking.id} is {booking.state.value}",
            {"state": booking.state.value},
        )
    await check_booking_helper(booking, principal.user_id, now=now)
    who = ActorRef(Party.helper, principal.user_id, principal.role.value)
    change = Change(Action.accept, columns={"helper_id": principal.user_id})
    try:
        async with booking_transaction() as tx:
            # The booking row first, then offer rows: every transaction touching a booking's
            # offers takes the locks in this order, so racing accepts queue, never deadlock.
            streams = streams_for(booking, principal.user_id)
            await lifecycle.apply(tx, booking, change, who, now=now, streams=streams)
            taken = (
                await Offer.filter(id=offer.id, state=OfferState.open)
                .using_db(tx.connection)
                .update(state=OfferState.accepted, answered_at=now)
            )
            if taken != 1:
                raise Conflict("offer.taken", "this offer was answered meanwhile")
            await withdraw_open_offers(tx, booking, now)
            await emergency_calls.helper_accepted(tx, booking, principal, now=now)
    except Conflict as exc:
        if exc.code == "offer.taken":
            raise
        raise Conflict(
            "offer.taken", "another helper took this booking first", exc.details
        ) from None
    return booking


async def decline(principal: Principal, offer_id: UUID, cmd: DeclineOffer) -> Offer:
    """The helper says no: the booking goes back for re-matching without them."""
    now = now_utc()
    offer = await _own_open_offer(principal, offer_id, now)
    who = ActorRef(Party.helper, principal.user_id, principal.role.value)
    await close_offer(offer, OfferState.declined, Action.decline, who, now=now, reason=cmd.reason)
    offer.state = OfferState.declined
    return offer


async def close_offer(
    offer: Offer,
    state: OfferState,
    action: Action,
    who: ActorRef,
    *,
    now: datetime,
    reason: str = "",
) -> bool:
    """Close an open offer; when it was the booking's last open offer, the booking returns to
    `requested` (the helper is never offered it again). False if it was answered meanwhile."""
    async with booking_transaction() as tx:
        # Lock order as in `accept`: the booking row, then its offers.
        booking = (
            await Booking.select_for_update().using_db(tx.connection).get(id=offer.booking_id)  # type: ignore[attr-defined]
        )
        closed = (
            await Offer.filter(id=offer.id, state=OfferState.open)
            .using_db(tx.connection)
            .update(state=state, answered_at=now)
        )
        if closed != 1:
            return False
        await tx.publish(
            [user_stream(offer.helper_id), admin_stream(booking.district_id)],  # type: ignore[attr-defined]
            f"offer.{state.value}",
            {"offer_id": str(offer.id), "booking_id": str(booking.id)},
        )
        others = (
            await Offer.filter(booking_id=booking.id, state=OfferState.open)
            .using_db(tx.connection)
            .exists()
        )
        if booking.state is BookingState.offered and not others:
            change = Change(action, reason, detail={"helper_id": str(offer.helper_id)})  # type: ignore[attr-defined]
            await lifecycle.apply(tx, booking, change, who, now=now, streams=streams_for(booking))
    return True


async def expire_offers(now: datetime) -> int:
    """Close every open offer whose deadline has passed; returns how many lapsed."""
    lapsed = await Offer.filter(state=OfferState.open, deadline__lte=now).order_by("deadline", "id")
    count = 0
    for offer in lapsed:
        if await close_offer(
            offer, OfferState.expired, Action.offer_timeout, lifecycle.SYSTEM, now=now
        ):
            count += 1
    return count


async def emergency_fanout(booking_id: UUID, *, now: datetime) -> int:
    """Offer an emergency to the best k helpers at once and alert the centre.

    With nobody in reach the booking is escalated straight to the centre's queue.
    """
    from market.services.matching_loop import candidate_helpers, request_of

    booking = await Booking.get(id=booking_id)
    if booking.state is not BookingState.requested:
        return 0
    version, policy = await policy_in_force(booking.district_id, now)
    match_policy, helpers, blocked = await candidate_helpers([booking], version, policy, now)
    request = await request_of(booking, blocked.get(booking.id, frozenset()))
    chosen = matching.urgent(
        request,
        helpers,
        k=policy.bookings.emergency_fanout,
        policy=match_policy,
        now=matching.minutes_since_epoch(now),
    )
    try:
        return await _fan_out(booking, version, policy, chosen, now)
    except Conflict:
        # The request's own fan-out and the matching round can reach the same emergency at
        # once, or it was cancelled meanwhile: whoever moved it first did the work.
        return 0


async def _fan_out(
    booking: Booking,
    version: int,
    policy: DistrictPolicy,
    chosen: Sequence[matching.Assignment],
    now: datetime,
) -> int:
    deadline = now + timedelta(seconds=policy.bookings.offer_timeout_seconds)
    async with booking_transaction() as tx:
        # Read again under the row lock: a fan-out that committed first leaves nothing to do.
        booking = await Booking.select_for_update().using_db(tx.connection).get(id=booking.id)
        if booking.state is not BookingState.requested:
            return 0
        await emergency_calls.fanned_out(tx, booking, version, policy, chosen, now=now)
        if not chosen:
            await lifecycle.apply(
                tx,
                booking,
                Change(Action.escalate, "no helper in reach for an emergency"),
                lifecycle.SYSTEM,
                now=now,
                streams=streams_for(booking),
            )
            return 0
        helper_ids = [UUID(a.helper_id) for a in chosen]
        for assignment, helper_id in zip(chosen, helper_ids, strict=True):
            await create_offer(
                tx,
                booking,
                helper_id,
                deadline=deadline,
                planned_start=now,
                now=now,
                travel_minutes=assignment.travel_minutes,
                cost={"total": assignment.cost.total},
            )
        await lifecycle.apply(
            tx,
            booking,
            Change(Action.offer, "emergency fan-out", detail={"helpers": len(helper_ids)}),
            lifecycle.SYSTEM,
            now=now,
            streams=streams_for(booking),
        )
        await tx.publish(
            [admin_stream(booking.district_id)],
            "booking.emergency",
            {
                "booking_id": str(booking.id),
                "elder_id": str(booking.elder_id),  # type: ignore[attr-defined]
                "offered_to": [str(h) for h in helper_ids],
            },
        )
    return len(helper_ids)


async def open_offers(principal: Principal) -> list[dict[str, Any]]:
    offers = await Offer.filter(helper_id=principal.user_id, state=OfferState.open).order_by(
        "deadline", "id"
    )
    bookings = {
        b.id: b
        for b in await Booking.filter(id__in=[o.booking_id for o in offers])  # type: ignore[attr-defined]
    }
    return [offer_json(o, bookings.get(o.booking_id)) for o in offers]  # type: ignore[attr-defined]
