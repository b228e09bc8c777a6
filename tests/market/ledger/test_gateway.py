"""The gateway: chain names, append helpers, idempotency, refusals as API errors, transfers."""

from __future__ import annotations

import logging

import httpx
import pytest

from ledger.entries import ISSUANCE, POOL, Kind
from ledger.transfer import State, settlement_report
from market.errors import Conflict, InvalidInput, NotFound
from market.models import District, DistrictLevel, Role
from tests.market.conftest import make_actor
from tests.market.ledger.conftest import LedgerCity, fund, new_id


class TestChains:
    async def test_community_user_keeps_hours_in_top_level_chain(self, lcity: LedgerCity) -> None:
        holder = await lcity.gateway.holder(lcity["volunteer"].user.id)
        assert holder.chain == "east"
        assert holder.account == f"user:{lcity['volunteer'].user.id}"

    async def test_local_chains_are_top_level_codes(self, lcity: LedgerCity) -> None:
        assert await lcity.gateway.local_chains() == ["east", "west"]

    async def test_unknown_user_is_404(self, lcity: LedgerCity) -> None:
        import uuid

        with pytest.raises(NotFound):
            await lcity.gateway.holder(uuid.uuid4())

    async def test_code_that_cannot_name_a_chain_is_refused(self, lcity: LedgerCity) -> None:
        bad = await District.create(code="_odd", name="Odd", level=DistrictLevel.district)
        with pytest.raises(Conflict) as caught:
            await lcity.gateway.chain_of_district(bad.id)
        assert caught.value.code == "ledger.bad_district_code"

    async def test_bad_code_is_skipped_with_a_warning(
        self, lcity: LedgerCity, caplog: pytest.LogCaptureFixture
    ) -> None:
        # Old data or a direct insert: creation validates codes, the database does not.
        await District.create(code="_odd", name="Odd", level=DistrictLevel.district)
        with caplog.at_level(logging.WARNING, logger="eldercare.ledger"):
            assert await lcity.gateway.local_chains() == ["east", "west"]
        assert "'_odd'" in caplog.text

    async def test_bad_code_leaves_other_districts_readable(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await District.create(code="_odd", name="Odd", level=DistrictLevel.district)
        response = await client.get("/api/v1/ledger/districts")
        assert response.status_code == 200, response.text
        assert [d["district"] for d in response.json()["districts"]] == ["east", "west"]


class TestDeposit:
    async def test_deposit_from_issuance(self, lcity: LedgerCity) -> None:
        gw, v = lcity.gateway, lcity["volunteer"].user
        entry = await fund(gw, v.id, 90)
        assert (entry.kind, entry.debit, entry.minutes) == (Kind.DEPOSIT, ISSUANCE, 90)
        assert await gw.store.balance("east", f"user:{v.id}") == 90
        assert await gw.store.balance("east", ISSUANCE) == -90

    async def test_same_id_twice_writes_once(self, lcity: LedgerCity) -> None:
        gw, v = lcity.gateway, lcity["volunteer"].user
        kwargs = {"volunteer_id": v.id, "minutes": 30, "entry_id": "deposit:b1", "actor": "t"}
        first = await gw.deposit(**kwargs)  # type: ignore[arg-type]
        again = await gw.deposit(**kwargs)  # type: ignore[arg-type]
        assert again.hash == first.hash
        assert (await gw.store.head("east")).size == 1

    async def test_same_id_other_minutes_is_conflict(self, lcity: LedgerCity) -> None:
        gw, v = lcity.gateway, lcity["volunteer"].user
        await gw.deposit(volunteer_id=v.id, minutes=30, entry_id="deposit:b2", actor="t")
        with pytest.raises(Conflict) as caught:
            await gw.deposit(volunteer_id=v.id, minutes=31, entry_id="deposit:b2", actor="t")
        assert caught.value.code == "ledger.idempotency_conflict"
        assert "minutes" in caught.value.message

    async def test_minutes_out_of_range_is_422(self, lcity: LedgerCity) -> None:
        with pytest.raises(InvalidInput) as caught:
            await lcity.gateway.deposit(
                volunteer_id=lcity["volunteer"].user.id, minutes=0, entry_id=new_id(), actor="t"
            )
        assert caught.value.code == "ledger.minutes_out_of_range"

    async def test_deposit_from_payer_of_other_chain_is_refused(self, lcity: LedgerCity) -> None:
        gw = lcity.gateway
        await fund(gw, lcity.west_volunteer.user.id, 60)
        with pytest.raises(Conflict) as caught:
            await gw.deposit(
                volunteer_id=lcity["volunteer"].user.id,
                minutes=30,
                entry_id=new_id(),
                actor="t",
                payer_id=lcity.west_volunteer.user.id,
            )
        assert caught.value.code == "ledger.other_district"
        assert (await gw.store.head("east")).size == 0


class TestRedeem:
    async def test_redeem_to_issuance(self, lcity: LedgerCity) -> None:
        gw, v = lcity.gateway, lcity["volunteer"].user
        await fund(gw, v.id, 60)
        entry = await gw.redeem(payer_id=v.id, minutes=45, entry_id=new_id(), actor="t")
        assert (entry.debit, entry.credit) == (f"user:{v.id}", ISSUANCE)
        assert await gw.store.balance("east", f"user:{v.id}") == 15

    async def test_overdraft_is_409_and_writes_nothing(self, lcity: LedgerCity) -> None:
        gw, v = lcity.gateway, lcity["volunteer"].user
        await fund(gw, v.id, 20)
        with pytest.raises(Conflict) as caught:
            await gw.redeem(payer_id=v.id, minutes=21, entry_id=new_id(), actor="t")
        assert caught.value.code == "ledger.insufficient_minutes"
        assert (await gw.store.head("east")).size == 1

    async def test_redeem_to_payee_in_same_chain(self, lcity: LedgerCity) -> None:
        gw, v, elder = lcity.gateway, lcity["volunteer"].user, lcity.elder_parent.user
        await fund(gw, elder.id, 60)
        await gw.redeem(payer_id=elder.id, payee_id=v.id, minutes=60, entry_id=new_id(), actor="t")
        assert await gw.store.balance("east", f"user:{v.id}") == 60


class TestDonateAndReverse:
    async def test_donate_moves_to_pool_then_pool_pays(self, lcity: LedgerCity) -> None:
        gw, v, elder = lcity.gateway, lcity["volunteer"].user, lcity.elder_parent.user
        await fund(gw, v.id, 60)
        await gw.donate(donor_id=v.id, minutes=40, entry_id=new_id(), actor="t")
        assert await gw.store.balance("east", POOL) == 40
        await gw.deposit(
            volunteer_id=elder.id, minutes=40, entry_id=new_id(), actor="t", from_pool=True
        )
        assert await gw.store.balance("east", POOL) == 0

    async def test_reverse_once(self, lcity: LedgerCity) -> None:
        gw, v = lcity.gateway, lcity["volunteer"].user
        original = await fund(gw, v.id, 60)
        rev = await gw.reverse(chain="east", original_id=original.id, entry_id="r1", actor="c")
        assert (rev.kind, rev.ref, rev.debit) == (Kind.REVERSE, original.id, f"user:{v.id}")
        with pytest.raises(Conflict) as caught:
            await gw.reverse(chain="east", original_id=original.id, entry_id="r2", actor="c")
        assert caught.value.code == "ledger.already_reversed"

    async def test_reverse_unknown_entry_is_404(self, lcity: LedgerCity) -> None:
        with pytest.raises(NotFound):
            await lcity.gateway.reverse(chain="east", original_id="nope", entry_id="r", actor="c")


class TestLocalTransfer:
    async def test_transfer_posts_and_clearing_mirrors(self, lcity: LedgerCity) -> None:
        gw, v, w = lcity.gateway, lcity["volunteer"].user, lcity.west_volunteer.user
        await fund(gw, v.id, 90)
        outcome = await gw.transfer(
            payer_id=v.id, payee_id=w.id, minutes=60, transfer_id="tx1", actor="t"
        )
        assert outcome.state is State.POSTED
        assert await gw.store.balance("east", f"user:{v.id}") == 30
        assert await gw.store.balance("west", f"user:{w.id}") == 60
        assert await gw.store.balance("east", "clearing:west") == 60
        assert await gw.store.balance("west", "clearing:east") == -60
        report = await settlement_report(gw.store)
        assert report.mirrored and report.open_holds == 0

    async def test_transfer_again_is_idempotent(self, lcity: LedgerCity) -> None:
        gw, v, w = lcity.gateway, lcity["volunteer"].user, lcity.west_volunteer.user
        await fund(gw, v.id, 90)
        args = {"payer_id": v.id, "payee_id": w.id, "minutes": 60, "transfer_id": "tx2"}
        await gw.transfer(**args, actor="t")  # type: ignore[arg-type]
        again = await gw.transfer(**args, actor="t")  # type: ignore[arg-type]
        assert again.state is State.POSTED
        assert (await gw.store.head("east")).size == 3  # deposit, hold, post

    async def test_transfer_past_deadline_voids(self, lcity: LedgerCity) -> None:
        gw, v, w = lcity.gateway, lcity["volunteer"].user, lcity.west_volunteer.user
        await fund(gw, v.id, 90)
        now = gw.clock()
        outcome = await gw.transfer(
            payer_id=v.id,
            payee_id=w.id,
            minutes=60,
            transfer_id="tx3",
            actor="t",
            deadline_ms=now - 1,
            at_ms=now,
        )
        assert outcome.state is State.VOIDED
        assert await gw.store.balance("east", f"user:{v.id}") == 90
        assert await gw.store.balance("west", f"user:{w.id}") == 0

    async def test_transfer_overdraft_holds_nothing(self, lcity: LedgerCity) -> None:
        gw, v, w = lcity.gateway, lcity["volunteer"].user, lcity.west_volunteer.user
        await fund(gw, v.id, 10)
        with pytest.raises(Conflict):
            await gw.transfer(payer_id=v.id, payee_id=w.id, minutes=60, transfer_id="t4", actor="t")
        assert await gw.store.open_holds("east") == []

    async def test_same_chain_transfer_is_refused(self, lcity: LedgerCity) -> None:
        gw, v = lcity.gateway, lcity["volunteer"].user
        with pytest.raises(Conflict) as caught:
            await gw.transfer(
                payer_id=v.id,
                payee_id=lcity.elder_parent.user.id,
                minutes=5,
                transfer_id="t5",
                actor="t",
            )
        assert caught.value.code == "ledger.same_district"

    async def test_unreachable_district_is_404(self, lcity: LedgerCity) -> None:
        gw, v = lcity.gateway, lcity["volunteer"].user
        await fund(gw, v.id, 10)
        with pytest.raises(NotFound):
            await gw.transfer_to(
                payer_id=v.id,
                serving="faraway",
                payee_account="user:x",
                minutes=5,
                transfer_id="t6",
                actor="t",
            )
        assert await gw.store.open_holds("east") == []


async def test_policy_version_is_recorded(lcity: LedgerCity, client, runtime) -> None:  # type: ignore[no-untyped-def]
    from tests.market.ledger.conftest import set_policy, with_rules

    await set_policy(lcity.city.east, with_rules())
    volunteer = await make_actor(client, runtime, Role.volunteer, lcity.city.east_community)
    entry = await fund(lcity.gateway, volunteer.user.id, 30)
    assert entry.policy == 1
