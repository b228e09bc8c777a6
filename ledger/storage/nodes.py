"""Persisted Merkle nodes: which complete subtrees an append completes.

A chain stores the hash of every complete, aligned subtree, the layout of `ledger.merkle`:
node (level, idx) covers leaves [idx * 2**level, (idx + 1) * 2**level). Appending a leaf adds
at most log2(n) + 1 nodes; to compute them the append path needs only the frontier (the complete
subtrees on the right edge), never the whole tree. Proofs are then read with
`ledger.merkle.inclusion_nodes` / `inclusion_proof_from` and friends.

A database store keeps only levels >= `STORED_FROM` as rows: level 0 is each entry's own hash,
and a node of levels 1 to 3 is recomputed from its at most 8 leaves when asked for, which
saves 15 of every 16 node rows on the append path for a few more leaf reads per proof.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ledger.merkle import NodeKey, node_hash

STORED_FROM = 4


def is_stored(key: NodeKey) -> bool:
    """Whether a database store keeps this node as a row (level 0 lives in the entries)."""
    return key[0] == 0 or key[0] >= STORED_FROM


def expand(keys: Sequence[NodeKey]) -> list[NodeKey]:
    """The keys to read for `keys`: stored ones as they are, the others as their leaves."""
    wanted: dict[NodeKey, None] = {}
    for level, idx in keys:
        if is_stored((level, idx)):
            wanted[(level, idx)] = None
        else:
            for leaf in range(idx << level, (idx + 1) << level):
                wanted[(0, leaf)] = None
    return list(wanted)


def derive(keys: Sequence[NodeKey], read: Mapping[NodeKey, bytes]) -> dict[NodeKey, bytes]:
    """Hashes of `keys` from what `expand(keys)` read; keys whose leaves are missing are left
    out, like missing stored nodes."""
    found: dict[NodeKey, bytes] = {}
    for level, idx in keys:
        if is_stored((level, idx)):
            if (level, idx) in read:
                found[(level, idx)] = read[(level, idx)]
            continue
        row = [read.get((0, leaf)) for leaf in range(idx << level, (idx + 1) << level)]
        if any(h is None for h in row):
            continue
        hashes = [h for h in row if h is not None]
        while len(hashes) > 1:
            hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
        found[(level, idx)] = hashes[0]
    return found


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
