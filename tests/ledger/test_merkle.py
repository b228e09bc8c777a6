"""Merkle trees against RFC 6962 vectors and a deliberately naive RFC 9162 reference."""

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import ProofError
from ledger.merkle import (
    EMPTY_ROOT,
    MerkleIndex,
    Node,
    compact_range,
    consistency_nodes,
    consistency_proof,
    consistency_proof_from,
    inclusion_nodes,
    inclusion_proof,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    range_hashes,
    root,
    root_from,
    root_nodes,
    root_of_joined,
    verify_consistency,
    verify_inclusion,
)

# --- independent reference: RFC 9162 section 2.1 definitions, recursion over the leaf data ---


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(data: list[bytes]) -> bytes:
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = ref_k(len(data))
    return hashlib.sha256(b"\x01" + ref_mth(data[:k]) + ref_mth(data[k:])).digest()


def ref_path(m: int, data: list[bytes]) -> list[bytes]:
    if len(data) == 1:
        return []
    k = ref_k(len(data))
    if m < k:
        return [*ref_path(m, data[:k]), ref_mth(data[k:])]
    return [*ref_path(m - k, data[k:]), ref_mth(data[:k])]


def ref_subproof(m: int, data: list[bytes], complete: bool) -> list[bytes]:
    n = len(data)
    if m == n:
        return [] if complete else [ref_mth(data)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, data[:k], complete), ref_mth(data[k:])]
    return [*ref_subproof(m - k, data[k:], False), ref_mth(data[:k])]


def ref_proof(m: int, data: list[bytes]) -> list[bytes]:
    return ref_subproof(m, data, True)


LIMIT = 70
DATA = [f"leaf {i}".encode() for i in range(LIMIT)]
LEAVES = [leaf_hash(d) for d in DATA]
INDEX = MerkleIndex.from_leaves(LEAVES)
REF_ROOTS = [ref_mth(DATA[:n]) for n in range(LIMIT + 1)]

# RFC 6962 reference leaves and tree heads for sizes 0..8 (certificate-transparency test data).
CT_DATA = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


class TestPublishedVectors:
    @pytest.mark.parametrize("size", range(9))
    def test_root_matches_rfc6962_tree_head(self, size: int) -> None:
        leaves = [leaf_hash(d) for d in CT_DATA[:size]]
        assert root(leaves).hex() == CT_ROOTS[size]

    def test_reference_agrees_with_published_heads(self) -> None:
        assert [ref_mth(CT_DATA[:n]).hex() for n in range(9)] == CT_ROOTS


class TestAgainstReference:
    def test_roots_for_every_size(self) -> None:
        assert [INDEX.root(n) for n in range(LIMIT + 1)] == REF_ROOTS
        assert root([]) == EMPTY_ROOT == REF_ROOTS[0]

    def test_inclusion_proofs_for_every_index_and_size(self) -> None:
        for size in range(1, LIMIT + 1):
            for index in range(size):
                expected = ref_path(index, DATA[:size])
                assert INDEX.inclusion_proof(index, size) == expected, (index, size)
                assert verify_inclusion(LEAVES[index], index, size, expected, REF_ROOTS[size])

    def test_consistency_proofs_for_every_pair(self) -> None:
        for new in range(1, LIMIT + 1):
            for old in range(1, new + 1):
                expected = ref_proof(old, DATA[:new]) if old < new else []
                assert INDEX.consistency_proof(old, new) == expected, (old, new)
                assert verify_consistency(old, new, REF_ROOTS[old], REF_ROOTS[new], expected)

    def test_list_functions_match_the_index(self) -> None:
        assert inclusion_proof(5, 13, LEAVES) == ref_path(5, DATA[:13])
        assert consistency_proof(6, 13, LEAVES) == ref_proof(6, DATA[:13])


class TestVerifiersRefuse:
    def test_inclusion_with_wrong_leaf(self) -> None:
        proof = INDEX.inclusion_proof(3, 21)
        assert not verify_inclusion(LEAVES[4], 3, 21, proof, REF_ROOTS[21])

    def test_inclusion_with_wrong_index(self) -> None:
        proof = INDEX.inclusion_proof(3, 21)
        assert not verify_inclusion(LEAVES[3], 2, 21, proof, REF_ROOTS[21])

    def test_inclusion_with_wrong_size(self) -> None:
        proof = INDEX.inclusion_proof(3, 21)
        assert not verify_inclusion(LEAVES[3], 3, 22, proof, REF_ROOTS[22])

    def test_inclusion_index_out_of_range(self) -> None:
        assert not verify_inclusion(LEAVES[3], 21, 21, [], REF_ROOTS[21])

    def test_every_flipped_proof_byte_in_every_inclusion_proof(self) -> None:
        for size in (2, 7, 8, 33, 70):
            for index in range(size):
                proof = INDEX.inclusion_proof(index, size)
                for position in range(len(proof)):
                    bad = list(proof)
                    bad[position] = bytes([bad[position][0] ^ 1]) + bad[position][1:]
                    assert not verify_inclusion(LEAVES[index], index, size, bad, REF_ROOTS[size])

    def test_inclusion_with_extra_or_missing_sibling(self) -> None:
        proof = INDEX.inclusion_proof(9, 40)
        assert not verify_inclusion(LEAVES[9], 9, 40, [*proof, proof[0]], REF_ROOTS[40])
        assert not verify_inclusion(LEAVES[9], 9, 40, proof[:-1], REF_ROOTS[40])

    def test_consistency_with_wrong_old_root(self) -> None:
        proof = INDEX.consistency_proof(7, 30)
        assert not verify_consistency(7, 30, REF_ROOTS[6], REF_ROOTS[30], proof)

    def test_consistency_with_wrong_new_root(self) -> None:
        proof = INDEX.consistency_proof(7, 30)
        assert not verify_consistency(7, 30, REF_ROOTS[7], REF_ROOTS[29], proof)

    def test_every_flipped_byte_in_consistency_proofs(self) -> None:
        for old, new in [(1, 2), (3, 8), (4, 9), (7, 30), (32, 70), (69, 70)]:
            proof = INDEX.consistency_proof(old, new)
            for position in range(len(proof)):
                bad = list(proof)
                bad[position] = bytes([bad[position][0] ^ 1]) + bad[position][1:]
                assert not verify_consistency(old, new, REF_ROOTS[old], REF_ROOTS[new], bad)

    def test_consistency_of_a_rewritten_history(self) -> None:
        forked = list(DATA[:30])
        forked[4] = b"rewritten"
        proof = MerkleIndex.from_leaves([leaf_hash(d) for d in forked]).consistency_proof(10, 30)
        assert not verify_consistency(10, 30, REF_ROOTS[10], ref_mth(forked), proof)

    def test_consistency_shrinking_is_refused(self) -> None:
        assert not verify_consistency(9, 8, REF_ROOTS[9], REF_ROOTS[8], [])

    def test_consistency_same_size_needs_same_root_and_empty_proof(self) -> None:
        assert verify_consistency(9, 9, REF_ROOTS[9], REF_ROOTS[9], [])
        assert not verify_consistency(9, 9, REF_ROOTS[9], REF_ROOTS[8], [])
        assert not verify_consistency(9, 9, REF_ROOTS[9], REF_ROOTS[9], [REF_ROOTS[1]])

    def test_consistency_from_empty(self) -> None:
        assert verify_consistency(0, 9, EMPTY_ROOT, REF_ROOTS[9], [])
        assert not verify_consistency(0, 9, REF_ROOTS[1], REF_ROOTS[9], [])

    def test_consistency_missing_proof(self) -> None:
        assert not verify_consistency(3, 9, REF_ROOTS[3], REF_ROOTS[9], [])


class TestIndexErrors:
    def test_proof_for_index_beyond_size(self) -> None:
        with pytest.raises(ProofError, match="not below"):
            INDEX.inclusion_proof(10, 10)

    def test_size_beyond_index(self) -> None:
        with pytest.raises(ProofError, match="beyond"):
            INDEX.root(LIMIT + 1)

    def test_consistency_shrinking(self) -> None:
        with pytest.raises(ProofError, match="consistency"):
            INDEX.consistency_proof(10, 9)

    def test_append_refuses_short_hash(self) -> None:
        with pytest.raises(ProofError, match="32 bytes"):
            MerkleIndex().append(b"x")

    def test_list_function_beyond_leaves(self) -> None:
        with pytest.raises(ProofError, match="beyond"):
            inclusion_proof(0, 5, LEAVES[:4])


class TestIndexPersistence:
    def test_append_reports_completed_nodes(self) -> None:
        index = MerkleIndex()
        index.append(LEAVES[0])
        index.append(LEAVES[1])
        index.append(LEAVES[2])
        completed = index.append(LEAVES[3])
        assert [(n.level, n.position) for n in completed] == [(0, 3), (1, 1), (2, 0)]
        assert completed[-1].hash == ref_mth(DATA[:4])

    def test_appending_equals_bulk_loading(self) -> None:
        index = MerkleIndex()
        for leaf in LEAVES:
            index.append(leaf)
        assert [index.level_bytes(k) for k in range(index.height)] == [
            INDEX.level_bytes(k) for k in range(INDEX.height)
        ]

    def test_extend_in_pieces(self) -> None:
        index = MerkleIndex.from_leaves(LEAVES[:23])
        index.extend(LEAVES[23:])
        assert index.root() == REF_ROOTS[LIMIT]

    def test_from_levels_round_trip(self) -> None:
        levels = [INDEX.level_bytes(k) for k in range(INDEX.height)]
        assert MerkleIndex.from_levels(levels).root(41) == REF_ROOTS[41]

    def test_from_levels_refuses_wrong_counts(self) -> None:
        levels = [INDEX.level_bytes(k) for k in range(INDEX.height)]
        levels[2] = levels[2][:-32]
        with pytest.raises(ProofError, match="level 2"):
            MerkleIndex.from_levels(levels)

    def test_from_nodes_in_any_order(self) -> None:
        nodes: list[Node] = []
        index = MerkleIndex()
        for leaf in LEAVES:
            nodes.extend(index.append(leaf))
        rebuilt = MerkleIndex.from_nodes(reversed(nodes))
        assert rebuilt.root() == REF_ROOTS[LIMIT]

    def test_from_nodes_refuses_gaps(self) -> None:
        with pytest.raises(ProofError, match="contiguous"):
            MerkleIndex.from_nodes([(0, 0, LEAVES[0]), (0, 2, LEAVES[2])])

    @pytest.mark.parametrize(("left", "total"), [(1, 2), (32, 33), (32, 64), (64, 70), (16, 20)])
    def test_joined_parts_equal_one_index(self, left: int, total: int) -> None:
        joined = MerkleIndex.joined(
            MerkleIndex.from_leaves(LEAVES[:left]), MerkleIndex.from_leaves(LEAVES[left:total])
        )
        whole = MerkleIndex.from_leaves(LEAVES[:total])
        assert [joined.level_bytes(k) for k in range(joined.height)] == [
            whole.level_bytes(k) for k in range(whole.height)
        ]

    def test_joining_an_unaligned_part_is_refused(self) -> None:
        with pytest.raises(ProofError, match="aligned"):
            MerkleIndex.joined(
                MerkleIndex.from_leaves(LEAVES[:6]), MerkleIndex.from_leaves(LEAVES[6:20])
            )

    def test_compact_ranges_join_at_every_split(self) -> None:
        for total in range(LIMIT + 1):
            for split in range(total + 1):
                left = range_hashes(LEAVES[:split], 0, split)
                right = range_hashes(LEAVES[split:total], split, total)
                assert root_of_joined(left, right) == REF_ROOTS[total], (split, total)

    def test_compact_range_is_the_fewest_aligned_subtrees(self) -> None:
        assert compact_range(0, 6) == [(2, 0), (1, 2)]
        assert compact_range(6, 16) == [(1, 3), (3, 1)]
        assert compact_range(5, 5) == []

    def test_lazy_proofs_from_the_listed_nodes_only(self) -> None:
        def fetch(keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
            return {key: INDEX.node(*key) for key in keys}

        assert inclusion_proof_from(fetch(inclusion_nodes(17, 45)), 17, 45) == ref_path(
            17, DATA[:45]
        )
        assert consistency_proof_from(fetch(consistency_nodes(13, 45)), 13, 45) == ref_proof(
            13, DATA[:45]
        )
        assert root_from(fetch(root_nodes(45)), 45) == REF_ROOTS[45]

    def test_lazy_proof_with_a_missing_node(self) -> None:
        with pytest.raises(ProofError, match="not supplied"):
            inclusion_proof_from({}, 3, 9)


@given(st.integers(1, 600), st.data())
def test_index_proofs_verify_for_random_sizes(size: int, data: st.DataObject) -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    index = MerkleIndex.from_leaves(leaves)
    i = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(1, size))
    assert verify_inclusion(leaves[i], i, size, index.inclusion_proof(i), index.root())
    proof = index.consistency_proof(old, size)
    assert verify_consistency(old, size, index.root(old), index.root(), proof)


def test_node_hash_prefix() -> None:
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
