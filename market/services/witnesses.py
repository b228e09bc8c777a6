"""Witnesses in the service: district centres and auditors co-sign district checkpoints.

The checks and the signed message are `ledger.witness`'s; this module gives each witness a
name, a memory and storage:
- every top-level district's centre has a witness key (`<keys_dir>/ledger/witnesses/<code>/`)
  and co-signs the other local districts' checkpoints as `centre:<code>`. Its memory is its
  own last co-signature of that district (a row here): before trusting it, the witness checks
  its own signature on it, so rewriting that row or the checkpoint under it makes it refuse.
- an auditor co-signs through the API as `auditor:<user id>` with their own Ed25519 key,
  signing `ledger.witness.cosignature_message` for the checkpoint. The key is registered once
  and pinned to the account (`ledger_witness_key`, insert-only); co-signatures are checked
  against the pinned key, never against a key presented with them.
Which co-signatures count toward a quorum, and how large it is, is decided in
`market.services.checkpoints`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from ledger.checkpoint import Checkpoint, KeyHistory, check_checkpoint, key_history
from ledger.errors import LedgerError, WitnessRefused
from ledger.keys import key_id_of
from ledger.service import consistency_proof
from ledger.witness import Cosignature as LedgerCosignature
from ledger.witness import Witness, verify_cosignature
from market.errors import Conflict
from market.witnessing.models import Cosignature, WitnessKey

log = logging.getLogger("eldercare.ledger")

CENTRE = "centre:"
AUDITOR = "auditor:"
Loader = Callable[[str, int], Awaitable[Checkpoint | None]]


@dataclass(frozen=True)
class Cosigned:
    """A stored co-signature: the witness's name and public key with `ledger.witness`'s form."""

    witness: str
    public: bytes
    cosignature: LedgerCosignature

    def verifies(self, cp: Checkpoint) -> bool:
        return verify_cosignature(self.cosignature, cp, self.public)

    def to_json(self) -> dict[str, Any]:
        return {"witness": self.witness, "public": self.public.hex(), **self.cosignature.to_json()}


def _cosigned(row: Cosignature, cp: Checkpoint) -> Cosigned:
    cosignature = LedgerCosignature(
        row.key_id, cp.district, cp.size, cp.root, cp.digest(), row.at_ms, bytes(row.signature)
    )
    return Cosigned(row.witness, bytes(row.public), cosignature)


async def cosignatures(cp: Checkpoint) -> list[Cosigned]:
    rows = await Cosignature.filter(district=cp.district, size=cp.size).order_by("witness")
    return [_cosigned(row, cp) for row in rows]


def valid(cp: Checkpoint, cosigned: Sequence[Cosigned]) -> list[Cosigned]:
    """One verifying co-signature per distinct witness, by name."""
    seen: dict[str, Cosigned] = {}
    for c in cosigned:
        if c.witness not in seen and c.verifies(cp):
            seen[c.witness] = c
    return [seen[name] for name in sorted(seen)]


async def record(cp: Checkpoint, cosigned: Cosigned) -> Cosigned:
    """Store a verified co-signature; the same witness again keeps the first (same key only)."""
    if not cosigned.verifies(cp):
        raise WitnessRefused(f"the co-signature of {cosigned.witness} does not verify")
    c = cosigned.cosignature
    where: dict[str, Any] = {"district": cp.district, "size": cp.size, "witness": cosigned.witness}
    existing = await Cosignature.get_or_none(**where)
    if existing is None:
        try:
            await Cosignature.create(
                **where,
                key_id=c.witness_id,
                public=cosigned.public,
                signature=c.signature,
                at_ms=c.at_ms,
            )
            return cosigned
        except IntegrityError:  # the same witness co-signed concurrently; the first stands
            existing = await Cosignature.get(**where)
    if existing.key_id != c.witness_id:
        raise Conflict(
            "ledger.cosignature_exists",
            f"{cosigned.witness} already co-signed size {cp.size} with key {existing.key_id}",
        )
    return _cosigned(existing, cp)


async def pinned_key(witness: str) -> bytes | None:
    row = await WitnessKey.get_or_none(witness=witness)
    return bytes(row.public) if row is not None else None


async def pin_key(witness: str, public: bytes, *, at_ms: int) -> tuple[WitnessKey, bool]:
    """Pin `public` as `witness`'s key; (row, created). A second, different key is a 409."""
    row = await WitnessKey.get_or_none(witness=witness)
    created = False
    if row is None:
        try:
            row = await WitnessKey.create(
                witness=witness, key_id=key_id_of(public), public=public, at_ms=at_ms
            )
            created = True
        except IntegrityError:  # registered concurrently; the first one stands
            row = await WitnessKey.get(witness=witness)
    if bytes(row.public) != public:
        raise Conflict(
            "ledger.witness_key_pinned",
            f"{witness} already registered witness key {row.key_id}; it cannot be replaced",
        )
    return row, created


def _public_of(history: KeyHistory, key_id: str) -> bytes | None:
    return next((k.public for k in history.keys if k.key_id == key_id), None)


async def _memory(
    gateway: Any, witness: str, public: bytes, cp: Checkpoint, history: KeyHistory, load: Loader
) -> tuple[dict[str, Any], Sequence[bytes]]:
    """The witness's state for `cp.district` and the consistency proof it needs."""
    row = (
        await Cosignature.filter(witness=witness, district=cp.district, size__lte=cp.size)
        .order_by("-size")
        .first()
    )
    if row is None:
        # A new witness trusts the key history it is shown, from the first key on.
        ok, why = check_checkpoint(cp, history)
        if not ok:
            raise WitnessRefused(why)
        key = _public_of(history, cp.key_id)
        return {"key": key.hex() if key else "", "last": None, "next_key_id": None}, []
    last = await load(cp.district, row.size)
    if last is None or not verify_cosignature(_cosigned(row, last).cosignature, last, public):
        raise WitnessRefused(f"its own co-signature of size {row.size} no longer verifies")
    key = _public_of(history, last.key_id)
    if key is None:
        raise WitnessRefused(f"key {last.key_id} is missing from the district's key history")
    proof: Sequence[bytes] = []
    if 0 < last.size < cp.size:
        proof = await consistency_proof(gateway.store, cp.district, last.size, cp.size)
    state = {"key": key.hex(), "last": last.to_json(), "next_key_id": last.next_key_id}
    if cp.key_id != last.key_id and check_checkpoint(cp, history)[0]:
        # The district rotated its key; the signed rotation chain vouches for the new one.
        state["next_key_id"] = cp.key_id
    return state, proof


async def centre_cosign(
    gateway: Any, witness_chain: str, cp: Checkpoint, load: Loader
) -> Cosigned | None:
    """The centre of `witness_chain` checks and co-signs `cp`; None (logged) if it refuses."""
    name = CENTRE + witness_chain
    try:
        signer = gateway.witness_signer(witness_chain)
        history = key_history(gateway.keys, cp.district)
        state, proof = await _memory(gateway, name, signer.public, cp, history, load)
        witness = Witness.from_state(signer, {cp.district: state})
        cosignature = witness.cosign(
            cp, proof, now_ms=gateway.clock(), next_public_key=_public_of(history, cp.key_id)
        )
        return await record(cp, Cosigned(name, signer.public, cosignature))
    except LedgerError as error:
        log.warning("%s refuses checkpoint %s/%d: %s", name, cp.district, cp.size, error)
        return None


def centre_witness_keys(gateway: Any, chains: Sequence[str]) -> list[dict[str, Any]]:
    keys = []
    for chain in chains:
        signer = gateway.witness_signer(chain)
        keys.append(
            {"witness": CENTRE + chain, "key_id": signer.key_id, "public": signer.public.hex()}
        )
    return keys
