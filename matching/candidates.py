"""Candidate generation: the hard constraints and the cost terms on arrays of pairs.

A k-d tree per service (helpers with that skill and free capacity) yields the nearest helpers
of each request inside its service circle, and a tree over the requests yields each helper's
nearest requests. Every hard rule of `constraints.py` is then checked on all those pairs at
once; the `Policy.candidates_per_request` cheapest feasible helpers of each request, plus each
helper's nearest feasible requests, become the edges of the graph the solver works on.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

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
    block: IntArray  # which of the helper's blocks (schedule.py) holds the job

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
    found: BoolArray = sorted_keys[pos] == keys
    return found


NO_START = np.iinfo(np.int64).max


def _piece_starts(
    batch: RequestBatch,
    pool: HelperPool,
    r: IntArray,
    h: IntArray,
    travel: IntArray,
    now: int,
    column: int,
) -> IntArray:
    """Earliest start of each pair's job inside piece `column` of the helper, NO_START if the
    job (travel there and back included) does not fit it."""
    start = np.maximum(
        np.maximum(batch.window_start[r], now + travel), pool.piece_start[h, column] + travel
    )
    end = start + batch.duration[r]
    fits = (end <= batch.window_end[r]) & (end + travel <= pool.piece_end[h, column])
    return np.where(fits, start, NO_START)


def _earliest_in_pieces(
    batch: RequestBatch, pool: HelperPool, r: IntArray, h: IntArray, travel: IntArray, now: int
) -> IntArray:
    start = np.full(r.shape, NO_START, dtype=np.int64)
    for column in range(pool.piece_start.shape[1]):
        start = np.minimum(start, _piece_starts(batch, pool, r, h, travel, now, column))
    return start


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
    if batch.cert_groups.any():
        expiry = pool.cert_expiry[h]  # (pairs, kinds)
        held = expiry != NO_CERT
        valid = expiry >= batch.window_end[r][:, None]
        for g in range(batch.cert_groups.shape[1]):
            need = batch.cert_groups[r, g]  # (pairs, kinds)
            wanted = need.any(axis=1)
            none_held = wanted & ~(need & held).any(axis=1)
            missing |= none_held
            expired |= wanted & ~none_held & ~(need & valid).any(axis=1)
    wanted = batch.gender[r]
    gender_ok = (wanted < 0) | (pool.gender[h] == wanted)
    keys = r * len(pool) + h
    excluded = (batch.elder_helper[r] == h) | _sorted_member(keys, batch.blocked_keys)
    start = _earliest_in_pieces(batch, pool, r, h, travel, now)
    available = start != NO_START
    stages = (
        (ReasonCode.NO_HELPER_IN_REACH, within),
        (ReasonCode.NO_SKILL_IN_REACH, skill),
        (ReasonCode.BLACKLISTED, ~blacklisted[h]),
        (ReasonCode.KIND_NOT_PERMITTED, kind_ok),
        (ReasonCode.CREW_TOO_SMALL, crew_ok),
        (ReasonCode.CERTIFICATE_MISSING, ~(missing | expired)),
        (ReasonCode.GENDER_MISMATCH, gender_ok),
        (ReasonCode.EXCLUDED_BY_ELDER, ~excluded),
        (ReasonCode.NO_CAPACITY, pool.remaining[h] > 0),
        (ReasonCode.NOT_AVAILABLE, available),
    )
    return PairChecks(r, h, travel, stages, expired & ~missing, start)


def _first_piece(pool: HelperPool, h: IntArray, start: IntArray, travel: IntArray) -> IntArray:
    """The first piece of each helper whose span holds the job starting at `start`."""
    column = np.zeros(h.shape, dtype=np.int64)
    found = np.zeros(h.shape, dtype=np.bool_)
    for c in range(pool.piece_start.shape[1]):
        holds = ~found & (pool.piece_start[h, c] <= start - travel) & (start < pool.piece_end[h, c])
        column = np.where(holds, c, column)
        found |= holds
    return column


def edges_from(
    checks: PairChecks, batch: RequestBatch, pool: HelperPool, *, policy: Policy
) -> Edges:
    """The feasible pairs of `checks` at their earliest start, costed."""
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
        block=pool.piece_block[h, _first_piece(pool, h, start, travel)],
    )


def _order(edges: Edges, *, by_cost: bool) -> IntArray:
    """Edge order by (request, [cost,] helper) through one int64 key: one sort, not three."""
    if edges.r.size == 0:
        return np.zeros(0, dtype=np.int64)
    n_h = int(edges.h.max()) + 1
    if not by_cost:
        return np.argsort(edges.r * n_h + edges.h)
    total = edges.total
    low = int(total.min())
    span = int(total.max()) - low + 1
    if (int(edges.r.max()) + 1) * span * n_h < 2**62:
        return np.argsort((edges.r * span + (total - low)) * n_h + edges.h)
    return np.lexsort((edges.h, total, edges.r))


def cheapest_per_request(edges: Edges, limit: int) -> Edges:
    """Each request's `limit` cheapest edges; equal costs go to the lower helper index."""
    if edges.r.size == 0:
        return edges
    order = _order(edges, by_cost=True)
    r_sorted = edges.r[order]
    first = np.searchsorted(r_sorted, r_sorted, side="left")
    rank = np.arange(r_sorted.size) - first
    return edges.take(np.sort(order[rank < limit]))


def merged(parts: list[Edges]) -> Edges:
    """The union of edge sets, one edge per (request, helper), sorted by both."""
    edges = Edges.concat(parts)
    order = _order(edges, by_cost=False)
    if order.size == 0:
        return edges
    r, h = edges.r[order], edges.h[order]
    first = np.ones(order.size, dtype=np.bool_)
    first[1:] = (r[1:] != r[:-1]) | (h[1:] != h[:-1])
    return edges.take(order[first])


def in_every_block(
    edges: Edges, batch: RequestBatch, pool: HelperPool, *, policy: Policy, now: int
) -> Edges:
    """One edge per (request, helper, block) the job fits, at its earliest start in that block,
    sorted by (request, helper, block): the solver's columns are blocks, not helpers."""
    r_parts, h_parts, start_parts, block_parts, source = [], [], [], [], []
    for column in range(pool.piece_start.shape[1]):
        start = _piece_starts(batch, pool, edges.r, edges.h, edges.travel, now, column)
        fits = np.flatnonzero(start != NO_START)
        r_parts.append(edges.r[fits])
        h_parts.append(edges.h[fits])
        start_parts.append(start[fits])
        block_parts.append(pool.piece_block[edges.h[fits], column])
        source.append(fits)
    r, h = np.concatenate(r_parts), np.concatenate(h_parts)
    start, block = np.concatenate(start_parts), np.concatenate(block_parts)
    src = np.concatenate(source)
    # A block of grouped windows has several pieces: keep its earliest start.
    order = np.lexsort((start, block, h, r))
    r, h, start, block, src = r[order], h[order], start[order], block[order], src[order]
    first = np.ones(r.size, dtype=np.bool_)
    first[1:] = (r[1:] != r[:-1]) | (h[1:] != h[:-1]) | (block[1:] != block[:-1])
    r, h, start, block, src = r[first], h[first], start[first], block[first], src[first]
    return Edges(
        r=r,
        h=h,
        start=start,
        end=start + batch.duration[r],
        travel=edges.travel[src],
        travel_cost=edges.travel_cost[src],
        waiting_cost=waiting_cost(policy.weights, start - batch.earliest[r]),
        continuity_cost=edges.continuity_cost[src],
        fairness_cost=edges.fairness_cost[src],
        rating_cost=edges.rating_cost[src],
        block=block,
    )


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

    def costed(r: IntArray, h: IntArray) -> Edges:
        checks = check_pairs(batch, pool, r, h, policy=policy, now=now, blacklisted=blacklisted)
        return edges_from(checks, batch, pool, policy=policy)

    for code, service in enumerate(SERVICES):
        rows = np.flatnonzero(open_rows & (batch.service == code))
        index = pool.trees.get(service)
        if rows.size == 0 or index is None:
            continue
        radius = int(batch.radius[rows].max())
        bound = chord_for_km(policy.travel.reach_km(radius)) * BOUND_SLACK
        # Each request's nearest helpers, cut to its cheapest feasible few.
        k = min(QUERY_FACTOR * policy.candidates_per_request, index.members.size)
        _, idx = index.tree.query(xyz[rows], k=k, distance_upper_bound=bound, workers=-1)
        idx = np.asarray(idx).reshape(rows.size, k)
        found = idx < index.members.size
        r = np.repeat(rows, found.sum(axis=1))
        h = index.members[idx[found]]
        checked += r.size
        parts.append(cheapest_per_request(costed(r, h), policy.candidates_per_request))
        # Each helper's nearest requests, kept whatever their cost.
        k_back = min(REVERSE_K, rows.size)
        _, back = cKDTree(xyz[rows]).query(
            unit_vectors(pool.lat[index.members], pool.lon[index.members]),
            k=k_back,
            distance_upper_bound=bound,
            workers=-1,
        )
        back = np.asarray(back).reshape(index.members.size, k_back)
        hit = back < rows.size
        r = rows[back[hit]]
        h = np.repeat(index.members, hit.sum(axis=1))
        checked += r.size
        parts.append(costed(r, h))
    return in_every_block(merged(parts), batch, pool, policy=policy, now=now), checked


def in_reach_edges(
    rows: IntArray, batch: RequestBatch, pool: HelperPool, *, policy: Policy, now: int
) -> Edges:
    """Every feasible (request, helper, block) edge of `rows`, over all helpers in the circle."""
    blacklisted = pool.blacklisted(policy)
    xyz = unit_vectors(batch.lat, batch.lon)
    parts: list[Edges] = []
    for code, service in enumerate(SERVICES):
        group = rows[batch.service[rows] == code]
        index = pool.trees.get(service)
        if group.size == 0 or index is None:
            continue
        bound = chord_for_km(policy.travel.reach_km(int(batch.radius[group].max()))) * BOUND_SLACK
        near = index.tree.query_ball_point(xyz[group], bound)
        lengths = np.fromiter((len(n) for n in near), np.int64, group.size)
        if lengths.sum() == 0:
            continue
        h = index.members[np.fromiter(chain.from_iterable(near), np.int64, int(lengths.sum()))]
        r = np.repeat(group, lengths)
        checks = check_pairs(batch, pool, r, h, policy=policy, now=now, blacklisted=blacklisted)
        parts.append(edges_from(checks, batch, pool, policy=policy))
    return in_every_block(merged(parts), batch, pool, policy=policy, now=now)


def slot_keys(edges: Edges, pool: HelperPool) -> IntArray:
    """One integer per (helper, block): the solver's column."""
    keys: IntArray = edges.h * pool.piece_start.shape[1] + edges.block
    return keys


def union(a: Edges, b: Edges, pool: HelperPool) -> Edges:
    """Edges of both, one per (request, helper, block), sorted by those three."""
    both = Edges.concat([a, b])
    key = (both.r * len(pool) + both.h) * pool.piece_start.shape[1] + both.block
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.ones(key.size, dtype=np.bool_)
    first[1:] = key[1:] != key[:-1]
    return both.take(order[first])
