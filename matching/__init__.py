"""The matching engine: pure functions from open requests and helpers to assignments.

    result = match(requests, helpers, policy=policy, now=now)
    offers = urgent(request, pool, k=5, policy=policy, now=now)

`match` assigns each open request at most one helper so that the total cost (cost.py) plus
the penalties of unmatched requests is minimal over the candidate graph, never breaking a hard
rule (constraints.py), and explains every unmatched request (explain.py). Same input, same
output: requests and helpers are ordered by id first, so input order never matters, and every
tie is broken by id.

A helper with remaining capacity c offers at most c disjoint time blocks (schedule.py), one
job each, so capacity and "never two places at once" hold by construction and the solve is an
exact assignment. The candidate graph holds each request's cheapest feasible helpers and each
helper's nearest requests; while an unmatched request could still use a free block in reach,
those edges are added and the graph is solved again (at most MAX_ROUNDS solves). `urgent`
places one job per helper, so it cuts nothing: each stretch of free days with a job left is one
block (its prebuilt pool comes from `HelperPool.build(..., one_job=True)`).

Pipeline: pool.py (columns, blocks) -> candidates.py (k-d trees, vectorised rules, costs) ->
solve.py (components, exact assignment) -> explain.py (funnel of reasons).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from matching.candidates import candidate_edges, in_reach_edges, servable, slot_keys, union
from matching.constraints import HARD_CONSTRAINTS, feasible, violations
from matching.cost import CostWeights, unmatched_penalty
from matching.explain import explain
from matching.geo import TravelModel
from matching.policy import Policy, Requirement, ServiceRule, default_rules
from matching.pool import HelperPool, RequestBatch
from matching.solve import assignments_from, pool_for, solve, urgent
from matching.types import (
    Assignment,
    CapacityWindow,
    Certificate,
    CertificateKind,
    CostBreakdown,
    FunnelStep,
    Gender,
    Grade,
    Helper,
    HelperKind,
    Location,
    MatchResult,
    PreviousHelper,
    PriorityGroup,
    ReasonCode,
    Request,
    Service,
    SolveStats,
    TimeWindow,
    Unmatched,
    Urgency,
    minutes_since_epoch,
)

# Solves at most: the first on the candidate graph, then with grown edges (see `match`).
MAX_ROUNDS = 4

__all__ = [
    "HARD_CONSTRAINTS",
    "Assignment",
    "CapacityWindow",
    "Certificate",
    "CertificateKind",
    "CostBreakdown",
    "CostWeights",
    "FunnelStep",
    "Gender",
    "Grade",
    "Helper",
    "HelperKind",
    "HelperPool",
    "Location",
    "MatchResult",
    "Policy",
    "PreviousHelper",
    "PriorityGroup",
    "ReasonCode",
    "Request",
    "Requirement",
    "Service",
    "ServiceRule",
    "SolveStats",
    "TimeWindow",
    "TravelModel",
    "Unmatched",
    "Urgency",
    "default_rules",
    "feasible",
    "match",
    "minutes_since_epoch",
    "unmatched_penalty",
    "urgent",
    "violations",
]


def match(
    requests: Sequence[Request],
    helpers: Sequence[Helper] | HelperPool,
    *,
    policy: Policy,
    now: int,
) -> MatchResult:
    """Assign open requests to helpers at minimum total cost; explain the rest.

    `now` is in minutes since the epoch. `helpers` may be a prebuilt `HelperPool`.
    Raises ValueError on duplicate request or helper ids.
    """

    pool = pool_for(helpers, policy)
    batch = RequestBatch.build(requests, pool, policy=policy, now=now)
    edges, _ = candidate_edges(batch, pool, policy=policy, now=now)
    open_rows = servable(batch)
    rounds = 0
    while True:
        rounds += 1
        solution = solve(edges, len(batch), batch.penalty, len(pool))
        matched = np.zeros(len(batch), dtype=np.bool_)
        matched[edges.r[solution.chosen]] = True
        if rounds == MAX_ROUNDS:
            break
        # The candidate lists are a shortcut. If an unmatched request could still use a free
        # block of some helper in its circle, add those edges and solve again, so that nobody
        # waits while a qualified helper's block stays empty.
        pending = np.flatnonzero(~matched & open_rows)
        extra = in_reach_edges(pending, batch, pool, policy=policy, now=now)
        taken = slot_keys(edges, pool)[solution.chosen]
        free = ~np.isin(slot_keys(extra, pool), taken)
        if not free.any():
            break
        edges = union(edges, extra.take(free), pool)
    assignments = assignments_from(edges, solution.chosen, batch, pool)
    unmatched = explain(np.flatnonzero(~matched), batch, pool, policy=policy, now=now)
    total = int(edges.total[solution.chosen].sum()) + sum(u.penalty for u in unmatched)
    return MatchResult(
        assignments=assignments,
        unmatched=unmatched,
        total_cost=total,
        stats=SolveStats(
            requests=len(batch),
            helpers=len(pool),
            candidate_edges=int(edges.r.size),
            components=solution.components,
            largest_component=solution.largest_component,
            rounds=rounds,
        ),
    )
