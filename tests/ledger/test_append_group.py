"""Group commit: concurrent single appends share a transaction, each gets its own outcome."""

from __future__ import annotations

import asyncio

import pytest

from ledger.committer import GroupCommitter
from ledger.entries import Entry, Kind
from ledger.errors import IdempotencyConflict, InsufficientMinutes, InvalidEntry
from ledger.rules import Proposal
from ledger.storage.base import ChainStore
from tests.ledger.chain_checks import check_store


def p(district: str, pid: str, kind: Kind, debit: str, credit: str, minutes: int) -> Proposal:
    return Proposal(district, pid, kind, debit, credit, minutes, "c", 1, 1)


class TestGroupCommitter:
    async def test_concurrent_appends_all_acknowledged(self, store: ChainStore) -> None:
        committer = GroupCommitter(store)
        ps = [
            p(d, f"{d}-{i}", Kind.DEPOSIT, "issuance", f"user:u{i % 3}", 5)
            for i in range(30)
            for d in ("A", "B")
        ]
        entries = await asyncio.gather(*(committer.append(x) for x in ps))
        await committer.close()
        assert all(isinstance(e, Entry) for e in entries)
        chains = await check_store(store)
        assert {d: len(c) for d, c in chains.items()} == {"A": 30, "B": 30}

    async def test_refusal_goes_to_its_caller_only(self, store: ChainStore) -> None:
        committer = GroupCommitter(store)
        ok = p("A", "d1", Kind.DEPOSIT, "issuance", "user:a", 10)
        bad = p("A", "r1", Kind.REDEEM, "user:b", "issuance", 10)
        results = await asyncio.gather(
            committer.append(ok), committer.append(bad), return_exceptions=True
        )
        assert isinstance(results[0], Entry)
        assert isinstance(results[1], InsufficientMinutes)
        assert await store.failure("A", "r1") is not None

    async def test_conflicting_reuse_is_refused(self, store: ChainStore) -> None:
        committer = GroupCommitter(store)
        await committer.append(p("A", "d1", Kind.DEPOSIT, "issuance", "user:a", 10))
        with pytest.raises(IdempotencyConflict):
            await committer.append(p("A", "d1", Kind.DEPOSIT, "issuance", "user:a", 11))

    async def test_same_id_twice_in_one_group_written_once(self, store: ChainStore) -> None:
        committer = GroupCommitter(store)
        x = p("A", "d1", Kind.DEPOSIT, "issuance", "user:a", 10)
        first, second = await asyncio.gather(committer.append(x), committer.append(x))
        assert first == second
        assert (await store.head("A")).size == 1

    async def test_bad_district_fails_alone(self, store: ChainStore) -> None:
        committer = GroupCommitter(store)
        good = p("A", "d1", Kind.DEPOSIT, "issuance", "user:a", 10)
        bad = p("no such district!", "d2", Kind.DEPOSIT, "issuance", "user:a", 10)
        results = await asyncio.gather(
            committer.append(good), committer.append(bad), return_exceptions=True
        )
        assert isinstance(results[0], Entry) and isinstance(results[1], InvalidEntry)

    async def test_bad_id_fails_alone(self, store: ChainStore) -> None:
        committer = GroupCommitter(store)
        good = p("A", "d1", Kind.DEPOSIT, "issuance", "user:a", 10)
        long_id = p("A", "i" * 257, Kind.DEPOSIT, "issuance", "user:a", 10)
        results = await asyncio.gather(
            committer.append(good), committer.append(long_id), return_exceptions=True
        )
        assert isinstance(results[0], Entry) and isinstance(results[1], InvalidEntry)
        assert results[1].field == "id"
        assert (await store.head("A")).size == 1

    async def test_unstorable_actor_fails_alone(self, store: ChainStore) -> None:
        committer = GroupCommitter(store)
        good = p("A", "d1", Kind.DEPOSIT, "issuance", "user:a", 10)
        bad = Proposal("A", "d2", Kind.DEPOSIT, "issuance", "user:a", 10, "nul\x00", 1, 1)
        results = await asyncio.gather(
            committer.append(good), committer.append(bad), return_exceptions=True
        )
        assert isinstance(results[0], Entry) and isinstance(results[1], InvalidEntry)
        assert await store.failure("A", "d2") is not None
