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
    """What appending to a tree of `size` leaves needs: the stored complete subtrees on its
    right edge (levels >= `STORED_FROM`, largest first) and the leaves after the last complete
    block of 2**STORED_FROM, from which the nodes below are recomputed."""
    keys: list[NodeKey] = [
        (level, (size >> level) - 1)
        for level in range(size.bit_length() - 1, STORED_FROM - 1, -1)
        if size >> level & 1
    ]
    block = size >> STORED_FROM << STORED_FROM
    keys += [(0, leaf) for leaf in range(block, size)]
    return keys


def new_nodes(
    size: int, frontier_hashes: Mapping[NodeKey, bytes], leaves: Sequence[bytes]
) -> dict[NodeKey, bytes]:
    """Stored nodes (levels >= `STORED_FROM`) completed by appending `leaves` (leaf hashes) to
    a tree of `size` leaves; `frontier_hashes` must hold the hashes of `frontier(size)`.

    Level by level, as `MerkleIndex` builds: the row of a level starts at the last complete
    block before `size` and pairs into the next level's row; where a row starts on a right
    child, the stored left sibling from the frontier joins it first.
    """
    block = size >> STORED_FROM << STORED_FROM
    row = [frontier_hashes[(0, leaf)] for leaf in range(block, size)]
    row += leaves
    start, level = block, 0
    created: dict[NodeKey, bytes] = {}
    while row:
        if level >= STORED_FROM:
            first_new = size >> level  # nodes before it were complete before these leaves
            for offset in range(max(0, first_new - start), len(row)):
                created[(level, start + offset)] = row[offset]
        if start & 1:  # only above STORED_FROM: block is aligned to 2**STORED_FROM
            row.insert(0, frontier_hashes[(level, start - 1)])
            start -= 1
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        start >>= 1
        level += 1
    return created
