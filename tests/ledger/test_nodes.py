"""Stored Merkle nodes: what an append completes, from the frontier alone, at any batch size."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.merkle import MerkleIndex
from ledger.storage.nodes import STORED_FROM, frontier, new_nodes


def leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(b"%d" % i).digest() for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=8))
def test_batches_complete_exactly_the_stored_nodes(batches: list[int]) -> None:
    total = sum(batches)
    hashes = leaves(total)
    index = MerkleIndex.from_leaves(hashes)
    stored: dict[tuple[int, int], bytes] = {}
    size = 0
    for count in batches:
        known = {
            (level, i): hashes[i] if level == 0 else stored[(level, i)]
            for level, i in frontier(size)
        }
        made = new_nodes(size, known, hashes[size : size + count])
        assert not set(made) & set(stored), "a node was completed twice"
        assert all(index.node(level, i) == h for (level, i), h in made.items())
        stored.update(made)
        size += count
    expected = {
        (level, i)
        for level in range(STORED_FROM, total.bit_length())
        for i in range(total >> level)
    }
    assert set(stored) == expected


def test_frontier_reads_the_stored_edge_and_the_last_partial_block() -> None:
    # 1003 = 0b1111101011: stored levels 9, 8, 7, 6, 5 (4 is clear), leaves 992..1002.
    keys = frontier(1003)
    assert keys[:5] == [(9, 0), (8, 2), (7, 6), (6, 14), (5, 30)]
    assert keys[5:] == [(0, i) for i in range(992, 1003)]
    assert frontier(0) == [] and frontier(16) == [(4, 0)]
