"""Signed checkpoints of the district chains: cadence, storage, witnessing, the background task.

A chain is checkpointed when the `ledger` section of its top-level district's policy in force
says so (`checkpoint_every_entries` new entries or `checkpoint_every_seconds` since the last
one). Each new checkpoint is then offered to the witness of every other local district's
centre. Stored bodies are the canonical JSON of `Checkpoint.to_json()` (signature included), so
a row is self-contained and verifiable as read.

Each stored checkpoint is announced on its district's admin feed (`ledger.checkpoint`, in the
transaction that stores it).

The background task (`start_checkpointer`, run by the app's lifespan) polls every chain, signs
what is due and resumes cross-district transfers whose hold is still open.

When a checkpoint counts as witnessed is not the witnessed district's to decide, since its
centre admins edit its policy and create auditor accounts:
- the quorum is `ledger.witness_quorum` of the policy in force when the checkpoint was signed
  (a later policy version cannot lower it for checkpoints already signed), and never less than
  the deployment's `ELDERCARE_WITNESS_QUORUM_FLOOR` (`Settings.witness_quorum_floor`);
- an auditor co-signs with the key they registered once (`register_auditor_key`); a
  co-signature under any other key is refused, and a stored one does not count;
- co-signatures of auditors created by a user of the witnessed district itself (its admins) do
  not count toward that district's quorum and are refused there; auditors created by
  `eldercare admin create` or by another district's admin count.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from ledger.canonical import decode, encode
from ledger.checkpoint import Checkpoint, checkpoint_due, rotate_key, sign_checkpoint
from ledger.keys import key_id_of
from ledger.service import tree_root
from ledger.storage.base import StoredCheckpoint
from ledger.storage.models import Checkpoint as CheckpointRow
from ledger.transfer import resume_transfers
from ledger.witness import Cosignature as LedgerCosignature
from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.models import Role, User
from market.realtime.events import admin_stream, event_transaction
from market.services import witnesses
from market.services.ledger import LedgerGateway, top_level
from market.services.ledger_errors import ledger_errors
from market.services.ledger_events import CHECKPOINT_EVENT
from market.services.scope import Principal

log = logging.getLogger("eldercare.ledger")
HISTORY_PAGE = 100


def _parse(body: bytes) -> Checkpoint:
    return Checkpoint.from_json(decode(bytes(body)))


async def load_checkpoint(chain: str, size: int) -> Checkpoint | None:
    row = await CheckpointRow.get_or_none(district=chain, size=size)
    return _parse(row.body) if row is not None else None


async def latest_checkpoint(chain: str) -> Checkpoint | None:
    row = await CheckpointRow.filter(district=chain).order_by("-size").first()
    return _parse(row.body) if row is not None else None


async def checkpoint_history(chain: str, *, after: int, limit: int) -> list[Checkpoint]:
    rows = await CheckpointRow.filter(district=chain, size__gt=after).order_by("size").limit(limit)
    return [_parse(row.body) for row in rows]


async def all_checkpoints(chain: str) -> list[Checkpoint]:
    rows = await CheckpointRow.filter(district=chain).order_by("size")
    return [_parse(row.body) for row in rows]


async def sign_now(gateway: LedgerGateway, chain: str) -> Checkpoint | None:
    """Sign the chain at its current size unless the latest checkpoint already covers it."""
    head = await gateway.store.head(chain)
    last = await latest_checkpoint(chain)
    if head.size == 0 or (last is not None and last.size >= head.size):
        return None
    root = await tree_root(gateway.store, chain, head.size)
    cp = sign_checkpoint(
        district=chain,
        size=head.size,
        root=root,
        at_ms=gateway.clock(),
        signer=gateway.signer(chain),
    )
    return await store_checkpoint(gateway, cp)


async def store_checkpoint(gateway: LedgerGateway, cp: Checkpoint) -> Checkpoint:
    """Store `cp` and, in the same transaction, tell the district's admin feed; another process
    may have stored this size first, and then the stored one is the checkpoint (told once)."""
    district = await gateway.district_of_chain(cp.district)
    body = encode(cp.to_json())
    async with event_transaction() as tx:
        await gateway.store.add_checkpoint(
            StoredCheckpoint(cp.district, cp.size, cp.root, cp.at_ms, body)
        )
        row = (
            await CheckpointRow.filter(district=cp.district, size=cp.size)
            .using_db(tx.connection)
            .first()
        )
        if row is not None and bytes(row.body) == body:
            await tx.publish([admin_stream(district.id)], CHECKPOINT_EVENT, checkpoint_event(cp))
    return _parse(row.body) if row is not None else cp


def checkpoint_event(cp: Checkpoint) -> dict[str, Any]:
    """What the admin feed hears of a new checkpoint (the signature stays in the read API)."""
    return {
        "district": cp.district,
        "size": cp.size,
        "root": cp.root.hex(),
        "at_ms": cp.at_ms,
        "key_id": cp.key_id,
        "next_key_id": cp.next_key_id,
    }


async def rotate(gateway: LedgerGateway, chain: str) -> Checkpoint:
    """Rotate the chain's signing key: the old key signs a checkpoint of the current tree that
    names the new key (stored and witnessed like any other); the new key signs from then on."""
    gateway.signer(chain)
    size = (await gateway.store.head(chain)).size
    root = await tree_root(gateway.store, chain, size)
    cp = rotate_key(gateway.keys, chain, size=size, root=root, at_ms=gateway.clock())
    stored = await store_checkpoint(gateway, cp)
    if stored.next_key_id == cp.next_key_id:
        await witness(gateway, stored)
    return cp


async def witness(gateway: LedgerGateway, cp: Checkpoint) -> list[witnesses.Cosigned]:
    """Offer `cp` to the centre witness of every other local district."""
    signed = []
    for other in await gateway.local_chains():
        if other != cp.district:
            cosig = await witnesses.centre_cosign(gateway, other, cp, load_checkpoint)
            if cosig is not None:
                signed.append(cosig)
    return signed


async def checkpoint_if_due(gateway: LedgerGateway, chain: str) -> Checkpoint | None:
    district = await gateway.district_of_chain(chain)
    now = gateway.clock()
    _, policy = await gateway.policy(district.id, now)
    rules = policy.ledger
    head = await gateway.store.head(chain)
    last = await latest_checkpoint(chain)
    due = checkpoint_due(
        last.size if last else None,
        last.at_ms if last else None,
        head.size,
        now,
        rules.checkpoint_every_entries,
        rules.checkpoint_every_seconds * 1000,
    )
    if not due:
        return None
    cp = await sign_now(gateway, chain)
    if cp is not None:
        await witness(gateway, cp)
    return cp


async def checkpoint_all(gateway: LedgerGateway, *, force: bool = False) -> list[Checkpoint]:
    """One pass over every local chain (`force`: sign whatever is not covered yet)."""
    signed = []
    for chain in await gateway.local_chains():
        if force:
            cp = await sign_now(gateway, chain)
            if cp is not None:
                await witness(gateway, cp)
        else:
            cp = await checkpoint_if_due(gateway, chain)
        if cp is not None:
            signed.append(cp)
    return signed


async def _tick(gateway: LedgerGateway) -> None:
    await checkpoint_all(gateway)
    chains = await gateway.local_chains()
    await resume_transfers(
        gateway.store,
        network=gateway.network(set(chains)),
        now_ms=gateway.clock(),
        districts=chains,
    )


def start_checkpointer(gateway: LedgerGateway, *, poll_seconds: float = 1.0) -> None:
    """Run the checkpoint and transfer-resume loop until `gateway.close()`."""

    async def loop() -> None:
        while True:
            try:
                await _tick(gateway)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad pass must not stop checkpointing for good
                log.exception("ledger checkpoint pass failed")
            await asyncio.sleep(poll_seconds)

    if gateway.background is None:
        gateway.background = asyncio.create_task(loop(), name="ledger-checkpointer")


# ---- reads and auditor co-signatures --------------------------------------------------------


@dataclass(frozen=True)
class Witnessed:
    checkpoint: Checkpoint
    cosignatures: tuple[witnesses.Cosigned, ...]
    quorum: int
    witness_count: int
    # Witnesses whose co-signatures count toward this district's quorum (see the docstring).
    counted: frozenset[str] = frozenset()

    @property
    def valid(self) -> list[witnesses.Cosigned]:
        counting = [c for c in self.cosignatures if c.witness in self.counted]
        return witnesses.valid(self.checkpoint, counting)

    @property
    def witnessed(self) -> bool:
        return len(self.valid) >= self.quorum

    def to_json(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint.to_json(),
            "cosignatures": [c.to_json() for c in self.cosignatures],
            "witnesses": [c.witness for c in self.valid],
            "quorum": self.quorum,
            "witness_count": self.witness_count,
            "witnessed": self.witnessed,
        }


async def _auditor(witness: str) -> User | None:
    try:
        user_id = UUID(witness.removeprefix(witnesses.AUDITOR))
    except ValueError:
        return None
    user = await User.get_or_none(id=user_id)
    return user if user is not None and user.role is Role.auditor else None


async def created_by_district(user: User, chain: str) -> bool:
    """Whether `user` was created by someone of top-level district `chain` (e.g. its admin)."""
    creator_id: UUID | None = user.created_by_id
    if creator_id is None:  # `eldercare admin create`: the deployment's operator
        return False
    creator = await User.get_or_none(id=creator_id)
    if creator is None:  # independence cannot be shown, so it is not assumed
        return True
    district = await top_level(creator.district_id)  # type: ignore[attr-defined]
    return str(district.code) == chain


async def _counts(cp: Checkpoint, cosigned: witnesses.Cosigned) -> bool:
    if cosigned.witness.startswith(witnesses.CENTRE):
        # A district's own centre never witnesses it.
        return cosigned.witness != witnesses.CENTRE + cp.district
    auditor = await _auditor(cosigned.witness)
    if auditor is None:
        return False
    if await witnesses.pinned_key(cosigned.witness) != cosigned.public:
        return False
    return not await created_by_district(auditor, cp.district)


async def quorum_of(gateway: LedgerGateway, cp: Checkpoint) -> tuple[int, int]:
    """(k, m) for `cp`: the policy in force when it was signed, k raised to the floor."""
    district = await gateway.district_of_chain(cp.district)
    _, policy = await gateway.policy(district.id, cp.at_ms)
    rules = policy.ledger
    return max(rules.witness_quorum, gateway.settings.witness_quorum_floor), rules.witness_count


async def witnessed(gateway: LedgerGateway, cp: Checkpoint) -> Witnessed:
    quorum, count = await quorum_of(gateway, cp)
    cosigs = await witnesses.cosignatures(cp)
    counted = frozenset([c.witness for c in cosigs if await _counts(cp, c)])
    return Witnessed(cp, tuple(cosigs), quorum, count, counted)


async def require_latest(gateway: LedgerGateway, chain: str) -> Checkpoint:
    await gateway.district_of_chain(chain)
    cp = await latest_checkpoint(chain)
    if cp is None:
        raise NotFound("ledger.no_checkpoint", f"district {chain} has no signed checkpoint yet")
    return cp


async def register_auditor_key(
    gateway: LedgerGateway, principal: Principal, public: bytes
) -> tuple[dict[str, Any], bool]:
    """Pin the auditor's witness key, once; (key, created). Registering it again is harmless."""
    if principal.role is not Role.auditor:  # the endpoint's role list says so too
        raise Forbidden("ledger.not_auditor", "only auditors register a witness key")
    witness = witnesses.AUDITOR + str(principal.user_id)
    row, created = await witnesses.pin_key(witness, public, at_ms=gateway.clock())
    body = {"witness": witness, "key_id": row.key_id, "public": bytes(row.public).hex()}
    return {**body, "at_ms": row.at_ms}, created


async def auditor_cosign(
    gateway: LedgerGateway,
    principal: Principal,
    chain: str,
    size: int,
    *,
    public: bytes,
    signature: bytes,
    at_ms: int,
) -> Witnessed:
    """Record an auditor's co-signature (`ledger.witness.cosignature_message`) of a checkpoint."""
    if principal.role is not Role.auditor:  # the endpoint's role list says so too
        raise Forbidden("ledger.not_auditor", "only auditors co-sign through the API")
    await gateway.district_of_chain(chain)
    cp = await load_checkpoint(chain, size)
    if cp is None:
        raise NotFound(
            "ledger.unknown_checkpoint", f"district {chain} has no checkpoint of size {size}"
        )
    name = witnesses.AUDITOR + str(principal.user_id)
    pinned = await witnesses.pinned_key(name)
    if pinned is None:
        raise Conflict(
            "ledger.witness_key_unregistered",
            "register your witness key (POST /api/v1/ledger/witness-key) before co-signing",
        )
    if pinned != public:
        raise Conflict(
            "ledger.witness_key_mismatch",
            f"public_key is not your registered witness key {key_id_of(pinned)}",
        )
    auditor = await User.get(id=principal.user_id)
    if await created_by_district(auditor, chain):
        raise Forbidden(
            "ledger.own_district_auditor",
            f"your account was created in district {chain}; it cannot witness its own checkpoints",
        )
    cosignature = LedgerCosignature(
        key_id_of(public), cp.district, cp.size, cp.root, cp.digest(), at_ms, signature
    )
    cosigned = witnesses.Cosigned(name, public, cosignature)
    if not cosigned.verifies(cp):
        raise InvalidInput(
            "ledger.bad_cosignature",
            "the signature does not verify over the co-signature message of this checkpoint",
            [{"field": "signature", "problem": "does not verify"}],
        )
    async with ledger_errors():
        await witnesses.record(cp, cosigned)
    return await witnessed(gateway, cp)
