"""The centre's lists: elders and helpers of its district, filtered, paged, scoped."""

from __future__ import annotations

from datetime import date, timedelta

import httpx
import pytest

from market.models import Certificate, HelperProfile, VettingStatus
from tests.market.conftest import City


class TestElderList:
    async def test_lists_the_districts_elders_without_sensitive_fields(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.get("/api/v1/elders", headers=city["centre_admin"].headers)
        assert response.status_code == 200
        (elder,) = response.json()["elders"]
        assert elder["id"] == str(city["elder"].user.id)
        assert "sensitive" not in elder and "phone" not in elder

    async def test_name_filter(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get("/api/v1/elders?q=nobody", headers=city["centre_admin"].headers)
        assert response.json()["elders"] == []

    async def test_another_district_is_refused(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(
            f"/api/v1/elders?district_id={city.east.id}", headers=city.west_admin.headers
        )
        assert response.status_code == 403

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=%C2%B2", "limit"),
            ("limit=--5", "limit"),
            ("district_id=not-a-uuid", "district_id"),
            ("colour=red", "colour"),
            ("limit=5&limit=6", "limit"),
        ],
    )
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, city: City, query: str, field: str
    ) -> None:
        response = await client.get(f"/api/v1/elders?{query}", headers=city["centre_admin"].headers)
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == field


class TestHelperList:
    async def test_awaiting_vetting(self, client: httpx.AsyncClient, city: City) -> None:
        await HelperProfile.filter(user_id=city["volunteer"].user.id).update(
            vetting_status=VettingStatus.pending
        )
        response = await client.get(
            "/api/v1/helpers?vetting_status=pending", headers=city["centre_admin"].headers
        )
        assert [h["id"] for h in response.json()["helpers"]] == [str(city["volunteer"].user.id)]

    async def test_certificates_expiring_soon(self, client: httpx.AsyncClient, city: City) -> None:
        soon = date.today() + timedelta(days=10)
        await Certificate.create(
            helper=city["provider_staff"].user, kind="bathing", number_enc="x", expires_on=soon
        )
        response = await client.get(
            f"/api/v1/helpers?certificates_expiring_before={soon + timedelta(days=1)}",
            headers=city["centre_admin"].headers,
        )
        assert [h["id"] for h in response.json()["helpers"]] == [
            str(city["provider_staff"].user.id)
        ]

    async def test_another_district_is_refused(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(
            f"/api/v1/helpers?district_id={city.east.id}", headers=city.west_admin.headers
        )
        assert response.status_code == 403
