"""Witnesses: other organisations co-sign a district's checkpoints after checking consistency.

A witness (another district's centre, an auditor) keeps, per district it watches, the last
checkpoint it co-signed and the district key it currently trusts. It co-signs a new checkpoint
only if the district key signed it, it does not shrink the log, move back in time or fork at the
same size, and a consistency proof links it to the last one. A rewritten history then needs the
district and several witnesses to collude. `is_witnessed` counts k of m distinct trusted
witnesses.

Key rotation: when a co-signed checkpoint names `next_key_id`, the witness expects the next
checkpoint from that key and must be handed its public key (whose id it checks).
The co-signed message:

    {"at":<ms>,"checkpoint":<hex SHA-256 of the checkpoint's signed message>,"district":..,
     "domain":"eldercare.ledger.cosignature.v1","root":<hex>,"size":<int>,"witness":<key id>}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ledger.canonical import encode
from ledger.checkpoint import Checkpoint, check_newer, verify_checkpoint
from ledger.errors import InconsistentCheckpoint, InvalidCheckpoint, WitnessRefused
from ledger.keys import Signer, is_key_id, key_id_of, verify_signature
from ledger.merkle import verify_consistency

COSIGNATURE_DOMAIN = "eldercare.ledger.cosignature.v1"


@dataclass(frozen=True)
class Cosignature:
    witness_id: str
    district: str
    size: int
    root: bytes
    checkpoint_digest: bytes
    at_ms: int
    signature: bytes

    def message(self) -> bytes:
        return cosignature_message(
            witness_id=self.witness_id,
            district=self.district,
            size=self.size,
            root=self.root,
            checkpoint_digest=self.checkpoint_digest,
            at_ms=self.at_ms,
        )

    def covers(self, cp: Checkpoint) -> bool:
        return (self.district, self.size, self.root, self.checkpoint_digest) == (
            cp.district,
            cp.size,
            cp.root,
            cp.digest(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "witness_id": self.witness_id,
            "district": self.district,
            "size": self.size,
            "root": self.root.hex(),
            "checkpoint": self.checkpoint_digest.hex(),
            "at_ms": self.at_ms,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Cosignature:
        try:
            cosignature = cls(
                str(obj["witness_id"]),
                str(obj["district"]),
                obj["size"],
                bytes.fromhex(obj["root"]),
                bytes.fromhex(obj["checkpoint"]),
                obj["at_ms"],
                bytes.fromhex(obj["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidCheckpoint(f"malformed co-signature: {exc}") from None
        if type(cosignature.size) is not int or type(cosignature.at_ms) is not int:
            raise InvalidCheckpoint("co-signature size and at_ms must be integers")
        if not is_key_id(cosignature.witness_id):
            raise InvalidCheckpoint("co-signature witness id must be 32 lowercase hex digits")
        return cosignature


def cosignature_message(
    *,
    witness_id: str,
    district: str,
    size: int,
    root: bytes,
    checkpoint_digest: bytes,
    at_ms: int,
) -> bytes:
    return encode(
        {
            "domain": COSIGNATURE_DOMAIN,
            "witness": witness_id,
            "district": district,
            "size": size,
            "root": root.hex(),
            "checkpoint": checkpoint_digest.hex(),
            "at": at_ms,
        }
    )


def verify_cosignature(cosignature: Cosignature, cp: Checkpoint, witness_public: bytes) -> bool:
    return (
        key_id_of(witness_public) == cosignature.witness_id
        and cosignature.covers(cp)
        and verify_signature(witness_public, cosignature.signature, cosignature.message())
    )


def is_witnessed(
    cp: Checkpoint,
    cosignatures: Iterable[Cosignature],
    witness_keys: Mapping[str, bytes],
    k: int,
) -> bool:
    """True when at least k distinct trusted witnesses (id -> public key) co-signed `cp`."""
    signed_by = {
        c.witness_id
        for c in cosignatures
        if c.witness_id in witness_keys and verify_cosignature(c, cp, witness_keys[c.witness_id])
    }
    return len(signed_by) >= k


@dataclass
class _Watch:
    key: bytes  # the district key the witness trusts now
    last: Checkpoint | None = None
    next_key_id: str | None = None


class Witness:
    """One witness's key and memory; persist `state()` and restore with `from_state`."""

    def __init__(self, signer: Signer, *, trusted_keys: Mapping[str, bytes]) -> None:
        self.signer = signer
        self._watches = {district: _Watch(key) for district, key in trusted_keys.items()}

    @property
    def witness_id(self) -> str:
        return self.signer.key_id

    @property
    def public(self) -> bytes:
        return self.signer.public

    def last_seen(self, district: str) -> Checkpoint | None:
        watch = self._watches.get(district)
        return watch.last if watch else None

    def cosign(
        self,
        cp: Checkpoint,
        consistency_proof: Sequence[bytes],
        *,
        now_ms: int,
        next_public_key: bytes | None = None,
    ) -> Cosignature:
        """Co-sign `cp` or raise WitnessRefused saying why."""
        watch = self._watches.get(cp.district)
        if watch is None:
            raise WitnessRefused(f"this witness does not watch district {cp.district}")
        key = watch.key
        if cp.key_id != key_id_of(key):
            if cp.key_id != watch.next_key_id:
                raise WitnessRefused(f"checkpoint is signed by key {cp.key_id}, not a known key")
            if next_public_key is None or key_id_of(next_public_key) != cp.key_id:
                raise WitnessRefused(f"the public key of announced key {cp.key_id} is needed")
            key = next_public_key
        if not verify_checkpoint(cp, key):
            raise WitnessRefused("the district signature does not verify")
        last = watch.last
        if last is not None:
            self._check_successor(last, cp, consistency_proof)
        watch.key, watch.last = key, cp
        watch.next_key_id = cp.next_key_id or (
            None if key_id_of(key) == watch.next_key_id else watch.next_key_id
        )
        unsigned = Cosignature(
            self.witness_id, cp.district, cp.size, cp.root, cp.digest(), now_ms, b""
        )
        return replace(unsigned, signature=self.signer.sign(unsigned.message()))

    @staticmethod
    def _check_successor(last: Checkpoint, cp: Checkpoint, proof: Sequence[bytes]) -> None:
        try:
            check_newer(last, cp)
        except InconsistentCheckpoint as exc:
            raise WitnessRefused(exc.message) from None
        if cp.size > last.size and not verify_consistency(
            last.size, cp.size, last.root, cp.root, proof
        ):
            raise WitnessRefused(
                f"no valid consistency proof from size {last.size} to {cp.size}: "
                "the log may have been rewritten"
            )

    def state(self) -> dict[str, Any]:
        return {
            district: {
                "key": watch.key.hex(),
                "last": watch.last.to_json() if watch.last else None,
                "next_key_id": watch.next_key_id,
            }
            for district, watch in sorted(self._watches.items())
        }

    @classmethod
    def from_state(cls, signer: Signer, state: Mapping[str, Any]) -> Witness:
        witness = cls(signer, trusted_keys={})
        for district, saved in state.items():
            last = Checkpoint.from_json(saved["last"]) if saved.get("last") else None
            watch = _Watch(bytes.fromhex(saved["key"]), last, saved.get("next_key_id"))
            witness._watches[district] = watch
        return witness
