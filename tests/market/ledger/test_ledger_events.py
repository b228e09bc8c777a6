"""Ledger entries become realtime events on their users' streams, in the appending transaction."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from uuid import UUID

import pytest
from tortoise.transactions import in_transaction

from ledger.entries import Kind
from ledger.transfer import State
from market.errors import Conflict
from market.realtime.bells import PROCESS_DOORBELLS
from market.realtime.events import Event, admin_stream, read_stream, user_stream
from market.services import checkpoints
from market.services.booking_tx import booking_transaction
from market.services.ledger_events import CHECKPOINT_EVENT, ENTRY_EVENT, publishing_into
from tests.market.ledger.conftest import LedgerCity, fund, new_id


class Recorder:
    """A doorbell that remembers what it was rung with."""

    def __init__(self) -> None:
        self.rung: list[Event] = []

    def ring(self, events: Sequence[Event]) -> None:
        self.rung.extend(events)


@pytest.fixture
def bell() -> Iterator[Recorder]:
    recorder = Recorder()
    PROCESS_DOORBELLS.add(recorder)
    yield recorder
    PROCESS_DOORBELLS.remove(recorder)


async def ledger_events(user_id: UUID) -> list[Event]:
    return [e for e in await read_stream(user_stream(user_id), 0, 1000) if e.kind == ENTRY_EVENT]


class TestAppends:
    async def test_a_deposit_is_an_event_on_the_volunteers_stream(
        self, lcity: LedgerCity, bell: Recorder
    ) -> None:
        volunteer = lcity["volunteer"].user.id
        entry = await fund(lcity.gateway, volunteer, 45)
        (event,) = await ledger_events(volunteer)
        assert event.payload == {
            "district": "east",
            "seq": entry.seq,
            "entry_id": entry.id,
            "kind": "deposit",
            "debit": "issuance",
            "credit": f"user:{volunteer}",
            "minutes": 45,
            "category": "visit",
            "ref": None,
            "at_ms": entry.at_ms,
            "transfer": None,
            "account": f"user:{volunteer}",
            "balance_minutes": 45,
        }
        assert [e.id for e in bell.rung] == [event.id]

    async def test_a_gift_reaches_giver_and_recipient_with_their_balances(
        self, lcity: LedgerCity
    ) -> None:
        gw = lcity.gateway
        giver, parent = lcity["volunteer"].user.id, lcity.elder_parent.user.id
        await fund(gw, giver, 100)
        await gw.gift(
            giver_id=giver, recipient_id=parent, minutes=30, entry_id=new_id("g"), actor="t"
        )
        gift = [e.payload for e in await ledger_events(giver) if e.payload["kind"] == "gift"]
        assert [(p["account"], p["balance_minutes"]) for p in gift] == [(f"user:{giver}", 70)]
        (received,) = await ledger_events(parent)
        assert (received.payload["kind"], received.payload["balance_minutes"]) == ("gift", 30)

    async def test_district_accounts_have_no_stream(self, lcity: LedgerCity) -> None:
        volunteer = lcity["volunteer"].user.id
        await fund(lcity.gateway, volunteer, 20)
        await lcity.gateway.donate(donor_id=volunteer, minutes=20, entry_id=new_id(), actor="t")
        kinds = [e.payload["kind"] for e in await ledger_events(volunteer)]
        assert kinds == ["deposit", "donate"]

    async def test_a_refused_append_publishes_nothing(
        self, lcity: LedgerCity, bell: Recorder
    ) -> None:
        volunteer = lcity["volunteer"].user.id
        with pytest.raises(Conflict):
            await lcity.gateway.redeem(payer_id=volunteer, minutes=10, entry_id=new_id(), actor="t")
        assert await ledger_events(volunteer) == []
        assert bell.rung == []

    async def test_each_entry_of_a_batch_carries_its_own_balance(self, lcity: LedgerCity) -> None:
        from ledger.rules import Proposal
        from ledger.service import append_batch

        volunteer = lcity["volunteer"].user.id
        account = f"user:{volunteer}"
        proposals = [
            Proposal("east", new_id(), Kind.DEPOSIT, "issuance", account, m, "t", 0, 1)
            for m in (10, 20, 30)
        ]
        await append_batch(lcity.gateway.store, proposals)
        balances = [e.payload["balance_minutes"] for e in await ledger_events(volunteer)]
        assert balances == [10, 30, 60]


class TestTransactions:
    async def test_a_rolled_back_transaction_leaves_neither_entry_nor_event(
        self, lcity: LedgerCity, bell: Recorder
    ) -> None:
        volunteer = lcity["volunteer"].user.id
        entry_id = new_id()
        with pytest.raises(RuntimeError):
            async with booking_transaction() as tx:
                with publishing_into(tx):
                    await fund_as(lcity, volunteer, entry_id)
                raise RuntimeError("the caller's work failed after the append")
        assert await lcity.gateway.store.entry("east", entry_id) is None
        assert await ledger_events(volunteer) == []
        assert bell.rung == []

    async def test_inside_a_market_transaction_events_ring_after_its_commit(
        self, lcity: LedgerCity, bell: Recorder
    ) -> None:
        volunteer = lcity["volunteer"].user.id
        async with booking_transaction() as tx:
            with publishing_into(tx):
                await fund_as(lcity, volunteer, new_id())
            # Buffered by the market transaction: nothing announced before it commits.
            assert bell.rung == []
        (event,) = await ledger_events(volunteer)
        assert [e.id for e in bell.rung] == [event.id]

    async def test_inside_a_plain_transaction_events_commit_but_no_bell_rings_early(
        self, lcity: LedgerCity, bell: Recorder
    ) -> None:
        volunteer = lcity["volunteer"].user.id
        async with in_transaction():
            await fund_as(lcity, volunteer, new_id())
        assert len(await ledger_events(volunteer)) == 1
        assert bell.rung == []


class TestTransfers:
    async def test_payer_sees_hold_and_post_payee_sees_the_credit(self, lcity: LedgerCity) -> None:
        gw = lcity.gateway
        payer, payee = lcity["volunteer"].user.id, lcity.west_volunteer.user.id
        await fund(gw, payer, 60)
        outcome = await gw.transfer(
            payer_id=payer, payee_id=payee, minutes=25, transfer_id=new_id("x"), actor="t"
        )
        assert outcome.state is State.POSTED
        paid = [
            (e.payload["kind"], e.payload["balance_minutes"]) for e in await ledger_events(payer)
        ]
        assert paid == [("deposit", 60), ("hold_pending", 35), ("hold_post", 35)]
        (credit,) = await ledger_events(payee)
        assert (credit.payload["kind"], credit.payload["district"]) == ("transfer_credit", "west")
        assert credit.payload["transfer"] == outcome.transfer_id


async def fund_as(lcity: LedgerCity, user_id: UUID, entry_id: str) -> None:
    await lcity.gateway.deposit(volunteer_id=user_id, minutes=15, entry_id=entry_id, actor="t")


class TestCheckpointFeed:
    async def test_a_signed_checkpoint_reaches_the_districts_admin_feed(
        self, lcity: LedgerCity, bell: Recorder
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 30)
        cp = await checkpoints.sign_now(lcity.gateway, "east")
        assert cp is not None
        feed = await read_stream(admin_stream(lcity.city.east.id), 0, 100)
        (event,) = [e for e in feed if e.kind == CHECKPOINT_EVENT]
        assert event.payload == {
            "district": "east",
            "size": cp.size,
            "root": cp.root.hex(),
            "at_ms": cp.at_ms,
            "key_id": cp.key_id,
            "next_key_id": None,
        }
        assert event.id in [e.id for e in bell.rung]
        # West's admins are not told about east's chain.
        west = await read_stream(admin_stream(lcity.city.west.id), 0, 100)
        assert [e for e in west if e.kind == CHECKPOINT_EVENT] == []

    async def test_a_size_stored_already_is_not_announced_twice(self, lcity: LedgerCity) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 30)
        first = await checkpoints.sign_now(lcity.gateway, "east")
        assert first is not None
        # Another process signed the same size a moment later: its row loses, nothing is told.
        later = replace(first, at_ms=first.at_ms + 5)
        assert await checkpoints.store_checkpoint(lcity.gateway, later) == first
        feed = await read_stream(admin_stream(lcity.city.east.id), 0, 100)
        assert len([e for e in feed if e.kind == CHECKPOINT_EVENT]) == 1

    async def test_a_key_rotation_is_announced_with_the_next_key(self, lcity: LedgerCity) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 30)
        cp = await checkpoints.rotate(lcity.gateway, "east")
        feed = await read_stream(admin_stream(lcity.city.east.id), 0, 100)
        (event,) = [e for e in feed if e.kind == CHECKPOINT_EVENT]
        assert event.payload["next_key_id"] == cp.next_key_id is not None
