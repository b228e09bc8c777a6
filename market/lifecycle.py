"""The booking state machine: the one place that says who may move a booking where.

    requested -> offered -> accepted -> en_route -> in_service -> completed
              -> confirmed -> settled -> rated
    side exits: cancelled, expired, escalated, declined, no_show, disputed

`TRANSITIONS` is data: for each action the states it may start from, the parties allowed to
take it and the state it leads to. `apply` performs one transition as a conditional UPDATE on
(state, version) so that, of two racing actors, exactly one wins and the other gets 409 with
the state it lost to; it writes the transition log row and publishes the change to everyone
concerned, all on the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from market.errors import Conflict, Forbidden
from market.models import Booking, BookingEvent, BookingState

S = BookingState


class Party(StrEnum):
    """Who acts on a booking, relative to it (not the account's role)."""

    elder_side = "elder_side"  # the elder or an approved linked family member
    helper = "helper"  # the helper holding the offer or the booking
    centre = "centre"  # a centre admin of the booking's district
    system = "system"  # the matching loop and timers


class Action(StrEnum):
    offer = "offer"
    accept = "accept"
    decline = "decline"
    offer_timeout = "offer_timeout"
    escalate = "escalate"
    dispatch = "dispatch"
    refuse = "refuse"
    expire = "expire"
    start = "start"
    check_in = "check_in"
    check_out = "check_out"
    confirm = "confirm"
    auto_confirm = "auto_confirm"
    dispute = "dispute"
    uphold = "uphold"
    reject = "reject"
    settle = "settle"
    rate = "rate"
    cancel = "cancel"
    reschedule = "reschedule"
    helper_cancel = "helper_cancel"
    no_show = "no_show"


class NoShowSide(StrEnum):
    helper_absent = "helper_absent"
    elder_not_home = "elder_not_home"
    elder_refused = "elder_refused"


@dataclass(frozen=True)
class Rule:
    sources: frozenset[BookingState]
    parties: frozenset[Party]
    target: BookingState


def _rule(sources: set[BookingState], parties: set[Party], target: BookingState) -> Rule:
    return Rule(frozenset(sources), frozenset(parties), target)


E, H, C, SYS = Party.elder_side, Party.helper, Party.centre, Party.system
LIVE_BEFORE_SERVICE = {S.requested, S.offered, S.accepted, S.en_route, S.escalated}

TRANSITIONS: Mapping[Action, Rule] = {
    Action.offer: _rule({S.requested}, {SYS}, S.offered),
    Action.accept: _rule({S.offered}, {H}, S.accepted),
    # A decline or a lapsed offer sends the booking back for re-matching without that helper.
    Action.decline: _rule({S.offered}, {H}, S.requested),
    Action.offer_timeout: _rule({S.offered}, {SYS}, S.requested),
    Action.escalate: _rule({S.requested, S.offered}, {SYS}, S.escalated),
    # The centre staffs an escalated booking by hand; the helper still has to accept.
    Action.dispatch: _rule({S.escalated, S.requested}, {C}, S.offered),
    Action.refuse: _rule({S.escalated}, {C}, S.declined),
    Action.expire: _rule({S.requested, S.offered, S.escalated}, {SYS}, S.expired),
    Action.start: _rule({S.accepted}, {H}, S.en_route),
    Action.check_in: _rule({S.accepted, S.en_route}, {H}, S.in_service),
    Action.check_out: _rule({S.in_service}, {H}, S.completed),
    # A helper confirms only by presenting the elder side's one-time code (checked by caller).
    Action.confirm: _rule({S.completed}, {E, C, H}, S.confirmed),
    Action.auto_confirm: _rule({S.completed}, {SYS}, S.confirmed),
    Action.dispute: _rule({S.completed}, {E, C}, S.disputed),
    # Upheld: the complaint stands, no hours. Rejected: the service counts and settles.
    Action.uphold: _rule({S.disputed}, {C}, S.cancelled),
    Action.reject: _rule({S.disputed}, {C}, S.confirmed),
    Action.settle: _rule({S.confirmed}, {SYS}, S.settled),
    Action.rate: _rule({S.settled}, {E}, S.rated),
    Action.cancel: _rule(LIVE_BEFORE_SERVICE, {E, C}, S.cancelled),
    # One occurrence of a series moves to another time; nobody has taken it yet.
    Action.reschedule: _rule({S.requested, S.offered, S.escalated}, {E, C}, S.requested),
    # The helper drops out; the booking is re-staffed without them.
    Action.helper_cancel: _rule({S.accepted, S.en_route}, {H}, S.requested),
    Action.no_show: _rule({S.accepted, S.en_route, S.in_service}, {E, C, H}, S.no_show),
}

# Which side may report which kind of no-show, and from which states.
NO_SHOW_RULES: Mapping[NoShowSide, tuple[frozenset[Party], frozenset[BookingState]]] = {
    NoShowSide.helper_absent: (frozenset({E, C}), frozenset({S.accepted, S.en_route})),
    NoShowSide.elder_not_home: (frozenset({H}), frozenset({S.accepted, S.en_route})),
    NoShowSide.elder_refused: (frozenset({H}), frozenset({S.en_route, S.in_service})),
}

TERMINAL = frozenset({S.rated, S.cancelled, S.expired, S.declined, S.no_show})


def wrong_state(booking_id: UUID, action: Action, state: BookingState) -> Conflict:
    return Conflict(
        "booking.wrong_state",
        f"booking {booking_id} is {state.value}; cannot {action.value}",
        {"state": state.value, "action": action.value},
    )


def check(action: Action, party: Party, booking_id: UUID, state: BookingState) -> BookingState:
    """The target state, or 403 (party not allowed) / 409 (not from this state)."""
    rule = TRANSITIONS[action]
    if party not in rule.parties:
        raise Forbidden(
            "booking.party_forbidden", f"the {party.value} may not {action.value} a booking"
        )
    if state not in rule.sources:
        raise wrong_state(booking_id, action, state)
    return rule.target


def check_no_show(side: NoShowSide, party: Party, booking_id: UUID, state: BookingState) -> None:
    parties, sources = NO_SHOW_RULES[side]
    if party not in parties:
        raise Forbidden("booking.party_forbidden", f"the {party.value} may not report {side.value}")
    if state not in sources:
        raise wrong_state(booking_id, Action.no_show, state)


class Publisher(Protocol):
    """A transaction that also publishes events (market.realtime.events.event_transaction)."""

    connection: BaseDBAsyncClient

    async def publish(self, streams: Any, kind: str, payload: dict[str, Any]) -> Any: ...


@dataclass(frozen=True)
class ActorRef:
    party: Party
    user_id: UUID | None
    role: str  # the account's role, or "system"


SYSTEM = ActorRef(Party.system, None, "system")


@dataclass(frozen=True)
class Change:
    action: Action
    reason: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)
    # Extra columns written together with the state change.
    columns: Mapping[str, Any] = field(default_factory=dict)


def booking_payload(booking: Booking) -> dict[str, Any]:
    """What a state-change event carries: enough for a client to refresh its view."""
    return {
        "booking_id": str(booking.id),
        "state": booking.state.value,
        "service": booking.service,
        "elder_id": str(booking.elder_id),  # type: ignore[attr-defined]
        "helper_id": str(booking.helper_id) if booking.helper_id else None,  # type: ignore[attr-defined]
        "version": booking.version,
    }


async def apply(
    tx: Publisher,
    booking: Booking,
    change: Change,
    actor: ActorRef,
    *,
    now: datetime,
    streams: Any,
) -> Booking:
    """Move `booking` by `change`; 409 if someone else moved it first. Returns the new row."""
    source = booking.state
    target = check(change.action, actor.party, booking.id, source)
    columns = {**change.columns, "state": target, "version": booking.version + 1}
    updated = (
        await Booking.filter(id=booking.id, state=source, version=booking.version)
        .using_db(tx.connection)
        .update(**columns, updated_at=now)
    )
    if updated != 1:
        current = await Booking.filter(id=booking.id).using_db(tx.connection).first()
        raise wrong_state(booking.id, change.action, current.state if current else source)
    for name, value in columns.items():
        setattr(booking, name, value)
    await BookingEvent.create(
        booking_id=booking.id,
        action=change.action.value,
        from_state=source.value,
        to_state=target.value,
        actor_id=actor.user_id,
        actor_role=actor.role,
        reason=change.reason,
        detail=dict(change.detail),
        at=now,
        using_db=tx.connection,
    )
    payload = {
        **booking_payload(booking),
        "action": change.action.value,
        "from": source.value,
        "actor_role": actor.role,
    }
    await tx.publish(streams, "booking.state", payload)
    if booking.emergency and target in (S.requested, S.escalated):
        # Back to be staffed: an emergency acknowledged by the helper who dropped out (or by
        # the centre while offers were out) is open again, in this same transaction.
        from market.emergency.calls import booking_returned

        await booking_returned(tx, booking, change.action.value, now=now)
    return booking


async def record_creation(
    tx: Publisher, booking: Booking, actor: ActorRef, *, now: datetime, streams: Any
) -> None:
    """Log and publish a new booking's first state (`requested`)."""
    await BookingEvent.create(
        booking_id=booking.id,
        action="request",
        from_state="",
        to_state=booking.state.value,
        actor_id=actor.user_id,
        actor_role=actor.role,
        at=now,
        using_db=tx.connection,
    )
    payload = {**booking_payload(booking), "action": "request", "from": None}
    await tx.publish(streams, "booking.state", {**payload, "actor_role": actor.role})
