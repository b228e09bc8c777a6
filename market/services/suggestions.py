"""Picks the web client offers instead of ids typed by hand.

- For the centre's queue: the helpers the matcher would choose for one booking the centre may
  dispatch, best first, with travel minutes and names, so dispatching is one click. The same
  refusals as the matching loop apply (blocked by the elder, offered before, certificates the
  policy requires, self-paid bookings only for providers), so every suggestion can be
  dispatched.
- For gifts: the giver's approved linked relatives with what each is to the giver and whether
  the policy in force lets hours go to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import matching
from market import lifecycle
from market.lifecycle import Action, Party
from market.models import Booking, FamilyLink, LinkStatus, User
from market.services.bookings import get_booking
from market.services.districts import policy_in_force
from market.services.ledger_actions import relation_of
from market.services.matching_loop import candidate_helpers, request_of
from market.services.scope import Principal, require_admin_of

SUGGESTIONS_MAX = 10


@dataclass(frozen=True)
class Suggestion:
    helper_id: UUID
    name: str
    kind: str
    travel_minutes: int
    planned_start: datetime
    cost: float
    rating: float | None


@dataclass(frozen=True)
class Suggestions:
    booking: Booking
    # False once the window can no longer hold the whole service if it started now: the
    # matcher then has nobody to suggest, and the centre has to call or decline.
    window_open: bool
    helpers: list[Suggestion]


def window_open(booking: Booking, now: datetime) -> bool:
    start = max(booking.window_start, now)
    return start + timedelta(minutes=booking.duration_minutes) <= booking.window_end


async def for_booking(
    principal: Principal, booking_id: UUID, *, limit: int, now: datetime
) -> Suggestions:
    """The best `limit` helpers for a booking the centre could dispatch now (409 otherwise)."""
    booking = await get_booking(booking_id)
    require_admin_of(principal, booking.district_id, "see helper suggestions for this district")
    lifecycle.check(Action.dispatch, Party.centre, booking.id, booking.state)
    version, policy = await policy_in_force(booking.district_id, now)
    match_policy, helpers, blocked = await candidate_helpers([booking], version, policy, now)
    request = await request_of(booking, blocked.get(booking.id, frozenset()))
    chosen = matching.urgent(
        request,
        helpers,
        k=min(limit, SUGGESTIONS_MAX),
        policy=match_policy,
        now=matching.minutes_since_epoch(now),
    )
    by_id = {h.id: h for h in helpers}
    ids = [UUID(a.helper_id) for a in chosen]
    names: dict[UUID, str] = dict(await User.filter(id__in=ids).values_list("id", "name"))  # type: ignore[arg-type]
    picked = [
        Suggestion(
            helper_id=helper_id,
            name=names.get(helper_id, ""),
            kind=by_id[a.helper_id].kind.value,
            travel_minutes=a.travel_minutes,
            planned_start=datetime.fromtimestamp(a.start * 60, UTC),
            cost=a.cost.total,
            rating=by_id[a.helper_id].rating,
        )
        for a, helper_id in zip(chosen, ids, strict=True)
    ]
    return Suggestions(booking, window_open(booking, now), picked)


def suggestions_json(found: Suggestions) -> dict[str, Any]:
    return {
        "booking_id": str(found.booking.id),
        "state": found.booking.state.value,
        "window_open": found.window_open,
        "suggestions": [
            {
                "helper_id": str(s.helper_id),
                "name": s.name,
                "kind": s.kind,
                "travel_minutes": s.travel_minutes,
                "planned_start": s.planned_start.isoformat(),
                "cost": round(s.cost, 3),
                "rating": None if s.rating is None else round(s.rating, 2),
            }
            for s in found.helpers
        ],
    }


async def gift_recipients(principal: Principal, *, now: datetime) -> dict[str, Any]:
    """The caller's approved linked relatives: what each is to the caller and whether the
    policy in force lets the caller gift hours to them (the gift itself checks again)."""
    # A link may run either way: the caller as the family member (a volunteer can be an
    # elder's child too) or as the elder.
    as_family = FamilyLink.filter(family_id=principal.user_id, status=LinkStatus.approved)
    as_elder = FamilyLink.filter(elder_id=principal.user_id, status=LinkStatus.approved)
    ids = sorted(
        {
            *await as_family.values_list("elder_id", flat=True),
            *await as_elder.values_list("family_id", flat=True),
        }
    )
    names: dict[UUID, str] = dict(await User.filter(id__in=ids).values_list("id", "name"))  # type: ignore[arg-type]
    version, policy = await policy_in_force(principal.district_id, now)
    allowed = policy.time_bank.gift_recipients
    relatives = []
    for user_id in ids:
        relation = await relation_of(user_id, principal.user_id)
        relatives.append(
            {
                "user_id": str(user_id),
                "name": names.get(user_id, ""),
                "relation": relation.value if relation else None,
                "gift_allowed": relation is not None and relation in allowed,
            }
        )
    relatives.sort(key=lambda r: (not r["gift_allowed"], r["name"], r["user_id"]))
    return {"policy_version": version, "relatives": relatives}
