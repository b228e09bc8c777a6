"""Gifts to linked relatives and donations to the pool: policy rules, refusals, idempotency."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from ledger.entries import POOL
from market.errors import Forbidden
from market.models import LinkStatus, Role
from market.policy import RelationKind, TimeBankRules
from tests.market.conftest import make_actor
from tests.market.ledger.conftest import LedgerCity, error_of, fund, link, set_policy, with_rules

GIFTS = "/api/v1/ledger/gifts"
DONATIONS = "/api/v1/ledger/donations"


async def chain_state(lcity: LedgerCity) -> tuple[int, dict[str, int]]:
    """Entries and balances: a refusal writes neither (only the refused id is recorded)."""
    store = lcity.gateway.store
    return (await store.head("east")).size, await store.balances("east")


def gift_body(lcity: LedgerCity, minutes: int = 30, request_id: str = "g1") -> dict[str, Any]:
    return {
        "recipient_id": str(lcity.elder_parent.user.id),
        "minutes": minutes,
        "request_id": request_id,
    }


def assert_policy_refusal(response: httpx.Response, rule: str, version: int) -> None:
    assert response.status_code == 403, response.text
    error = error_of(response)
    assert error["code"] == "policy.forbids"
    assert error["details"] == {"rule": rule, "version": version}
    assert rule in error["message"]


class TestGift:
    async def test_gift_to_linked_parent(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 90)
        response = await client.post(GIFTS, json=gift_body(lcity), headers=volunteer.headers)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["balance_minutes"] == 60
        assert body["entry"]["kind"] == "gift"
        assert body["entry"]["credit"] == f"user:{lcity.elder_parent.user.id}"
        assert await lcity.gateway.store.balance("east", body["entry"]["credit"]) == 30

    async def test_retry_returns_the_same_entry(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 30)
        first = await client.post(GIFTS, json=gift_body(lcity), headers=volunteer.headers)
        again = await client.post(GIFTS, json=gift_body(lcity), headers=volunteer.headers)
        assert again.status_code == 201
        assert again.json()["entry"]["hash"] == first.json()["entry"]["hash"]
        assert (await lcity.gateway.store.head("east")).size == 2

    async def test_same_request_id_other_amount_is_409(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 90)
        await client.post(GIFTS, json=gift_body(lcity), headers=volunteer.headers)
        response = await client.post(
            GIFTS, json=gift_body(lcity, minutes=31), headers=volunteer.headers
        )
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.idempotency_conflict"

    async def test_elder_gifts_to_linked_child(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        elder = lcity.elder_parent
        await fund(lcity.gateway, elder.user.id, 60)
        body = {"recipient_id": str(lcity["volunteer"].user.id), "minutes": 60, "request_id": "e"}
        response = await client.post(GIFTS, json=body, headers=elder.headers)
        assert response.status_code == 201, response.text

    async def test_unlinked_recipient_is_refused_naming_rule(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 90)
        before = await chain_state(lcity)
        body = {**gift_body(lcity), "recipient_id": str(lcity["elder"].user.id)}
        response = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert_policy_refusal(response, "time_bank.gift_recipients", 0)
        assert await chain_state(lcity) == before

    async def test_pending_link_is_refused(
        self, client: httpx.AsyncClient, lcity: LedgerCity, runtime
    ) -> None:  # type: ignore[no-untyped-def]
        volunteer = lcity["volunteer"]
        other = await make_actor(client, runtime, Role.elder, lcity.city.east_community)
        await link(volunteer, other, "child", LinkStatus.pending)
        await fund(lcity.gateway, volunteer.user.id, 90)
        body = {**gift_body(lcity), "recipient_id": str(other.user.id)}
        response = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert_policy_refusal(response, "time_bank.gift_recipients", 0)

    async def test_relation_outside_policy_is_refused_with_version(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        rules = TimeBankRules(gift_recipients=frozenset({RelationKind.SPOUSE}))
        await set_policy(lcity.city.east, with_rules(time_bank=rules), version=1)
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 90)
        before = await chain_state(lcity)
        response = await client.post(GIFTS, json=gift_body(lcity), headers=volunteer.headers)
        assert_policy_refusal(response, "time_bank.gift_recipients", 1)
        assert await chain_state(lcity) == before

    async def test_a_parent_in_law_receives_only_where_the_policy_says(
        self, client: httpx.AsyncClient, runtime: Any, lcity: LedgerCity
    ) -> None:
        # The volunteer is the elder's child-in-law (儿媳 or 女婿): the elder is their
        # parent-in-law, whom the default policy does not count among gift recipients.
        in_law = await make_actor(client, runtime, Role.elder, lcity.city.east_community)
        await link(lcity["volunteer"], in_law, "child_in_law", LinkStatus.approved)
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 90)
        body = {**gift_body(lcity), "recipient_id": str(in_law.user.id)}
        refused = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert_policy_refusal(refused, "time_bank.gift_recipients", 0)
        rules = TimeBankRules(gift_recipients=frozenset({RelationKind.PARENT_IN_LAW}))
        await set_policy(lcity.city.east, with_rules(time_bank=rules), version=1)
        body["request_id"] = "g2"
        given = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert given.status_code == 201, given.text

    async def test_minutes_above_cap_can_only_be_donated(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 90)  # earned before the cap was lowered
        await set_policy(
            lcity.city.east, with_rules(time_bank=TimeBankRules(account_cap_minutes=60))
        )
        before = await chain_state(lcity)
        response = await client.post(
            GIFTS, json=gift_body(lcity, minutes=70), headers=volunteer.headers
        )
        assert_policy_refusal(response, "time_bank.account_cap_minutes", 1)
        assert await chain_state(lcity) == before
        donated = await client.post(
            DONATIONS, json={"minutes": 90, "request_id": "d"}, headers=volunteer.headers
        )
        assert donated.status_code == 201

    async def test_gift_may_not_lift_recipient_above_cap(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await set_policy(
            lcity.city.east, with_rules(time_bank=TimeBankRules(account_cap_minutes=60))
        )
        await fund(lcity.gateway, lcity.elder_parent.user.id, 50)
        await fund(lcity.gateway, lcity["volunteer"].user.id, 30)
        response = await client.post(
            GIFTS, json=gift_body(lcity, minutes=20), headers=lcity["volunteer"].headers
        )
        assert_policy_refusal(response, "time_bank.account_cap_minutes", 1)

    async def test_more_than_the_balance_is_409(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 20)
        before = await chain_state(lcity)
        response = await client.post(GIFTS, json=gift_body(lcity), headers=volunteer.headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.insufficient_minutes"
        assert await chain_state(lcity) == before

    async def test_gift_to_oneself_is_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        body = {**gift_body(lcity), "recipient_id": str(volunteer.user.id)}
        response = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert response.status_code == 422

    async def test_unknown_recipient_is_404(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 30)
        body = {**gift_body(lcity), "recipient_id": str(uuid.uuid4())}
        response = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert response.status_code == 404

    async def test_recipient_in_another_district_is_409(
        self, client: httpx.AsyncClient, lcity: LedgerCity, runtime
    ) -> None:  # type: ignore[no-untyped-def]
        volunteer = lcity["volunteer"]
        far = await make_actor(client, runtime, Role.elder, lcity.city.west)
        await link(volunteer, far, "child", LinkStatus.approved)
        await fund(lcity.gateway, volunteer.user.id, 30)
        body = {**gift_body(lcity), "recipient_id": str(far.user.id)}
        response = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.other_district"

    async def test_malformed_bodies_are_4xx_json(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        headers = lcity["volunteer"].headers
        good = gift_body(lcity)
        cases: list[tuple[Any, int]] = [
            ({**good, "minutes": 0}, 422),
            ({**good, "minutes": 6000}, 422),
            ({**good, "minutes": 1.5}, 422),
            ({**good, "minutes": "30"}, 422),
            ({**good, "minutes": True}, 422),
            ({**good, "recipient_id": "x"}, 422),
            ({**good, "request_id": ""}, 422),
            ({**good, "request_id": "a b"}, 422),
            ({**good, "request_id": "x" * 65}, 422),
            ({**good, "extra": 1}, 422),
            ({"minutes": 30}, 422),
            ([], 400),
        ]
        for body, status in cases:
            response = await client.post(GIFTS, json=body, headers=headers)
            assert response.status_code == status, body
            assert "code" in error_of(response)
        response = await client.post(
            GIFTS, content=b"{", headers=headers | {"content-type": "application/json"}
        )
        assert response.status_code == 400
        response = await client.post(
            GIFTS, content=b"x", headers=headers | {"content-type": "text/plain"}
        )
        assert response.status_code == 415
        assert (await lcity.gateway.store.head("east")).size == 0

    async def test_roles_without_an_account_are_403(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        for role in ("auditor", "centre_admin", "provider_staff"):
            response = await client.post(GIFTS, json=gift_body(lcity), headers=lcity[role].headers)
            assert response.status_code == 403, role


class TestDonate:
    async def test_donation_reaches_the_pool(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 60)
        response = await client.post(
            DONATIONS, json={"minutes": 45, "request_id": "d1"}, headers=volunteer.headers
        )
        assert response.status_code == 201
        assert response.json()["balance_minutes"] == 15
        assert await lcity.gateway.store.balance("east", POOL) == 45

    async def test_donation_above_balance_is_409_and_writes_nothing(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 10)
        before = await chain_state(lcity)
        response = await client.post(
            DONATIONS, json={"minutes": 11, "request_id": "d2"}, headers=volunteer.headers
        )
        assert response.status_code == 409
        assert await chain_state(lcity) == before

    async def test_bad_donation_bodies(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        headers = lcity["volunteer"].headers
        for body in ({"minutes": -5, "request_id": "d"}, {"request_id": "d"}, {"minutes": 5}):
            response = await client.post(DONATIONS, json=body, headers=headers)
            assert response.status_code == 422, body

    async def test_anonymous_donation_is_401(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        response = await client.post(DONATIONS, json={"minutes": 5, "request_id": "d"})
        assert response.status_code == 401


def cap_of(minutes: int) -> Any:
    return with_rules(time_bank=TimeBankRules(account_cap_minutes=minutes))


class TestCapUnderConcurrency:
    """The recipient's cap is checked by the ledger under the chain lock, not only before."""

    async def test_concurrent_gifts_stop_at_the_cap(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await set_policy(lcity.city.east, cap_of(300))
        volunteer, parent = lcity["volunteer"], lcity.elder_parent
        await fund(lcity.gateway, parent.user.id, 200)  # cap - 100
        await fund(lcity.gateway, volunteer.user.id, 250)
        responses = await asyncio.gather(
            *(
                client.post(
                    GIFTS, json=gift_body(lcity, 50, f"race-{n}"), headers=volunteer.headers
                )
                for n in range(5)
            )
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201, 201, 403, 403, 403], [r.text for r in responses]
        for refused in (r for r in responses if r.status_code == 403):
            assert_policy_refusal(refused, "time_bank.account_cap_minutes", 1)
        assert await lcity.gateway.store.balance("east", f"user:{parent.user.id}") == 300
        assert await lcity.gateway.store.balance("east", f"user:{volunteer.user.id}") == 150

    async def test_gift_up_to_the_cap_is_allowed(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await set_policy(lcity.city.east, cap_of(300))
        await fund(lcity.gateway, lcity.elder_parent.user.id, 200)
        await fund(lcity.gateway, lcity["volunteer"].user.id, 100)
        response = await client.post(
            GIFTS, json=gift_body(lcity, 100), headers=lcity["volunteer"].headers
        )
        assert response.status_code == 201, response.text

    async def test_ledger_refuses_a_gift_past_the_cap_under_the_lock(
        self, lcity: LedgerCity
    ) -> None:
        # The gateway alone (no pre-check): the ledger's own check names the policy rule.
        await set_policy(lcity.city.east, cap_of(60))
        await fund(lcity.gateway, lcity.elder_parent.user.id, 50)
        await fund(lcity.gateway, lcity["volunteer"].user.id, 30)
        before = await chain_state(lcity)
        with pytest.raises(Forbidden) as caught:
            await lcity.gateway.gift(
                giver_id=lcity["volunteer"].user.id,
                recipient_id=lcity.elder_parent.user.id,
                minutes=20,
                entry_id="gift:direct",
                actor="test",
            )
        assert caught.value.code == "policy.forbids"
        assert caught.value.details == {"rule": "time_bank.account_cap_minutes", "version": 1}
        assert await chain_state(lcity) == before


class TestDepositCap:
    async def test_deposit_past_the_cap_is_refused_naming_the_rule(self, lcity: LedgerCity) -> None:
        await set_policy(lcity.city.east, cap_of(60))
        volunteer = lcity["volunteer"].user.id
        await fund(lcity.gateway, volunteer, 50)
        before = await chain_state(lcity)
        with pytest.raises(Forbidden) as caught:
            await lcity.gateway.deposit(
                volunteer_id=volunteer, minutes=11, entry_id="deposit:over", actor="test"
            )
        assert caught.value.code == "policy.forbids"
        assert caught.value.details == {"rule": "time_bank.account_cap_minutes", "version": 1}
        assert await chain_state(lcity) == before

    async def test_deposit_up_to_the_cap_is_credited(self, lcity: LedgerCity) -> None:
        await set_policy(lcity.city.east, cap_of(60))
        volunteer = lcity["volunteer"].user.id
        await fund(lcity.gateway, volunteer, 50)
        await lcity.gateway.deposit(
            volunteer_id=volunteer, minutes=10, entry_id="deposit:fill", actor="test"
        )
        assert await lcity.gateway.store.balance("east", f"user:{volunteer}") == 60

    async def test_concurrent_deposits_stop_at_the_cap(self, lcity: LedgerCity) -> None:
        await set_policy(lcity.city.east, cap_of(100))
        volunteer = lcity["volunteer"].user.id
        results = await asyncio.gather(
            *(
                lcity.gateway.deposit(
                    volunteer_id=volunteer, minutes=30, entry_id=f"deposit:race-{n}", actor="t"
                )
                for n in range(5)
            ),
            return_exceptions=True,
        )
        refused = [r for r in results if isinstance(r, Forbidden)]
        assert len(refused) == 2, results
        assert await lcity.gateway.store.balance("east", f"user:{volunteer}") == 90

    async def test_pool_has_no_cap(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        await set_policy(lcity.city.east, cap_of(60))
        volunteer = lcity["volunteer"]
        for n in range(3):
            await fund(lcity.gateway, volunteer.user.id, 50)
            response = await client.post(
                DONATIONS, json={"minutes": 50, "request_id": f"p{n}"}, headers=volunteer.headers
            )
            assert response.status_code == 201, response.text
        assert await lcity.gateway.store.balance("east", POOL) == 150


class TestFailedIdStaysFailed:
    async def test_retry_after_a_policy_refusal_stays_refused(
        self, client: httpx.AsyncClient, lcity: LedgerCity, runtime
    ) -> None:  # type: ignore[no-untyped-def]
        volunteer = lcity["volunteer"]
        other = await make_actor(client, runtime, Role.elder, lcity.city.east_community)
        pending = await link(volunteer, other, "child", LinkStatus.pending)
        await fund(lcity.gateway, volunteer.user.id, 90)
        body = {**gift_body(lcity), "recipient_id": str(other.user.id)}
        first = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert_policy_refusal(first, "time_bank.gift_recipients", 0)
        before = await chain_state(lcity)
        pending.status = LinkStatus.approved  # the refusal's reason is gone now
        await pending.save(update_fields=["status"])
        retry = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert retry.status_code == 409, retry.text
        error = error_of(retry)
        assert error["code"] == "ledger.idempotency_failed"
        assert "policy.forbids" in error["message"]
        assert await chain_state(lcity) == before
        fresh = await client.post(
            GIFTS, json={**body, "request_id": "g2"}, headers=volunteer.headers
        )
        assert fresh.status_code == 201, fresh.text

    async def test_refusal_is_recorded_against_the_id(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 20)
        response = await client.post(GIFTS, json=gift_body(lcity), headers=volunteer.headers)
        assert response.status_code == 409
        failure = await lcity.gateway.store.failure("east", f"gift:{volunteer.user.id}:g1")
        assert failure is not None and failure.code == "ledger.insufficient_minutes"

    async def test_retry_with_other_content_is_an_idempotency_conflict(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 20)
        await client.post(GIFTS, json=gift_body(lcity, 30), headers=volunteer.headers)
        response = await client.post(GIFTS, json=gift_body(lcity, 10), headers=volunteer.headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.idempotency_conflict"

    async def test_unknown_recipient_is_not_recorded(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 30)
        body = {**gift_body(lcity), "recipient_id": str(uuid.uuid4())}
        response = await client.post(GIFTS, json=body, headers=volunteer.headers)
        assert response.status_code == 404
        assert await lcity.gateway.store.failure("east", f"gift:{volunteer.user.id}:g1") is None

    async def test_donation_retry_after_refusal_stays_refused(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 10)
        body = {"minutes": 11, "request_id": "d"}
        assert (
            await client.post(DONATIONS, json=body, headers=volunteer.headers)
        ).status_code == 409
        await fund(lcity.gateway, volunteer.user.id, 10)  # enough now
        retry = await client.post(DONATIONS, json=body, headers=volunteer.headers)
        assert retry.status_code == 409
        assert error_of(retry)["code"] == "ledger.idempotency_failed"
        assert await lcity.gateway.store.balance("east", POOL) == 0
