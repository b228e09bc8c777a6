"""Read side of every store: open holds, checkpoints, statements with proofs, DB uniqueness."""

from __future__ import annotations

import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from ledger import merkle
from ledger.checkpoint import verify_checkpoint
from ledger.entries import Kind
from ledger.keys import Signer
from ledger.rules import Proposal
from ledger.service import (
    append,
    append_batch,
    checkpoint_chain,
    latest_checkpoint,
    statement_with_proofs,
    tree_root,
)
from ledger.storage.base import ChainStore
from ledger.storage.database import open_store
from ledger.storage.tortoise_store import TortoiseStore
from ledger.transfer import (
    CreditAnswer,
    CreditRequest,
    TransferRequest,
    TransportError,
    run_transfer,
)

SIGNER = Signer.generate()


def deposit(pid: str, user: str = "user:v", minutes: int = 10) -> Proposal:
    return Proposal("A", pid, Kind.DEPOSIT, "issuance", user, minutes, "c", 1, 5)


class Down:
    async def credit(self, request: CreditRequest) -> CreditAnswer:
        raise TransportError("down")

    async def abort(self, request: CreditRequest) -> CreditAnswer:
        raise TransportError("down")


class TestCheckpoints:
    async def test_first_checkpoint_signed_and_stored(self, store: ChainStore) -> None:
        await append_batch(store, [deposit(f"d{i}") for i in range(5)])
        cp = await checkpoint_chain(store, "A", SIGNER, now_ms=1_000)
        assert cp is not None and cp.size == 5
        assert cp.root == await tree_root(store, "A", 5)
        assert verify_checkpoint(cp, SIGNER.public)
        assert await latest_checkpoint(store, "A") == cp

    async def test_not_due_until_n_entries(self, store: ChainStore) -> None:
        await append(store, deposit("d0"))
        await checkpoint_chain(store, "A", SIGNER, now_ms=1_000, every_n=3)
        await append(store, deposit("d1"))
        assert await checkpoint_chain(store, "A", SIGNER, now_ms=1_001, every_n=3) is None
        await append_batch(store, [deposit("d2"), deposit("d3")])
        cp = await checkpoint_chain(store, "A", SIGNER, now_ms=1_002, every_n=3)
        assert cp is not None and cp.size == 4

    async def test_due_after_time(self, store: ChainStore) -> None:
        await append(store, deposit("d0"))
        await checkpoint_chain(store, "A", SIGNER, now_ms=1_000, every_ms=500)
        await append(store, deposit("d1"))
        assert await checkpoint_chain(store, "A", SIGNER, now_ms=1_100, every_ms=500) is None
        assert await checkpoint_chain(store, "A", SIGNER, now_ms=1_600, every_ms=500) is not None
        assert [c.size for c in await store.checkpoints("A")] == [1, 2]

    async def test_empty_chain_has_no_checkpoint(self, store: ChainStore) -> None:
        assert await checkpoint_chain(store, "A", SIGNER, now_ms=1, force=True) is None
        assert await latest_checkpoint(store, "A") is None


class TestStatement:
    async def test_lines_carry_verifiable_proofs(self, store: ChainStore) -> None:
        await append_batch(store, [deposit(f"d{i}", f"user:u{i % 3}") for i in range(11)])
        size = 11
        root = await tree_root(store, "A", size)
        lines = await statement_with_proofs(store, "A", "user:u1", size=size)
        assert [e.seq for e, _ in lines] == [1, 4, 7, 10]
        for entry, proof in lines:
            assert merkle.verify_inclusion(entry.hash, entry.seq, size, proof, root)

    async def test_lines_after_the_checkpoint_are_left_out(self, store: ChainStore) -> None:
        await append_batch(store, [deposit(f"d{i}") for i in range(4)])
        lines = await statement_with_proofs(store, "A", "user:v", size=2)
        assert [e.seq for e, _ in lines] == [0, 1]


class TestOpenHolds:
    async def test_open_then_closed(self, store: ChainStore) -> None:
        await append(store, deposit("f", "user:e", 100))
        req = TransferRequest("t1", "A", "B", "user:e", "user:h", 30, "c", 1, 10_000)
        await run_transfer(store, req, network=lambda d: Down(), now_ms=5)
        assert [h.id for h in await store.open_holds("A")] == ["xfer:t1:hold"]
        assert await store.open_holds("B") == []


class TestDatabaseUniqueness:
    async def test_second_closing_row_refused_by_the_index(self, db_store: TortoiseStore) -> None:
        await append(db_store, deposit("d0"))
        rev = Proposal("A", "r0", Kind.REVERSE, "user:v", "issuance", 10, "c", 1, 6, ref="d0")
        await append(db_store, rev)
        # Bypass the rules: a forged second reversal row must still be refused by the database.
        sql = (
            "INSERT INTO ledger_entry (district, seq, entry_id, kind, debit, credit, minutes, "
            "actor, policy, at_ms, settles, hash, body) VALUES "
            "('A', 2, 'r1', 'reverse', 'user:v', 'issuance', 10, 'c', 1, 7, 'd0', ?, ?)"
        )
        if db_store.postgres:
            sql = sql.replace("?, ?", "$1, $2")
        with pytest.raises(IntegrityError):
            await db_store.client.execute_query(sql, [b"x", b"x"])


class TestStreaming:
    async def test_stream_gives_every_stored_body_in_order(self, db_store: TortoiseStore) -> None:
        entries = await append_batch(db_store, [deposit(f"d{i}") for i in range(25)])
        chunks = [c async for c in db_store.stream_bodies("A", chunk=10)]
        assert [len(c) for c in chunks] == [10, 10, 5]
        flat = [row for c in chunks for row in c]
        assert flat == [(e.seq, e.body) for e in entries]


class TestCallerTransaction:
    """A service that holds its own transaction appends inside it (both backends)."""

    @pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
    def url(self, request: pytest.FixtureRequest) -> str:
        name = "sqlite_url" if request.param == "sqlite" else "pg_url"
        return str(request.getfixturevalue(name))

    async def test_entry_commits_with_the_callers_work(self, url: str) -> None:
        async with open_store(url) as store:
            async with in_transaction("default"):
                await append(store, deposit("d0"))
                assert (await store.head("A")).size == 1  # visible inside the transaction
            assert (await store.entry("A", "d0")) is not None

    async def test_entry_rolls_back_with_the_callers_work(self, url: str) -> None:
        async with open_store(url) as store:
            with pytest.raises(RuntimeError):
                async with in_transaction("default"):
                    await append(store, deposit("d0"))
                    raise RuntimeError("the booking update failed")
            assert await store.entry("A", "d0") is None
            assert (await store.head("A")).size == 0
            await append(store, deposit("d0"))
            assert (await store.head("A")).size == 1
