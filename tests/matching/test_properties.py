"""Properties of `match` on small random cities, checked against independent code."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching import (
    Helper,
    HelperPool,
    MatchResult,
    ReasonCode,
    Request,
    TimeWindow,
    match,
    unmatched_penalty,
    violations,
)
from matching.candidates import check_pairs
from matching.constraints import Pair, earliest_start
from matching.cost import pair_cost
from matching.pool import RequestBatch
from tests.matching.factories import NOW
from tests.matching.instances import (
    POLICY,
    assignment_violation,
    block_of,
    instances,
    pair_allowed,
    placements,
    travel_minutes,
    within_availability,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def busy(a_start: int, a_end: int, travel: int) -> tuple[int, int]:
    return a_start - travel, a_end + travel


def overlaps(x: tuple[int, int], y: tuple[int, int]) -> bool:
    return x[0] < y[1] and y[0] < x[1]


@FAST
@given(instances())
def test_no_assignment_breaks_a_hard_rule(case: tuple[list[Request], list[Helper]]) -> None:
    reqs, hlps = case
    result = match(reqs, hlps, policy=POLICY, now=NOW)
    by_req = {r.id: r for r in reqs}
    by_helper = {h.id: h for h in hlps}
    jobs: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for a in result.assignments:
        req, hlp = by_req[a.request_id], by_helper[a.helper_id]
        assert assignment_violation(a, req, hlp, POLICY, NOW) is None
        jobs[a.helper_id].append(busy(a.start, a.end, a.travel_minutes))
    for helper_id, spans in jobs.items():
        assert len(spans) <= by_helper[helper_id].remaining_capacity
        limits = by_helper[helper_id].capacity_windows
        for limit in limits:
            inside = [s for s in spans if limit.window.covers(TimeWindow(*s))]
            assert len(inside) <= limit.jobs, f"{helper_id} over its capacity in {limit}"
        if limits:
            assert all(any(w.window.covers(TimeWindow(*s)) for w in limits) for s in spans)
        spans.sort()
        for x, y in itertools.pairwise(spans):
            assert not overlaps(x, y), f"{helper_id} double-booked"


@FAST
@given(instances())
def test_every_request_is_answered_once(case: tuple[list[Request], list[Helper]]) -> None:
    reqs, hlps = case
    result = match(reqs, hlps, policy=POLICY, now=NOW)
    answered = [a.request_id for a in result.assignments] + [u.request_id for u in result.unmatched]
    assert sorted(answered) == sorted(r.id for r in reqs)
    assert [a.request_id for a in result.assignments] == sorted(
        a.request_id for a in result.assignments
    )


@FAST
@given(instances(), st.randoms(use_true_random=False))
def test_same_result_across_runs_and_input_order(
    case: tuple[list[Request], list[Helper]], rnd: random.Random
) -> None:
    reqs, hlps = case
    first = match(reqs, hlps, policy=POLICY, now=NOW)
    again = match(list(reqs), list(hlps), policy=POLICY, now=NOW)
    shuffled_r, shuffled_h = list(reqs), list(hlps)
    rnd.shuffle(shuffled_r)
    rnd.shuffle(shuffled_h)
    other_order = match(shuffled_r, shuffled_h, policy=POLICY, now=NOW)
    assert first == again == other_order


def brute_force_optimum(reqs: list[Request], hlps: list[Helper]) -> int:
    """Try every way to give each request one helper's block (at its earliest start there)
    or nothing, one job per block. The optimum is over the engine's block model
    (`matching.schedule`), which this oracle shares: it proves the solve exact for that
    model, not for schedules the blocks rule out."""
    options: list[list[tuple[tuple[int, int], int]]] = []  # ((helper, block), cost)
    for req in reqs:
        mine = []
        for hi, hlp in enumerate(hlps):
            travel = travel_minutes(req, hlp, POLICY)
            for block, start in placements(req, hlp, POLICY, NOW):
                cost = pair_cost(
                    POLICY.weights,
                    req,
                    helper_recent_minutes=hlp.recent_minutes,
                    helper_rating=hlp.rating,
                    helper_id=hlp.id,
                    travel_minutes=travel,
                    waiting_minutes=start - max(req.window.start, NOW),
                ).total
                mine.append(((hi, block), cost))
        options.append(mine)
    penalties = [unmatched_penalty(POLICY.weights, r) for r in reqs]
    best = sum(penalties)
    used: set[tuple[int, int]] = set()

    def go(i: int, total: int) -> None:
        nonlocal best
        if i == len(reqs):
            best = min(best, total)
            return
        go(i + 1, total + penalties[i])
        for slot, cost in options[i]:
            if slot in used:
                continue
            used.add(slot)
            go(i + 1, total + cost)
            used.remove(slot)

    go(0, 0)
    return best


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_requests=4, max_helpers=3))
def test_total_cost_equals_the_brute_force_optimum(
    case: tuple[list[Request], list[Helper]],
) -> None:
    reqs, hlps = case
    result = match(reqs, hlps, policy=POLICY, now=NOW)
    assert result.total_cost == brute_force_optimum(reqs, hlps)
    recomputed = sum(a.cost.total for a in result.assignments) + sum(
        u.penalty for u in result.unmatched
    )
    assert result.total_cost == recomputed


@FAST
@given(instances())
def test_priority_elder_is_not_passed_over_silently(
    case: tuple[list[Request], list[Helper]],
) -> None:
    """If a priority elder is unmatched, every helper block that could have served them is
    held by another priority elder or a more urgent request, and the reason says so."""
    reqs, hlps = case
    result = match(reqs, hlps, policy=POLICY, now=NOW)
    by_req = {r.id: r for r in reqs}
    by_helper = {h.id: h for h in hlps}
    holder: dict[tuple[str, int], Request] = {}
    for a in result.assignments:
        hlp = by_helper[a.helper_id]
        block = block_of(hlp, a.start, a.end, a.travel_minutes, POLICY)
        assert block is not None
        holder[(hlp.id, block)] = by_req[a.request_id]
    for u in result.unmatched:
        p = by_req[u.request_id]
        if not p.priority_groups:
            continue
        for hlp in hlps:
            for block, _ in placements(p, hlp, POLICY, NOW):
                n = holder.get((hlp.id, block))
                assert n is not None, (p.id, hlp.id, block, "a free block was left unused")
                assert n.priority_groups or n.urgency > p.urgency, (p.id, n.id, hlp.id)
                assert u.code is ReasonCode.TAKEN_BY_OTHERS


@FAST
@given(instances())
def test_reasons_agree_with_the_rules(case: tuple[list[Request], list[Helper]]) -> None:
    reqs, hlps = case
    result = match(reqs, hlps, policy=POLICY, now=NOW)
    by_req = {r.id: r for r in reqs}
    for u in result.unmatched:
        req = by_req[u.request_id]
        can = [h for h in hlps if placements(req, h, POLICY, NOW)]
        if u.code is ReasonCode.TAKEN_BY_OTHERS:
            assert can, u
            assert u.funnel[-1].remaining == len(can)
        else:
            assert not can, u
        assert u.message
        counts = [step.remaining for step in u.funnel]
        assert counts == sorted(counts, reverse=True)


@FAST
@given(instances())
def test_vectorised_rules_agree_with_the_scalar_rules(
    case: tuple[list[Request], list[Helper]],
) -> None:
    reqs, hlps = case
    if not hlps:
        return
    pool = HelperPool.build(hlps, policy=POLICY)
    batch = RequestBatch.build(reqs, pool, policy=POLICY, now=NOW)
    r = np.repeat(np.arange(len(batch)), len(pool))
    h = np.tile(np.arange(len(pool)), len(batch))
    checks = check_pairs(
        batch, pool, r, h, policy=POLICY, now=NOW, blacklisted=pool.blacklisted(POLICY)
    )
    ok = checks.feasible
    for i in range(r.size):
        req, hlp = batch.requests[r[i]], pool.helpers[h[i]]
        assert bool(ok[i]) == (not violations(req, hlp, policy=POLICY, now=NOW)), (req, hlp)
        assert bool(ok[i]) == bool(placements(req, hlp, POLICY, NOW))
        pair = Pair.of(req, hlp, policy=POLICY, now=NOW)
        assert pair is not None
        assert int(checks.travel[i]) == pair.travel_minutes
        if ok[i]:
            assert int(checks.start[i]) == earliest_start(pair)
            assert pair_allowed(req, hlp, POLICY)
            assert within_availability(req, hlp, int(checks.start[i]), pair.travel_minutes, NOW)


def test_result_type() -> None:
    assert isinstance(match([], [], policy=POLICY, now=NOW), MatchResult)
