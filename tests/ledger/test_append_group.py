"""Group commit: concurrent single appends share a transaction, each gets its own outcome."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ledger.committer import GroupCommitter
from ledger.entries import Entry, Kind
from ledger.errors import IdempotencyConflict, IdempotencyFailed, InsufficientMinutes, InvalidEntry
from ledger.merkle import verify_inclusion
from ledger.rules import Proposal
from ledger.service import append, inclusion_proof, refuse, tree_root
from ledger.storage.base import ChainStore
from ledger.storage.tortoise_store import DirectSession, TortoiseStore
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


class TestCachedChains:
    """On PostgreSQL a warm committer writes a group in one statement from the heads, frontier
    and balances it keeps; whatever it does not know sends the group down the general path.
    The outcomes are the same on every store."""

    async def warm(self, store: ChainStore) -> GroupCommitter:
        committer = GroupCommitter(store, lanes=2)
        ps = [p(d, f"w{i}", Kind.DEPOSIT, "issuance", "user:a", 10) for i in range(3) for d in "AB"]
        await asyncio.gather(*(committer.append(x) for x in ps))
        return committer

    async def test_warm_groups_take_one_statement(self, store: ChainStore) -> None:
        committer = await self.warm(store)
        calls: list[int] = []
        if isinstance(store, TortoiseStore) and store.direct_appends:
            original = DirectSession.append_if_current

            async def counted(self: DirectSession, expected: Any, write: Any) -> bool:
                calls.append(len(write.entries))
                return await original(self, expected, write)

            DirectSession.append_if_current = counted  # type: ignore[method-assign]
        try:
            ps = [
                p(d, f"g{i}", Kind.DEPOSIT, "issuance", f"user:u{i}", 5)
                for i in range(8)
                for d in "AB"
            ]
            await asyncio.gather(*(committer.append(x) for x in ps))
            await asyncio.gather(*(committer.append(x) for x in ps[:4]))  # retries: stored
        finally:
            if calls:
                DirectSession.append_if_current = original  # type: ignore[method-assign]
            await committer.close()
        if isinstance(store, TortoiseStore) and store.direct_appends:
            assert calls[:2] == [8, 8]  # A and B have a lane each: a statement per lane
        chains = await check_store(store)
        assert {d: len(c) for d, c in chains.items()} == {"A": 11, "B": 11}

    @pytest.mark.parametrize("lanes", [1, 3])
    async def test_any_number_of_lanes(self, store: ChainStore, lanes: int) -> None:
        committer = GroupCommitter(store, lanes=lanes)
        ps = [
            p(d, f"l{i}", Kind.DEPOSIT, "issuance", "user:a", 5) for i in range(6) for d in "ABCD"
        ]
        await asyncio.gather(*(committer.append(x) for x in ps))
        await committer.close()
        chains = await check_store(store)
        assert {d: len(c) for d, c in chains.items()} == dict.fromkeys("ABCD", 6)
        assert len({id(lane) for lane in committer._lane_of.values()}) == min(lanes, 4)

    async def test_another_writer_in_between(self, store: ChainStore) -> None:
        committer = await self.warm(store)
        await append(store, p("A", "other", Kind.REDEEM, "user:a", "issuance", 25))
        # The committer's head and balance of user:a are stale now: the group is redone.
        results = await asyncio.gather(
            committer.append(p("A", "x1", Kind.REDEEM, "user:a", "issuance", 5)),
            committer.append(p("A", "x2", Kind.REDEEM, "user:a", "issuance", 5)),
            return_exceptions=True,
        )
        await committer.close()
        assert isinstance(results[0], Entry) and isinstance(results[1], InsufficientMinutes)
        assert await store.balance("A", "user:a") == 0
        chain = (await check_store(store))["A"]
        assert [e.id for e in chain] == ["w0", "w1", "w2", "other", "x1"]

    async def test_retry_of_a_stored_id_gets_the_stored_entry(self, store: ChainStore) -> None:
        committer = await self.warm(store)
        first = await append(store, p("A", "d9", Kind.DEPOSIT, "issuance", "user:b", 10))
        again = await committer.append(p("A", "d9", Kind.DEPOSIT, "issuance", "user:b", 10))
        with pytest.raises(IdempotencyConflict):
            await committer.append(p("A", "d9", Kind.DEPOSIT, "issuance", "user:b", 11))
        await committer.close()
        assert again == first
        assert (await store.head("A")).size == 4

    async def test_id_refused_elsewhere_stays_refused(self, store: ChainStore) -> None:
        committer = await self.warm(store)
        await refuse(
            store, p("A", "r1", Kind.DEPOSIT, "issuance", "user:b", 10), code="no", message="no"
        )
        with pytest.raises(IdempotencyFailed):
            await committer.append(p("A", "r1", Kind.DEPOSIT, "issuance", "user:b", 10))
        await committer.close()
        assert await store.entry("A", "r1") is None

    async def test_refusal_in_a_warm_group_is_final(self, store: ChainStore) -> None:
        committer = await self.warm(store)
        with pytest.raises(InsufficientMinutes):
            await committer.append(p("A", "big", Kind.REDEEM, "user:a", "issuance", 31))
        assert await store.failure("A", "big") is not None
        await append(store, p("A", "more", Kind.DEPOSIT, "issuance", "user:a", 10))
        with pytest.raises(IdempotencyFailed):
            await committer.append(p("A", "big", Kind.REDEEM, "user:a", "issuance", 31))
        await committer.close()

    async def test_reversal_goes_through(self, store: ChainStore) -> None:
        committer = await self.warm(store)
        rev = Proposal("A", "rev", Kind.REVERSE, "user:a", "issuance", 10, "c", 1, 1, ref="w1")
        entry = await committer.append(rev)
        after = await committer.append(p("A", "after", Kind.DEPOSIT, "issuance", "user:a", 1))
        await committer.close()
        assert (entry.seq, after.seq) == (3, 4)
        assert await store.balance("A", "user:a") == 21
        await check_store(store)

    async def test_merkle_nodes_stay_right_across_many_groups(self, store: ChainStore) -> None:
        committer = GroupCommitter(store)
        for n in range(9):
            ps = [p("A", f"m{n}-{i}", Kind.DEPOSIT, "issuance", "user:a", 1) for i in range(n + 3)]
            await asyncio.gather(*(committer.append(x) for x in ps))
        await committer.close()
        chain = await check_store(store)  # every root and proof from the stored nodes
        size = len(chain["A"])
        leaves = [e.hash for e in chain["A"]]
        for seq in (0, 17, size - 1):
            proof = await inclusion_proof(store, "A", seq, size)
            assert verify_inclusion(
                leaves[seq], seq, size, proof, await tree_root(store, "A", size)
            )


def test_a_store_that_wraps_its_writer_gets_no_direct_appends() -> None:
    class Wrapped(TortoiseStore):
        @asynccontextmanager
        async def writer(self, districts: Sequence[str]) -> AsyncIterator[Any]:
            async with super().writer(districts) as inner:
                yield inner

    class Postgres:
        class capabilities:
            dialect = "postgres"

    assert TortoiseStore(Postgres()).direct_appends  # type: ignore[arg-type]
    assert not Wrapped(Postgres()).direct_appends  # type: ignore[arg-type]
