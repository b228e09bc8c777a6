"""Distances, travel minutes and each cost term."""

from __future__ import annotations

import math

import numpy as np
import pytest

from matching import (
    CostWeights,
    Grade,
    Location,
    PreviousHelper,
    PriorityGroup,
    TravelModel,
    Urgency,
    unmatched_penalty,
)
from matching.cost import fairness_cost, pair_cost, rating_cost, waiting_cost
from matching.geo import chord_for_km, distance_km, unit_vectors
from tests.matching.factories import request

W = CostWeights()


class TestGeo:
    def test_one_degree_of_latitude_is_about_111_km(self) -> None:
        assert distance_km(Location(30.0, 120.0), Location(31.0, 120.0)) == pytest.approx(
            111.2, abs=0.1
        )

    def test_same_point_is_zero(self) -> None:
        assert distance_km(Location(30.0, 120.0), Location(30.0, 120.0)) == 0.0

    def test_travel_minutes_round_up(self) -> None:
        model = TravelModel(speed_kmh=12.0, detour_factor=1.0)
        assert model.minutes(np.array([1.0, 1.01, 0.0])).tolist() == [5, 6, 0]

    def test_reach_inverts_minutes(self) -> None:
        model = TravelModel()
        assert model.minutes(np.array([model.reach_km(15)]))[0] == 15

    def test_chord_matches_unit_vectors(self) -> None:
        a, b = Location(30.0, 120.0), Location(30.02, 120.03)
        xyz = unit_vectors(np.array([a.lat, b.lat]), np.array([a.lon, b.lon]))
        assert np.linalg.norm(xyz[0] - xyz[1]) == pytest.approx(chord_for_km(distance_km(a, b)))

    def test_bad_model_is_refused(self) -> None:
        with pytest.raises(ValueError):
            TravelModel(speed_kmh=0)

    def test_bad_location_is_refused(self) -> None:
        with pytest.raises(ValueError):
            Location(91.0, 0.0)


class TestCostTerms:
    def test_waiting_is_capped(self) -> None:
        assert waiting_cost(W, np.array([10, 10_000])).tolist() == [10, W.waiting_cap_minutes]

    def test_fairness_starts_after_the_free_allowance(self) -> None:
        hours = [0, W.fairness_free_minutes, W.fairness_free_minutes + 120, 10**6]
        expected_cap = (W.fairness_cap_minutes - W.fairness_free_minutes) // 60
        assert fairness_cost(W, np.array(hours)).tolist() == [
            0,
            0,
            2 * W.fairness_per_hour,
            expected_cap * W.fairness_per_hour,
        ]

    def test_unrated_helper_gets_the_neutral_rating(self) -> None:
        costs = rating_cost(W, np.array([5.0, math.nan, 0.0]))
        assert costs.tolist() == [0, round(W.rating_per_star * 1.0), 5 * W.rating_per_star]

    def test_continuity_bonus_only_for_a_well_rated_previous_helper(self) -> None:
        req = request(previous_helpers=(PreviousHelper("good", 4.5), PreviousHelper("poor", 2.0)))

        def cost(helper_id: str) -> int:
            return pair_cost(
                W,
                req,
                helper_recent_minutes=0,
                helper_rating=None,
                helper_id=helper_id,
                travel_minutes=5,
                waiting_minutes=0,
            ).continuity

        assert (cost("good"), cost("poor"), cost("stranger")) == (-W.continuity_bonus, 0, 0)

    def test_breakdown_total_adds_up(self) -> None:
        b = pair_cost(
            W,
            request(),
            helper_recent_minutes=W.fairness_free_minutes + 60,
            helper_rating=3.0,
            helper_id="h",
            travel_minutes=7,
            waiting_minutes=30,
        )
        assert (b.travel, b.waiting, b.fairness, b.rating) == (70, 30, 5, 40)
        assert b.total == 145


class TestUnmatchedPenalty:
    def test_plain_request(self) -> None:
        assert unmatched_penalty(W, request()) == W.unmatched_base

    def test_priority_group_dominates(self) -> None:
        plain = unmatched_penalty(W, request(grade=Grade.COMPLETE_LOSS))
        priority = unmatched_penalty(
            W, request(priority_groups=frozenset({PriorityGroup.VERY_OLD}))
        )
        assert priority - plain > W.max_assignment_cost(15) - W.min_assignment_cost()

    def test_more_groups_cost_more_up_to_a_cap(self) -> None:
        groups = list(PriorityGroup)
        costs = [
            unmatched_penalty(W, request(priority_groups=frozenset(groups[:n])))
            for n in (1, 2, 4, 7)
        ]
        assert costs[0] < costs[1] < costs[2] == costs[3]

    def test_emergency_outranks_urgent(self) -> None:
        urgent = unmatched_penalty(W, request(urgency=Urgency.URGENT))
        emergency = unmatched_penalty(W, request(urgency=Urgency.EMERGENCY))
        assert W.unmatched_base < urgent < emergency
