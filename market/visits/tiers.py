"""Which visit tier an elder is in and when the next visit is due (pure: no clock, no I/O).

The thresholds are district policy data (`market.policy.VisitRules`): tiers are tried in the
policy's order and the first with a matching criterion wins; an elder matching none (e.g.
younger than every criterion's age) is not on a visiting schedule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from market.policy import PriorityFlag, VisitRules, VisitTier, VisitTierRule

KNOWN_FLAGS = {flag.value: flag for flag in PriorityFlag}


def known_flags(raw: Iterable[str]) -> frozenset[PriorityFlag]:
    """The stored flag strings the policy knows; unknown ones (older data) match nothing."""
    return frozenset(KNOWN_FLAGS[f] for f in raw if f in KNOWN_FLAGS)


def age_on(birth_year: int, on: date) -> int:
    # Profiles keep the birth year only, so the age is the one reached during `on`'s year.
    return on.year - birth_year


def tier_of(
    rules: VisitRules, *, birth_year: int, flags: Iterable[PriorityFlag], on: date
) -> VisitTierRule | None:
    age = age_on(birth_year, on)
    held = frozenset(flags)
    for rule in rules.tiers:
        if any(criterion.matches(age, held) for criterion in rule.criteria):
            return rule
    return None


def due_at(
    rule: VisitTierRule,
    *,
    last_visit: datetime | None,
    baseline: datetime,
    last_major_change: datetime | None,
) -> datetime:
    """When the next visit is due.

    The interval runs from the last visit or, for an elder never visited, from `baseline`
    (registration: the centre met the elder then). A major change after the last visit makes
    the elder due within `after_major_change_hours` of it if that comes sooner; a tier with 0
    hours has no such rule.
    """
    start = last_visit if last_visit is not None else baseline
    due = start + timedelta(days=rule.interval_days)
    if (
        rule.after_major_change_hours > 0
        and last_major_change is not None
        and (last_visit is None or last_major_change > last_visit)
    ):
        due = min(due, last_major_change + timedelta(hours=rule.after_major_change_hours))
    return due


def overdue_minutes(due: datetime, now: datetime) -> int:
    """Whole minutes past `due` (0 when not yet due)."""
    return max(0, int((now - due).total_seconds()) // 60)


@dataclass(frozen=True)
class TierCoverage:
    tier: VisitTier
    elders: int
    # Visits each elder of the tier needs in the month (weekly: 4 or 5; quarterly: 0).
    visits_required_each: int
    # Elders with at least one visit in the month / with all the visits they needed.
    visited: int
    fully_covered: int
    visits: int


def visits_required_in(rule: VisitTierRule, days_in_month: int) -> int:
    return days_in_month // rule.interval_days


def rate_bp(part: int, whole: int) -> int:
    """`part / whole` in basis points, rounded down; a tier with nobody in it is fully met."""
    return 10_000 if whole == 0 else part * 10_000 // whole


def tier_coverage(
    rule: VisitTierRule, visit_counts: Iterable[int], *, days_in_month: int
) -> TierCoverage:
    """Coverage of one tier from the month's visit count of each of its elders."""
    counts = list(visit_counts)
    each = visits_required_in(rule, days_in_month)
    return TierCoverage(
        tier=rule.tier,
        elders=len(counts),
        visits_required_each=each,
        visited=sum(1 for n in counts if n > 0),
        fully_covered=sum(1 for n in counts if n >= max(each, 1)),
        visits=sum(counts),
    )
