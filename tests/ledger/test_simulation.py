"""A seeded, deterministic simulation of many districts, checking every invariant after every step.

Deposits, redemptions, gifts, donations, expiries, reversals, batches, cross-district transfers
(some crashing between steps, some with the serving side unreachable, some past their
deadline), appends whose process dies inside the transaction (then retried), duplicates,
conflicting reuse of ids and retries of refused ids. After each step
the `Auditor` checks links, hashes, stored balances against a replay, conservation, no negative
holder account and the clearing mirrors; at the end a full check, a resume of every open
transfer, exact mirrors, the core verifier's verdict, and the same seed reproducing the same
heads, Merkle roots and signed checkpoints.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import verify_checkpoint
from ledger.entries import Entry, Kind
from ledger.errors import (
    IdempotencyConflict,
    IdempotencyFailed,
    LedgerError,
)
from ledger.keys import Signer
from ledger.merkle import verify_consistency
from ledger.rules import REVERSIBLE, Limits, Proposal
from ledger.service import (
    append,
    append_batch,
    append_many,
    checkpoint_chain,
    consistency_proof,
    latest_checkpoint,
    tree_root,
)
from ledger.storage.base import ChainStore, ChainWriter, Write
from ledger.storage.database import open_store
from ledger.storage.memory import MemoryStore
from ledger.transfer import (
    CreditAnswer,
    CreditRequest,
    LocalServing,
    ServingSide,
    TransferRequest,
    TransportError,
    resume_transfers,
    run_transfer,
    settlement_report,
)
from tests.ledger.chain_checks import Auditor, check_store, verify_with_core

LIMITS = Limits(max_minutes=480)
STEP_MS = 1_000
CHECKPOINT_EVERY = 100
# A fixed key: Ed25519 signatures are deterministic, so the same seed gives the same checkpoints.
SIGNER = Signer.from_private(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


class Crash(Exception):
    """A process dying between two steps of a transfer."""


class Down:
    async def credit(self, request: CreditRequest) -> CreditAnswer:
        raise TransportError("serving district unreachable")

    async def abort(self, request: CreditRequest) -> CreditAnswer:
        raise TransportError("serving district unreachable")


class CrashingWriter:
    """Delegates to a real writer but dies instead of writing when told to."""

    def __init__(self, inner: ChainWriter, store: CrashingStore) -> None:
        self._inner = inner
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write(self, write: Write) -> None:
        if self._store.crash_next:
            self._store.crash_next = False
            raise Crash("died before the commit")
        await self._inner.write(write)


class CrashingStore:
    """A store whose next write transaction can be made to die before it commits."""

    def __init__(self, inner: ChainStore) -> None:
        self._inner = inner
        self.crash_next = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @asynccontextmanager
    async def writer(self, districts: Sequence[str]) -> AsyncIterator[CrashingWriter]:
        async with self._inner.writer(districts) as inner:
            yield CrashingWriter(inner, self)


@dataclass
class Simulation:
    store: ChainStore
    seed: int
    districts: int = 5
    users: int = 6
    rng: random.Random = field(init=False)
    now: int = 1_000_000
    n: int = 0
    accepted: list[tuple[Proposal, Entry]] = field(default_factory=list)
    refused: list[Proposal] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.crashing = CrashingStore(self.store)
        self.store = self.crashing  # type: ignore[assignment]
        self.rng = random.Random(self.seed)
        self.names = [f"D{i}" for i in range(self.districts)]

    def user(self, district: str) -> str:
        return f"user:{district}.u{self.rng.randrange(self.users)}"

    def proposal(self, kind: Kind, debit: str, credit: str, minutes: int, **kw: object) -> Proposal:
        self.n += 1
        return Proposal(
            district=str(kw.pop("district")),
            id=f"s{self.seed}-{self.n}",
            kind=kind,
            debit=debit,
            credit=credit,
            minutes=minutes,
            actor="sim",
            policy=1,
            at_ms=self.now,
            **kw,  # type: ignore[arg-type]
        )

    def random_proposal(self) -> Proposal:
        d = self.rng.choice(self.names)
        minutes = self.rng.randint(1, 200)
        kind = self.rng.choices(
            [Kind.DEPOSIT, Kind.REDEEM, Kind.GIFT, Kind.DONATE, Kind.EXPIRE, Kind.REVERSE],
            weights=[30, 20, 12, 6, 3, 6],
        )[0]
        if kind == Kind.DEPOSIT:
            debit = self.rng.choice(["issuance", "issuance", "pool"])
            return self.proposal(kind, debit, self.user(d), minutes, district=d)
        if kind == Kind.REDEEM:
            credit = self.rng.choice(["issuance", self.user(d)])
            return self.proposal(kind, self.user(d), credit, minutes, district=d)
        if kind == Kind.GIFT:
            return self.proposal(kind, self.user(d), self.user(d), minutes, district=d)
        if kind == Kind.DONATE:
            return self.proposal(kind, self.user(d), "pool", minutes, district=d)
        if kind == Kind.EXPIRE:
            return self.proposal(kind, self.user(d), "expired", minutes // 4 + 1, district=d)
        if not self.accepted:
            return self.proposal(Kind.DEPOSIT, "issuance", self.user(d), minutes, district=d)
        _, target = self.rng.choice(self.accepted)
        # Sometimes a mismatching reversal, to exercise the refusals.
        swap = self.rng.random() < 0.9 and target.kind in REVERSIBLE
        debit, credit = (target.credit, target.debit) if swap else (target.debit, target.credit)
        return self.proposal(
            Kind.REVERSE, debit, credit, target.minutes, district=target.district, ref=target.id
        )

    def network(self, down: bool = False):  # type: ignore[no-untyped-def]
        serving: ServingSide = (
            Down() if down else LocalServing(self.store, lambda: self.now, LIMITS)
        )
        return lambda district: serving

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    async def step(self) -> None:
        self.now += STEP_MS
        action = self.rng.choices(
            ["single", "batch", "many", "duplicate", "conflict", "retry", "transfer", "resume"],
            weights=[40, 6, 6, 8, 3, 3, 14, 4],
        )[0]
        self.count(action)
        await getattr(self, f"do_{action}")()

    async def do_single(self) -> None:
        p = self.random_proposal()
        if self.rng.random() < 0.1:
            # The process dies inside the transaction: nothing of it may remain, and the
            # client's retry with the same id then gets the one real outcome.
            self.crashing.crash_next = True
            with pytest.raises(Crash):
                await append(self.store, p, limits=LIMITS)
            assert await self.store.entry(p.district, p.id) is None
            assert await self.store.failure(p.district, p.id) is None
            self.count("crash in transaction")
        try:
            self.accepted.append((p, await append(self.store, p, limits=LIMITS)))
        except LedgerError:
            self.refused.append(p)

    async def do_batch(self) -> None:
        ps = [self.random_proposal() for _ in range(self.rng.randint(2, 8))]
        try:
            entries = await append_batch(self.store, ps, limits=LIMITS)
        except LedgerError:
            # All or nothing: none of them may be in the chain.
            for p in ps:
                assert await self.store.entry(p.district, p.id) is None
            return
        self.accepted.extend(zip(ps, entries, strict=True))

    async def do_many(self) -> None:
        ps = [self.random_proposal() for _ in range(self.rng.randint(2, 8))]
        for p, out in zip(ps, await append_many(self.store, ps, limits=LIMITS), strict=True):
            if isinstance(out, Entry):
                self.accepted.append((p, out))
            else:
                self.refused.append(p)

    async def do_duplicate(self) -> None:
        if not self.accepted:
            return
        p, entry = self.rng.choice(self.accepted)
        assert await append(self.store, replace(p, at_ms=self.now), limits=LIMITS) == entry

    async def do_conflict(self) -> None:
        if not self.accepted:
            return
        p, _ = self.rng.choice(self.accepted)
        with pytest.raises(IdempotencyConflict) as err:
            await append(self.store, replace(p, minutes=p.minutes + 1), limits=LIMITS)
        assert err.value.field == "minutes"

    async def do_retry(self) -> None:
        if not self.refused:
            return
        p = self.rng.choice(self.refused)
        if await self.store.failure(p.district, p.id) is None:
            return  # aborted with its batch, never refused itself
        with pytest.raises(IdempotencyFailed):
            await append(self.store, p, limits=LIMITS)

    async def do_transfer(self) -> None:
        home, serving = self.rng.sample(self.names, 2)
        self.n += 1
        request = TransferRequest(
            transfer_id=f"s{self.seed}-t{self.n}",
            home=home,
            serving=serving,
            payer=self.user(home),
            payee=self.user(serving),
            minutes=self.rng.randint(1, 120),
            actor="sim",
            policy=1,
            deadline_ms=self.now + self.rng.randint(1, 6) * STEP_MS,
        )
        crash_at = self.rng.choice([None, None, None, "hold", "answer"])

        async def crash(step: str) -> None:
            if step == crash_at:
                raise Crash(step)

        down = self.rng.random() < 0.1
        try:
            await run_transfer(
                self.store,
                request,
                network=self.network(down),
                now_ms=self.now,
                limits=LIMITS,
                crash=crash,
            )
        except Crash:
            self.count("crash")
        except LedgerError:
            self.count("transfer refused")

    async def do_resume(self) -> None:
        await resume_transfers(self.store, network=self.network(), now_ms=self.now)

    async def checkpoint(self) -> None:
        """Sign a checkpoint of every chain and prove it consistent with the previous one."""
        for d in await self.store.districts():
            last = await latest_checkpoint(self.store, d)
            cp = await checkpoint_chain(self.store, d, SIGNER, now_ms=self.now, force=True)
            if cp is None:
                continue
            assert verify_checkpoint(cp, SIGNER.public)
            if last is not None:
                proof = await consistency_proof(self.store, d, last.size, cp.size)
                assert verify_consistency(last.size, cp.size, last.root, cp.root, proof)

    async def run(self, steps: int) -> Auditor:
        auditor = Auditor(self.store)
        for n in range(steps):
            await self.step()
            await auditor.check()
            if n % CHECKPOINT_EVERY == CHECKPOINT_EVERY - 1:
                await self.checkpoint()
        # Past every deadline: every transfer completes or voids, and the mirrors are exact.
        self.now += 10 * STEP_MS
        await resume_transfers(self.store, network=self.network(), now_ms=self.now)
        await auditor.check()
        report = await settlement_report(self.store)
        assert report.open_holds == 0 and report.mirrored
        await check_store(self.store)
        await self.checkpoint()
        return auditor


async def fingerprint(store: ChainStore) -> dict[str, tuple[int, str, str, str]]:
    """Per chain: size, head hash, Merkle root and the final signed checkpoint."""
    out = {}
    for d in await store.districts():
        head = await store.head(d)
        root = await tree_root(store, d, head.size)
        cp = await latest_checkpoint(store, d)
        assert cp is not None and cp.size == head.size and cp.root == root
        out[d] = (head.size, head.head.hex(), root.hex(), cp.signature.hex())
    return out


class TestSimulation:
    async def test_memory_simulation(self) -> None:
        sim = Simulation(MemoryStore(), seed=7, districts=8)
        await sim.run(2000)
        await verify_with_core(sim.store, SIGNER, LIMITS.max_minutes)
        assert sim.counts["crash"] > 5 and sim.counts["transfer"] > 100
        assert len(sim.refused) > 50 and len(sim.accepted) > 500

    async def test_same_seed_same_heads_and_roots(self) -> None:
        first = Simulation(MemoryStore(), seed=11)
        second = Simulation(MemoryStore(), seed=11)
        await first.run(300)
        await second.run(300)
        assert await fingerprint(first.store) == await fingerprint(second.store)

    async def test_other_seed_other_heads(self) -> None:
        first = Simulation(MemoryStore(), seed=11)
        second = Simulation(MemoryStore(), seed=12)
        await first.run(100)
        await second.run(100)
        assert await fingerprint(first.store) != await fingerprint(second.store)

    async def test_database_store_matches_memory_twin(self, sqlite_url: str) -> None:
        twin = Simulation(MemoryStore(), seed=5, districts=4)
        await twin.run(150)
        async with open_store(sqlite_url) as db:
            sim = Simulation(db, seed=5, districts=4)
            await sim.run(150)
            assert await fingerprint(db) == await fingerprint(twin.store)
            await verify_with_core(db, SIGNER, LIMITS.max_minutes)

    @pytest.mark.postgres
    async def test_postgres_store_matches_memory_twin(self, pg_url: str) -> None:
        twin = Simulation(MemoryStore(), seed=6, districts=4)
        await twin.run(120)
        async with open_store(pg_url) as db:
            sim = Simulation(db, seed=6, districts=4)
            await sim.run(120)
            assert await fingerprint(db) == await fingerprint(twin.store)
            await verify_with_core(db, SIGNER, LIMITS.max_minutes)
