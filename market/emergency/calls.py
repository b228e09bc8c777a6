"""The emergency-call record: opened by the fan-out, acknowledged once, every step logged.

Every change to a call runs in a booking transaction (`market.services.booking_tx`), so the
row, its steps and the events announcing them commit together, and locks the call row first
(`SELECT ... FOR UPDATE` on PostgreSQL; SQLite has one writer): the state it checks cannot
change under it, so of any number of concurrent acknowledgements exactly one finds the call
open, and the steps of one call are numbered without gaps. A transaction that also touches the
booking (fan-out, accept, any transition) has locked the booking row before the call row;
nothing locks them the other way round, so they never deadlock.

An acknowledgement holds while someone is on the way: when the booking goes back to be
staffed (its helper dropped out, the offers the centre had seen all lapsed), the transition's
own transaction re-opens the call (`booking_returned`, called by `lifecycle.apply`), and the
timer escalates it again from then on, on the delays it opened with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import matching
from market.emergency.models import (
    AckVia,
    CallState,
    EmergencyCall,
    EmergencyStep,
    Escalation,
    StepKind,
    WebhookState,
)
from market.lifecycle import Publisher
from market.models import Booking, BookingState
from market.policy import DistrictPolicy
from market.realtime.events import admin_stream, elder_stream
from market.services.scope import Principal

# The booking waits to be staffed again: nobody is on the way any more.
RETURNED = frozenset({BookingState.requested, BookingState.escalated})


@dataclass(frozen=True)
class Actor:
    """Who took a step: a person (id and account role) or the timer."""

    user_id: UUID | None
    role: str


SYSTEM = Actor(None, "system")


def acknowledge_path(call_id: UUID) -> str:
    return f"/api/v1/emergencies/{call_id}/acknowledgement"


async def lock_call(tx: Publisher, **where: Any) -> EmergencyCall | None:
    """The call row, locked until the transaction ends."""
    return await EmergencyCall.select_for_update().using_db(tx.connection).get_or_none(**where)


async def log_step(
    tx: Publisher,
    call: EmergencyCall,
    kind: StepKind,
    *,
    at: datetime,
    actor: Actor = SYSTEM,
    detail: Mapping[str, Any] | None = None,
) -> EmergencyStep:
    """Append a step; the caller holds the call row's lock (`lock_call`)."""
    call.steps += 1
    await EmergencyCall.filter(id=call.id).using_db(tx.connection).update(steps=call.steps)
    return await EmergencyStep.create(
        call_id=call.id,
        seq=call.steps,
        kind=kind,
        at=at,
        actor_id=actor.user_id,
        actor_role=actor.role,
        detail=dict(detail or {}),
        using_db=tx.connection,
    )


def _ids(call: EmergencyCall) -> dict[str, str]:
    return {"emergency_id": str(call.id), "booking_id": str(call.booking_id)}


async def publish(
    tx: Publisher, call: EmergencyCall, kind: str, extra: Mapping[str, Any] | None = None
) -> None:
    """Tell the district's admin feed and the elder's stream (which linked family read): the
    elder's side follows every step live. Payloads carry the call's and booking's ids and
    what happened, never a helper's or an admin's id (those are in the centre's record)."""
    streams = [admin_stream(call.district_id), elder_stream(call.elder_id)]
    await tx.publish(streams, kind, {**_ids(call), **(extra or {})})


async def alert_duty_feed(
    tx: Publisher, call: EmergencyCall, *, now: datetime, reason: str
) -> None:
    """Escalation step 1: an alert on the district's admin feed that needs acknowledging."""
    call.escalation = Escalation.duty_feed
    await call.save(using_db=tx.connection, update_fields=["escalation"])
    await log_step(tx, call, StepKind.duty_feed, at=now, detail={"reason": reason})
    await publish(
        tx,
        call,
        "emergency.escalated",
        {
            "step": "duty_feed",
            "reason": reason,
            "needs_acknowledgement": True,
            "acknowledge": acknowledge_path(call.id),
            "webhook_due_at": call.webhook_due_at.isoformat(),
        },
    )


async def _open(
    tx: Publisher,
    booking: Booking,
    version: int,
    policy: DistrictPolicy,
    now: datetime,
) -> EmergencyCall:
    rules = policy.bookings
    call = await EmergencyCall.create(
        booking_id=booking.id,
        elder_id=booking.elder_id,  # type: ignore[attr-defined]
        district_id=booking.district_id,  # type: ignore[attr-defined]
        policy_version=version,
        created_at=now,
        duty_feed_due_at=now + timedelta(seconds=rules.emergency_duty_feed_after_seconds),
        webhook_due_at=now + timedelta(seconds=rules.emergency_webhook_after_seconds),
        duty_feed_after_seconds=rules.emergency_duty_feed_after_seconds,
        webhook_after_seconds=rules.emergency_webhook_after_seconds,
        using_db=tx.connection,
    )
    due = _due(call)
    await log_step(tx, call, StepKind.created, at=now, detail={"policy_version": version, **due})
    await publish(tx, call, "emergency.opened", due)
    return call


def _due(call: EmergencyCall) -> dict[str, str]:
    return {
        "duty_feed_due_at": call.duty_feed_due_at.isoformat(),
        "webhook_due_at": call.webhook_due_at.isoformat(),
    }


# Everything `reopen` writes on the call row.
REOPENED_FIELDS = [
    "state",
    "escalation",
    "duty_feed_due_at",
    "webhook_due_at",
    "webhook_state",
    "webhook_delivery_id",
    "webhook_lease_until",
    "acknowledged_at",
    "acknowledged_by_id",
    "acknowledged_role",
    "acknowledged_via",
    "handling",
]


async def reopen(
    tx: Publisher, call: EmergencyCall, *, now: datetime, booking_state: str, action: str
) -> None:
    """Open the locked, acknowledged `call` again: nobody is on the way any more.

    The acknowledgement it had is kept in the `reopened` step (and in the log before it); the
    escalation starts over from `now` on the delays the call opened with. A webhook still
    being sent for the earlier escalation is stopped: the next one is claimed afresh, with a
    new delivery id, when it falls due."""
    before = {
        "booking_state": booking_state,
        "action": action,
        "via": call.acknowledged_via.value if call.acknowledged_via else None,
        "acknowledged_role": call.acknowledged_role,
        "acknowledged_by": str(call.acknowledged_by_id) if call.acknowledged_by_id else None,
        "handling": call.handling,
    }
    if call.webhook_state is WebhookState.pending:
        detail = {"delivery_id": str(call.webhook_delivery_id), "reason": "reopened"}
        await log_step(tx, call, StepKind.webhook_stopped, at=now, detail=detail)
    call.state = CallState.open
    call.escalation = Escalation.none
    call.duty_feed_due_at = now + timedelta(seconds=call.duty_feed_after_seconds)
    call.webhook_due_at = now + timedelta(seconds=call.webhook_after_seconds)
    call.webhook_state = None
    call.webhook_delivery_id = None
    call.webhook_lease_until = None
    call.acknowledged_at = None
    call.acknowledged_by_id = None
    call.acknowledged_role = None
    call.acknowledged_via = None
    call.handling = False
    await call.save(using_db=tx.connection, update_fields=REOPENED_FIELDS)
    due = _due(call)
    await log_step(tx, call, StepKind.reopened, at=now, detail={**before, **due})
    payload = {
        "booking_state": booking_state,
        "needs_acknowledgement": True,
        "acknowledge": acknowledge_path(call.id),
        **due,
    }
    await publish(tx, call, "emergency.reopened", payload)


async def booking_returned(tx: Publisher, booking: Booking, action: str, *, now: datetime) -> None:
    """Called by `lifecycle.apply` in the transition's transaction (which has updated, so
    locked, the booking row before the call row) when an emergency booking goes back to be
    staffed: its acknowledged call opens again."""
    if not booking.emergency or booking.state not in RETURNED:
        return
    call = await lock_call(tx, booking_id=booking.id)
    if call is None or call.state is not CallState.acknowledged:
        return
    await reopen(tx, call, now=now, booking_state=booking.state.value, action=action)


async def fanned_out(
    tx: Publisher,
    booking: Booking,
    version: int,
    policy: DistrictPolicy,
    chosen: Sequence[matching.Assignment],
    *,
    now: datetime,
) -> None:
    """Called by the emergency fan-out in its transaction: open the call on the first fan-out,
    log whom it was offered to (or that nobody was in reach: then the duty feed is alerted at
    once, there is no helper to wait for)."""
    # The booking row before the call row, as every transaction touching both does.
    await Booking.select_for_update().using_db(tx.connection).get(id=booking.id)
    call = await lock_call(tx, booking_id=booking.id)
    if call is None:
        call = await _open(tx, booking, version, policy, now)
    elif call.state is CallState.acknowledged:
        # Fanned out again, so nobody is on the way. `booking_returned` re-opened it when the
        # booking came back; this catches a call acknowledged before that was in place.
        await reopen(tx, call, now=now, booking_state=booking.state.value, action="fan_out")
    if chosen:
        helpers = [a.helper_id for a in chosen]
        detail = {"helpers": len(helpers), "helper_ids": helpers}
        await log_step(tx, call, StepKind.offered, at=now, detail=detail)
        return
    await log_step(tx, call, StepKind.no_helper_in_reach, at=now)
    if call.state is CallState.open and call.escalation is Escalation.none:
        await alert_duty_feed(tx, call, now=now, reason="no helper in reach")


async def acknowledge(
    tx: Publisher,
    call: EmergencyCall,
    actor: Actor,
    via: AckVia,
    *,
    now: datetime,
    handling: bool = False,
) -> None:
    """Mark the locked, open `call` acknowledged: the escalation stops here."""
    call.state = CallState.acknowledged
    call.acknowledged_at = now
    call.acknowledged_by_id = actor.user_id
    call.acknowledged_role = actor.role
    call.acknowledged_via = via
    call.handling = handling
    await call.save(
        using_db=tx.connection,
        update_fields=[
            "state",
            "acknowledged_at",
            "acknowledged_by_id",
            "acknowledged_role",
            "acknowledged_via",
            "handling",
        ],
    )
    await log_step(
        tx,
        call,
        StepKind.acknowledged,
        at=now,
        actor=actor,
        detail={"via": via.value, "handling": handling, "escalation": call.escalation.name},
    )
    await publish(
        tx,
        call,
        "emergency.acknowledged",
        {"via": via.value, "role": actor.role, "handling": handling},
    )


async def helper_accepted(
    tx: Publisher, booking: Booking, principal: Principal, *, now: datetime
) -> None:
    """Called by the winning accept in its transaction (the booking row is locked): a helper
    taking an emergency acknowledges it, unless the centre was first."""
    if not booking.emergency:
        return
    helper = Actor(principal.user_id, principal.role.value)
    call = await lock_call(tx, booking_id=booking.id)
    if call is None:
        return
    if call.state is CallState.open:
        await acknowledge(tx, call, helper, AckVia.accept, now=now)
    else:
        await log_step(tx, call, StepKind.helper_accepted, at=now, actor=helper)
