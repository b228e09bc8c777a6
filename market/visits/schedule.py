"""Where each elder stands: tier, last visit, due time; the centre's queue and monthly coverage.

Tiers are judged by the elder's current profile flags and the policy in force now (coverage:
at the month's end), since profiles keep no history of their flags.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count, Max

from market.models import ElderProfile, Role, User, UserStatus
from market.policy import VisitRules, VisitTier
from market.services.districts import policy_in_force
from market.services.scope import Principal, district_subtree, require_admin_of
from market.visits import tiers
from market.visits.models import MajorChange, VisitRecord

# Keeps every `IN (...)` list far below the databases' bound-parameter limits.
CHUNK = 500
QUEUE_MAX_LIMIT = 200


@dataclass(frozen=True)
class ElderDue:
    elder_id: UUID
    name: str
    district_id: UUID
    tier: VisitTier
    interval_days: int
    last_visit_at: datetime | None
    last_major_change_at: datetime | None
    due_at: datetime
    overdue_minutes: int


@dataclass(frozen=True)
class _Elder:
    id: UUID
    name: str
    district_id: UUID
    registered_at: datetime
    birth_year: int
    flags: frozenset[str]


def chunks(ids: Sequence[UUID]) -> Iterable[list[UUID]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


def aware(value: Any) -> datetime:
    # Aggregates come back as text on SQLite and as datetimes on PostgreSQL.
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def _elders(
    district_ids: Iterable[UUID] | None,
    elder_id: UUID | None = None,
    connection: BaseDBAsyncClient | None = None,
) -> list[_Elder]:
    users = User.filter(role=Role.elder).exclude(status=UserStatus.suspended)
    if elder_id is not None:
        users = users.filter(id=elder_id)
    if district_ids is not None:
        users = users.filter(district_id__in=list(district_ids))
    if connection is not None:
        users = users.using_db(connection)
    rows = await users.order_by("id").values("id", "name", "district_id", "created_at")
    found: dict[UUID, dict[str, Any]] = {}
    for chunk in chunks([row["id"] for row in rows]):
        profiles = ElderProfile.filter(user_id__in=chunk)
        if connection is not None:
            profiles = profiles.using_db(connection)
        for p in await profiles.values("user_id", "birth_year", "flags"):
            found[p["user_id"]] = p
    out: list[_Elder] = []
    for row in rows:
        profile = found.get(row["id"])
        if profile is not None:
            out.append(
                _Elder(
                    id=row["id"],
                    name=row["name"],
                    district_id=row["district_id"],
                    registered_at=aware(row["created_at"]),
                    birth_year=profile["birth_year"],
                    flags=frozenset(profile["flags"] or ()),
                )
            )
    return out


async def _latest(
    model: type[VisitRecord] | type[MajorChange],
    column: str,
    ids: Sequence[UUID],
    connection: BaseDBAsyncClient | None,
) -> dict[UUID, datetime]:
    latest: dict[UUID, datetime] = {}
    for chunk in chunks(ids):
        query = model.filter(elder_id__in=chunk)
        if connection is not None:
            query = query.using_db(connection)
        rows = (
            await query.group_by("elder_id").annotate(last=Max(column)).values("elder_id", "last")
        )
        latest.update({UUID(str(r["elder_id"])): aware(r["last"]) for r in rows})
    return latest


async def _visit_rules(district_ids: Iterable[UUID], at: datetime) -> dict[UUID, VisitRules]:
    return {d: (await policy_in_force(d, at))[1].visits for d in sorted(set(district_ids))}


async def _dues(
    elders: list[_Elder], *, now: datetime, connection: BaseDBAsyncClient | None = None
) -> list[ElderDue]:
    ids = [e.id for e in elders]
    visits = await _latest(VisitRecord, "visited_at", ids, connection)
    changes = await _latest(MajorChange, "at", ids, connection)
    rules = await _visit_rules((e.district_id for e in elders), now)
    out = []
    for elder in elders:
        rule = tiers.tier_of(
            rules[elder.district_id],
            birth_year=elder.birth_year,
            flags=tiers.known_flags(elder.flags),
            on=now.date(),
        )
        if rule is None:
            continue
        due = tiers.due_at(
            rule,
            last_visit=visits.get(elder.id),
            baseline=elder.registered_at,
            last_major_change=changes.get(elder.id),
        )
        out.append(
            ElderDue(
                elder_id=elder.id,
                name=elder.name,
                district_id=elder.district_id,
                tier=rule.tier,
                interval_days=rule.interval_days,
                last_visit_at=visits.get(elder.id),
                last_major_change_at=changes.get(elder.id),
                due_at=due,
                overdue_minutes=tiers.overdue_minutes(due, now),
            )
        )
    return out


async def elder_due(
    elder_id: UUID, *, now: datetime, connection: BaseDBAsyncClient | None = None
) -> ElderDue | None:
    """The elder's schedule, or None for an elder on no visiting schedule."""
    dues = await _dues(await _elders(None, elder_id, connection), now=now, connection=connection)
    return dues[0] if dues else None


def due_payload(due: ElderDue | None) -> dict[str, Any]:
    if due is None:
        return {"tier": None, "due_at": None}
    return {"tier": due.tier.value, "due_at": due.due_at.isoformat()}


def due_json(due: ElderDue) -> dict[str, Any]:
    return {
        "elder_id": str(due.elder_id),
        "name": due.name,
        "district_id": str(due.district_id),
        "tier": due.tier.value,
        "interval_days": due.interval_days,
        "last_visit_at": due.last_visit_at.isoformat() if due.last_visit_at else None,
        "last_major_change_at": (
            due.last_major_change_at.isoformat() if due.last_major_change_at else None
        ),
        "due_at": due.due_at.isoformat(),
        "overdue_minutes": due.overdue_minutes,
    }


async def overdue_everywhere(*, now: datetime) -> list[ElderDue]:
    """Every overdue elder of every district, the longest overdue first (the feed's duty)."""
    dues = [d for d in await _dues(await _elders(None), now=now) if d.overdue_minutes > 0]
    return sorted(dues, key=lambda d: (d.due_at, str(d.elder_id)))


@dataclass(frozen=True)
class QueuePage:
    total: int
    items: list[ElderDue]


async def overdue_queue(
    principal: Principal,
    district_id: UUID,
    *,
    now: datetime,
    limit: int,
    offset: int,
    overdue_only: bool,
) -> QueuePage:
    """Elders on a schedule in the district's subtree, the longest overdue first."""
    require_admin_of(principal, district_id, "see this district's visit queue")
    dues = await _dues(await _elders(await district_subtree(district_id)), now=now)
    if overdue_only:
        dues = [d for d in dues if d.overdue_minutes > 0]
    # Earliest due time first is most overdue first; the id makes ties deterministic.
    dues.sort(key=lambda d: (d.due_at, str(d.elder_id)))
    return QueuePage(total=len(dues), items=dues[offset : offset + min(limit, QUEUE_MAX_LIMIT)])


@dataclass(frozen=True)
class Coverage:
    month: date
    target_bp: int
    tiers: list[tiers.TierCoverage]
    # Elders of tiers needing at least one visit a month, and those visited in the month.
    monthly_elders: int
    monthly_visited: int

    @property
    def monthly_rate_bp(self) -> int:
        return tiers.rate_bp(self.monthly_visited, self.monthly_elders)


def month_bounds(month: date) -> tuple[datetime, datetime, int]:
    days = calendar.monthrange(month.year, month.month)[1]
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    return start, start + timedelta(days=days), days


async def coverage(principal: Principal, district_id: UUID, month: date) -> Coverage:
    """Visited / required per tier for a calendar month (UTC), against the monthly target."""
    require_admin_of(principal, district_id, "see this district's visit coverage")
    start, end, days = month_bounds(month)
    at = end - timedelta(microseconds=1)
    elders = await _elders(await district_subtree(district_id))
    rules = await _visit_rules([district_id, *(e.district_id for e in elders)], at)
    counts: dict[UUID, int] = {}
    for chunk in chunks([e.id for e in elders]):
        rows = (
            await VisitRecord.filter(elder_id__in=chunk, visited_at__gte=start, visited_at__lt=end)
            .group_by("elder_id")
            .annotate(n=Count("id"))
            .values("elder_id", "n")
        )
        counts.update({UUID(str(r["elder_id"])): int(r["n"]) for r in rows})
    by_tier: dict[VisitTier, list[int]] = {tier: [] for tier in VisitTier}
    for elder in elders:
        rule = tiers.tier_of(
            rules[elder.district_id],
            birth_year=elder.birth_year,
            flags=tiers.known_flags(elder.flags),
            on=at.date(),
        )
        if rule is not None:
            by_tier[rule.tier].append(counts.get(elder.id, 0))
    # Each elder's tier follows their own community's policy; what a tier requires in the
    # month and the target are those of the district asked about.
    own = rules[district_id]
    table = [
        tiers.tier_coverage(rule, by_tier[rule.tier], days_in_month=days) for rule in own.tiers
    ]
    monthly = [row for row in table if row.visits_required_each >= 1]
    return Coverage(
        month=month,
        target_bp=own.monthly_rate_target_bp,
        tiers=table,
        monthly_elders=sum(row.elders for row in monthly),
        monthly_visited=sum(row.visited for row in monthly),
    )


def coverage_json(cover: Coverage) -> dict[str, Any]:
    return {
        "month": cover.month.strftime("%Y-%m"),
        "target_bp": cover.target_bp,
        "monthly_rate_bp": cover.monthly_rate_bp,
        "target_met": cover.monthly_rate_bp >= cover.target_bp,
        "monthly_elders": cover.monthly_elders,
        "monthly_visited": cover.monthly_visited,
        "tiers": [
            {
                "tier": row.tier.value,
                "elders": row.elders,
                "visits_required_each": row.visits_required_each,
                "visited": row.visited,
                "fully_covered": row.fully_covered,
                "visits": row.visits,
                "visited_rate_bp": tiers.rate_bp(row.visited, row.elders),
            }
            for row in cover.tiers
        ],
    }
