"""Signed checkpoints of the district chains: cadence, storage, witnessing, the background task.

A chain is checkpointed when the `ledger` section of its top-level district's policy in force
says so (`checkpoint_every_entries` new entries or `checkpoint_every_seconds` since the last
one). Each new checkpoint is then offered to the witness of every other local district's
centre. Stored bodies are the canonical JSON of `Checkpoint.to_json()` (signature included), so
a row is self-contained and verifiable as read.

The background task (`start_checkpointer`, run by the app's lifespan) polls every chain, signs
what is due and resumes cross-district transfers whose hold is still open.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from ledger.canonical import decode, encode
from ledger.checkpoint import Checkpoint, checkpoint_due, rotate_key, sign_checkpoint
from ledger.keys import key_id_of
from ledger.service import tree_root
from ledger.storage.base import StoredCheckpoint
from ledger.storage.models import Checkpoint as CheckpointRow
from ledger.transfer import resume_transfers
from ledger.witness import Cosignature as LedgerCosignature
from market.errors import Forbidden, InvalidInput, NotFound
from market.models import Role
from market.services import witnesses
from market.services.ledger import LedgerGateway
from market.services.ledger_errors import ledger_errors
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
    await gateway.store.add_checkpoint(
        StoredCheckpoint(chain, cp.size, cp.root, cp.at_ms, encode(cp.to_json()))
    )
    # Another process may have signed the same size first: the stored one is the checkpoint.
    stored = await load_checkpoint(chain, cp.size)
    return stored or cp


async def rotate(gateway: LedgerGateway, chain: str) -> Checkpoint:
    """Rotate the chain's signing key: the old key signs a checkpoint of the current tree that
    names the new key (stored and witnessed like any other); the new key signs from then on."""
    gateway.signer(chain)
    size = (await gateway.store.head(chain)).size
    root = await tree_root(gateway.store, chain, size)
    cp = rotate_key(gateway.keys, chain, size=size, root=root, at_ms=gateway.clock())
    await gateway.store.add_checkpoint(
        StoredCheckpoint(chain, cp.size, cp.root, cp.at_ms, encode(cp.to_json()))
    )
    stored = await load_checkpoint(chain, cp.size)
    if stored is not None and stored.next_key_id == cp.next_key_id:
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

    @property
    def valid(self) -> list[witnesses.Cosigned]:
        return witnesses.valid(self.checkpoint, self.cosignatures)

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


async def witnessed(gateway: LedgerGateway, cp: Checkpoint) -> Witnessed:
    district = await gateway.district_of_chain(cp.district)
    _, policy = await gateway.policy(district.id, gateway.clock())
    cosigs = await witnesses.cosignatures(cp)
    return Witnessed(cp, tuple(cosigs), policy.ledger.witness_quorum, policy.ledger.witness_count)


async def require_latest(gateway: LedgerGateway, chain: str) -> Checkpoint:
    await gateway.district_of_chain(chain)
    cp = await latest_checkpoint(chain)
    if cp is None:
        raise NotFound("ledger.no_checkpoint", f"district {chain} has no signed checkpoint yet")
    return cp


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
    cosignature = LedgerCosignature(
        key_id_of(public), cp.district, cp.size, cp.root, cp.digest(), at_ms, signature
    )
    cosigned = witnesses.Cosigned(witnesses.AUDITOR + str(principal.user_id), public, cosignature)
    if not cosigned.verifies(cp):
        raise InvalidInput(
            "ledger.bad_cosignature",
            "the signature does not verify over the co-signature message of this checkpoint",
            [{"field": "signature", "problem": "does not verify"}],
        )
    async with ledger_errors():
        await witnesses.record(cp, cosigned)
    return await witnessed(gateway, cp)
