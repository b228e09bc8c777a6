"""The append path on every store: linking, balances, idempotency, failed ids, batches, proofs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ledger import merkle
from ledger.entries import ZERO_HASH, Kind
from ledger.errors import (
    IdempotencyConflict,
    IdempotencyFailed,
    InsufficientMinutes,
    InvalidEntry,
    LedgerError,
    ProofError,
)
from ledger.rules import Limits, Proposal
from ledger.service import (
    OPTIMISTIC_FROM,
    append,
    append_batch,
    append_many,
    consistency_proof,
    inclusion_proof,
    refuse,
    tree_root,
)
from ledger.storage.base import ChainStore
from tests.ledger.chain_checks import check_chain, check_store


def deposit(pid: str, user: str = "user:v", minutes: int = 60, **kw: Any) -> Proposal:
    return Proposal(
        district=kw.pop("district", "A"),
        id=pid,
        kind=Kind.DEPOSIT,
        debit="issuance",
        credit=user,
        minutes=minutes,
        actor="centre",
        policy=1,
        at_ms=kw.pop("at_ms", 1_000),
        **kw,
    )


def redeem(pid: str, user: str = "user:v", minutes: int = 30, **kw: Any) -> Proposal:
    return Proposal(
        district=kw.pop("district", "A"),
        id=pid,
        kind=Kind.REDEEM,
        debit=user,
        credit="issuance",
        minutes=minutes,
        actor="centre",
        policy=1,
        at_ms=2_000,
        **kw,
    )


class TestAppend:
    async def test_first_entry_links_to_zero(self, store: ChainStore) -> None:
        e = await append(store, deposit("d1"))
        assert (e.seq, e.prev) == (0, ZERO_HASH)

    async def test_entries_link(self, store: ChainStore) -> None:
        a = await append(store, deposit("d1"))
        b = await append(store, deposit("d2"))
        assert (b.seq, b.prev) == (1, a.hash)
        assert (await store.head("A")).head == b.hash

    async def test_balances_follow(self, store: ChainStore) -> None:
        await append(store, deposit("d1", minutes=60))
        await append(store, redeem("r1", minutes=25))
        assert await store.balance("A", "user:v") == 35
        assert await store.balance("A", "issuance") == -35
        await check_store(store)

    async def test_stored_body_is_what_was_hashed(self, store: ChainStore) -> None:
        e = await append(store, deposit("d1", meta={"booking": "b-1", "note": "助浴"}))
        (stored,) = await store.entries("A")
        assert stored.body == e.body and stored.hash == e.hash

    async def test_chains_are_independent(self, store: ChainStore) -> None:
        a = await append(store, deposit("d1", district="A"))
        b = await append(store, deposit("d1", district="B"))
        assert a.seq == b.seq == 0 and a.hash != b.hash
        assert await store.districts() == ["A", "B"]

    async def test_overdraft_refused_and_nothing_written(self, store: ChainStore) -> None:
        await append(store, deposit("d1", minutes=10))
        with pytest.raises(InsufficientMinutes):
            await append(store, redeem("r1", minutes=11))
        assert (await store.head("A")).size == 1
        assert await store.balance("A", "user:v") == 10

    async def test_invalid_district_refused(self, store: ChainStore) -> None:
        with pytest.raises(InvalidEntry):
            await append(store, deposit("d1", district="no spaces"))
        assert await store.districts() == []

    async def test_statement(self, store: ChainStore) -> None:
        await append(store, deposit("d1", user="user:a"))
        await append(store, deposit("d2", user="user:b"))
        await append(store, redeem("r1", user="user:a"))
        lines = await store.statement("A", "user:a")
        assert [e.id for e in lines] == ["d1", "r1"]
        assert [e.id for e in await store.statement("A", "user:a", after_seq=0)] == ["r1"]
        assert [e.id for e in await store.statement("A", "user:a", limit=1)] == ["d1"]

    async def test_longest_fields_are_stored(self, store: ChainStore) -> None:
        long_id, category = "i" * 256, "c" * 256
        user = "user:" + "u" * 128
        e = await append(store, deposit(long_id, user=user, category=category, ref="r" * 256))
        assert await store.entry("A", long_id) == e
        assert await store.balance("A", user) == 60

    async def test_entry_lookup(self, store: ChainStore) -> None:
        e = await append(store, deposit("d1"))
        assert await store.entry("A", "d1") == e
        assert await store.entry("A", "nope") is None
        assert await store.entry("B", "d1") is None


class TestBalanceCap:
    async def test_concurrent_deposits_cannot_both_pass_the_cap(self, store: ChainStore) -> None:
        limits = Limits(max_balance=lambda district, account: 100)
        ps = [deposit("d1", minutes=60), deposit("d2", minutes=60)]
        results = await asyncio.gather(
            *(append(store, p, limits=limits) for p in ps), return_exceptions=True
        )
        assert sorted(type(r).__name__ for r in results) == ["Entry", "PolicyForbids"]
        assert await store.balance("A", "user:v") == 60


class TestIdempotency:
    async def test_same_id_same_content_returns_original(self, store: ChainStore) -> None:
        first = await append(store, deposit("d1", at_ms=1_000))
        again = await append(store, deposit("d1", at_ms=5_000))
        assert again == first
        assert (await store.head("A")).size == 1

    async def test_same_id_other_minutes_names_field(self, store: ChainStore) -> None:
        await append(store, deposit("d1", minutes=60))
        with pytest.raises(IdempotencyConflict) as err:
            await append(store, deposit("d1", minutes=61))
        assert err.value.field == "minutes"

    async def test_same_id_other_kind_names_field(self, store: ChainStore) -> None:
        await append(store, deposit("d1", minutes=60))
        with pytest.raises(IdempotencyConflict) as err:
            await append(store, redeem("d1", minutes=10))
        assert err.value.field == "kind"

    async def test_same_id_other_meta_names_field(self, store: ChainStore) -> None:
        await append(store, deposit("d1", meta={"booking": "b1"}))
        with pytest.raises(IdempotencyConflict) as err:
            await append(store, deposit("d1", meta={"booking": "b2"}))
        assert err.value.field == "meta"

    async def test_failed_id_stays_failed(self, store: ChainStore) -> None:
        with pytest.raises(InsufficientMinutes):
            await append(store, redeem("r1", minutes=30))
        await append(store, deposit("d1", minutes=100))
        # Now the redemption would be covered, but its id was refused once and stays refused.
        with pytest.raises(IdempotencyFailed) as err:
            await append(store, redeem("r1", minutes=30))
        assert "insufficient_minutes" in err.value.first_error
        assert (await store.failure("A", "r1")) is not None
        assert await store.entry("A", "r1") is None

    async def test_failed_id_reused_with_other_content(self, store: ChainStore) -> None:
        with pytest.raises(InsufficientMinutes):
            await append(store, redeem("r1", minutes=30))
        with pytest.raises(IdempotencyConflict) as err:
            await append(store, redeem("r1", minutes=20))
        assert err.value.field == "minutes"

    async def test_invalid_entry_is_recorded_as_failed(self, store: ChainStore) -> None:
        with pytest.raises(LedgerError):
            await append(store, deposit("d1", minutes=0))
        with pytest.raises(IdempotencyFailed):
            await append(store, deposit("d1", minutes=0))

    async def test_ids_are_scoped_by_district(self, store: ChainStore) -> None:
        with pytest.raises(InsufficientMinutes):
            await append(store, redeem("x", district="A"))
        await append(store, deposit("x", district="B"))


class TestRequestEdge:
    """Ids and text a store could not hold are refused before any transaction: never recorded
    as failed ids, never a database error, never the end of a group."""

    @pytest.mark.parametrize(
        "bad_id",
        ["i" * 257, "", "with\x00nul", "tab\tinside", "lone\ud800surrogate", "del\x7f"],
        ids=["257 chars", "empty", "nul", "tab", "surrogate", "del"],
    )
    async def test_bad_id_refused_and_not_recorded(self, store: ChainStore, bad_id: str) -> None:
        with pytest.raises(InvalidEntry) as err:
            await append(store, deposit(bad_id))
        assert err.value.field == "id"
        assert await store.districts() == []
        # A retry meets the same refusal, not an IdempotencyFailed: nothing was recorded.
        with pytest.raises(InvalidEntry):
            await append(store, deposit(bad_id))

    async def test_id_of_257_characters_names_the_limit(self, store: ChainStore) -> None:
        with pytest.raises(InvalidEntry, match="257 characters long, at most 256"):
            await append(store, deposit("i" * 257))

    async def test_non_string_id_refused(self, store: ChainStore) -> None:
        with pytest.raises(InvalidEntry) as err:
            await append(store, deposit(12345))  # type: ignore[arg-type]
        assert err.value.field == "id"

    async def test_bad_id_fails_alone_in_a_group(self, store: ChainStore) -> None:
        ps = [deposit("d1"), deposit("i" * 300), deposit("nul\x00"), deposit("d2")]
        outcomes = await append_many(store, ps)
        assert [type(o).__name__ for o in outcomes] == [
            "Entry", "InvalidEntry", "InvalidEntry", "Entry",
        ]  # fmt: skip
        assert (await store.head("A")).size == 2
        await check_chain(store, "A")

    async def test_bad_district_fails_alone_in_a_group(self, store: ChainStore) -> None:
        outcomes = await append_many(store, [deposit("d1", district="no spaces"), deposit("d2")])
        assert [type(o).__name__ for o in outcomes] == ["InvalidEntry", "Entry"]

    async def test_batch_with_a_bad_id_writes_nothing(self, store: ChainStore) -> None:
        with pytest.raises(InvalidEntry):
            await append_batch(store, [deposit("d1"), deposit("x" * 257)])
        assert (await store.head("A")).size == 0
        await append_batch(store, [deposit("d1")])

    @pytest.mark.parametrize("field", ["actor", "category", "ref"])
    async def test_unstorable_text_refused_and_recorded(
        self, store: ChainStore, field: str
    ) -> None:
        bad = deposit("d1", **{field: "a\x00b"}) if field != "actor" else None
        if bad is None:
            bad = Proposal("A", "d1", Kind.DEPOSIT, "issuance", "user:v", 60, "a\x00b", 1, 1)
        outcomes = await append_many(store, [bad, deposit("d2")])
        assert isinstance(outcomes[0], InvalidEntry) and outcomes[0].field == field
        assert type(outcomes[1]).__name__ == "Entry"
        # The id itself is fine, so its refusal is final like any other.
        failure = await store.failure("A", "d1")
        assert failure is not None and failure.code == "ledger.invalid_entry"
        with pytest.raises(IdempotencyFailed):
            await append(store, bad)

    async def test_refused_content_with_a_lone_surrogate_is_recorded(
        self, store: ChainStore
    ) -> None:
        bad = deposit("d1", meta={"note": "x\ud800"}, minutes=0)
        with pytest.raises(LedgerError):
            await append(store, bad)
        with pytest.raises(IdempotencyFailed):
            await append(store, bad)

    async def test_refuse_checks_the_id(self, store: ChainStore) -> None:
        with pytest.raises(InvalidEntry):
            await refuse(store, deposit("i" * 257), code="market.no", message="no")
        with pytest.raises(InvalidEntry):
            await refuse(store, deposit("d1"), code="c" * 65, message="no")
        await refuse(store, deposit("d1"), code="market.no", message="bad \x00 \udc80 text")
        failure = await store.failure("A", "d1")
        assert failure is not None and failure.message == "bad \\x00 \\udc80 text"


class TestBatch:
    async def test_batch_links_and_balances(self, store: ChainStore) -> None:
        ps = [deposit(f"d{i}", minutes=10) for i in range(20)] + [redeem("r", minutes=150)]
        entries = await append_batch(store, ps)
        assert [e.seq for e in entries] == list(range(21))
        assert await store.balance("A", "user:v") == 50
        await check_chain(store, "A")

    async def test_large_batch(self, store: ChainStore) -> None:
        # Large enough for the PostgreSQL store to send the entries with COPY.
        ps = [deposit(f"d{i}", user=f"user:u{i % 7}", minutes=3) for i in range(300)]
        entries = await append_batch(store, ps)
        assert [e.seq for e in entries] == list(range(300))
        stored = await check_chain(store, "A")
        assert [e.body for e in stored] == [e.body for e in entries]

    async def test_batch_over_several_chains(self, store: ChainStore) -> None:
        ps = [deposit(f"d{i}", district=d) for i in range(5) for d in ("A", "B", "C")]
        await append_batch(store, ps)
        chains = await check_store(store)
        assert {d: len(c) for d, c in chains.items()} == {"A": 5, "B": 5, "C": 5}

    async def test_batch_is_all_or_nothing(self, store: ChainStore) -> None:
        await append(store, deposit("d0", minutes=10))
        ps = [deposit("d1", minutes=10), redeem("r1", minutes=50), deposit("d2")]
        with pytest.raises(InsufficientMinutes):
            await append_batch(store, ps)
        assert (await store.head("A")).size == 1
        # Only the refused id is recorded; the others were never refused and may come again.
        assert await store.failure("A", "r1") is not None
        assert await store.failure("A", "d1") is None
        await append_batch(store, [deposit("d1", minutes=10), deposit("d2")])

    async def test_batch_sees_its_own_entries(self, store: ChainStore) -> None:
        ps = [deposit("d1", minutes=30), redeem("r1", minutes=30)]
        entries = await append_batch(store, ps)
        assert entries[1].prev == entries[0].hash

    async def test_duplicate_inside_batch_written_once(self, store: ChainStore) -> None:
        entries = await append_batch(store, [deposit("d1"), deposit("d1")])
        assert entries[0] == entries[1]
        assert (await store.head("A")).size == 1

    async def test_many_gives_each_its_outcome(self, store: ChainStore) -> None:
        ps = [deposit("d1", minutes=10), redeem("r1", minutes=50), redeem("r2", minutes=10)]
        outcomes = await append_many(store, ps)
        assert isinstance(outcomes[1], InsufficientMinutes)
        assert [type(o).__name__ for o in outcomes] == ["Entry", "InsufficientMinutes", "Entry"]
        assert (await store.head("A")).size == 2
        assert await store.failure("A", "r1") is not None
        await check_chain(store, "A")

    async def test_reverse_and_its_reversal_in_one_batch(self, store: ChainStore) -> None:
        rev = Proposal("A", "x1", Kind.REVERSE, "user:v", "issuance", 60, "centre", 1, 3, ref="d1")
        await append_batch(store, [deposit("d1"), rev])
        assert await store.balance("A", "user:v") == 0
        outcomes = await append_many(store, [Proposal(**{**rev.__dict__, "id": "x2"})])
        assert type(outcomes[0]).__name__ == "AlreadyReversed"


class TestLargeBatches:
    """From `OPTIMISTIC_FROM` proposals on, ids are not read first; a stored one is caught by
    the unique key and the batch is redone: outcomes must be the same as for small batches."""

    def batch(self, start: int, count: int = OPTIMISTIC_FROM + 6) -> list[Proposal]:
        return [
            deposit(f"d{n}", user=f"user:u{n % 5}", minutes=2) for n in range(start, start + count)
        ]

    async def test_repeating_a_stored_id_returns_the_stored_entry(self, store: ChainStore) -> None:
        first = await append(store, deposit("d0", user="user:u0", minutes=2))
        entries = await append_batch(store, self.batch(0))
        assert entries[0] == first
        assert [e.seq for e in entries[1:]] == list(range(1, OPTIMISTIC_FROM + 6))
        assert await store.balance("A", "user:u0") == 2 * len({n for n in range(70) if n % 5 == 0})
        await check_chain(store, "A")

    async def test_stored_id_with_other_content_conflicts(self, store: ChainStore) -> None:
        await append(store, deposit("d5", minutes=9))
        with pytest.raises(IdempotencyConflict):
            await append_batch(store, self.batch(0))
        assert (await store.head("A")).size == 1
        outcomes = await append_many(store, self.batch(0))
        assert [n for n, o in enumerate(outcomes) if isinstance(o, IdempotencyConflict)] == [5]
        assert (await store.head("A")).size == OPTIMISTIC_FROM + 6
        await check_chain(store, "A")

    async def test_failed_id_stays_failed(self, store: ChainStore) -> None:
        with pytest.raises(InsufficientMinutes):
            await append(store, redeem("r1", minutes=30))
        ps = [*self.batch(0), redeem("r1", minutes=30)]
        with pytest.raises(IdempotencyFailed):
            await append_batch(store, ps)
        outcomes = await append_many(store, ps)
        assert isinstance(outcomes[-1], IdempotencyFailed)

    async def test_repeated_redemption_is_not_counted_twice(self, store: ChainStore) -> None:
        await append_batch(
            store, [deposit("d", user="user:a", minutes=60), redeem("r", "user:a", 60)]
        )
        # Counted again, the repeated redemption would be refused (user:a holds 0 minutes);
        # it was appended, so the batch gets the stored entry and nothing is recorded as failed.
        ps = [redeem("r", "user:a", 60), *self.batch(0), deposit("top", user="user:a", minutes=5)]
        entries = await append_batch(store, ps)
        assert entries[0].seq == 1
        assert await store.failure("A", "r") is None
        assert await store.balance("A", "user:a") == 5
        await check_chain(store, "A")

    async def test_refusal_in_a_large_batch_is_recorded(self, store: ChainStore) -> None:
        ps = [*self.batch(0), redeem("r1", user="user:nobody", minutes=30)]
        with pytest.raises(InsufficientMinutes):
            await append_batch(store, ps)
        assert (await store.head("A")).size == 0
        assert await store.failure("A", "r1") is not None


class TestProofs:
    async def test_roots_and_proofs_match_reference(self, store: ChainStore) -> None:
        entries = await append_batch(store, [deposit(f"d{i}", minutes=5) for i in range(13)])
        entries += await append_batch(store, [deposit(f"e{i}", minutes=5) for i in range(6)])
        leaves = [e.hash for e in entries]
        for size in range(1, len(leaves) + 1):
            root = merkle.root(leaves[:size])
            assert await tree_root(store, "A", size) == root
            for index in range(size):
                proof = await inclusion_proof(store, "A", index, size)
                assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
        for old in range(1, len(leaves) + 1):
            proof = await consistency_proof(store, "A", old, len(leaves))
            old_root = merkle.root(leaves[:old])
            new_root = merkle.root(leaves)
            assert merkle.verify_consistency(old, len(leaves), old_root, new_root, proof)

    async def test_proofs_across_irregular_batches(self, store: ChainStore) -> None:
        entries = []
        for n, size in enumerate((1, 5, 3, 16, 7, 9, 1, 28)):
            ps = [deposit(f"b{n}-{i}", minutes=2) for i in range(size)]
            entries += await append_batch(store, ps)
        leaves = [e.hash for e in entries]
        for size in (16, 17, 33, 64, len(leaves)):
            root = merkle.root(leaves[:size])
            assert await tree_root(store, "A", size) == root
            for index in range(size):
                proof = await inclusion_proof(store, "A", index, size)
                assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
            old_root = merkle.root(leaves[:9])
            proof = await consistency_proof(store, "A", 9, size)
            assert merkle.verify_consistency(9, size, old_root, root, proof)

    async def test_proof_beyond_the_chain(self, store: ChainStore) -> None:
        await append(store, deposit("d1"))
        with pytest.raises(ProofError):
            await inclusion_proof(store, "A", 0, 2)
        with pytest.raises(ProofError):
            await inclusion_proof(store, "A", 1, 1)
