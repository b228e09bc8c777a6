"""Cross-district redemption in one store: two-phase transfer, crashes, deadlines, settlement."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger.entries import Kind
from ledger.errors import IdempotencyFailed, InsufficientMinutes, TransferConflict
from ledger.rules import Limits, Proposal
from ledger.service import append
from ledger.storage.base import ChainStore
from ledger.transfer import (
    CreditAnswer,
    CreditRequest,
    LocalServing,
    ServingSide,
    State,
    TransferRequest,
    TransportError,
    credit_id,
    credit_request,
    hold_id,
    resume_transfers,
    run_transfer,
    serve_abort,
    settlement_report,
    transfer_state,
)
from tests.ledger.chain_checks import check_store

NOW = 10_000
REQ = TransferRequest(
    transfer_id="t1",
    home="A",
    serving="B",
    payer="user:elder",
    payee="user:helper",
    minutes=45,
    actor="centre-a",
    policy=1,
    deadline_ms=NOW + 60_000,
    category="bathing",
    ref="booking-7",
)


class Crash(Exception):
    pass


def network(store: ChainStore, now: int = NOW) -> ServingSide:
    return LocalServing(store, clock=lambda: now)


async def fund(store: ChainStore, minutes: int = 100, user: str = "user:elder") -> None:
    await append(
        store,
        Proposal("A", f"fund-{user}", Kind.DEPOSIT, "issuance", user, minutes, "c", 1, 1),
    )


class Unreachable:
    async def credit(self, request: CreditRequest) -> CreditAnswer:
        raise TransportError("connection refused")

    async def abort(self, request: CreditRequest) -> CreditAnswer:
        raise TransportError("connection refused")


class TestRun:
    async def test_completed_transfer(self, store: ChainStore) -> None:
        await fund(store)
        out = await run_transfer(store, REQ, network=lambda d: network(store), now_ms=NOW)
        assert out.state == State.POSTED
        assert await store.balance("A", "user:elder") == 55
        assert await store.balance("B", "user:helper") == 45
        assert await store.balance("A", "clearing:B") == 45
        assert await store.balance("B", "clearing:A") == -45
        credit = await store.entry("B", credit_id("t1"))
        assert credit is not None and credit.meta["hold"] == out.hold.hash.hex()
        # The post cites the credit, so each side names the other's entry by hash.
        assert out.closing is not None and out.closing.meta["credit"] == credit.hash.hex()
        await check_store(store)

    async def test_run_twice_is_idempotent(self, store: ChainStore) -> None:
        await fund(store)
        first = await run_transfer(store, REQ, network=lambda d: network(store), now_ms=NOW)
        again = await run_transfer(store, REQ, network=lambda d: network(store), now_ms=NOW + 5)
        assert again.closing == first.closing
        assert (await store.head("A")).size == 3 and (await store.head("B")).size == 1

    async def test_insufficient_minutes_holds_nothing(self, store: ChainStore) -> None:
        await fund(store, 10)
        with pytest.raises(InsufficientMinutes):
            await run_transfer(store, REQ, network=lambda d: network(store), now_ms=NOW)
        assert await store.open_holds("A") == []
        with pytest.raises(IdempotencyFailed):
            await run_transfer(store, REQ, network=lambda d: network(store), now_ms=NOW)

    async def test_refused_credit_voids(self, store: ChainStore) -> None:
        await fund(store)
        bad = replace(REQ, payee="user:helper", minutes=45)
        # The serving district refuses a credit above its ceiling: simulate with a tiny limit.
        serving = LocalServing(store, clock=lambda: NOW, limits=Limits(max_minutes=10))
        out = await run_transfer(store, bad, network=lambda d: serving, now_ms=NOW)
        assert out.state == State.VOIDED
        assert "minutes_out_of_range" in (out.reason or "")
        assert await store.balance("A", "user:elder") == 100
        await check_store(store)

    async def test_same_district_refused(self, store: ChainStore) -> None:
        with pytest.raises(TransferConflict):
            await run_transfer(
                store, replace(REQ, serving="A"), network=lambda d: network(store), now_ms=NOW
            )

    async def test_unreachable_serving_side_keeps_the_hold(self, store: ChainStore) -> None:
        await fund(store)
        out = await run_transfer(store, REQ, network=lambda d: Unreachable(), now_ms=NOW)
        assert out.state == State.PENDING
        assert await store.balance("A", "user:elder") == 55
        assert [h.id for h in await store.open_holds("A")] == [hold_id("t1")]
        await check_store(store)


class TestCrashAndResume:
    async def _crash_at(self, store: ChainStore, step: str) -> None:
        async def crash(at: str) -> None:
            if at == step:
                raise Crash(at)

        with pytest.raises(Crash):
            await run_transfer(
                store, REQ, network=lambda d: network(store), now_ms=NOW, crash=crash
            )

    async def test_crash_after_hold_then_resume_posts(self, store: ChainStore) -> None:
        await fund(store)
        await self._crash_at(store, "hold")
        await check_store(store)
        (out,) = await resume_transfers(store, network=lambda d: network(store), now_ms=NOW + 1)
        assert out.state == State.POSTED
        await check_store(store)
        assert (await settlement_report(store)).mirrored

    async def test_crash_after_credit_then_resume_posts(self, store: ChainStore) -> None:
        await fund(store)
        await self._crash_at(store, "answer")
        # Credited in B, still open in A: the mirror already holds.
        assert await store.balance("B", "user:helper") == 45
        await check_store(store)
        (out,) = await resume_transfers(store, network=lambda d: network(store), now_ms=NOW + 1)
        assert out.state == State.POSTED
        assert (await store.head("B")).size == 1

    async def test_resume_after_deadline_voids(self, store: ChainStore) -> None:
        await fund(store)
        await self._crash_at(store, "hold")
        late = REQ.deadline_ms + 1
        (out,) = await resume_transfers(store, network=lambda d: network(store, late), now_ms=late)
        assert out.state == State.VOIDED
        assert await store.balance("A", "user:elder") == 100
        assert await store.entry("B", credit_id("t1")) is None
        await check_store(store)

    async def test_credit_after_abort_is_refused(self, store: ChainStore) -> None:
        await fund(store)
        await self._crash_at(store, "hold")
        hold = await store.entry("A", hold_id("t1"))
        assert hold is not None
        request = credit_request(hold)
        refused = await serve_abort(store, request, now_ms=NOW)
        assert not refused.credited
        # A delayed credit message arriving after the abort cannot credit any more.
        late = await LocalServing(store, clock=lambda: NOW).credit(request)
        assert not late.credited
        (out,) = await resume_transfers(store, network=lambda d: network(store), now_ms=NOW)
        assert out.state == State.VOIDED
        await check_store(store)

    async def test_abort_after_credit_reports_the_credit(self, store: ChainStore) -> None:
        await fund(store)
        await self._crash_at(store, "answer")
        hold = await store.entry("A", hold_id("t1"))
        assert hold is not None
        answer = await serve_abort(store, credit_request(hold), now_ms=REQ.deadline_ms + 5)
        assert answer.credited
        late = REQ.deadline_ms + 5
        (out,) = await resume_transfers(store, network=lambda d: network(store, late), now_ms=late)
        assert out.state == State.POSTED
        await check_store(store)

    async def test_unreachable_then_reachable(self, store: ChainStore) -> None:
        await fund(store)
        await run_transfer(store, REQ, network=lambda d: Unreachable(), now_ms=NOW)
        (still,) = await resume_transfers(store, network=lambda d: Unreachable(), now_ms=NOW)
        assert still.state == State.PENDING
        (out,) = await resume_transfers(store, network=lambda d: network(store), now_ms=NOW)
        assert out.state == State.POSTED
        assert (await transfer_state(store, "A", "t1")).state == State.POSTED


class TestSettlement:
    async def test_net_positions_both_ways(self, store: ChainStore) -> None:
        await fund(store, 100, "user:elder")
        await append(
            store, Proposal("B", "fund-b", Kind.DEPOSIT, "issuance", "user:bob", 100, "c", 1, 1)
        )
        await run_transfer(store, REQ, network=lambda d: network(store), now_ms=NOW)
        back = replace(
            REQ,
            transfer_id="t2",
            home="B",
            serving="A",
            payer="user:bob",
            payee="user:amy",
            minutes=15,
        )
        await run_transfer(store, back, network=lambda d: network(store), now_ms=NOW)
        report = await settlement_report(store)
        assert report.mirrored and report.open_holds == 0
        assert [(p.debtor, p.creditor, p.minutes) for p in report.positions] == [("A", "B", 30)]
        await check_store(store)

    async def test_open_hold_shows_as_mismatch(self, store: ChainStore) -> None:
        await fund(store)
        await run_transfer(store, REQ, network=lambda d: Unreachable(), now_ms=NOW)
        report = await settlement_report(store)
        assert report.open_holds == 1
        assert report.mismatches == (("A", "B", 45, 0),)
