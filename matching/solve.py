"""Exact minimum-cost assignment over the candidate graph, and the urgent fast path.

Each request may be matched to one helper or left unmatched at its penalty; each helper takes
at most its remaining capacity, and two jobs of one helper must not overlap (travel included).

Method, per connected component of the request-helper graph:
1. Relaxation: give every helper as many identical columns ("slots") as it may take, add one
   private "unmatched" column per request, and solve the rectangular assignment problem
   exactly (dense Jonker-Volgenant for small components, sparse LAPJVsp for large ones).
   Only each pair's earliest start enters: with overlaps ignored it is the cheapest option.
2. The relaxation ignores overlaps. If no helper got overlapping jobs, its optimum is feasible
   and therefore optimal. Otherwise the component is re-solved as a 0/1 program with HiGHS
   over every start option of every pair (capacity rows plus one row per maximal set of
   mutually overlapping jobs of a helper, which is exact for intervals), with a zero gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linear_sum_assignment, milp
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

from matching.candidates import Edges, check_pairs, edges_from, servable
from matching.geo import chord_for_km, unit_vectors
from matching.policy import Policy
from matching.pool import SERVICES, HelperPool, RequestBatch
from matching.types import Assignment, CostBreakdown, Helper, Request

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Components with at most this many matrix cells go to the dense solver, which is faster on
# small problems; larger ones go to the sparse solver, whose memory follows the edge count.
DENSE_CELLS = 40_000


@dataclass(frozen=True, slots=True, eq=False)
class Solution:
    chosen: IntArray  # indices into the edges, sorted by request
    components: int
    largest_component: int
    exact_fallbacks: int


def _components(edges: Edges, n_requests: int, n_helpers: int) -> tuple[int, IntArray]:
    """Component label of every request (requests without edges get their own)."""
    n = n_requests + n_helpers
    graph = sparse.coo_array(
        (np.ones(edges.r.size, dtype=np.int8), (edges.r, n_requests + edges.h)), shape=(n, n)
    )
    count, labels = connected_components(graph, directed=False)
    return count, labels.astype(np.int64)


def _relaxation(
    rows: IntArray, cols: IntArray, cost: IntArray, slots: IntArray, penalty: IntArray
) -> IntArray:
    """Local edge indices chosen by the slot-expanded assignment (rows and cols are local)."""
    n_rows = penalty.size
    slot_start = np.concatenate(([0], np.cumsum(slots)))
    copies = slots[cols]
    edge_of = np.repeat(np.arange(rows.size), copies)
    slot_col = np.repeat(slot_start[cols], copies) + (
        np.arange(edge_of.size) - np.repeat(np.cumsum(copies) - copies, copies)
    )
    n_cols = int(slot_start[-1]) + n_rows
    row_idx = np.concatenate((rows[edge_of], np.arange(n_rows)))
    col_idx = np.concatenate((slot_col, slot_start[-1] + np.arange(n_rows)))
    values = np.concatenate((cost[edge_of], penalty)).astype(np.float64)
    # Every row is matched exactly once, so a common shift keeps the optimum and makes all
    # weights positive, as the sparse solver requires.
    values += 1.0 - values.min()
    if n_rows * n_cols <= DENSE_CELLS:
        matrix = np.full((n_rows, n_cols), np.inf)
        matrix[row_idx, col_idx] = values
        matched_rows, matched_cols = linear_sum_assignment(matrix)
    else:
        matrix = sparse.csr_array((values, (row_idx, col_idx)), shape=(n_rows, n_cols))
        matched_rows, matched_cols = min_weight_full_bipartite_matching(matrix)
    real = matched_cols < slot_start[-1]
    slot_owner = np.repeat(np.arange(slots.size), slots)
    chosen_rows = matched_rows[real]
    chosen_cols = slot_owner[matched_cols[real]]
    # Map (row, helper) back to the edge; each pair is one edge.
    key = rows * slots.size + cols
    order = np.argsort(key)
    pos = np.searchsorted(key[order], chosen_rows * slots.size + chosen_cols)
    return np.sort(order[pos])


def _overlapping_cliques(busy_start: IntArray, busy_end: IntArray) -> list[IntArray]:
    """Maximal sets of mutually overlapping intervals (local indices), two or more each."""
    order = np.lexsort((busy_end, busy_start))
    cliques: list[IntArray] = []
    previous: set[int] = set()
    for i in order:
        point = busy_start[i]
        members = np.flatnonzero((busy_start <= point) & (point < busy_end))
        current = set(members.tolist())
        if len(current) >= 2 and not current <= previous:
            cliques.append(members)
        previous = current
    return cliques


def _exact(
    rows: IntArray,
    cols: IntArray,
    cost: IntArray,
    capacity: IntArray,
    penalty: IntArray,
    busy_start: IntArray,
    busy_end: IntArray,
) -> IntArray:
    """Local edge indices of the optimum with overlaps forbidden (0/1 program, zero gap)."""
    n_edges, n_rows = rows.size, penalty.size
    objective = np.concatenate((cost, penalty)).astype(np.float64)
    n_vars = n_edges + n_rows
    blocks = [
        # Each request: matched once or unmatched.
        sparse.coo_array(
            (
                np.ones(n_vars),
                (np.concatenate((rows, np.arange(n_rows))), np.arange(n_vars)),
            ),
            shape=(n_rows, n_vars),
        ),
        # Each helper: at most its capacity.
        sparse.coo_array(
            (np.ones(n_edges), (cols, np.arange(n_edges))), shape=(capacity.size, n_vars)
        ),
    ]
    lower = [np.ones(n_rows), np.zeros(capacity.size)]
    upper = [np.ones(n_rows), capacity.astype(np.float64)]
    clique_rows: list[IntArray] = []
    clique_cols: list[IntArray] = []
    count = 0
    for helper in np.unique(cols):
        mine = np.flatnonzero(cols == helper)
        if mine.size < 2:
            continue
        for clique in _overlapping_cliques(busy_start[mine], busy_end[mine]):
            clique_rows.append(np.full(clique.size, count))
            clique_cols.append(mine[clique])
            count += 1
    if count:
        blocks.append(
            sparse.coo_array(
                (
                    np.ones(sum(c.size for c in clique_cols)),
                    (np.concatenate(clique_rows), np.concatenate(clique_cols)),
                ),
                shape=(count, n_vars),
            )
        )
        lower.append(np.zeros(count))
        upper.append(np.ones(count))
    result = milp(
        objective,
        constraints=LinearConstraint(
            sparse.vstack(blocks), np.concatenate(lower), np.concatenate(upper)
        ),
        integrality=np.ones(n_vars),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 0.0, "presolve": True},
    )
    if not result.success:  # the all-unmatched point is always feasible, so this is a bug
        raise RuntimeError(f"exact assignment failed: {result.message}")
    return np.flatnonzero(result.x[:n_edges] > 0.5)


def _has_overlap(helper: IntArray, busy_start: IntArray, busy_end: IntArray) -> BoolArray:
    """Per entry: whether it overlaps the next job of the same helper (sorted by start)."""
    order = np.lexsort((busy_start, helper))
    h, s, e = helper[order], busy_start[order], busy_end[order]
    clash = (h[1:] == h[:-1]) & (s[1:] < e[:-1])
    flagged = np.zeros(helper.size, dtype=np.bool_)
    flagged[order[:-1][clash]] = True
    flagged[order[1:][clash]] = True
    return flagged


def solve(edges: Edges, batch: RequestBatch, pool: HelperPool) -> Solution:
    n_requests, n_helpers = len(batch), len(pool)
    _, labels = _components(edges, n_requests, n_helpers)
    request_label = labels[:n_requests]
    # Components are counted by their requests; a helper nobody can use is not a problem.
    count = int(np.unique(request_label).size)
    if edges.r.size == 0:
        return Solution(np.zeros(0, dtype=np.int64), count, 1 if n_requests else 0, 0)
    sizes = np.bincount(request_label)
    edge_label = request_label[edges.r]
    order = np.argsort(edge_label, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_label[order])) + 1
    total = edges.total
    busy_start = edges.start - edges.travel
    busy_end = edges.end + edges.travel
    chosen: list[IntArray] = []
    fallbacks = 0
    for group in np.split(order, bounds):
        r_global, r_local = np.unique(edges.r[group], return_inverse=True)
        h_global, h_local = np.unique(edges.h[group], return_inverse=True)
        capacity = pool.remaining[h_global]
        penalty = batch.penalty[r_global]
        # The relaxation needs only each pair's earliest start: it is the cheapest option.
        base = np.flatnonzero(edges.option[group] == 0)
        slots = np.minimum(capacity, np.bincount(h_local[base], minlength=h_global.size))
        picked = base[_relaxation(r_local[base], h_local[base], total[group][base], slots, penalty)]
        if (
            picked.size > 1
            and _has_overlap(
                h_local[picked], busy_start[group][picked], busy_end[group][picked]
            ).any()
        ):
            fallbacks += 1
            picked = _exact(
                r_local,
                h_local,
                total[group],
                capacity,
                penalty,
                busy_start[group],
                busy_end[group],
            )
        chosen.append(group[picked])
    result = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    result = result[np.argsort(edges.r[result], kind="stable")]
    return Solution(result, count, int(sizes.max()), fallbacks)


def assignments_from(
    edges: Edges, picked: IntArray, batch: RequestBatch, pool: HelperPool
) -> tuple[Assignment, ...]:
    columns = [
        getattr(edges, name)[picked].tolist()
        for name in (
            "r",
            "h",
            "start",
            "end",
            "travel",
            "travel_cost",
            "waiting_cost",
            "continuity_cost",
            "fairness_cost",
            "rating_cost",
        )
    ]
    return tuple(
        Assignment(
            request_id=batch.ids[r],
            helper_id=pool.ids[h],
            start=start,
            end=end,
            travel_minutes=travel,
            cost=CostBreakdown(travel=tc, waiting=wc, continuity=cc, fairness=fc, rating=rc),
        )
        for r, h, start, end, travel, tc, wc, cc, fc, rc in zip(*columns, strict=True)
    )


def urgent(
    request: Request,
    helpers: Sequence[Helper] | HelperPool,
    *,
    k: int,
    policy: Policy,
    now: int,
) -> tuple[Assignment, ...]:
    """The best `k` feasible helpers for one request, cheapest first (ties: lower helper id).

    Every helper in the service circle is considered, not only the nearest few; the helpers'
    other offers are the market's business, so all of them are returned to notify at once.
    Pass a prebuilt `HelperPool` to skip converting the helpers on every call.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    pool = helpers if isinstance(helpers, HelperPool) else HelperPool.build(helpers)
    batch = RequestBatch.build([request], pool, policy=policy, now=now)
    service = SERVICES[int(batch.service[0])]
    index = pool.trees.get(service)
    if index is None or not servable(batch)[0]:
        return ()
    bound = chord_for_km(policy.travel.reach_km(int(batch.radius[0]))) * (1.0 + 1e-9)
    point = unit_vectors(batch.lat, batch.lon)[0]
    near = np.asarray(index.tree.query_ball_point(point, bound), dtype=np.int64)
    h = np.sort(index.members[near])
    r = np.zeros(h.size, dtype=np.int64)
    checks = check_pairs(
        batch, pool, r, h, policy=policy, now=now, blacklisted=pool.blacklisted(policy)
    )
    edges = edges_from(checks, batch, pool, policy=policy)
    best = np.lexsort((edges.h, edges.total))[:k]
    return assignments_from(edges, best, batch, pool)
