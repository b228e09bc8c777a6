"""Checkpoints: signatures, JSON, the due policy and the chain of rotated keys."""

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.checkpoint import (
    Checkpoint,
    KeyHistory,
    check_checkpoint,
    check_newer,
    checkpoint_due,
    key_history,
    rotate_key,
    sign_checkpoint,
    verify_checkpoint,
)
from ledger.errors import BadSignature, InconsistentCheckpoint, InvalidCheckpoint
from ledger.keys import KeyStore, Signer

ROOT = hashlib.sha256(b"root").digest()
OTHER_ROOT = hashlib.sha256(b"other").digest()


@pytest.fixture
def signer() -> Signer:
    return Signer.generate()


def make(
    signer: Signer, size: int = 10, root: bytes = ROOT, next_key_id: str | None = None
) -> Checkpoint:
    return sign_checkpoint(
        district="xuhui",
        size=size,
        root=root,
        at_ms=1_000 + size,
        signer=signer,
        next_key_id=next_key_id,
    )


class TestSignature:
    def test_verifies_with_its_key(self, signer: Signer) -> None:
        assert verify_checkpoint(make(signer), signer.public)

    def test_refuses_another_key(self, signer: Signer) -> None:
        assert not verify_checkpoint(make(signer), Signer.generate().public)

    @pytest.mark.parametrize(
        "change",
        [
            {"size": 11},
            {"root": OTHER_ROOT},
            {"at_ms": 5},
            {"district": "minhang"},
            {"next_key_id": "a" * 32},
        ],
    )
    def test_refuses_any_changed_field(self, signer: Signer, change: dict) -> None:
        assert not verify_checkpoint(replace(make(signer), **change), signer.public)

    def test_refuses_a_flipped_signature_bit(self, signer: Signer) -> None:
        cp = make(signer)
        bad = bytes([cp.signature[0] ^ 1]) + cp.signature[1:]
        assert not verify_checkpoint(replace(cp, signature=bad), signer.public)

    def test_message_names_domain_and_district(self, signer: Signer) -> None:
        message = make(signer).message()
        assert b'"domain":"eldercare.ledger.checkpoint.v1"' in message
        assert b'"district":"xuhui"' in message


class TestJson:
    def test_round_trip(self, signer: Signer) -> None:
        cp = make(signer, next_key_id="b" * 32)
        assert Checkpoint.from_json(cp.to_json()) == cp

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("size", -1),
            ("size", 1.0),
            ("root", "zz"),
            ("root", "AB" * 32),
            ("signature", "00"),
            ("key_id", "short"),
            ("district", "a:b"),
        ],
    )
    def test_refuses_bad_field(self, signer: Signer, field: str, value: object) -> None:
        obj = make(signer).to_json()
        obj[field] = value
        with pytest.raises(InvalidCheckpoint):
            Checkpoint.from_json(obj)

    def test_refuses_missing_field(self, signer: Signer) -> None:
        obj = make(signer).to_json()
        del obj["root"]
        with pytest.raises(InvalidCheckpoint, match="root"):
            Checkpoint.from_json(obj)


class TestDue:
    def test_first_checkpoint_once_there_are_entries(self) -> None:
        assert checkpoint_due(None, None, 1, 0, 100, 1000)
        assert not checkpoint_due(None, None, 0, 0, 100, 1000)

    def test_after_n_entries(self) -> None:
        assert checkpoint_due(100, 0, 200, 1, 100, 60_000)
        assert not checkpoint_due(100, 0, 199, 1, 100, 60_000)

    def test_after_t_milliseconds_if_anything_was_added(self) -> None:
        assert checkpoint_due(100, 0, 101, 60_000, 100, 60_000)
        assert not checkpoint_due(100, 0, 100, 120_000, 100, 60_000)


class TestNewer:
    def test_accepts_growth(self, signer: Signer) -> None:
        check_newer(make(signer, 10), make(signer, 12, OTHER_ROOT))

    def test_refuses_shrinking(self, signer: Signer) -> None:
        with pytest.raises(InconsistentCheckpoint, match="back"):
            check_newer(make(signer, 12), make(signer, 10))

    def test_refuses_fork_at_same_size(self, signer: Signer) -> None:
        with pytest.raises(InconsistentCheckpoint, match="two different roots"):
            check_newer(make(signer, 10), make(signer, 10, OTHER_ROOT))

    def test_refuses_time_going_back(self, signer: Signer) -> None:
        old = make(signer, 10)
        with pytest.raises(InconsistentCheckpoint, match="time"):
            check_newer(old, replace(make(signer, 12), at_ms=old.at_ms - 1))


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    ks = KeyStore(tmp_path, "pass", work_factor=2**10)
    ks.create("xuhui")
    return ks


class TestRotationChain:
    def test_new_key_signs_after_rotation(self, store: KeyStore) -> None:
        first = store.active_key_id("xuhui")
        rotation = rotate_key(store, "xuhui", size=50, root=ROOT, at_ms=9)
        assert rotation.key_id == first and rotation.next_key_id == store.active_key_id("xuhui")
        later = make(store.signer("xuhui"), 60)
        history = key_history(store, "xuhui")
        assert check_checkpoint(later, history, trusted_key_id=first) == (True, "ok")
        assert check_checkpoint(rotation, history) == (True, "ok")

    def test_two_rotations_follow_the_chain(self, store: KeyStore) -> None:
        rotate_key(store, "xuhui", size=5, root=ROOT, at_ms=1)
        rotate_key(store, "xuhui", size=9, root=ROOT, at_ms=2)
        history = KeyHistory.from_json(key_history(store, "xuhui").to_json())
        assert [p.from_size for p in history.periods()] == [0, 5, 9]
        assert check_checkpoint(make(store.signer("xuhui"), 20), history)[0]

    def test_old_key_may_not_sign_beyond_its_rotation(self, store: KeyStore) -> None:
        old = store.signer("xuhui")
        rotate_key(store, "xuhui", size=50, root=ROOT, at_ms=9)
        ok, reason = check_checkpoint(make(old, 51), key_history(store, "xuhui"))
        assert not ok and "may not sign" in reason

    def test_new_key_may_not_sign_before_its_rotation(self, store: KeyStore) -> None:
        rotate_key(store, "xuhui", size=50, root=ROOT, at_ms=9)
        ok, reason = check_checkpoint(make(store.signer("xuhui"), 49), key_history(store, "xuhui"))
        assert not ok and "may not sign" in reason

    def test_untrusted_first_key(self, store: KeyStore) -> None:
        ok, reason = check_checkpoint(
            make(store.signer("xuhui")), key_history(store, "xuhui"), trusted_key_id="f" * 32
        )
        assert not ok and "trusted" in reason

    def test_key_inserted_without_a_rotation_is_refused(self, store: KeyStore) -> None:
        history = key_history(store, "xuhui")
        intruder = Signer.generate()
        forged = KeyHistory(
            "xuhui",
            (*history.keys, type(history.keys[0])(intruder.key_id, intruder.public, 7)),
        )
        with pytest.raises(BadSignature, match="no rotation"):
            forged.periods()
        ok, _ = check_checkpoint(make(intruder, 8), forged)
        assert not ok

    def test_rotation_signed_by_an_intruder_is_refused(self, store: KeyStore) -> None:
        history = key_history(store, "xuhui")
        intruder = Signer.generate()
        rotation = sign_checkpoint(
            district="xuhui",
            size=7,
            root=ROOT,
            at_ms=1,
            signer=intruder,
            next_key_id=intruder.key_id,
        )
        forged = KeyHistory(
            "xuhui",
            (*history.keys, type(history.keys[0])(intruder.key_id, intruder.public, 7)),
            (replace(rotation, key_id=history.keys[0].key_id),),
        )
        with pytest.raises(BadSignature, match="bad signature"):
            forged.periods()

    def test_unknown_signing_key(self, store: KeyStore) -> None:
        ok, reason = check_checkpoint(make(Signer.generate()), key_history(store, "xuhui"))
        assert not ok and "unknown key" in reason

    def test_other_district(self, store: KeyStore) -> None:
        cp = sign_checkpoint(
            district="minhang", size=1, root=ROOT, at_ms=1, signer=store.signer("xuhui")
        )
        ok, reason = check_checkpoint(cp, key_history(store, "xuhui"))
        assert not ok and "minhang" in reason

    def test_malformed_history(self) -> None:
        with pytest.raises(InvalidCheckpoint):
            KeyHistory.from_json({"district": "x", "keys": [{"key_id": "a"}]})
