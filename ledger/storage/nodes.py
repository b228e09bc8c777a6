"""Persisted Merkle nodes: which complete subtrees an append completes.

A chain stores the hash of every complete, aligned subtree, the layout of `ledger.merkle`:
node (level, idx) covers leaves [idx * 2**level, (idx + 1) * 2**level). Appending a leaf adds
at most log2(n) + 1 nodes; to compute them the append path needs only the frontier (the complete
subtrees on the right edge), never the whole tree. Proofs are then read with
`ledger.merkle.inclusion_nodes` / `inclusion_proof_from` and friends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledger.merkle import NodeKey, node_hash


def frontier(size: int) -> list[NodeKey]:
    """The complete subtrees on the right edge of a tree of `size` leaves, largest first."""
    keys: list[NodeKey] = []
    start = 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, start >> level))
            start += 1 << level
    return keys


def new_nodes(
    size: int, frontier_hashes: Mapping[NodeKey, bytes], leaves: Sequence[bytes]
) -> dict[NodeKey, bytes]:
    """Nodes completed by appending `leaves` (leaf hashes) to a tree of `size` leaves.

    `frontier_hashes` must hold the hashes of `frontier(size)`.
    """
    known: dict[NodeKey, bytes] = dict(frontier_hashes)
    created: dict[NodeKey, bytes] = {}
    for offset, leaf in enumerate(leaves):
        idx = size + offset
        key: NodeKey = (0, idx)
        created[key] = known[key] = leaf
        level = 0
        # A node whose index is odd completes its parent together with its left sibling.
        while idx & 1:
            left = known[(level, idx - 1)]
            right = known[(level, idx)]
            level += 1
            idx >>= 1
            created[(level, idx)] = known[(level, idx)] = node_hash(left, right)
    return created
