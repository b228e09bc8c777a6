"""Reading and acknowledging emergency calls (the HTTP side; the timer is `escalation`).

Who may read a call: centre admins of its district (or a district above it), the elder, and
family members with an approved link to the elder. Only centre admins acknowledge; a helper
acknowledges by accepting the offer (`calls.helper_accepted`). The elder's side sees every
step and who took it by role, but no person's id (not the helpers a call was offered to, not
the helper or admin who acknowledged it) and not the webhook's errors: those are for the
centre. The helper who is coming is on the booking itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from market.emergency import calls
from market.emergency.models import AckVia, CallState, EmergencyCall, EmergencyStep
from market.emergency.schemas import Acknowledge, EmergencyListQuery
from market.errors import Conflict, Forbidden, NotFound
from market.models import Role
from market.services.access import is_linked_family
from market.services.auth import now_utc
from market.services.booking_tx import booking_transaction
from market.services.districts import get_district
from market.services.scope import Principal, district_subtree, require_admin_of

# Step details the elder's side sees; the others name helpers, staff or infrastructure.
ELDER_SIDE_DETAIL = frozenset(
    {
        "helpers",
        "via",
        "handling",
        "booking_state",
        "action",
        "unacknowledged",
        "attempt",
        "policy_version",
        "duty_feed_due_at",
        "webhook_due_at",
    }
)


@dataclass(frozen=True)
class CallView:
    call: EmergencyCall
    steps: list[EmergencyStep]
    centre: bool  # the full view (centre admins) or the elder side's


async def _call(**where: Any) -> EmergencyCall:
    call = await EmergencyCall.get_or_none(**where)
    if call is None:
        raise NotFound("emergency_not_found", "no such emergency call")
    return call


async def _view(principal: Principal, call: EmergencyCall) -> CallView:
    centre = principal.administers(call.district_id)
    own = principal.role is Role.elder and principal.user_id == call.elder_id
    if not (centre or own or await is_linked_family(principal, call.elder_id)):
        raise Forbidden(
            "emergency_forbidden",
            "only the elder, their linked family and their centre may read this call",
        )
    steps = await EmergencyStep.filter(call_id=call.id).order_by("seq")
    return CallView(call, list(steps), centre)


async def read(principal: Principal, call_id: UUID) -> CallView:
    return await _view(principal, await _call(id=call_id))


async def read_for_booking(principal: Principal, booking_id: UUID) -> CallView:
    return await _view(principal, await _call(booking_id=booking_id))


async def acknowledge(
    principal: Principal, call_id: UUID, cmd: Acknowledge
) -> tuple[CallView, bool]:
    """Acknowledge as the centre; True if this request did it, False if it was done before
    (by anyone: acknowledging is idempotent). 409 for a call closed unacknowledged."""
    call = await _call(id=call_id)
    require_admin_of(principal, call.district_id, "acknowledge this emergency")
    now = now_utc()
    async with booking_transaction() as tx:
        locked = await calls.lock_call(tx, id=call_id)
        assert locked is not None  # calls are never deleted (the step log refers to them)
        call = locked
        done_now = call.state is CallState.open
        if done_now:
            actor = calls.Actor(principal.user_id, principal.role.value)
            await calls.acknowledge(tx, call, actor, AckVia.centre, now=now, handling=cmd.handling)
    if call.state is CallState.closed and call.acknowledged_at is None:
        raise Conflict(
            "emergency.closed",
            f"the call closed unacknowledged ({call.closed_reason})",
            {"state": call.state.value, "closed_reason": call.closed_reason},
        )
    return await _view(principal, call), done_now


async def list_for_district(
    principal: Principal, district_id: UUID, query: EmergencyListQuery
) -> tuple[int, list[EmergencyCall]]:
    district = await get_district(district_id)
    require_admin_of(principal, district.id, "read this district's emergency calls")
    rows = EmergencyCall.filter(district_id__in=list(await district_subtree(district.id)))
    if query.state is not None:
        rows = rows.filter(state=query.state)
    total = await rows.count()
    page = await rows.order_by("-created_at", "id").offset(query.offset).limit(query.limit)
    return total, list(page)


def _time(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def call_json(call: EmergencyCall) -> dict[str, Any]:
    acknowledgement = None
    if call.acknowledged_at is not None:
        acknowledgement = {
            "at": call.acknowledged_at.isoformat(),
            "by": str(call.acknowledged_by_id) if call.acknowledged_by_id else None,
            "role": call.acknowledged_role,
            "via": call.acknowledged_via.value if call.acknowledged_via else None,
            "handling": call.handling,
        }
    return {
        "id": str(call.id),
        "booking_id": str(call.booking_id),
        "elder_id": str(call.elder_id),
        "district_id": str(call.district_id),
        "state": call.state.value,
        "created_at": call.created_at.isoformat(),
        "policy_version": call.policy_version,
        "escalation": {
            "level": call.escalation.name,
            "duty_feed_due_at": call.duty_feed_due_at.isoformat(),
            "webhook_due_at": call.webhook_due_at.isoformat(),
            "webhook": call.webhook_state.value if call.webhook_state else None,
        },
        "acknowledgement": acknowledgement,
        "closed_at": _time(call.closed_at),
        "closed_reason": call.closed_reason,
    }


def step_json(step: EmergencyStep, *, centre: bool) -> dict[str, Any]:
    detail = dict(step.detail)
    actor_id = str(step.actor_id) if step.actor_id else None
    if not centre:
        detail = {k: v for k, v in detail.items() if k in ELDER_SIDE_DETAIL}
        actor_id = None  # the role says enough: helper and staff ids stay with the centre
    return {
        "seq": step.seq,
        "kind": step.kind.value,
        "at": step.at.isoformat(),
        "actor_id": actor_id,
        "actor_role": step.actor_role,
        "detail": detail,
    }


def view_json(view: CallView) -> dict[str, Any]:
    body = call_json(view.call)
    if not view.centre and body["acknowledgement"]:
        body["acknowledgement"]["by"] = None
    body["steps"] = [step_json(s, centre=view.centre) for s in view.steps]
    return body
