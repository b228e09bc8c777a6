"""Visit tiers from policy data and due dates from the last visit (pure, no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from market.policy import Criterion, PriorityFlag, VisitRules, VisitTier, VisitTierRule
from market.visits import tiers

RULES = VisitRules()
ON = date(2026, 11, 23)
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
HIGH = RULES.tier_rule(VisitTier.HIGH_RISK)
PRIORITY = RULES.tier_rule(VisitTier.PRIORITY)
GENERAL = RULES.tier_rule(VisitTier.GENERAL)


def tier(birth_year: int, *flags: PriorityFlag) -> VisitTier | None:
    rule = tiers.tier_of(RULES, birth_year=birth_year, flags=flags, on=ON)
    return None if rule is None else rule.tier


class TestTierOf:
    def test_eighty_living_alone_is_high_risk(self) -> None:
        assert tier(ON.year - 80, PriorityFlag.LIVING_ALONE) is VisitTier.HIGH_RISK

    def test_seventy_nine_living_alone_is_general(self) -> None:
        assert tier(ON.year - 79, PriorityFlag.LIVING_ALONE) is VisitTier.GENERAL

    def test_eighty_not_alone_is_general(self) -> None:
        assert tier(ON.year - 85) is VisitTier.GENERAL

    def test_severe_disability_is_high_risk_from_sixty(self) -> None:
        assert tier(ON.year - 60, PriorityFlag.SEVERE_DISABILITY) is VisitTier.HIGH_RISK

    def test_each_priority_flag_is_priority(self) -> None:
        for flag in (
            PriorityFlag.DISABLED,
            PriorityFlag.DISPERSED_DESTITUTE,
            PriorityFlag.LOST_ONLY_CHILD,
        ):
            assert tier(ON.year - 70, flag) is VisitTier.PRIORITY, flag

    def test_high_risk_wins_over_priority(self) -> None:
        both = (PriorityFlag.LIVING_ALONE, PriorityFlag.DISABLED)
        assert tier(ON.year - 90, *both) is VisitTier.HIGH_RISK

    def test_below_every_criterion_has_no_tier(self) -> None:
        assert tier(ON.year - 59) is None
        assert tier(ON.year - 59, PriorityFlag.DISABLED) is None

    def test_policy_data_decides_the_threshold(self) -> None:
        younger = VisitTierRule(
            VisitTier.HIGH_RISK,
            interval_days=7,
            after_major_change_hours=24,
            criteria=(Criterion(75, frozenset({PriorityFlag.LIVING_ALONE})),),
        )
        rules = replace(RULES, tiers=(younger, PRIORITY, GENERAL))
        rule = tiers.tier_of(
            rules, birth_year=ON.year - 75, flags={PriorityFlag.LIVING_ALONE}, on=ON
        )
        assert rule is not None and rule.tier is VisitTier.HIGH_RISK

    def test_unknown_stored_flags_are_ignored(self) -> None:
        assert tiers.known_flags(["living_alone", "retired_flag"]) == {PriorityFlag.LIVING_ALONE}


class TestDueAt:
    def test_weekly_from_last_visit(self) -> None:
        due = tiers.due_at(
            HIGH, last_visit=T0, baseline=T0 - timedelta(days=99), last_major_change=None
        )
        assert due == T0 + timedelta(days=7)

    def test_never_visited_counts_from_registration(self) -> None:
        assert tiers.due_at(PRIORITY, last_visit=None, baseline=T0, last_major_change=None) == (
            T0 + timedelta(days=30)
        )

    def test_general_is_quarterly(self) -> None:
        due = tiers.due_at(GENERAL, last_visit=T0, baseline=T0, last_major_change=None)
        assert due == T0 + timedelta(days=91)

    def test_major_change_after_visit_makes_high_risk_due_in_24_hours(self) -> None:
        change = T0 + timedelta(days=1)
        due = tiers.due_at(HIGH, last_visit=T0, baseline=T0, last_major_change=change)
        assert due == change + timedelta(hours=24)

    def test_major_change_before_last_visit_is_already_answered(self) -> None:
        due = tiers.due_at(
            HIGH, last_visit=T0, baseline=T0, last_major_change=T0 - timedelta(minutes=1)
        )
        assert due == T0 + timedelta(days=7)

    def test_regular_due_date_wins_when_sooner(self) -> None:
        change = T0 + timedelta(days=6, hours=12)
        due = tiers.due_at(HIGH, last_visit=T0, baseline=T0, last_major_change=change)
        assert due == T0 + timedelta(days=7)

    def test_tiers_without_the_24_hour_rule_ignore_major_changes(self) -> None:
        change = T0 + timedelta(days=1)
        due = tiers.due_at(PRIORITY, last_visit=T0, baseline=T0, last_major_change=change)
        assert due == T0 + timedelta(days=30)


class TestOverdueMinutes:
    def test_not_yet_due_is_zero(self) -> None:
        assert tiers.overdue_minutes(T0, T0 - timedelta(seconds=1)) == 0

    def test_exactly_due_is_zero(self) -> None:
        assert tiers.overdue_minutes(T0, T0) == 0

    def test_counts_whole_minutes(self) -> None:
        assert tiers.overdue_minutes(T0, T0 + timedelta(minutes=90, seconds=59)) == 90


class TestCoverage:
    def test_weekly_needs_four_visits_in_thirty_days(self) -> None:
        assert tiers.visits_required_in(HIGH, 30) == 4
        assert tiers.visits_required_in(HIGH, 28) == 4
        assert tiers.visits_required_in(HIGH, 35) == 5

    def test_quarterly_needs_none_in_a_month(self) -> None:
        assert tiers.visits_required_in(GENERAL, 31) == 0

    def test_visited_and_fully_covered(self) -> None:
        cover = tiers.tier_coverage(HIGH, [0, 1, 4, 5], days_in_month=30)
        assert (cover.elders, cover.visited, cover.fully_covered, cover.visits) == (4, 3, 2, 10)

    def test_rate_rounds_down_and_empty_is_met(self) -> None:
        assert tiers.rate_bp(2, 3) == 6666
        assert tiers.rate_bp(0, 0) == 10_000
