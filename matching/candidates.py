"""Candidate generation: the hard constraints and the cost terms on arrays of pairs.

A k-d tree per service (helpers with that skill and free capacity) yields the nearest helpers
of each request inside its service circle, and a tree over the requests yields each helper's
nearest requests. Every hard rule of `constraints.py` is then checked on all those pairs at
once; the `Policy.candidates_per_request` cheapest feasible helpers of each request, plus each
helper's nearest feasible requests, become the edges of the graph the solver works on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from matching.cost import continuity_cost, fairness_cost, rating_cost, travel_cost, waiting_cost
from matching.geo import chord_for_km, haversine_km, unit_vectors
from matching.policy import Policy
from matching.pool import NO_CERT, SERVICES, HelperPool, RequestBatch
from matching.types import ReasonCode

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# The tree returns this many nearest helpers per wanted candidate: nearest is not cheapest,
# and some near helpers fail the time or certificate rules.
QUERY_FACTOR = 4
# Each helper also links to this many of its nearest open requests, whatever their own
# cheapest lists hold: otherwise crowded requests all pick the same few helpers and helpers
# a little further out sit idle while requests go unmatched.
REVERSE_K = 8
# Keep boundary helpers: the k-d tree bound is a hair wider than the exact travel-time check.
BOUND_SLACK = 1.0 + 1e-9


@dataclass(frozen=True, slots=True, eq=False)
class PairChecks:
    """For pairs (r[i], h[i]): the trip, each hard rule's verdict in funnel order, the start."""

    r: IntArray
    h: IntArray
    travel: IntArray
    stages: tuple[tuple[ReasonCode, BoolArray], ...]
    cert_expired: BoolArray  # failed the certificate rule only through expiry
    start: IntArray  # planned start; meaningful where the "available" stage holds

    @property
    def feasible(self) -> BoolArray:
        ok = np.ones(self.r.shape, dtype=np.bool_)
        for _, holds in self.stages:
            ok &= holds
        return ok


@dataclass(frozen=True, slots=True, eq=False)
class Edges:
    """Feasible pairs with their planned times and cost terms (all arrays aligned)."""

    r: IntArray
    h: IntArray
    start: IntArray
    end: IntArray
    travel: IntArray
    travel_cost: IntArray
    waiting_cost: IntArray
    continuity_cost: IntArray
    fairness_cost: IntArray
    rating_cost: IntArray
    option: IntArray  # 0 for the earliest start, j for the start j steps later

    @property
    def total(self) -> IntArray:
        return (
            self.travel_cost
            + self.waiting_cost
            + self.continuity_cost
            + self.fairness_cost
            + self.rating_cost
        )

    def take(self, keep: IntArray | BoolArray) -> Edges:
        return Edges(*(getattr(self, name)[keep] for name in Edges.__slots__))

    @classmethod
    def concat(cls, parts: list[Edges]) -> Edges:
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return cls(*(empty for _ in cls.__slots__))
        return cls(*(np.concatenate([getattr(p, n) for p in parts]) for n in cls.__slots__))


def _sorted_member(keys: IntArray, sorted_keys: IntArray) -> BoolArray:
    if sorted_keys.size == 0:
        return np.zeros(keys.shape, dtype=np.bool_)
    pos = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[pos] == keys


def check_pairs(
    batch: RequestBatch,
    pool: HelperPool,
    r: IntArray,
    h: IntArray,
    *,
    policy: Policy,
    now: int,
    blacklisted: BoolArray,
) -> PairChecks:
    km = haversine_km(batch.lat[r], batch.lon[r], pool.lat[h], pool.lon[h])
    travel = policy.travel.minutes(km)
    within = travel <= batch.radius[r]
    skill = pool.skills[h, batch.service[r].astype(np.int64)]
    kind_ok = ((batch.kinds_mask[r] >> pool.kind[h]) & 1).astype(np.bool_)
    crew_ok = pool.crew[h] >= batch.min_crew[r]
    missing = np.zeros(r.shape, dtype=np.bool_)
    expired = np.zeros(r.shape, dtype=np.bool_)
    until = batch.window_end[r]
    for col in np.flatnonzero(batch.cert_needed.any(axis=0)):
        need = batch.cert_needed[r, col]
        expiry = pool.cert_expiry[h, col]
        missing |= need & (expiry == NO_CERT)
        expired |= need & (expiry != NO_CERT) & (expiry < until)
    wanted = batch.gender[r]
    gender_ok = (wanted < 0) | (pool.gender[h] == wanted)
    keys = r * len(pool) + h
    excluded = (batch.elder_helper[r] == h) | _sorted_member(keys, batch.blocked_keys)
    # Earliest start over the helper's availability windows, travel there and back inside it.
    start = np.full(r.shape, np.iinfo(np.int64).max, dtype=np.int64)
    base = np.maximum(batch.window_start[r], now + travel)
    finish_by = batch.window_end[r]
    duration = batch.duration[r]
    for w in range(pool.avail_start.shape[1]):
        s = np.maximum(base, pool.avail_start[h, w] + travel)
        fits = (s + duration <= finish_by) & (s + duration + travel <= pool.avail_end[h, w])
        start = np.where(fits & (s < start), s, start)
    available = start != np.iinfo(np.int64).max
    stages = (
        (ReasonCode.NO_HELPER_IN_REACH, within),
        (ReasonCode.NO_SKILL_IN_REACH, skill),
        (ReasonCode.BLACKLISTED, ~blacklisted[h]),
        (ReasonCode.KIND_NOT_PERMITTED, kind_ok),
        (ReasonCode.CREW_TOO_SMALL, crew_ok),
        (ReasonCode.CERTIFICATE_MISSING, ~(missing | expired)),
        (ReasonCode.GENDER_MISMATCH, gender_ok),
        (ReasonCode.EXCLUDED_BY_ELDER, ~excluded),
        (ReasonCode.NOT_AVAILABLE, available),
        (ReasonCode.NO_CAPACITY, pool.remaining[h] > 0),
    )
    return PairChecks(r, h, travel, stages, expired & ~missing, start)


def edges_from(
    checks: PairChecks, batch: RequestBatch, pool: HelperPool, *, policy: Policy
) -> Edges:
    """The feasible pairs of `checks`, costed."""
    keep = checks.feasible
    r, h, travel, start = checks.r[keep], checks.h[keep], checks.travel[keep], checks.start[keep]
    weights = policy.weights
    keys = r * len(pool) + h
    previous = np.full(r.shape, np.nan)
    if batch.previous_keys.size:
        pos = np.minimum(np.searchsorted(batch.previous_keys, keys), batch.previous_keys.size - 1)
        hit = batch.previous_keys[pos] == keys
        previous[hit] = batch.previous_rating[pos[hit]]
    return Edges(
        r=r,
        h=h,
        start=start,
        end=start + batch.duration[r],
        travel=travel,
        travel_cost=travel_cost(weights, travel),
        waiting_cost=waiting_cost(weights, start - batch.earliest[r]),
        continuity_cost=continuity_cost(weights, previous),
        fairness_cost=fairness_cost(weights, pool.recent_minutes[h]),
        rating_cost=rating_cost(weights, pool.rating[h]),
        option=np.zeros(r.shape, dtype=np.int64),
    )


def cheapest_per_request(edges: Edges, limit: int, also: BoolArray) -> Edges:
    """Each request's `limit` cheapest edges (equal costs: lower helper index), plus the edges
    flagged in `also`."""
    if edges.r.size == 0:
        return edges
    order = np.lexsort((edges.h, edges.total, edges.r))
    r_sorted = edges.r[order]
    first = np.searchsorted(r_sorted, r_sorted, side="left")
    rank = np.arange(r_sorted.size) - first
    keep = np.sort(order[(rank < limit) | also[order]])
    # Re-sort kept edges by (request, helper) so that the solver sees a canonical order.
    kept = edges.take(keep)
    return kept.take(np.lexsort((kept.h, kept.r)))


def with_start_options(
    edges: Edges, batch: RequestBatch, pool: HelperPool, *, policy: Policy
) -> Edges:
    """Add later starts (every `start_step_minutes`, up to `start_options` in all) that still
    fit the request's window and one availability window, so that a helper with capacity for
    several jobs can do them one after another. Sorted by (request, helper, option)."""
    parts = [edges]
    for j in range(1, policy.start_options):
        start = edges.start + j * policy.start_step_minutes
        end = start + batch.duration[edges.r]
        fits = end <= batch.window_end[edges.r]
        inside = np.zeros(fits.shape, dtype=np.bool_)
        for w in range(pool.avail_start.shape[1]):
            inside |= (start - edges.travel >= pool.avail_start[edges.h, w]) & (
                end + edges.travel <= pool.avail_end[edges.h, w]
            )
        keep = np.flatnonzero(fits & inside)
        if keep.size == 0:
            break
        later = edges.take(keep)
        parts.append(
            Edges(
                r=later.r,
                h=later.h,
                start=start[keep],
                end=end[keep],
                travel=later.travel,
                travel_cost=later.travel_cost,
                waiting_cost=waiting_cost(policy.weights, start[keep] - batch.earliest[later.r]),
                continuity_cost=later.continuity_cost,
                fairness_cost=later.fairness_cost,
                rating_cost=later.rating_cost,
                option=np.full(keep.size, j, dtype=np.int64),
            )
        )
    merged = Edges.concat(parts)
    return merged.take(np.lexsort((merged.option, merged.h, merged.r)))


def servable(batch: RequestBatch) -> BoolArray:
    """Offered services whose window still fits the service if it started now."""
    return batch.offered & (batch.earliest + batch.duration <= batch.window_end)


def candidate_edges(
    batch: RequestBatch, pool: HelperPool, *, policy: Policy, now: int
) -> tuple[Edges, int]:
    """The candidate graph, and how many pairs were checked to build it."""
    blacklisted = pool.blacklisted(policy)
    xyz = unit_vectors(batch.lat, batch.lon)
    open_rows = servable(batch)
    parts: list[Edges] = []
    checked = 0
    reverse_flags: list[BoolArray] = []
    for code, service in enumerate(SERVICES):
        rows = np.flatnonzero(open_rows & (batch.service == code))
        index = pool.trees.get(service)
        if rows.size == 0 or index is None:
            continue
        radius = int(batch.radius[rows].max())
        bound = chord_for_km(policy.travel.reach_km(radius)) * BOUND_SLACK
        k = min(QUERY_FACTOR * policy.candidates_per_request, index.members.size)
        _, idx = index.tree.query(xyz[rows], k=k, distance_upper_bound=bound, workers=-1)
        idx = np.asarray(idx).reshape(rows.size, k)
        found = idx < index.members.size
        forward = np.repeat(rows, found.sum(axis=1)) * len(pool) + index.members[idx[found]]
        k_back = min(REVERSE_K, rows.size)
        _, back = cKDTree(xyz[rows]).query(
            unit_vectors(pool.lat[index.members], pool.lon[index.members]),
            k=k_back,
            distance_upper_bound=bound,
            workers=-1,
        )
        back = np.asarray(back).reshape(index.members.size, k_back)
        hit = back < rows.size
        backward = rows[back[hit]] * len(pool) + np.repeat(index.members, hit.sum(axis=1))
        keys = np.unique(np.concatenate((forward, backward)))
        r, h = keys // len(pool), keys % len(pool)
        checks = check_pairs(batch, pool, r, h, policy=policy, now=now, blacklisted=blacklisted)
        checked += r.size
        part = edges_from(checks, batch, pool, policy=policy)
        parts.append(part)
        reverse_flags.append(np.isin(part.r * len(pool) + part.h, backward))
    also = np.concatenate(reverse_flags) if reverse_flags else np.zeros(0, dtype=np.bool_)
    edges = cheapest_per_request(Edges.concat(parts), policy.candidates_per_request, also)
    return with_start_options(edges, batch, pool, policy=policy), checked
