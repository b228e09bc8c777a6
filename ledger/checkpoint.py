"""Signed checkpoints (district, size, root, time) and the chain of district keys.

The signed message is canonical JSON with a domain string, so a checkpoint signature can never
be replayed as another kind of signed message or for another district:

    {"at":<ms>,"district":..,"domain":"eldercare.ledger.checkpoint.v1","key":<key id>,
     "next_key":<key id>|null,"root":<64 hex>,"size":<int>}

Key rotation: the old key signs a checkpoint whose `next_key_id` names the new key; from that
checkpoint's size on, the new key signs. A `KeyHistory` (the public keys plus those rotation
checkpoints) lets anyone start from the first key, which an auditor pins by its id, and follow
the chain to the key of any later checkpoint. A key may sign checkpoints from its own
`valid_from_size` up to and including the size at which it was rotated away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.canonical import encode
from ledger.entries import check_district
from ledger.errors import BadSignature, InconsistentCheckpoint, InvalidCheckpoint, InvalidEntry
from ledger.keys import (
    KeyStore,
    PublicKey,
    Signer,
    is_key_id,
    key_id_of,
    verify_signature,
)

CHECKPOINT_DOMAIN = "eldercare.ledger.checkpoint.v1"


def checkpoint_message(
    *,
    district: str,
    size: int,
    root: bytes,
    at_ms: int,
    key_id: str,
    next_key_id: str | None,
) -> bytes:
    return encode(
        {
            "domain": CHECKPOINT_DOMAIN,
            "district": district,
            "size": size,
            "root": root.hex(),
            "at": at_ms,
            "key": key_id,
            "next_key": next_key_id,
        }
    )


@dataclass(frozen=True)
class Checkpoint:
    district: str
    size: int
    root: bytes
    at_ms: int
    key_id: str
    signature: bytes
    next_key_id: str | None = None

    def message(self) -> bytes:
        return checkpoint_message(
            district=self.district,
            size=self.size,
            root=self.root,
            at_ms=self.at_ms,
            key_id=self.key_id,
            next_key_id=self.next_key_id,
        )

    def digest(self) -> bytes:
        """SHA-256 of the signed message: what witnesses co-sign."""
        return hashlib.sha256(self.message()).digest()

    def to_json(self) -> dict[str, Any]:
        return {
            "district": self.district,
            "size": self.size,
            "root": self.root.hex(),
            "at_ms": self.at_ms,
            "key_id": self.key_id,
            "signature": self.signature.hex(),
            "next_key_id": self.next_key_id,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Checkpoint:
        if not isinstance(obj, Mapping):
            raise InvalidCheckpoint("a checkpoint must be a JSON object")
        try:
            district = check_district(obj["district"])
            size, at_ms = obj["size"], obj["at_ms"]
            key_id, next_key_id = obj["key_id"], obj.get("next_key_id")
            root, signature = _hex(obj["root"], 32), _hex(obj["signature"], 64)
        except KeyError as exc:
            raise InvalidCheckpoint(f"checkpoint lacks {exc.args[0]!r}") from None
        except InvalidEntry as exc:
            raise InvalidCheckpoint(exc.message) from None
        for name, value in (("size", size), ("at_ms", at_ms)):
            if type(value) is not int or value < 0:
                raise InvalidCheckpoint(f"checkpoint {name} must be a non-negative integer")
        if not is_key_id(key_id) or not (next_key_id is None or is_key_id(next_key_id)):
            raise InvalidCheckpoint("checkpoint key ids must be 32 lowercase hex digits")
        return cls(district, size, root, at_ms, key_id, signature, next_key_id)


def _hex(value: object, length: int) -> bytes:
    if not isinstance(value, str) or len(value) != 2 * length:
        raise InvalidCheckpoint(f"expected {2 * length} hex digits")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise InvalidCheckpoint(f"expected {2 * length} hex digits") from None
    if raw.hex() != value:
        raise InvalidCheckpoint("hex must be lowercase")
    return raw


def sign_checkpoint(
    *,
    district: str,
    size: int,
    root: bytes,
    at_ms: int,
    signer: Signer,
    next_key_id: str | None = None,
) -> Checkpoint:
    check_district(district)
    if len(root) != 32:
        raise InvalidCheckpoint("root must be 32 bytes")
    message = checkpoint_message(
        district=district,
        size=size,
        root=root,
        at_ms=at_ms,
        key_id=signer.key_id,
        next_key_id=next_key_id,
    )
    return Checkpoint(district, size, root, at_ms, signer.key_id, signer.sign(message), next_key_id)


def verify_checkpoint(cp: Checkpoint, public_key: bytes) -> bool:
    """True when `public_key` is the key `cp.key_id` names and its signature verifies."""
    return key_id_of(public_key) == cp.key_id and verify_signature(
        public_key, cp.signature, cp.message()
    )


def checkpoint_due(
    last_size: int | None,
    last_at_ms: int | None,
    size: int,
    now_ms: int,
    every_n: int,
    every_ms: int,
) -> bool:
    """Whether to sign a new checkpoint: entries were added and N entries or T ms have passed."""
    if last_size is None or last_at_ms is None:
        return size > 0
    if size <= last_size:
        return False
    return size - last_size >= every_n or now_ms - last_at_ms >= every_ms


@dataclass(frozen=True)
class KeyPeriod:
    key_id: str
    public: bytes
    from_size: int
    until_size: int | None  # inclusive; None while the key is the newest


@dataclass(frozen=True)
class KeyHistory:
    """A district's public keys and the rotation checkpoints that link them, oldest first."""

    district: str
    keys: tuple[PublicKey, ...]
    rotations: tuple[Checkpoint, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "district": self.district,
            "keys": [
                {"key_id": k.key_id, "public": k.public.hex(), "valid_from_size": k.valid_from_size}
                for k in self.keys
            ],
            "rotations": [cp.to_json() for cp in self.rotations],
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> KeyHistory:
        try:
            keys = tuple(
                PublicKey(str(k["key_id"]), _hex(k["public"], 32), int(k["valid_from_size"]))
                for k in obj["keys"]
            )
            rotations = tuple(Checkpoint.from_json(cp) for cp in obj.get("rotations", []))
            return cls(check_district(obj["district"]), keys, rotations)
        except (KeyError, TypeError, ValueError, InvalidEntry) as exc:
            raise InvalidCheckpoint(f"malformed key history: {exc}") from None

    def periods(self, *, trusted_key_id: str | None = None) -> list[KeyPeriod]:
        """Check the chain of keys from the first one; raises BadSignature with the reason."""
        if not self.keys:
            raise BadSignature(f"district {self.district} has no public keys")
        first = self.keys[0]
        if trusted_key_id is not None and first.key_id != trusted_key_id:
            raise BadSignature(f"first key {first.key_id} is not the trusted {trusted_key_id}")
        if first.valid_from_size != 0:
            raise BadSignature("the first key must be valid from size 0")
        for key in self.keys:
            if key_id_of(key.public) != key.key_id:
                raise BadSignature(f"key id {key.key_id} does not match its public key")
        rotation_for = {cp.next_key_id: cp for cp in self.rotations}
        periods: list[KeyPeriod] = []
        for previous, key in zip(self.keys, self.keys[1:], strict=False):
            cp = rotation_for.get(key.key_id)
            if cp is None:
                raise BadSignature(f"no rotation checkpoint names key {key.key_id}")
            if cp.district != self.district or cp.key_id != previous.key_id:
                raise BadSignature(f"key {key.key_id} was not named by key {previous.key_id}")
            if not verify_checkpoint(cp, previous.public):
                raise BadSignature(f"the rotation to key {key.key_id} has a bad signature")
            if cp.size != key.valid_from_size or cp.size < previous.valid_from_size:
                raise BadSignature(f"key {key.key_id} valid_from_size differs from its rotation")
            periods.append(
                KeyPeriod(previous.key_id, previous.public, previous.valid_from_size, cp.size)
            )
        last = self.keys[-1]
        periods.append(KeyPeriod(last.key_id, last.public, last.valid_from_size, None))
        return periods


def check_checkpoint(
    cp: Checkpoint, history: KeyHistory, *, trusted_key_id: str | None = None
) -> tuple[bool, str]:
    """Whether `cp` is signed by the key of `history` in force at its size; (ok, reason)."""
    if cp.district != history.district:
        return False, f"checkpoint is for {cp.district}, keys are for {history.district}"
    try:
        periods = history.periods(trusted_key_id=trusted_key_id)
    except BadSignature as exc:
        return False, exc.message
    for period in periods:
        if period.key_id != cp.key_id:
            continue
        if cp.size < period.from_size or (
            period.until_size is not None and cp.size > period.until_size
        ):
            return False, f"key {cp.key_id} may not sign a checkpoint of size {cp.size}"
        if not verify_checkpoint(cp, period.public):
            return False, f"checkpoint signature by key {cp.key_id} does not verify"
        return True, "ok"
    return False, f"checkpoint is signed by unknown key {cp.key_id}"


KeysArgument = KeyHistory | Mapping[str, bytes] | Sequence[PublicKey] | None


def checkpoint_problems(
    district: str,
    checkpoints: Sequence[Checkpoint],
    public_keys: KeysArgument,
    *,
    trusted_key_id: str | None = None,
) -> list[str]:
    """Why each checkpoint is not a valid signature of `district` (empty when all are).

    `public_keys` is a KeyHistory (rotations followed, key periods enforced) or a plain
    id -> public key mapping / list of PublicKey (signature only).
    """
    problems: list[str] = []
    for cp in checkpoints:
        label = f"checkpoint of size {cp.size}"
        if cp.district != district:
            problems.append(f"{label} is for district {cp.district}")
        elif public_keys is None:
            problems.append(f"{label}: no public keys to check its signature")
        elif isinstance(public_keys, KeyHistory):
            ok, why = check_checkpoint(cp, public_keys, trusted_key_id=trusted_key_id)
            if not ok:
                problems.append(f"{label}: {why}")
        else:
            keys = (
                dict(public_keys)
                if isinstance(public_keys, Mapping)
                else {k.key_id: k.public for k in public_keys}
            )
            public = keys.get(cp.key_id)
            if public is None or not verify_checkpoint(cp, public):
                problems.append(f"{label}: signature by key {cp.key_id} fails")
    return problems


def check_newer(old: Checkpoint, new: Checkpoint) -> None:
    """Refuse a successor that shrinks, changes the root at the same size, or goes back in time."""
    if new.district != old.district:
        raise InconsistentCheckpoint(f"district {new.district} follows {old.district}")
    if new.size < old.size:
        raise InconsistentCheckpoint(f"size went back from {old.size} to {new.size}")
    if new.size == old.size and new.root != old.root:
        raise InconsistentCheckpoint(f"two different roots for size {new.size}")
    if new.at_ms < old.at_ms:
        raise InconsistentCheckpoint("checkpoint time went backwards")


def rotate_key(store: KeyStore, district: str, *, size: int, root: bytes, at_ms: int) -> Checkpoint:
    """Prepare the next key, sign with the old key a checkpoint naming it, activate it."""
    old = store.signer(district)
    new = store.prepare_rotation(district)
    cp = sign_checkpoint(
        district=district, size=size, root=root, at_ms=at_ms, signer=old, next_key_id=new.key_id
    )
    store.activate(district, new.key_id, rotation=cp.to_json())
    return cp


def key_history(store: KeyStore, district: str) -> KeyHistory:
    return KeyHistory(
        district,
        tuple(store.public_keys(district)),
        tuple(Checkpoint.from_json(cp) for cp in store.rotations(district)),
    )
