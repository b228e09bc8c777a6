"""Merkle trees as in RFC 9162 section 2.1: roots, inclusion and consistency proofs, verifiers.

Leaf hash = SHA-256(0x00 || data), node hash = SHA-256(0x01 || left || right), and the tree of
n leaves splits at the largest power of two below n. The empty tree's root is SHA-256("").
A ledger entry's hash (`ledger.entries.entry_hash`) is already the leaf hash of its leaf data.

`MerkleIndex` answers proofs for a large chain without rebuilding the tree per request. It keeps
the hash of every *complete, aligned* subtree: node (level, index) covers leaves
[index * 2**level, (index + 1) * 2**level) and exists once all those leaves exist. Such nodes
never change as the chain grows, so they can be persisted append-only, and every subtree RFC
9162 needs for a tree of any size <= the index size is either one stored node or a short
right-leaning combination of stored nodes (O(log n) hashes).

Storage shape (for a database or a file):
- per level, a flat byte string of 32-byte hashes in index order (`level_bytes(level)`), level 0
  being the leaf (= entry) hashes; level k has `size >> k` nodes; or
- rows (level, index, hash): `append` returns the nodes it completed (always the leaf plus
  0..log2 n parents), so an append path can insert them in the same transaction;
  `MerkleIndex.from_levels` / `from_nodes` rebuild the index.
- Lazy alternative: `inclusion_nodes(index, size)` / `consistency_nodes(m, n)` list exactly the
  (level, index) keys a proof needs; fetch those rows and call `inclusion_proof_from` /
  `consistency_proof_from` with a mapping of them, without loading the whole tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import NamedTuple

from ledger.errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeKey = tuple[int, int]
NodeGetter = Callable[[int, int], bytes]


class Node(NamedTuple):
    """A stored subtree hash: (level, position) covers leaves [position << level,
    (position + 1) << level)."""

    level: int
    position: int
    hash: bytes


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly below n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_hash(get: NodeGetter, start: int, end: int) -> bytes:
    """MTH of leaves [start, end) where start is a multiple of the range's RFC split sizes."""
    width = end - start
    if width & (width - 1) == 0 and start % width == 0:
        level = width.bit_length() - 1
        return get(level, start >> level)
    k = split_point(width)
    return node_hash(_range_hash(get, start, start + k), _range_hash(get, start + k, end))


def _inclusion(get: NodeGetter, index: int, size: int) -> list[bytes]:
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not below tree size {size}")
    top_down: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            top_down.append(_range_hash(get, start + k, end))
            end = start + k
        else:
            top_down.append(_range_hash(get, start, start + k))
            start += k
    top_down.reverse()
    return top_down


def _consistency(get: NodeGetter, old_size: int, new_size: int) -> list[bytes]:
    if not 0 <= old_size <= new_size:
        raise ProofError(f"cannot prove consistency from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    # RFC 9162 SUBPROOF(m, D[start:end], complete), unrolled from the top.
    top_down: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            top_down.append(_range_hash(get, start + k, end))
            end = start + k
        else:
            top_down.append(_range_hash(get, start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        top_down.append(_range_hash(get, start, end))
    top_down.reverse()
    return top_down


class _Recorder:
    """A node getter that records which nodes an algorithm asks for."""

    def __init__(self) -> None:
        self.keys: list[NodeKey] = []

    def __call__(self, level: int, index: int) -> bytes:
        self.keys.append((level, index))
        return bytes(HASH_SIZE)


def _getter_from(nodes: Mapping[NodeKey, bytes]) -> NodeGetter:
    def get(level: int, index: int) -> bytes:
        try:
            return nodes[(level, index)]
        except KeyError:
            raise ProofError(f"node ({level}, {index}) was not supplied") from None

    return get


def _unique(keys: Iterable[NodeKey]) -> list[NodeKey]:
    return sorted(set(keys))


def inclusion_nodes(index: int, size: int) -> list[NodeKey]:
    """The stored (level, index) nodes an inclusion proof needs, sorted."""
    recorder = _Recorder()
    _inclusion(recorder, index, size)
    return _unique(recorder.keys)


def consistency_nodes(old_size: int, new_size: int) -> list[NodeKey]:
    recorder = _Recorder()
    _consistency(recorder, old_size, new_size)
    return _unique(recorder.keys)


def root_nodes(size: int) -> list[NodeKey]:
    if size == 0:
        return []
    recorder = _Recorder()
    _range_hash(recorder, 0, size)
    return _unique(recorder.keys)


def inclusion_proof_from(nodes: Mapping[NodeKey, bytes], index: int, size: int) -> list[bytes]:
    return _inclusion(_getter_from(nodes), index, size)


def consistency_proof_from(
    nodes: Mapping[NodeKey, bytes], old_size: int, new_size: int
) -> list[bytes]:
    return _consistency(_getter_from(nodes), old_size, new_size)


def root_from(nodes: Mapping[NodeKey, bytes], size: int) -> bytes:
    return EMPTY_ROOT if size == 0 else _range_hash(_getter_from(nodes), 0, size)


def compact_range(begin: int, end: int) -> list[NodeKey]:
    """The fewest complete aligned subtrees covering leaves [begin, end), left to right.

    Two parts of a tree built apart (e.g. in two processes) join through these: see
    `range_hashes` and `root_of_joined`.
    """
    keys: list[NodeKey] = []
    at = begin
    while at < end:
        width = at & -at if at else 1 << (end.bit_length() - 1)
        while at + width > end:
            width >>= 1
        level = width.bit_length() - 1
        keys.append((level, at >> level))
        at += width
    return keys


def range_hashes(leaves: Sequence[bytes], begin: int, end: int) -> list[Node]:
    """The compact range of [begin, end) with hashes, from the leaf hashes of that range."""
    nodes = []
    for level, index in compact_range(begin, end):
        first = (index << level) - begin
        subtree = MerkleIndex.from_leaves(leaves[first : first + (1 << level)])
        nodes.append(Node(level, index, subtree.root()))
    return nodes


def root_of_joined(left: Sequence[Node], right: Sequence[Node]) -> bytes:
    """The root of [0, n) from the compact ranges of [0, k) and [k, n)."""
    stack: list[Node] = list(left)
    for node in right:
        stack.append(node)
        # Two adjacent complete siblings make their complete parent.
        while (
            len(stack) >= 2
            and stack[-1].level == stack[-2].level
            and stack[-2].position % 2 == 0
            and stack[-1].position == stack[-2].position + 1
        ):
            right_child, left_child = stack.pop(), stack.pop()
            parent = node_hash(left_child.hash, right_child.hash)
            stack.append(Node(left_child.level + 1, left_child.position // 2, parent))
    if not stack:
        return EMPTY_ROOT
    # What remains is the binary decomposition of n, largest first: RFC 9162 nests it rightwards.
    accumulated = stack[-1].hash
    for node in reversed(stack[:-1]):
        accumulated = node_hash(node.hash, accumulated)
    return accumulated


class MerkleIndex:
    """Every complete aligned subtree hash of a growing tree, level by level in flat buffers."""

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    @property
    def height(self) -> int:
        return len(self._levels)

    def node(self, level: int, index: int) -> bytes:
        if not 0 <= level < len(self._levels):
            raise ProofError(f"no level {level} in a tree of size {self.size}")
        buffer = self._levels[level]
        offset = index * HASH_SIZE
        if index < 0 or offset + HASH_SIZE > len(buffer):
            raise ProofError(f"node ({level}, {index}) is not complete at size {self.size}")
        return bytes(buffer[offset : offset + HASH_SIZE])

    def append(self, leaf: bytes) -> list[Node]:
        """Add one leaf hash; return the nodes it completed, leaf first."""
        if len(leaf) != HASH_SIZE:
            raise ProofError("a leaf hash must be 32 bytes")
        levels = self._levels
        index = self.size
        levels[0] += leaf
        completed = [Node(0, index, bytes(leaf))]
        current, level = bytes(leaf), 0
        while index & 1:
            left = levels[level][(index - 1) * HASH_SIZE : index * HASH_SIZE]
            current = node_hash(bytes(left), current)
            level, index = level + 1, index >> 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += current
            completed.append(Node(level, index, current))
        return completed

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add many leaf hashes, computing parents level by level (fast bulk load)."""
        added = bytearray().join(leaves)
        if len(added) % HASH_SIZE:
            raise ProofError("leaf hashes must be 32 bytes each")
        if self._levels[0]:
            self._levels[0] += added
        else:  # a bulk load: the joined leaves are the level, not copied into it
            self._levels[0] = added
        self._complete_levels()

    def _complete_levels(self) -> None:
        level = 0
        sha256 = hashlib.sha256
        step = 2 * HASH_SIZE
        while True:
            below = self._levels[level]
            want = len(below) // step
            if want == 0:
                return
            if level + 1 == len(self._levels):
                self._levels.append(bytearray())
            above = self._levels[level + 1]
            have = len(above) // HASH_SIZE
            # The pairs are read through a view of the level, not copied out of it (twice, as
            # bytes(bytearray slice) did): a large level's copies cost fresh pages every time.
            with memoryview(below) as view:
                pairs = view[have * step : want * step]
                # A list comprehension over slices is the fastest pure-Python loop here.
                starts = range(0, len(pairs), step)
                hashes = [sha256(b"\x01" + pairs[i : i + step]).digest() for i in starts]
                del pairs  # the view's release needs its slices gone
            above += b"".join(hashes)
            level += 1

    def level_bytes(self, level: int) -> bytes:
        return bytes(self._levels[level])

    @classmethod
    def from_levels(cls, levels: Sequence[bytes]) -> MerkleIndex:
        """Rebuild from `level_bytes` of every level; checks the counts agree with the leaves."""
        index = cls()
        if not levels:
            return index
        index._levels = [bytearray(data) for data in levels]
        size = index.size
        for level, data in enumerate(index._levels):
            if len(data) != (size >> level) * HASH_SIZE:
                raise ProofError(f"level {level} holds {len(data)} bytes for tree size {size}")
        index._complete_levels()
        return index

    @classmethod
    def from_nodes(cls, nodes: Iterable[Node | tuple[int, int, bytes]]) -> MerkleIndex:
        """Rebuild from stored (level, index, hash) rows in any order; they must be complete."""
        by_level: dict[int, dict[int, bytes]] = {}
        for level, position, value in nodes:
            by_level.setdefault(level, {})[position] = value
        levels: list[bytes] = []
        for level in range(len(by_level)):
            rows = by_level.get(level)
            if rows is None or sorted(rows) != list(range(len(rows))):
                raise ProofError(f"stored nodes of level {level} are not contiguous from 0")
            levels.append(b"".join(rows[i] for i in range(len(rows))))
        return cls.from_levels(levels)

    @classmethod
    def joined(cls, left: MerkleIndex, right: MerkleIndex) -> MerkleIndex:
        """The index of left's leaves followed by right's, built separately (e.g. in parallel).

        Right's node (level, i) is node (level, left.size >> level + i) of the whole tree, so
        left.size must be a multiple of every subtree width in right.
        """
        width = 1 << (right.height - 1)
        if left.size % width:
            raise ProofError(f"a left part of {left.size} leaves is not aligned to {width}")
        levels = [left.level_bytes(level) for level in range(left.height)]
        for level in range(right.height):
            if level == len(levels):
                levels.append(b"")
            levels[level] += right.level_bytes(level)
        return cls.from_levels(levels)

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleIndex:
        index = cls()
        index.extend(leaves)
        return index

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise ProofError(f"tree size {size} is beyond the {self.size} leaves indexed")

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        self._check_size(size)
        return EMPTY_ROOT if size == 0 else _range_hash(self.node, 0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        self._check_size(size)
        return _inclusion(self.node, index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        new_size = self.size if new_size is None else new_size
        self._check_size(new_size)
        return _consistency(self.node, old_size, new_size)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    return MerkleIndex.from_leaves(leaf_hashes).root()


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    if size > len(leaf_hashes):
        raise ProofError(f"tree size {size} is beyond the {len(leaf_hashes)} leaves given")
    return MerkleIndex.from_leaves(leaf_hashes[:size]).inclusion_proof(index, size)


def consistency_proof(old_size: int, new_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    if new_size > len(leaf_hashes):
        raise ProofError(f"tree size {new_size} is beyond the {len(leaf_hashes)} leaves given")
    return MerkleIndex.from_leaves(leaf_hashes[:new_size]).consistency_proof(old_size, new_size)


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, current = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            current = node_hash(current, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and current == expected_root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 section 2.1.4.2; the empty tree is consistent with every tree."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_acc = new_acc = path[0]
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            old_acc = node_hash(sibling, old_acc)
            new_acc = node_hash(sibling, new_acc)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_acc = node_hash(new_acc, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and old_acc == old_root and new_acc == new_root
