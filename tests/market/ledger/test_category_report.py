"""`GET /api/v1/ledger/districts/{district}/categories`: minutes by service category and
local month, for auditors and the chain's centre admins, with its query checked at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.market.ledger.conftest import LedgerCity, error_of, new_id

URL = "/api/v1/ledger/districts/east/categories"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_ms(year: int, month: int, day: int = 1) -> int:
    return int(datetime(year, month, day, tzinfo=SHANGHAI).timestamp()) * 1000


FEB = local_ms(2026, 2)


async def history(lcity: LedgerCity) -> None:
    """January: two meal deposits, one at its last millisecond; February: a bathing deposit
    and a meal redemption; west's chain has its own deposit."""
    gw, volunteer = lcity.gateway, lcity["volunteer"].user.id

    async def deposit(minutes: int, category: str, at_ms: int, user: Any = volunteer) -> None:
        await gw.deposit(
            volunteer_id=user,
            minutes=minutes,
            entry_id=new_id("deposit"),
            actor="test",
            category=category,
            at_ms=at_ms,
        )

    await deposit(60, "meal", local_ms(2026, 1, 3))
    await deposit(30, "meal", FEB - 1)
    await deposit(45, "bathing", FEB)
    await gw.redeem(
        payer_id=volunteer,
        minutes=20,
        entry_id=new_id("redeem"),
        actor="test",
        category="meal",
        at_ms=FEB + 60_000,
    )
    await deposit(99, "meal", FEB, user=lcity.west_volunteer.user.id)


async def report(
    client: httpx.AsyncClient, lcity: LedgerCity, query: str, who: str = "auditor"
) -> httpx.Response:
    return await client.get(f"{URL}?{query}", headers=lcity[who].headers)


class TestReport:
    async def test_auditor_reads_minutes_by_category_and_month(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await history(lcity)
        response = await report(client, lcity, "first=2025-12&last=2026-02")
        assert response.status_code == 200
        body = response.json()
        assert (body["district"], body["category"]) == ("east", None)
        assert body["time_zone"] == "Asia/Shanghai"
        months = {m["month"]: m for m in body["months"]}
        assert list(months) == ["2025-12", "2026-01", "2026-02"]
        assert months["2026-02"]["start_ms"] == FEB == months["2026-01"]["end_ms"]
        assert months["2025-12"]["totals"] == []
        assert months["2026-01"]["totals"] == [
            {"category": "meal", "kind": "deposit", "entries": 2, "minutes": 90}
        ]
        assert months["2026-02"]["totals"] == [
            {"category": "bathing", "kind": "deposit", "entries": 1, "minutes": 45},
            {"category": "meal", "kind": "redeem", "entries": 1, "minutes": 20},
        ]

    async def test_one_category_and_last_defaults_to_first(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await history(lcity)
        response = await report(client, lcity, "first=2026-02&category=meal", "centre_admin")
        assert response.status_code == 200
        body = response.json()
        assert body["category"] == "meal"
        assert [(m["month"], m["totals"]) for m in body["months"]] == [
            ("2026-02", [{"category": "meal", "kind": "redeem", "entries": 1, "minutes": 20}])
        ]

    async def test_thirty_six_months_are_allowed(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        response = await report(client, lcity, "first=2024-01&last=2026-12")
        assert response.status_code == 200
        assert len(response.json()["months"]) == 36


class TestRefusals:
    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("", "first"),
            ("first=2026-13", "first"),
            ("first=2026-1", "first"),
            ("first=26-01", "first"),
            ("first=2026-01&last=2025-12", "last"),
            ("first=2024-01&last=2027-01", "last"),
            ("first=2026-01&category=gardening", "category"),
            ("first=2026-01&first=2026-02", "first"),
            ("first=2026-01&month=2026-01", "month"),
        ],
    )
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity, query: str, field: str
    ) -> None:
        response = await report(client, lcity, query)
        assert response.status_code == 422, query
        error = error_of(response)
        assert error["code"] == "invalid_input"
        assert field in {d["field"] for d in error["details"]}, error

    async def test_admin_of_another_district_is_403(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        response = await client.get(f"{URL}?first=2026-01", headers=lcity.city.west_admin.headers)
        assert response.status_code == 403
        assert error_of(response)["code"] == "ledger.forbidden"

    @pytest.mark.parametrize("who", ["volunteer", "elder"])
    async def test_account_holders_are_403(
        self, client: httpx.AsyncClient, lcity: LedgerCity, who: str
    ) -> None:
        response = await report(client, lcity, "first=2026-01", who)
        assert response.status_code == 403
        assert error_of(response)["code"] == "role_forbidden"

    async def test_anonymous_is_401(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        response = await client.get(f"{URL}?first=2026-01")
        assert response.status_code == 401

    async def test_unknown_district_is_404(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        response = await client.get(
            "/api/v1/ledger/districts/nowhere/categories?first=2026-01",
            headers=lcity["auditor"].headers,
        )
        assert response.status_code == 404
        assert error_of(response)["code"] == "ledger.unknown_district"
