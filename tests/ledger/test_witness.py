"""Witnesses co-sign only consistent, properly signed checkpoints; k of m counting."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import InvalidCheckpoint, WitnessRefused
from ledger.keys import Signer
from ledger.merkle import MerkleIndex, leaf_hash
from ledger.witness import Cosignature, Witness, is_witnessed, verify_cosignature

LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(40)]
INDEX = MerkleIndex.from_leaves(LEAVES)


def checkpoint(signer: Signer, size: int, *, at_ms: int | None = None, **kw: object) -> Checkpoint:
    return sign_checkpoint(
        district="xuhui",
        size=size,
        root=INDEX.root(size),
        at_ms=at_ms or size,
        signer=signer,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
def district() -> Signer:
    return Signer.generate()


@pytest.fixture
def witness(district: Signer) -> Witness:
    return Witness(Signer.generate(), trusted_keys={"xuhui": district.public})


class TestCosign:
    def test_first_checkpoint(self, witness: Witness, district: Signer) -> None:
        cp = checkpoint(district, 10)
        cosignature = witness.cosign(cp, [], now_ms=99)
        assert verify_cosignature(cosignature, cp, witness.public)
        assert witness.last_seen("xuhui") == cp

    def test_consistent_successor(self, witness: Witness, district: Signer) -> None:
        witness.cosign(checkpoint(district, 10), [], now_ms=1)
        cp = checkpoint(district, 25)
        witness.cosign(cp, INDEX.consistency_proof(10, 25), now_ms=2)
        assert witness.last_seen("xuhui") == cp

    def test_same_checkpoint_again(self, witness: Witness, district: Signer) -> None:
        cp = checkpoint(district, 10)
        witness.cosign(cp, [], now_ms=1)
        assert witness.cosign(cp, [], now_ms=2).size == 10

    def test_refuses_a_rewritten_history(self, witness: Witness, district: Signer) -> None:
        witness.cosign(checkpoint(district, 10), [], now_ms=1)
        forged_leaves = list(LEAVES[:25])
        forged_leaves[3] = leaf_hash(b"rewritten")
        forged = MerkleIndex.from_leaves(forged_leaves)
        cp = sign_checkpoint(
            district="xuhui", size=25, root=forged.root(), at_ms=30, signer=district
        )
        with pytest.raises(WitnessRefused, match="rewritten"):
            witness.cosign(cp, forged.consistency_proof(10, 25), now_ms=2)
        assert witness.last_seen("xuhui").size == 10  # type: ignore[union-attr]

    def test_refuses_a_missing_proof(self, witness: Witness, district: Signer) -> None:
        witness.cosign(checkpoint(district, 10), [], now_ms=1)
        with pytest.raises(WitnessRefused, match="consistency"):
            witness.cosign(checkpoint(district, 25), [], now_ms=2)

    def test_refuses_shrinking(self, witness: Witness, district: Signer) -> None:
        witness.cosign(checkpoint(district, 10), [], now_ms=1)
        with pytest.raises(WitnessRefused, match="back"):
            witness.cosign(checkpoint(district, 9), [], now_ms=2)

    def test_refuses_a_fork_at_the_same_size(self, witness: Witness, district: Signer) -> None:
        witness.cosign(checkpoint(district, 10), [], now_ms=1)
        fork = sign_checkpoint(
            district="xuhui",
            size=10,
            root=hashlib.sha256(b"x").digest(),
            at_ms=11,
            signer=district,
        )
        with pytest.raises(WitnessRefused, match="two different roots"):
            witness.cosign(fork, [], now_ms=2)

    def test_refuses_time_going_back(self, witness: Witness, district: Signer) -> None:
        witness.cosign(checkpoint(district, 10, at_ms=500), [], now_ms=1)
        with pytest.raises(WitnessRefused, match="time"):
            witness.cosign(
                checkpoint(district, 12, at_ms=400), INDEX.consistency_proof(10, 12), now_ms=2
            )

    def test_refuses_a_bad_signature(self, witness: Witness, district: Signer) -> None:
        cp = replace(checkpoint(district, 10), size=11)
        with pytest.raises(WitnessRefused, match="signature"):
            witness.cosign(cp, [], now_ms=1)

    def test_refuses_an_unknown_key(self, witness: Witness) -> None:
        with pytest.raises(WitnessRefused, match="not a known key"):
            witness.cosign(checkpoint(Signer.generate(), 10), [], now_ms=1)

    def test_refuses_an_unwatched_district(self, witness: Witness, district: Signer) -> None:
        cp = sign_checkpoint(
            district="minhang", size=1, root=INDEX.root(1), at_ms=1, signer=district
        )
        with pytest.raises(WitnessRefused, match="does not watch"):
            witness.cosign(cp, [], now_ms=1)


class TestRotation:
    def test_follows_an_announced_key(self, witness: Witness, district: Signer) -> None:
        new = Signer.generate()
        witness.cosign(checkpoint(district, 10, next_key_id=new.key_id), [], now_ms=1)
        cp = checkpoint(new, 20)
        witness.cosign(cp, INDEX.consistency_proof(10, 20), now_ms=2, next_public_key=new.public)
        # the old key is no longer trusted
        with pytest.raises(WitnessRefused, match="not a known key"):
            witness.cosign(checkpoint(district, 30), INDEX.consistency_proof(20, 30), now_ms=3)

    def test_needs_the_announced_public_key(self, witness: Witness, district: Signer) -> None:
        new = Signer.generate()
        witness.cosign(checkpoint(district, 10, next_key_id=new.key_id), [], now_ms=1)
        with pytest.raises(WitnessRefused, match="public key"):
            witness.cosign(checkpoint(new, 20), INDEX.consistency_proof(10, 20), now_ms=2)
        with pytest.raises(WitnessRefused, match="public key"):
            witness.cosign(
                checkpoint(new, 20),
                INDEX.consistency_proof(10, 20),
                now_ms=2,
                next_public_key=Signer.generate().public,
            )

    def test_unannounced_key_is_refused(self, witness: Witness, district: Signer) -> None:
        witness.cosign(checkpoint(district, 10), [], now_ms=1)
        intruder = Signer.generate()
        with pytest.raises(WitnessRefused, match="not a known key"):
            witness.cosign(
                checkpoint(intruder, 20),
                INDEX.consistency_proof(10, 20),
                now_ms=2,
                next_public_key=intruder.public,
            )

    def test_state_round_trip(self, witness: Witness, district: Signer) -> None:
        new = Signer.generate()
        witness.cosign(checkpoint(district, 10, next_key_id=new.key_id), [], now_ms=1)
        restored = Witness.from_state(witness.signer, witness.state())
        assert restored.last_seen("xuhui") == witness.last_seen("xuhui")
        restored.cosign(
            checkpoint(new, 20),
            INDEX.consistency_proof(10, 20),
            now_ms=2,
            next_public_key=new.public,
        )


class TestThreshold:
    def setup_method(self) -> None:
        self.district = Signer.generate()
        self.witnesses = [
            Witness(Signer.generate(), trusted_keys={"xuhui": self.district.public})
            for _ in range(3)
        ]
        self.keys = {w.witness_id: w.public for w in self.witnesses}
        self.cp = checkpoint(self.district, 10)
        self.cosignatures = [w.cosign(self.cp, [], now_ms=1) for w in self.witnesses]

    def test_k_of_m(self) -> None:
        assert is_witnessed(self.cp, self.cosignatures[:2], self.keys, 2)
        assert not is_witnessed(self.cp, self.cosignatures[:1], self.keys, 2)

    def test_the_same_witness_counts_once(self) -> None:
        twice = [self.cosignatures[0], self.cosignatures[0]]
        assert not is_witnessed(self.cp, twice, self.keys, 2)

    def test_untrusted_witness_does_not_count(self) -> None:
        trusted = {self.witnesses[0].witness_id: self.witnesses[0].public}
        assert not is_witnessed(self.cp, self.cosignatures, trusted, 2)

    def test_cosignature_of_another_checkpoint_does_not_count(self) -> None:
        other = checkpoint(self.district, 10, at_ms=77)
        assert not is_witnessed(other, self.cosignatures, self.keys, 1)

    def test_forged_cosignature_does_not_count(self) -> None:
        forged = replace(self.cosignatures[0], signature=bytes(64))
        assert not is_witnessed(self.cp, [forged], self.keys, 1)

    def test_json_round_trip(self) -> None:
        again = [Cosignature.from_json(c.to_json()) for c in self.cosignatures]
        assert again == self.cosignatures

    def test_malformed_json(self) -> None:
        with pytest.raises(InvalidCheckpoint):
            Cosignature.from_json({"witness_id": "x"})
