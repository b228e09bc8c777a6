"""Certificates (the number read one at a time and logged, who verified it) and the centre's
provider list."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from market import policy
from market.models import (
    AccessLog,
    Certificate,
    DistrictPolicy,
    HelperKind,
    HelperProfile,
    Provider,
    Role,
    User,
    UserStatus,
    VettingStatus,
)
from market.services.runtime import Runtime
from tests.market.conftest import City, make_actor, sign_in

NUMBER = "BJ-2025-004417"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


async def add_certificate(client: httpx.AsyncClient, city: City) -> str:
    response = await client.post(
        "/api/v1/certificates",
        json={
            "kind": "caregiver",
            "number": NUMBER,
            "expires_on": (date.today() + timedelta(days=365)).isoformat(),
        },
        headers=city["provider_staff"].headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["certificate"]["id"])


class TestCertificateNumber:
    async def test_the_number_is_not_stored_in_clear(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        certificate_id = await add_certificate(client, city)
        stored = await Certificate.get(id=certificate_id)
        assert NUMBER not in stored.number_enc

    async def test_the_helper_reads_their_own_without_a_log(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        certificate_id = await add_certificate(client, city)
        response = await client.get(
            f"/api/v1/certificates/{certificate_id}", headers=city["provider_staff"].headers
        )
        assert response.status_code == 200
        body = response.json()["certificate"]
        assert body["number"] == NUMBER and body["verified"] is False
        assert body["verified_by"] is None
        assert await AccessLog.all().count() == 0

    async def test_the_centre_reads_it_to_check_it_and_the_read_is_logged(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        certificate_id = await add_certificate(client, city)
        admin = city["centre_admin"]
        response = await client.get(f"/api/v1/certificates/{certificate_id}", headers=admin.headers)
        assert response.json()["certificate"]["number"] == NUMBER
        (log,) = await AccessLog.all()
        assert log.actor_id == admin.user.id
        assert log.subject_id == city["provider_staff"].user.id
        assert log.fields_read == ["certificate_number"] and log.purpose == "certificate_check"

    async def test_verified_by_names_the_admin(self, client: httpx.AsyncClient, city: City) -> None:
        certificate_id = await add_certificate(client, city)
        admin = city["centre_admin"]
        response = await client.post(
            f"/api/v1/certificates/{certificate_id}/verify", json={}, headers=admin.headers
        )
        assert response.status_code == 200
        verified = response.json()["certificate"]
        assert verified["verified"] is True and verified["verified_by"] == str(admin.user.id)
        helper = await client.get(
            f"/api/v1/helpers/{city['provider_staff'].user.id}", headers=admin.headers
        )
        (listed,) = helper.json()["helper"]["certificates"]
        assert listed["verified_by"] == str(admin.user.id) and listed["verified_at"]
        assert "number" not in listed
        again = await client.get(f"/api/v1/certificates/{certificate_id}", headers=admin.headers)
        assert again.json()["certificate"]["verified_by"] == str(admin.user.id)

    @pytest.mark.parametrize("who", ["west", "volunteer"])
    async def test_others_are_refused_and_nothing_is_logged(
        self, client: httpx.AsyncClient, city: City, who: str
    ) -> None:
        certificate_id = await add_certificate(client, city)
        actor = city.west_admin if who == "west" else city[who]
        response = await client.get(f"/api/v1/certificates/{certificate_id}", headers=actor.headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "certificate_forbidden"
        assert NUMBER not in response.text
        assert await AccessLog.all().count() == 0

    @pytest.mark.parametrize(("value", "status"), [("nope", 422), (UNKNOWN, 404)])
    async def test_bad_and_unknown_ids(
        self, client: httpx.AsyncClient, city: City, value: str, status: int
    ) -> None:
        response = await client.get(
            f"/api/v1/certificates/{value}", headers=city["centre_admin"].headers
        )
        assert response.status_code == status
        assert response.json()["error"]["code"]


async def providers(city: City) -> dict[str, Provider]:
    def make(name: str, district: Any, services: list[str], **extra: Any) -> Any:
        return Provider.create(
            name=name,
            district=district,
            services=services,
            prices={s: 1000 for s in services},
            capacity_per_day=10,
            **extra,
        )

    return {
        "meals": await make("Meals Co", city.east, ["meal"]),
        "baths": await make("Bath Care", city.east_street, ["bathing", "cleaning"]),
        "black": await make("Bad Co", city.east_community, ["meal"], list_status="black"),
        "west": await make("West Care", city.west, ["meal"]),
    }


class TestProviderList:
    async def test_lists_the_providers_under_the_admins_district(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        made = await providers(city)
        response = await client.get("/api/v1/providers", headers=city["centre_admin"].headers)
        assert response.status_code == 200
        names = [p["name"] for p in response.json()["providers"]]
        assert names == ["Bad Co", "Bath Care", "Meals Co"]
        (west,) = (await client.get("/api/v1/providers", headers=city.west_admin.headers)).json()[
            "providers"
        ]
        assert west["id"] == str(made["west"].id) and west["prices_fen"] == {"meal": 1000}

    async def test_elders_stars_for_the_staff_add_up_per_provider(
        self, client: httpx.AsyncClient, runtime: Runtime, city: City
    ) -> None:
        made = await providers(city)
        await HelperProfile.filter(user_id=city["provider_staff"].user.id).update(
            provider_id=made["baths"].id, rating_sum=14, rating_count=3
        )
        second = await make_actor(client, runtime, Role.provider_staff, city.east_community)
        await HelperProfile.filter(user_id=second.user.id).update(
            provider_id=made["baths"].id, rating_sum=5, rating_count=1
        )
        response = await client.get("/api/v1/providers", headers=city["centre_admin"].headers)
        ratings = {p["name"]: p["rating"] for p in response.json()["providers"]}
        assert ratings["Bath Care"] == {"average": 4.75, "count": 4}
        assert ratings["Meals Co"] == {"average": None, "count": 0}

    async def test_filters_and_pages(self, client: httpx.AsyncClient, city: City) -> None:
        await providers(city)
        headers = city["centre_admin"].headers

        async def names(query: str) -> list[str]:
            response = await client.get(f"/api/v1/providers?{query}", headers=headers)
            return [p["name"] for p in response.json()["providers"]]

        assert await names("list_status=black") == ["Bad Co"]
        assert await names("service=bathing") == ["Bath Care"]
        assert await names("service=meal&list_status=normal") == ["Meals Co"]
        assert await names(f"district_id={city.east_street.id}") == ["Bad Co", "Bath Care"]
        assert await names("limit=1&offset=1") == ["Bath Care"]

    async def test_another_district_is_refused(self, client: httpx.AsyncClient, city: City) -> None:
        await providers(city)
        response = await client.get(
            f"/api/v1/providers?district_id={city.east.id}", headers=city.west_admin.headers
        )
        assert response.status_code == 403
        assert "Meals Co" not in response.text

    @pytest.mark.parametrize("role", ["elder", "family", "volunteer", "provider_staff", "auditor"])
    async def test_other_roles_are_refused(
        self, client: httpx.AsyncClient, city: City, role: str
    ) -> None:
        response = await client.get("/api/v1/providers", headers=city[role].headers)
        assert response.status_code == 403

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("list_status=grey", "list_status"),
            ("service=massage", "service"),
            ("district_id=x", "district_id"),
            ("colour=red", "colour"),
        ],
    )
    async def test_bad_query_is_422(
        self, client: httpx.AsyncClient, city: City, query: str, field: str
    ) -> None:
        response = await client.get(
            f"/api/v1/providers?{query}", headers=city["centre_admin"].headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == field


async def pending_volunteer(city: City, birth_year: int | None) -> User:
    user = await User.create(
        role=Role.volunteer,
        name="new volunteer",
        district=city.east_community,
        status=UserStatus.pending,
        birth_year=birth_year,
    )
    await HelperProfile.create(user=user, kind=HelperKind.volunteer)
    return user


async def deposit_age(city: City, minimum: int, *, with_guardian: bool = True) -> int:
    """A policy version of `east`, in force since 2020, with this deposit age."""
    rules = dataclasses.replace(
        policy.DEFAULT_POLICY.time_bank,
        deposit_min_age=minimum,
        minors_with_guardian=with_guardian,
    )
    content = policy.policy_to_json(dataclasses.replace(policy.DEFAULT_POLICY, time_bank=rules))
    await DistrictPolicy.create(
        district=city.east,
        version=1,
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        content=content,
    )
    return 1


class TestDepositAgeAtVetting:
    """time_bank.deposit_min_age: approval is where a volunteer becomes able to earn hours."""

    async def vet(self, client: httpx.AsyncClient, city: City, user: User) -> httpx.Response:
        return await client.post(
            f"/api/v1/helpers/{user.id}/vetting",
            json={"decision": "approved", "reason": "interviewed"},
            headers=city["centre_admin"].headers,
        )

    async def test_an_adult_is_approved(self, client: httpx.AsyncClient, city: City) -> None:
        user = await pending_volunteer(city, datetime.now(UTC).year - 30)
        response = await self.vet(client, city, user)
        assert response.status_code == 200, response.text
        assert (await User.get(id=user.id)).status is UserStatus.active

    async def test_a_minor_is_refused_naming_the_rule_and_version(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        version = await deposit_age(city, 16, with_guardian=False)
        # Born 16 years before this year: maybe 16 already, certainly only 15.
        user = await pending_volunteer(city, datetime.now(UTC).year - 16)
        response = await self.vet(client, city, user)
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "policy.forbids"
        assert error["details"] == {"rule": "time_bank.deposit_min_age", "policy_version": version}
        assert "guardian" not in error["message"]
        profile = await HelperProfile.get(user_id=user.id)
        assert profile.vetting_status is VettingStatus.pending
        assert (await User.get(id=user.id)).status is UserStatus.pending

    async def test_the_districts_lower_age_admits_a_younger_volunteer(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await deposit_age(city, 16)
        user = await pending_volunteer(city, datetime.now(UTC).year - 17)
        assert (await self.vet(client, city, user)).status_code == 200

    async def test_a_minor_needs_a_guardian_consent_on_record(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        user = await pending_volunteer(city, datetime.now(UTC).year - 15)
        response = await self.vet(client, city, user)
        assert response.status_code == 403
        assert "guardian" in response.json()["error"]["message"]

    async def test_no_birth_year_is_422_and_the_volunteer_can_give_it(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        user = await pending_volunteer(city, None)
        response = await self.vet(client, city, user)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "birth_year_required"
        given = await client.post(
            "/api/v1/helpers/me", json={"birth_year": 1990}, headers=await headers_of(runtime, user)
        )
        assert given.status_code == 200, given.text
        assert (await self.vet(client, city, user)).status_code == 200

    async def test_after_vetting_the_birth_year_is_fixed(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.post(
            "/api/v1/helpers/me", json={"birth_year": 2015}, headers=city["volunteer"].headers
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "birth_year_vetted"

    async def test_a_birth_year_in_the_future_is_422(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        user = await pending_volunteer(city, None)
        response = await client.post(
            "/api/v1/helpers/me",
            json={"birth_year": datetime.now(UTC).year + 1},
            headers=await headers_of(runtime, user),
        )
        assert response.status_code == 422

    async def test_rejection_needs_no_age(self, client: httpx.AsyncClient, city: City) -> None:
        user = await pending_volunteer(city, None)
        response = await client.post(
            f"/api/v1/helpers/{user.id}/vetting",
            json={"decision": "rejected", "reason": "no references"},
            headers=city["centre_admin"].headers,
        )
        assert response.status_code == 200


async def headers_of(runtime: Runtime, user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {await sign_in(runtime, user)}"}
