"""Receipts: everything needed to prove, offline, that one entry is in a district's log.

A receipt is one JSON object:

    {"v": 1,
     "entry": "<the stored canonical body, as text>",
     "index": <seq>, "proof": ["<hex>", ...],          inclusion proof up to the checkpoint
     "checkpoint": {...},                               Checkpoint.to_json()
     "keys": {...},                                     KeyHistory.to_json()
     "cosignatures": [{...}, ...], "witnesses": {"<witness key id>": "<hex public key>"},
     "threshold": k}                                    co-signatures needed

`verify_receipt` checks the body is canonical, its hash is included at its seq under the
checkpoint root, the checkpoint is signed by the district key in force at its size (following
rotations from the first key), and k distinct witnesses co-signed it. A verifier who knows the
district's first key id or its own set of trusted witnesses passes them in; otherwise the
receipt proves consistency with the keys it carries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledger.checkpoint import Checkpoint, KeyHistory, check_checkpoint
from ledger.entries import entry_from_bytes
from ledger.errors import LedgerError
from ledger.merkle import verify_inclusion
from ledger.witness import Cosignature, is_witnessed

RECEIPT_VERSION = 1


def build_receipt(
    *,
    body: bytes,
    index: int,
    proof: Sequence[bytes],
    checkpoint: Checkpoint,
    keys: KeyHistory,
    cosignatures: Sequence[Cosignature] = (),
    witness_keys: Mapping[str, bytes] | None = None,
    threshold: int = 0,
) -> dict[str, Any]:
    return {
        "v": RECEIPT_VERSION,
        "entry": body.decode("utf-8"),
        "index": index,
        "proof": [sibling.hex() for sibling in proof],
        "checkpoint": checkpoint.to_json(),
        "keys": keys.to_json(),
        "cosignatures": [c.to_json() for c in cosignatures],
        "witnesses": {
            key_id: public.hex() for key_id, public in sorted((witness_keys or {}).items())
        },
        "threshold": threshold,
    }


def verify_receipt(
    receipt: Mapping[str, Any],
    *,
    trusted_key_id: str | None = None,
    trusted_witnesses: Mapping[str, bytes] | None = None,
    min_witnesses: int = 0,
) -> tuple[bool, str]:
    """(True, "ok") or (False, the reason); needs nothing but the receipt."""
    try:
        return _verify(receipt, trusted_key_id, trusted_witnesses, min_witnesses)
    except (LedgerError, KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = exc.message if isinstance(exc, LedgerError) else f"{type(exc).__name__} {exc}"
        return False, f"malformed receipt: {detail}"


def _verify(
    receipt: Mapping[str, Any],
    trusted_key_id: str | None,
    trusted_witnesses: Mapping[str, bytes] | None,
    min_witnesses: int,
) -> tuple[bool, str]:
    if receipt["v"] != RECEIPT_VERSION:
        return False, f"unsupported receipt version {receipt['v']!r}"
    entry = entry_from_bytes(str(receipt["entry"]).encode("utf-8"))
    index = receipt["index"]
    checkpoint = Checkpoint.from_json(receipt["checkpoint"])
    keys = KeyHistory.from_json(receipt["keys"])
    if type(index) is not int or entry.seq != index:
        return False, f"the entry has seq {entry.seq}, the receipt says index {index!r}"
    if entry.district != checkpoint.district:
        return False, f"the entry is of {entry.district}, the checkpoint of {checkpoint.district}"
    if index >= checkpoint.size:
        return False, f"index {index} is beyond the checkpoint size {checkpoint.size}"
    proof = [bytes.fromhex(sibling) for sibling in receipt["proof"]]
    if not verify_inclusion(entry.hash, index, checkpoint.size, proof, checkpoint.root):
        return False, "the inclusion proof does not lead to the checkpoint root"
    signed, why = check_checkpoint(checkpoint, keys, trusted_key_id=trusted_key_id)
    if not signed:
        return False, why
    needed = max(int(receipt["threshold"]), min_witnesses)
    if needed > 0:
        witnesses = (
            dict(trusted_witnesses)
            if trusted_witnesses is not None
            else {k: bytes.fromhex(v) for k, v in receipt["witnesses"].items()}
        )
        cosignatures = [Cosignature.from_json(c) for c in receipt["cosignatures"]]
        if not is_witnessed(checkpoint, cosignatures, witnesses, needed):
            return False, f"fewer than {needed} trusted witnesses co-signed the checkpoint"
    return True, "ok"
