"""Receipts verify offline; any tampering is refused with a reason."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.checkpoint import key_history, rotate_key, sign_checkpoint
from ledger.keys import KeyStore, Signer
from ledger.merkle import MerkleIndex
from ledger.receipt import build_receipt, verify_receipt
from ledger.witness import Witness
from tests.ledger.test_verify_history import random_history

HISTORY = random_history(8, 37)
INDEX = MerkleIndex.from_leaves(HISTORY.hashes)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    store = KeyStore(tmp_path_factory.mktemp("keys"), "pass", work_factor=2**10)
    first = store.create("xuhui")
    rotate_key(store, "xuhui", size=20, root=INDEX.root(20), at_ms=5)
    cp = sign_checkpoint(
        district="xuhui", size=37, root=INDEX.root(), at_ms=9, signer=store.signer("xuhui")
    )
    district_key = store.signer("xuhui").public
    witnesses = [Witness(Signer.generate(), trusted_keys={"xuhui": district_key}) for _ in range(3)]
    cosignatures = [w.cosign(cp, [], now_ms=10) for w in witnesses[:2]]
    keys = {w.witness_id: w.public for w in witnesses}
    receipt = build_receipt(
        body=HISTORY.entries[13].body,
        index=13,
        proof=INDEX.inclusion_proof(13),
        checkpoint=cp,
        keys=key_history(store, "xuhui"),
        cosignatures=cosignatures,
        witness_keys=keys,
        threshold=2,
    )
    return {"receipt": receipt, "first": first, "witness_keys": keys}


def offline(receipt: dict[str, Any]) -> dict[str, Any]:
    """What a volunteer's phone would read back from a downloaded file."""
    return json.loads(json.dumps(receipt, ensure_ascii=False))


class TestValid:
    def test_verifies_offline(self, setup: dict[str, Any]) -> None:
        assert verify_receipt(offline(setup["receipt"])) == (True, "ok")

    def test_with_pinned_first_key_and_witnesses(self, setup: dict[str, Any]) -> None:
        ok = verify_receipt(
            offline(setup["receipt"]),
            trusted_key_id=setup["first"],
            trusted_witnesses=setup["witness_keys"],
        )
        assert ok == (True, "ok")

    def test_written_to_a_file_and_read_back(self, setup: dict[str, Any], tmp_path: Path) -> None:
        path = tmp_path / "receipt.json"
        path.write_text(json.dumps(setup["receipt"]), "utf-8")
        assert verify_receipt(json.loads(path.read_text("utf-8")))[0]


def tampered(setup: dict[str, Any], change) -> tuple[bool, str]:  # type: ignore[no-untyped-def]
    receipt = copy.deepcopy(setup["receipt"])
    change(receipt)
    return verify_receipt(offline(receipt))


class TestTampered:
    def test_changed_minutes(self, setup: dict[str, Any]) -> None:
        def change(r: dict[str, Any]) -> None:
            entry = json.loads(r["entry"])
            entry["minutes"] += 60
            r["entry"] = json.dumps(entry, sort_keys=True, separators=(",", ":"))

        ok, reason = tampered(setup, change)
        assert not ok and "inclusion proof" in reason

    def test_non_canonical_entry(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r.update(entry=r["entry"].replace(",", ", ", 1)))
        assert not ok and "canonical" in reason

    def test_other_index(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r.update(index=12))
        assert not ok and "index" in reason

    def test_changed_proof(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r["proof"].reverse())
        assert not ok and "inclusion proof" in reason

    def test_other_root(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r["checkpoint"].update(root=INDEX.root(36).hex()))
        assert not ok and "inclusion proof" in reason

    def test_checkpoint_signature(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r["checkpoint"].update(at_ms=10))
        assert not ok and "signature" in reason

    def test_keys_replaced_by_an_intruder(self, setup: dict[str, Any]) -> None:
        intruder = Signer.generate()

        def change(r: dict[str, Any]) -> None:
            r["keys"]["keys"][1]["public"] = intruder.public.hex()

        ok, reason = tampered(setup, change)
        assert not ok and "does not match its public key" in reason

    def test_rotation_removed(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r["keys"].update(rotations=[]))
        assert not ok and "no rotation" in reason

    def test_untrusted_first_key(self, setup: dict[str, Any]) -> None:
        ok, reason = verify_receipt(offline(setup["receipt"]), trusted_key_id="a" * 32)
        assert not ok and "trusted" in reason

    def test_too_few_cosignatures(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r["cosignatures"].pop())
        assert not ok and "fewer than 2" in reason

    def test_threshold_lowered_but_caller_insists(self, setup: dict[str, Any]) -> None:
        receipt = copy.deepcopy(setup["receipt"])
        receipt["threshold"] = 0
        receipt["cosignatures"] = []
        assert verify_receipt(receipt)[0]
        ok, reason = verify_receipt(receipt, min_witnesses=2)
        assert not ok and "witnesses" in reason

    def test_witness_keys_swapped_by_the_sender(self, setup: dict[str, Any]) -> None:
        fake = Signer.generate()
        receipt = copy.deepcopy(setup["receipt"])
        receipt["witnesses"] = {fake.key_id: fake.public.hex()}
        ok, _ = verify_receipt(receipt, trusted_witnesses=setup["witness_keys"])
        assert ok  # the caller's own witness list decides, not the receipt's
        assert not verify_receipt(receipt)[0]

    def test_missing_field(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r.pop("proof"))
        assert not ok and reason.startswith("malformed receipt")

    def test_wrong_version(self, setup: dict[str, Any]) -> None:
        ok, reason = tampered(setup, lambda r: r.update(v=2))
        assert not ok and "version" in reason

    def test_index_beyond_checkpoint(self, setup: dict[str, Any]) -> None:
        def change(r: dict[str, Any]) -> None:
            r["checkpoint"]["size"] = 13

        ok, reason = tampered(setup, change)
        assert not ok and "beyond" in reason
