"""Bookings: who is who on a booking, views, and the elder-side and centre transitions.

Offers and the matching loop live in `offers.py` and `matching_loop.py`, the helper's
en-route/check-in/check-out and confirmation in `checkin.py`; every one of them moves the
booking through `market.lifecycle.apply` inside one `event_transaction`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from market import lifecycle
from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.lifecycle import Action, ActorRef, Change, NoShowSide, Party
from market.models import (
    Booking,
    BookingEvent,
    BookingState,
    ElderHelperList,
    FamilyLink,
    HelperListKind,
    HelperProfile,
    LinkStatus,
    Offer,
    OfferState,
    Role,
    User,
)
from market.policy import ServiceCode
from market.realtime.events import (
    admin_stream,
    elder_stream,
    user_stream,
)
from market.schemas.bookings import (
    CancelBooking,
    DecideDispute,
    DispatchBooking,
    DisputeBooking,
    HelperListEntry,
    ReportNoShow,
    StateReason,
)
from market.services import payments, settlement
from market.services.access import is_linked_family
from market.services.auth import now_utc
from market.services.booking_tx import BookingTransaction, booking_transaction
from market.services.districts import policy_in_force
from market.services.eligibility import check_booking_helper
from market.services.runtime import Runtime
from market.services.scope import Principal, require_admin_of

CODE_PURPOSE = "booking.confirm_code"
HELPER_ROLES = frozenset({Role.volunteer, Role.provider_staff})
S = BookingState


def streams_for(booking: Booking, *extra_users: UUID) -> list[str]:
    """Everyone concerned by a booking: the elder's stream (linked family reads it), the
    helper's own stream, the district's admin stream, and any extra users (offered helpers)."""
    streams = {elder_stream(booking.elder_id), admin_stream(booking.district_id)}  # type: ignore[attr-defined]
    if booking.helper_id is not None:  # type: ignore[attr-defined]
        streams.add(user_stream(booking.helper_id))  # type: ignore[attr-defined]
    streams.update(user_stream(user_id) for user_id in extra_users)
    return sorted(streams)


async def get_booking(booking_id: UUID) -> Booking:
    booking = await Booking.get_or_none(id=booking_id)
    if booking is None:
        raise NotFound("booking_not_found", f"no booking {booking_id}")
    return booking


async def party_of(principal: Principal, booking: Booking) -> Party:
    """The caller's part in this booking, or 403 if they have none."""
    if principal.user_id == booking.elder_id:  # type: ignore[attr-defined]
        return Party.elder_side
    if principal.administers(booking.district_id):
        return Party.centre
    if principal.role in HELPER_ROLES:
        if booking.helper_id == principal.user_id:  # type: ignore[attr-defined]
            return Party.helper
        if await Offer.filter(booking_id=booking.id, helper_id=principal.user_id).exists():
            return Party.helper
    if await is_linked_family(principal, booking.elder_id):  # type: ignore[attr-defined]
        return Party.elder_side
    raise Forbidden("booking_forbidden", "you have no part in this booking")


def actor(principal: Principal, party: Party) -> ActorRef:
    return ActorRef(party, principal.user_id, principal.role.value)


def require_party(party: Party, allowed: set[Party], what: str) -> None:
    if party not in allowed:
        raise Forbidden("booking.party_forbidden", f"the {party.value} may not {what}")


def visible_flags(flags: list[dict[str, Any]], party: Party) -> list[dict[str, Any]]:
    """A complaint in a rating is the elder side's word to the centre; like a dispute's
    reason, the helper hears of it from the centre, not from the booking."""
    if party is Party.helper:
        return [f for f in flags if f.get("step") != "rating"]
    return flags


def booking_json(
    runtime: Runtime, booking: Booking, party: Party, helper_name: str | None = None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(booking.id),
        **lifecycle.booking_payload(booking),
        "district_id": str(booking.district_id),
        "emergency": booking.emergency,
        "window_start": booking.window_start.isoformat(),
        "window_end": booking.window_end.isoformat(),
        "duration_minutes": booking.duration_minutes,
        "location": {"latitude": booking.latitude, "longitude": booking.longitude},
        "notes": booking.notes,
        "payment": booking.payment.value,
        "needs_lifting": booking.needs_lifting,
        "policy_version": booking.policy_version,
        "series_id": str(booking.series_id) if booking.series_id else None,  # type: ignore[attr-defined]
        "occurrence": booking.occurrence.isoformat() if booking.occurrence else None,
        "checkin_at": booking.checkin_at.isoformat() if booking.checkin_at else None,
        "checkout_at": booking.checkout_at.isoformat() if booking.checkout_at else None,
        "served_minutes": booking.served_minutes,
        "flagged": booking.flagged,
        "flags": visible_flags(booking.flags, party),
        "confirmed_at": booking.confirmed_at.isoformat() if booking.confirmed_at else None,
        "outcome": booking.outcome,
        "no_show_side": booking.no_show_side,
        "dispute_decision": booking.dispute_decision,
        "rating": booking.rating,
        "payment_detail": payments.payment_view(booking),
        # The elder's side and the centre see who is coming; other helpers offered it do not.
        "helper_name": helper_name if party in (Party.elder_side, Party.centre) else None,
        # Why nobody has been offered it yet, as the last matching round saw it.
        "match_note": booking.match_note if party in (Party.elder_side, Party.centre) else None,
        # What the elder's side complained of: the centre decides on it; the helper hears of it
        # from the centre, not from the booking.
        "dispute_reason": booking.dispute_reason
        if party in (Party.elder_side, Party.centre)
        else None,
    }
    # Only the elder's side holds the one-time code; the helper hears it. The centre reads it
    # one booking at a time for a printed card (checkin.confirmation_card), access-logged.
    if party is Party.elder_side:
        view["confirm_code"] = runtime.crypto.decrypt(
            booking.confirm_code_enc, purpose=CODE_PURPOSE
        )
    return view


async def view(runtime: Runtime, principal: Principal, booking_id: UUID) -> dict[str, Any]:
    booking = await get_booking(booking_id)
    party = await party_of(principal, booking)
    names = await helper_names([booking])
    result = booking_json(runtime, booking, party, names.get(booking.helper_id))  # type: ignore[attr-defined]
    events = await BookingEvent.filter(booking_id=booking.id).order_by("id")
    result["history"] = [
        {
            "action": e.action,
            "from": e.from_state,
            "to": e.to_state,
            "actor_role": e.actor_role,
            "reason": e.reason,
            "at": e.at.isoformat(),
        }
        for e in events
    ]
    return result


async def helper_names(bookings: list[Booking]) -> dict[UUID, str]:
    """The display names of the helpers holding these bookings, by user id."""
    ids = sorted({b.helper_id for b in bookings if b.helper_id is not None})  # type: ignore[attr-defined]
    if not ids:
        return {}
    return dict(await User.filter(id__in=ids).values_list("id", "name"))  # type: ignore[arg-type]


async def visible_bookings(
    runtime: Runtime,
    principal: Principal,
    state: BookingState | None,
    *,
    limit: int,
    offset: int,
    service: ServiceCode | None = None,
    flagged: bool | None = None,
    soonest_first: bool = False,
) -> tuple[list[dict[str, Any]], int | None]:
    """A page of the bookings the caller may see, the latest window first, and the offset of
    the next page (None on the last): the oldest first would hide this week's behind history.
    A work list (`soonest_first`) wants the opposite: what is due next must not wait behind
    bookings months ahead."""
    query = Booking.all()
    if principal.role is Role.elder:
        query = query.filter(elder_id=principal.user_id)
        party = Party.elder_side
    elif principal.role is Role.family:
        elders = await FamilyLink.filter(
            family_id=principal.user_id, status=LinkStatus.approved
        ).values_list("elder_id", flat=True)
        query = query.filter(elder_id__in=list(elders))
        party = Party.elder_side
    elif principal.role is Role.centre_admin:
        query = query.filter(district_id__in=sorted(principal.districts))
        party = Party.centre
    elif principal.role in HELPER_ROLES:
        query = query.filter(helper_id=principal.user_id)
        party = Party.helper
    else:
        raise Forbidden("role_forbidden", f"a {principal.role.value} has no bookings")
    if state is not None:
        query = query.filter(state=state)
    if service is not None:
        query = query.filter(service=service.value)
    if flagged is not None:
        query = query.filter(flagged=flagged)
    ordering = ("window_start", "id") if soonest_first else ("-window_start", "-id")
    rows = await query.order_by(*ordering).offset(offset).limit(limit + 1)
    more, rows = len(rows) > limit, rows[:limit]
    names = await helper_names(rows)
    views = [booking_json(runtime, b, party, names.get(b.helper_id)) for b in rows]  # type: ignore[attr-defined]
    return views, offset + limit if more else None


async def transition(
    booking: Booking,
    change: Change,
    who: ActorRef,
    *,
    now: datetime,
    tx: BookingTransaction | None = None,
) -> Booking:
    """One transition in its own event transaction (or the caller's `tx`)."""
    if tx is not None:
        return await lifecycle.apply(
            tx, booking, change, who, now=now, streams=streams_for(booking)
        )
    async with booking_transaction() as own:
        return await lifecycle.apply(
            own, booking, change, who, now=now, streams=streams_for(booking)
        )


async def withdraw_open_offers(tx: BookingTransaction, booking: Booking, now: datetime) -> None:
    open_offers = await Offer.filter(booking_id=booking.id, state=OfferState.open).using_db(
        tx.connection
    )
    if not open_offers:
        return
    await (
        Offer.filter(id__in=[o.id for o in open_offers])
        .using_db(tx.connection)
        .update(state=OfferState.withdrawn, answered_at=now)
    )
    for offer in open_offers:
        await tx.publish(
            [user_stream(offer.helper_id)],  # type: ignore[attr-defined]
            "offer.withdrawn",
            {"offer_id": str(offer.id), "booking_id": str(booking.id)},
        )


async def cancel(principal: Principal, booking_id: UUID, cmd: CancelBooking) -> Booking:
    """Cancel by the elder side or centre (effect free/late by the policy's window), or drop
    out as the helper (the booking is re-staffed without them)."""
    booking = await get_booking(booking_id)
    party = await party_of(principal, booking)
    now = now_utc()
    if party is Party.helper:
        if booking.helper_id != principal.user_id:  # type: ignore[attr-defined]
            raise Forbidden("booking.party_forbidden", "only the booked helper may drop out")
        lifecycle.check(Action.helper_cancel, party, booking.id, booking.state)
        excluded = sorted({*booking.excluded_helpers, str(principal.user_id)})
        change = Change(
            Action.helper_cancel,
            cmd.reason,
            columns={"helper_id": None, "excluded_helpers": excluded},
        )
        async with booking_transaction() as tx:
            streams = streams_for(booking)
            await lifecycle.apply(
                tx, booking, change, actor(principal, party), now=now, streams=streams
            )
        return booking
    lifecycle.check(Action.cancel, party, booking.id, booking.state)
    _, policy = await policy_in_force(booking.district_id, booking.created_at)
    window = policy.services.rule(ServiceCode(booking.service)).cancellation_window_minutes
    late = now > booking.window_start - timedelta(minutes=window)
    outcome = "late" if late else "free"
    detail: dict[str, Any] = {"cancellation_window_minutes": window, "effect": outcome}
    # An hours or pool hold is released by the cancellation; late, the policy may charge part.
    charge = await settlement.late_charge_minutes(booking) if late else 0
    if booking.hold_minutes is not None:
        detail.update(hold_minutes=booking.hold_minutes, charge_minutes=charge)
    change = Change(Action.cancel, cmd.reason, detail=detail, columns={"outcome": outcome})
    async with booking_transaction() as tx:
        await lifecycle.apply(
            tx, booking, change, actor(principal, party), now=now, streams=streams_for(booking)
        )
        await withdraw_open_offers(tx, booking, now)
    if charge:
        await settlement.charge_late_cancellation(booking, charge, now=now)
    return booking


async def report_no_show(principal: Principal, booking_id: UUID, cmd: ReportNoShow) -> Booking:
    booking = await get_booking(booking_id)
    party = await party_of(principal, booking)
    now = now_utc()
    lifecycle.check_no_show(cmd.side, party, booking.id, booking.state)
    if cmd.side is NoShowSide.helper_absent and now < booking.window_start:
        raise Conflict(
            "booking.too_early",
            "the helper cannot be absent before the booked window starts",
            {"state": booking.state.value, "window_start": booking.window_start.isoformat()},
        )
    change = Change(
        Action.no_show,
        cmd.reason,
        detail={"side": cmd.side.value},
        columns={"no_show_side": cmd.side.value},
    )
    return await transition(booking, change, actor(principal, party), now=now)


async def dispute(principal: Principal, booking_id: UUID, cmd: DisputeBooking) -> Booking:
    booking = await get_booking(booking_id)
    party = await party_of(principal, booking)
    change = Change(Action.dispute, cmd.reason, columns={"dispute_reason": cmd.reason})
    return await transition(booking, change, actor(principal, party), now=now_utc())


async def decide_dispute(principal: Principal, booking_id: UUID, cmd: DecideDispute) -> Booking:
    """Upheld: the complaint stands and no hours move. Rejected: confirmed, then settled."""
    booking = await get_booking(booking_id)
    require_admin_of(principal, booking.district_id, "decide disputes of this district")
    now = now_utc()
    who = actor(principal, Party.centre)
    if cmd.decision == "upheld":
        change = Change(
            Action.uphold,
            cmd.note,
            columns={"dispute_decision": "upheld", "outcome": "dispute_upheld"},
        )
        return await transition(booking, change, who, now=now)
    change = Change(
        Action.reject,
        cmd.note,
        columns={
            "dispute_decision": "rejected",
            "confirmed_by_id": principal.user_id,
            "confirmed_at": now,
        },
    )
    await transition(booking, change, who, now=now)
    return await settlement.settle_booking(booking, now=now)


async def dispatch(principal: Principal, booking_id: UUID, cmd: DispatchBooking) -> Offer:
    """The centre offers a booking to a helper of its choice (escalated or still open)."""
    from market.services.offers import create_offer

    booking = await get_booking(booking_id)
    require_admin_of(principal, booking.district_id, "dispatch bookings of this district")
    lifecycle.check(Action.dispatch, Party.centre, booking.id, booking.state)
    now = now_utc()
    await check_booking_helper(booking, cmd.helper_id, now=now)
    if str(cmd.helper_id) in booking.excluded_helpers:
        raise Conflict(
            "booking.helper_excluded",
            "this helper declined or dropped out of this booking",
            {"state": booking.state.value},
        )
    if await Offer.filter(booking_id=booking.id, helper_id=cmd.helper_id).exists():
        raise Conflict(
            "booking.already_offered",
            "this helper was already offered this booking",
            {"state": booking.state.value},
        )
    _, policy = await policy_in_force(booking.district_id, now)
    deadline = now + timedelta(seconds=policy.bookings.offer_timeout_seconds)
    async with booking_transaction() as tx:
        offer = await create_offer(
            tx,
            booking,
            cmd.helper_id,
            deadline=deadline,
            planned_start=booking.window_start,
            now=now,
        )
        change = Change(Action.dispatch, cmd.reason, detail={"helper_id": str(cmd.helper_id)})
        await lifecycle.apply(
            tx,
            booking,
            change,
            actor(principal, Party.centre),
            now=now,
            streams=streams_for(booking, cmd.helper_id),
        )
    return offer


async def refuse(principal: Principal, booking_id: UUID, cmd: StateReason) -> Booking:
    """The centre declines an escalated request it cannot staff."""
    booking = await get_booking(booking_id)
    require_admin_of(principal, booking.district_id, "decline requests of this district")
    return await transition(
        booking, Change(Action.refuse, cmd.reason), actor(principal, Party.centre), now=now_utc()
    )


# ---- preferred and blocked helpers ----------------------------------------------------------


async def _require_elder_side(principal: Principal, elder_id: UUID) -> User:
    elder = await User.get_or_none(id=elder_id, role=Role.elder)
    if elder is None:
        raise NotFound("elder_not_found", f"no elder {elder_id}")
    if not (
        principal.user_id == elder.id
        or principal.administers(elder.district_id)  # type: ignore[attr-defined]
        or await is_linked_family(principal, elder.id)
    ):
        raise Forbidden("elder_forbidden", "only the elder, linked family or their centre")
    return elder


async def helper_lists(principal: Principal, elder_id: UUID) -> dict[str, list[str]]:
    await _require_elder_side(principal, elder_id)
    rows = await ElderHelperList.filter(elder_id=elder_id).order_by("helper_id")
    return {
        kind.value: [str(r.helper_id) for r in rows if r.kind is kind]  # type: ignore[attr-defined]
        for kind in HelperListKind
    }


async def set_helper_list(principal: Principal, elder_id: UUID, cmd: HelperListEntry) -> None:
    await _require_elder_side(principal, elder_id)
    if not await HelperProfile.filter(user_id=cmd.helper_id).exists():
        raise InvalidInput(
            "helper_not_found",
            f"no helper {cmd.helper_id}",
            [{"field": "helper_id", "problem": "is not a helper"}],
        )
    if cmd.kind is None:
        await ElderHelperList.filter(elder_id=elder_id, helper_id=cmd.helper_id).delete()
        return
    await ElderHelperList.update_or_create(
        elder_id=elder_id,
        helper_id=cmd.helper_id,
        defaults={"kind": cmd.kind, "added_by_id": principal.user_id},
    )
