"""Exact minimum-cost assignment over the candidate graph, and the urgent fast path.

Columns are helpers' blocks (schedule.py): each holds at most one job, so capacity and
"no two jobs at once" are built into the columns and the problem is a pure rectangular
assignment. Each request row also gets a private "unmatched" column priced at its penalty, so
leaving a request unmatched is a decision with a cost. The graph is split into connected
components and each is solved exactly: dense Jonker-Volgenant (`linear_sum_assignment`) for
small components, sparse LAPJVsp (`min_weight_full_bipartite_matching`) for large ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

from matching.candidates import Edges, check_pairs, edges_from, servable
from matching.geo import chord_for_km, unit_vectors
from matching.policy import Policy
from matching.pool import SERVICES, HelperPool, RequestBatch
from matching.types import Assignment, CostBreakdown, Helper, Request

IntArray = npt.NDArray[np.int64]

# Components with at most this many matrix cells go to the dense solver, which is faster on
# small problems; larger ones go to the sparse solver, whose memory follows the edge count.
DENSE_CELLS = 40_000


@dataclass(frozen=True, slots=True, eq=False)
class Solution:
    chosen: IntArray  # indices into the edges, sorted by request
    components: int  # connected components that contain a request
    largest_component: int  # requests in the largest one


def _assign(rows: IntArray, cols: IntArray, cost: IntArray, penalty: IntArray) -> IntArray:
    """Indices of the chosen edges; rows and cols are local (0..n), one edge per cell."""
    n_rows = penalty.size
    n_cols = int(cols.max()) + 1 + n_rows
    row_idx = np.concatenate((rows, np.arange(n_rows)))
    col_idx = np.concatenate((cols, n_cols - n_rows + np.arange(n_rows)))
    values = np.concatenate((cost, penalty)).astype(np.float64)
    # Every row is matched exactly once, so a common shift keeps the optimum and makes all
    # weights positive, as the sparse solver requires. Integers stay exact in float64.
    values += 1.0 - values.min()
    if n_rows * n_cols <= DENSE_CELLS:
        matrix = np.full((n_rows, n_cols), np.inf)
        matrix[row_idx, col_idx] = values
        matched_rows, matched_cols = linear_sum_assignment(matrix)
    else:
        matrix = sparse.csr_array((values, (row_idx, col_idx)), shape=(n_rows, n_cols))
        matched_rows, matched_cols = min_weight_full_bipartite_matching(matrix)
    real = matched_cols < n_cols - n_rows
    width = n_cols
    key = rows * width + cols
    order = np.argsort(key)
    pos = np.searchsorted(key[order], matched_rows[real] * width + matched_cols[real])
    return np.sort(order[pos])


def solve(edges: Edges, n_requests: int, penalty: IntArray, n_helpers: int) -> Solution:
    if edges.r.size == 0:
        return Solution(np.zeros(0, dtype=np.int64), n_requests, 1 if n_requests else 0)
    # Block nodes: one per (helper, block) that appears in an edge.
    block_key = edges.h * (int(edges.block.max()) + 1) + edges.block
    blocks, block_of_edge = np.unique(block_key, return_inverse=True)
    n = n_requests + blocks.size
    graph = sparse.coo_array(
        (np.ones(edges.r.size, dtype=np.int8), (edges.r, n_requests + block_of_edge)),
        shape=(n, n),
    )
    _, labels = connected_components(graph, directed=False)
    request_label = labels[:n_requests]
    _, sizes = np.unique(request_label, return_counts=True)
    edge_label = request_label[edges.r]
    order = np.argsort(edge_label, kind="stable")
    bounds = np.flatnonzero(np.diff(edge_label[order])) + 1
    total = edges.total
    chosen: list[IntArray] = []
    for group in np.split(order, bounds):
        r_global, r_local = np.unique(edges.r[group], return_inverse=True)
        _, c_local = np.unique(block_of_edge[group], return_inverse=True)
        picked = _assign(r_local, c_local, total[group], penalty[r_global])
        chosen.append(group[picked])
    result = np.concatenate(chosen)
    result = result[np.argsort(edges.r[result], kind="stable")]
    return Solution(result, int(sizes.size), int(sizes.max()))


def assignments_from(
    edges: Edges, picked: IntArray, batch: RequestBatch, pool: HelperPool
) -> tuple[Assignment, ...]:
    names = ("r", "h", "start", "end", "travel")
    terms = ("travel_cost", "waiting_cost", "continuity_cost", "fairness_cost", "rating_cost")
    columns = [getattr(edges, name)[picked].tolist() for name in names + terms]
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


def pool_for(
    helpers: Sequence[Helper] | HelperPool, policy: Policy, *, one_job: bool = False
) -> HelperPool:
    if isinstance(helpers, HelperPool):
        if helpers.block_key != policy.block_key:
            raise ValueError("the helper pool was built for other block minutes")
        if helpers.one_job != one_job:
            wanted = "one job per helper (urgent)" if one_job else "several jobs (match)"
            raise ValueError(f"the helper pool was not built for {wanted}")
        return helpers
    return HelperPool.build(helpers, policy=policy, one_job=one_job)


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
    Pass a prebuilt `HelperPool` (built with `one_job=True`: each helper is asked to take this
    one job, so all their free time can hold it) to skip converting the helpers on every call.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    pool = pool_for(helpers, policy, one_job=True)
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
