"""The objective: what an assignment costs and what leaving a request unmatched costs.

Every weight lives in `CostWeights`. Costs are integer points (10 points ~ one minute of a
helper's travel) so that sums are exact and ties do not depend on float rounding.

How the weights relate (`Policy` checks both at construction):
- leaving any request unmatched costs more than the dearest possible assignment, so a helper
  who can serve a request and has room is never left idle while it goes unserved;
- belonging to a priority group adds more to the unmatched cost than any two assignments can
  differ by, even across grades, so a priority elder is never passed over for a shorter trip
  to a non-priority elder (priority groups first, as the district policies ask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from matching.types import CostBreakdown, Grade, Request, Urgency

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

MAX_STARS = 5.0


@dataclass(frozen=True, slots=True)
class CostWeights:
    # Per assignment.
    travel_per_minute: int = 10
    waiting_per_minute: int = 1  # minutes from the earliest possible start to the planned start
    waiting_cap_minutes: int = 240  # waiting beyond this is no worse: the day is gone anyway
    continuity_bonus: int = 100  # subtracted for a previous helper the elder rated well
    continuity_min_rating: float = 4.0
    fairness_per_hour: int = 5  # per recent service hour above the free allowance
    fairness_free_minutes: int = 600  # recent minutes that cost nothing (10 h)
    fairness_cap_minutes: int = 2400  # beyond 40 h the penalty stops growing
    rating_per_star: int = 20  # per star below five
    neutral_rating: float = 4.0  # stands in for helpers not yet rated
    # Per unmatched request.
    unmatched_base: int = 2000
    priority_group: int = 4000  # for belonging to at least one priority group
    extra_priority_group: int = 300  # for each further group, counted up to three
    grade_step: int = 150  # per capability grade step (frailer elders first)
    urgent: int = 1000
    emergency: int = 5000

    def max_assignment_cost(self, radius_minutes: int) -> int:
        fairness_hours = max(0, self.fairness_cap_minutes - self.fairness_free_minutes) // 60
        return (
            self.travel_per_minute * radius_minutes
            + self.waiting_per_minute * self.waiting_cap_minutes
            + self.fairness_per_hour * fairness_hours
            + round(self.rating_per_star * MAX_STARS)
        )

    def min_assignment_cost(self) -> int:
        return -self.continuity_bonus

    def check(self, max_radius_minutes: int) -> None:
        """Raise ValueError unless the two orderings in the module docstring hold."""
        dearest = self.max_assignment_cost(max_radius_minutes)
        spread = dearest - self.min_assignment_cost()
        if self.unmatched_base <= dearest:
            raise ValueError(
                f"unmatched_base {self.unmatched_base} must exceed the dearest assignment "
                f"{dearest} at a {max_radius_minutes}-minute radius"
            )
        margin = self.priority_group - self.grade_step * int(Grade.COMPLETE_LOSS)
        if margin <= spread:
            raise ValueError(
                f"priority_group minus the grade range ({margin}) must exceed the spread of "
                f"assignment costs ({spread})"
            )


def travel_cost(weights: CostWeights, minutes: IntArray) -> IntArray:
    return weights.travel_per_minute * minutes


def waiting_cost(weights: CostWeights, waiting_minutes: IntArray) -> IntArray:
    return weights.waiting_per_minute * np.minimum(waiting_minutes, weights.waiting_cap_minutes)


def fairness_cost(weights: CostWeights, recent_minutes: IntArray) -> IntArray:
    span = max(0, weights.fairness_cap_minutes - weights.fairness_free_minutes)
    over = np.clip(recent_minutes - weights.fairness_free_minutes, 0, span)
    return weights.fairness_per_hour * (over // 60)


def rating_cost(weights: CostWeights, rating: FloatArray) -> IntArray:
    """`rating` holds NaN for helpers not yet rated."""
    stars = np.where(np.isnan(rating), weights.neutral_rating, np.clip(rating, 0.0, MAX_STARS))
    return np.rint(weights.rating_per_star * (MAX_STARS - stars)).astype(np.int64)


def continuity_cost(weights: CostWeights, previous_rating: FloatArray) -> IntArray:
    """`previous_rating` is the elder's rating of this helper last time, NaN if none."""
    good = ~np.isnan(previous_rating) & (previous_rating >= weights.continuity_min_rating)
    return np.where(good, -weights.continuity_bonus, 0).astype(np.int64)


def unmatched_penalty(weights: CostWeights, request: Request) -> int:
    groups = len(request.priority_groups)
    penalty = weights.unmatched_base + weights.grade_step * int(request.grade)
    if groups:
        penalty += weights.priority_group + weights.extra_priority_group * min(groups - 1, 3)
    if request.urgency is Urgency.URGENT:
        penalty += weights.urgent
    elif request.urgency is Urgency.EMERGENCY:
        penalty += weights.emergency
    return penalty


def previous_rating_of(request: Request, helper_id: str) -> float:
    """The elder's latest rating of `helper_id` (the last listed wins), NaN if never served."""
    rating = float("nan")
    for previous in request.previous_helpers:
        if previous.helper_id == helper_id:
            rating = previous.rating
    return rating


def pair_cost(
    weights: CostWeights,
    request: Request,
    *,
    helper_recent_minutes: int,
    helper_rating: float | None,
    helper_id: str,
    travel_minutes: int,
    waiting_minutes: int,
) -> CostBreakdown:
    """The cost of one assignment, term by term (the scalar twin of the vectorised path)."""

    def one(values: IntArray | FloatArray) -> int:
        return int(values[0])

    rating = np.array([np.nan if helper_rating is None else helper_rating])
    return CostBreakdown(
        travel=one(travel_cost(weights, np.array([travel_minutes], dtype=np.int64))),
        waiting=one(waiting_cost(weights, np.array([waiting_minutes], dtype=np.int64))),
        continuity=one(
            continuity_cost(weights, np.array([previous_rating_of(request, helper_id)]))
        ),
        fairness=one(fairness_cost(weights, np.array([helper_recent_minutes], dtype=np.int64))),
        rating=one(rating_cost(weights, rating)),
    )
