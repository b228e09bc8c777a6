from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.assessment import (
    DIMENSION_MAXIMA,
    ITEMS,
    MAX_TOTAL,
    STANDARD,
    AssessmentInvalid,
    Dimension,
    Level,
    compute_level,
    level_for_total,
    reassessment_due,
)


def scores_with_total(total: int) -> dict[str, int]:
    """Item scores adding up to `total`, filling items in order."""
    scores, left = {}, total
    for item in ITEMS:
        scores[item.code] = min(item.max_score, left)
        left -= scores[item.code]
    assert left == 0
    return scores


def assess(total: int, *, coma: bool = False, dementia: bool = False, events: int = 0):
    return compute_level(
        scores_with_total(total),
        coma=coma,
        dementia_or_mental_disorder=dementia,
        risk_events_30d=events,
    )


class TestItemList:
    def test_26_items_with_unique_codes(self) -> None:
        assert len(ITEMS) == 26
        assert len({item.code for item in ITEMS}) == 26

    def test_dimension_maxima_follow_the_standard(self) -> None:
        for dimension, maximum in DIMENSION_MAXIMA.items():
            assert sum(i.max_score for i in ITEMS if i.dimension is dimension) == maximum
        assert sum(DIMENSION_MAXIMA.values()) == MAX_TOTAL == 90
        counts = {d: sum(1 for i in ITEMS if i.dimension is d) for d in Dimension}
        assert counts[Dimension.SELF_CARE] == 8 and counts[Dimension.BASIC_MOBILITY] == 4
        assert counts[Dimension.PERCEPTION_SOCIAL] == 5

    def test_every_item_named_in_both_languages(self) -> None:
        assert all(item.name_zh and item.name_en and item.max_score > 0 for item in ITEMS)
        assert STANDARD == "GB/T 42195-2022"


class TestPreliminaryLevel:
    @pytest.mark.parametrize(
        ("total", "level"),
        [
            (0, Level.COMPLETE_LOSS),
            (29, Level.COMPLETE_LOSS),
            (30, Level.SEVERE),
            (45, Level.SEVERE),
            (46, Level.MODERATE),
            (65, Level.MODERATE),
            (66, Level.MILD),
            (89, Level.MILD),
            (90, Level.INTACT),
        ],
    )
    def test_boundaries(self, total: int, level: Level) -> None:
        result = assess(total)
        assert result.total == total
        assert result.preliminary_level is level and result.final_level is level
        assert result.standard == STANDARD

    def test_dimension_totals(self) -> None:
        result = assess(MAX_TOTAL)
        assert result.dimension_totals == DIMENSION_MAXIMA

    @given(st.integers(min_value=0, max_value=MAX_TOTAL))
    def test_level_never_milder_for_a_lower_total(self, total: int) -> None:
        if total < MAX_TOTAL:
            assert level_for_total(total).at_least(level_for_total(total + 1))

    @pytest.mark.parametrize("total", [-1, 91])
    def test_total_out_of_range(self, total: int) -> None:
        with pytest.raises(ValueError):
            level_for_total(total)


class TestAdjustments:
    def test_coma_sets_complete_loss(self) -> None:
        result = assess(MAX_TOTAL, coma=True)
        assert result.preliminary_level is Level.INTACT
        assert result.final_level is Level.COMPLETE_LOSS
        assert any("coma" in reason for reason in result.reasons)

    def test_dementia_raises_one_level(self) -> None:
        result = assess(50, dementia=True)
        assert (result.preliminary_level, result.final_level) == (Level.MODERATE, Level.SEVERE)
        assert "dementia" in result.reasons[-1]

    def test_two_risk_events_raise_one_level(self) -> None:
        result = assess(70, events=2)
        assert (result.preliminary_level, result.final_level) == (Level.MILD, Level.MODERATE)
        assert "2 care-risk events" in result.reasons[-1]

    def test_one_risk_event_changes_nothing(self) -> None:
        result = assess(70, events=1)
        assert result.final_level is Level.MILD
        assert len(result.reasons) == 1

    def test_both_grounds_raise_only_once(self) -> None:
        result = assess(90, dementia=True, events=3)
        assert result.final_level is Level.MILD
        assert any("raised once" in reason for reason in result.reasons)

    def test_raise_is_capped_at_complete_loss(self) -> None:
        result = assess(10, dementia=True, events=5)
        assert result.final_level is Level.COMPLETE_LOSS
        assert any("no change" in reason for reason in result.reasons)

    def test_coma_wins_over_other_adjustments(self) -> None:
        result = assess(40, coma=True, dementia=True, events=2)
        assert result.final_level is Level.COMPLETE_LOSS


class TestValidation:
    def test_missing_item(self) -> None:
        scores = scores_with_total(60)
        del scores["memory"]
        with pytest.raises(AssessmentInvalid) as info:
            compute_level(scores, coma=False, dementia_or_mental_disorder=False, risk_events_30d=0)
        assert info.value.problems == ("item 'memory' is missing",)
        assert info.value.code == "assessment.invalid"

    def test_unknown_item(self) -> None:
        scores = {**scores_with_total(60), "shoe_size": 3}
        with pytest.raises(AssessmentInvalid, match="unknown item 'shoe_size'"):
            compute_level(scores, coma=False, dementia_or_mental_disorder=False, risk_events_30d=0)

    def test_item_given_twice(self) -> None:
        pairs = [*scores_with_total(60).items(), ("eating", 2)]
        with pytest.raises(AssessmentInvalid, match="'eating' is given 2 times"):
            compute_level(pairs, coma=False, dementia_or_mental_disorder=False, risk_events_30d=0)

    @pytest.mark.parametrize("score", [-1, 5, 2.0, "3", True, None])
    def test_bad_score_value(self, score: object) -> None:
        scores = {**scores_with_total(60), "eating": score}
        with pytest.raises(AssessmentInvalid, match="'eating'"):
            compute_level(
                scores,  # type: ignore[arg-type]
                coma=False,
                dementia_or_mental_disorder=False,
                risk_events_30d=0,
            )

    def test_score_above_a_small_item_maximum(self) -> None:
        scores = {**scores_with_total(60), "aggression": 2}
        with pytest.raises(AssessmentInvalid, match="'aggression' must be 0-1, got 2"):
            compute_level(scores, coma=False, dementia_or_mental_disorder=False, risk_events_30d=0)

    @pytest.mark.parametrize("events", [-1, 1.5, True])
    def test_bad_risk_event_count(self, events: object) -> None:
        with pytest.raises(AssessmentInvalid, match="risk_events_30d"):
            compute_level(
                scores_with_total(60),
                coma=False,
                dementia_or_mental_disorder=False,
                risk_events_30d=events,  # type: ignore[arg-type]
            )

    def test_lists_every_problem(self) -> None:
        scores = scores_with_total(60)
        del scores["memory"]
        scores["vision"] = 9
        scores["mood"] = 1
        with pytest.raises(AssessmentInvalid) as info:
            compute_level(scores, coma=False, dementia_or_mental_disorder=False, risk_events_30d=0)
        assert len(info.value.problems) == 3

    @pytest.mark.parametrize(
        ("scores", "problem"),
        [
            ("eating=4", "scores must be a mapping"),
            (None, "scores must be a mapping"),
            ([("eating",)], "entry 0 is not a (code, score) pair"),
            ({1: 3}, "item code 1 is not a string"),
            ({"eating": 10**20}, "'eating' must be 0-4"),
        ],
    )
    def test_malformed_scores(self, scores: object, problem: str) -> None:
        with pytest.raises(AssessmentInvalid) as info:
            compute_level(
                scores,  # type: ignore[arg-type]
                coma=False,
                dementia_or_mental_disorder=False,
                risk_events_30d=0,
            )
        assert any(problem in p for p in info.value.problems)

    @pytest.mark.parametrize("flag", ["false", 0, None])
    def test_flags_must_be_booleans(self, flag: object) -> None:
        with pytest.raises(AssessmentInvalid, match="coma must be true or false"):
            compute_level(
                scores_with_total(60),
                coma=flag,  # type: ignore[arg-type]
                dementia_or_mental_disorder=False,
                risk_events_30d=0,
            )

    def test_empty_scores(self) -> None:
        with pytest.raises(AssessmentInvalid) as info:
            compute_level({}, coma=False, dementia_or_mental_disorder=False, risk_events_30d=0)
        assert len(info.value.problems) == 26


class TestLevel:
    def test_ordered_by_severity(self) -> None:
        assert Level.INTACT < Level.MILD < Level.MODERATE < Level.SEVERE < Level.COMPLETE_LOSS
        assert Level.SEVERE.at_least(Level.MODERATE)
        assert Level.MODERATE.at_least(Level.MODERATE)
        assert not Level.MILD.at_least(Level.MODERATE)

    def test_raised_stops_at_complete_loss(self) -> None:
        assert Level.INTACT.raised() is Level.MILD
        assert Level.COMPLETE_LOSS.raised() is Level.COMPLETE_LOSS

    def test_not_comparable_with_other_types(self) -> None:
        with pytest.raises(TypeError):
            assert Level.MILD < 2  # type: ignore[operator]


class TestReassessmentDue:
    def test_six_months_by_default(self) -> None:
        assert reassessment_due(date(2026, 3, 15)) == date(2026, 9, 15)

    def test_crosses_the_year_and_clamps_month_end(self) -> None:
        assert reassessment_due(date(2026, 8, 31)) == date(2027, 2, 28)
        assert reassessment_due(date(2027, 8, 31)) == date(2028, 2, 29)

    def test_policy_months(self) -> None:
        assert reassessment_due(date(2026, 1, 31), months=3) == date(2026, 4, 30)

    def test_zero_months_refused(self) -> None:
        with pytest.raises(ValueError):
            reassessment_due(date(2026, 1, 1), months=0)
