"""Receipts: downloaded through the API, verified offline with `ledger.receipt` alone."""

from __future__ import annotations

import json

import httpx
import pytest

from ledger.receipt import verify_receipt
from market.services.runtime import Runtime
from tests.market.ledger.conftest import LedgerCity, error_of, fund, sign, third_district

API = "/api/v1/ledger/districts/east/entries"


@pytest.fixture
async def witnessed_city(
    client: httpx.AsyncClient, lcity: LedgerCity, runtime: Runtime
) -> LedgerCity:
    await third_district(client, runtime)
    return lcity


class TestReceipt:
    async def test_receipt_verifies_offline(
        self, client: httpx.AsyncClient, witnessed_city: LedgerCity
    ) -> None:
        lcity = witnessed_city
        volunteer = lcity["volunteer"]
        entry = await fund(lcity.gateway, volunteer.user.id, 60)
        await fund(lcity.gateway, lcity.elder_parent.user.id, 5)
        await sign(lcity.gateway)
        response = await client.get(f"{API}/{entry.id}/receipt", headers=volunteer.headers)
        assert response.status_code == 200, response.text
        assert "attachment" in response.headers["content-disposition"]
        receipt = json.loads(json.dumps(response.json()))  # as a file would hold it
        first_key = receipt["keys"]["keys"][0]["key_id"]
        assert verify_receipt(receipt) == (True, "ok")
        assert verify_receipt(receipt, trusted_key_id=first_key) == (True, "ok")
        assert receipt["threshold"] == 2 and len(receipt["cosignatures"]) == 2

    async def test_tampered_receipt_fails(
        self, client: httpx.AsyncClient, witnessed_city: LedgerCity
    ) -> None:
        lcity = witnessed_city
        volunteer = lcity["volunteer"]
        entry = await fund(lcity.gateway, volunteer.user.id, 60)
        await sign(lcity.gateway)
        receipt = (await client.get(f"{API}/{entry.id}/receipt", headers=volunteer.headers)).json()
        more = dict(receipt, entry=receipt["entry"].replace('"minutes":60', '"minutes":600'))
        assert verify_receipt(more)[0] is False
        fewer = dict(receipt, cosignatures=receipt["cosignatures"][:1])
        assert verify_receipt(fewer)[0] is False
        assert verify_receipt(receipt, trusted_key_id="0" * 32)[0] is False

    async def test_auditor_and_admin_fetch_any_receipt(
        self, client: httpx.AsyncClient, witnessed_city: LedgerCity
    ) -> None:
        lcity = witnessed_city
        entry = await fund(lcity.gateway, lcity["volunteer"].user.id, 60)
        await sign(lcity.gateway)
        for role in ("auditor", "centre_admin"):
            response = await client.get(f"{API}/{entry.id}/receipt", headers=lcity[role].headers)
            assert response.status_code == 200, role

    async def test_other_users_receipt_is_403(
        self, client: httpx.AsyncClient, witnessed_city: LedgerCity
    ) -> None:
        lcity = witnessed_city
        entry = await fund(lcity.gateway, lcity["volunteer"].user.id, 60)
        await sign(lcity.gateway)
        for actor in (lcity["elder"], lcity.city.west_admin, lcity.west_volunteer):
            response = await client.get(f"{API}/{entry.id}/receipt", headers=actor.headers)
            assert response.status_code == 403
            assert error_of(response)["code"] == "ledger.forbidden"

    async def test_unknown_entry_is_404(
        self, client: httpx.AsyncClient, witnessed_city: LedgerCity
    ) -> None:
        volunteer = witnessed_city["volunteer"]
        response = await client.get(f"{API}/nope/receipt", headers=volunteer.headers)
        assert response.status_code == 404
        other = "/api/v1/ledger/districts/nowhere/entries/x/receipt"
        assert (await client.get(other, headers=volunteer.headers)).status_code == 404

    async def test_entry_newer_than_checkpoint_is_409(
        self, client: httpx.AsyncClient, witnessed_city: LedgerCity
    ) -> None:
        lcity = witnessed_city
        await fund(lcity.gateway, lcity["volunteer"].user.id, 60)
        await sign(lcity.gateway)
        late = await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        response = await client.get(f"{API}/{late.id}/receipt", headers=lcity["volunteer"].headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.not_checkpointed"

    async def test_unwitnessed_checkpoint_is_409(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        entry = await fund(lcity.gateway, lcity["volunteer"].user.id, 60)
        await sign(lcity.gateway)  # only west can co-sign: 1 of 2
        response = await client.get(f"{API}/{entry.id}/receipt", headers=lcity["volunteer"].headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.not_witnessed"

    async def test_anonymous_is_401(
        self, client: httpx.AsyncClient, witnessed_city: LedgerCity
    ) -> None:
        assert (await client.get(f"{API}/x/receipt")).status_code == 401
