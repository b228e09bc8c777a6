"""The role x endpoint matrix and district scoping: refusals are 403 and write nothing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from market import assessment, policy
from market.app import api_routes
from market.models import (
    AccessLog,
    Assessment,
    Certificate,
    District,
    DistrictPolicy,
    ElderProfile,
    FamilyLink,
    HelperProfile,
    Provider,
    Role,
    User,
)
from market.routes.spec import spec_of
from tests.market.conftest import City, next_phone

MODELS = [
    AccessLog,
    Assessment,
    Certificate,
    District,
    DistrictPolicy,
    ElderProfile,
    FamilyLink,
    HelperProfile,
    Provider,
    User,
]


async def snapshot() -> dict[str, Any]:
    """Every row of every table touched by these endpoints, for 'nothing written' checks."""
    return {model.__name__: sorted(map(str, await model.all().values())) for model in MODELS}


def protected() -> list[tuple[str, str, frozenset[Role]]]:
    rows = []
    for route in api_routes():
        if not isinstance(route, Route):
            continue
        spec = spec_of(route.endpoint)
        assert spec is not None, f"{route.path} has no EndpointSpec"
        if spec.roles is None:
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            rows.append((method, route.path, spec.roles))
    return rows


def concrete(path: str) -> str:
    return re.sub(r"\{\w+\}", str(uuid.uuid4()), path)


async def test_every_route_declares_who_may_call_it() -> None:
    assert protected(), "no protected routes found"


async def test_roles_outside_each_endpoint_are_refused(
    client: httpx.AsyncClient, city: City
) -> None:
    before = await snapshot()
    wrong: list[str] = []
    for method, path, roles in protected():
        for role in Role:
            if role in roles:
                continue
            response = await client.request(
                method, concrete(path), json={}, headers=city[role.value].headers
            )
            if response.status_code != 403 or response.json()["error"]["code"] != "role_forbidden":
                wrong.append(f"{role.value} {method} {path} -> {response.status_code}")
    assert wrong == []
    assert await snapshot() == before


async def test_protected_routes_need_a_token(client: httpx.AsyncClient) -> None:
    statuses = {
        (method, path): (await client.request(method, concrete(path), json={})).status_code
        for method, path, _ in protected()
    }
    assert set(statuses.values()) == {401}


def full_scores() -> dict[str, int]:
    return {item.code: item.max_score for item in assessment.ITEMS}


async def scoped_cases(city: City) -> list[tuple[str, str, dict[str, Any]]]:
    """Requests a centre admin of `east` may make and an admin of `west` may not."""
    elder = city["elder"].user
    family = city["family"].user
    pending = await User.create(
        role=Role.volunteer, name="new volunteer", district=city.east_community, birth_year=1990
    )
    await HelperProfile.create(user=pending, kind="volunteer")
    certificate = await Certificate.create(
        helper=city["volunteer"].user,
        kind="first_aid",
        number_enc="x",
        expires_on=datetime(2030, 1, 1).date(),
    )
    provider = await Provider.create(
        district=city.east, name="Care Co", services=["bathing"], prices={}, capacity_per_day=10
    )
    link = await FamilyLink.create(family=family, elder=elder, relation="child")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    return [
        (
            "POST",
            "/api/v1/districts",
            {"code": "east-s2", "name": "Second", "parent_id": str(city.east.id)},
        ),
        (
            "POST",
            f"/api/v1/districts/{city.east.id}/policies",
            {"effective_from": future, "content": policy.policy_to_json(policy.DEFAULT_POLICY)},
        ),
        (
            "POST",
            "/api/v1/staff",
            {
                "phone": next_phone(),
                "password": "strong pass 9",
                "name": "Auditor",
                "role": "auditor",
                "district_id": str(city.east.id),
            },
        ),
        ("POST", f"/api/v1/users/{family.id}/status", {"status": "suspended", "reason": "test"}),
        (
            "POST",
            "/api/v1/elders",
            {
                "name": "Wang",
                "district_id": str(city.east_community.id),
                "birth_year": 1938,
                "gender": "male",
                "latitude": 30.1,
                "longitude": 120.1,
            },
        ),
        ("POST", f"/api/v1/elders/{elder.id}/profile", {"flags": ["living_alone"]}),
        (
            "POST",
            f"/api/v1/elders/{elder.id}/assessments",
            {
                "item_scores": full_scores(),
                "assessor_1": "A",
                "assessor_2": "B",
                "informant": "C",
                "assessed_on": "2026-11-01",
            },
        ),
        ("POST", f"/api/v1/certificates/{certificate.id}/verify", {}),
        ("POST", f"/api/v1/helpers/{pending.id}/vetting", {"decision": "approved", "reason": "ok"}),
        (
            "POST",
            "/api/v1/providers",
            {
                "name": "Meals Ltd",
                "district_id": str(city.east.id),
                "services": ["meal"],
                "prices_fen": {"meal": 1500},
                "capacity_per_day": 100,
            },
        ),
        (
            "POST",
            f"/api/v1/providers/{provider.id}/listing",
            {"list_status": "black", "reason": "fraud"},
        ),
        ("POST", f"/api/v1/family-links/{link.id}/approve", {}),
        ("GET", f"/api/v1/elders/{elder.id}", {}),
        ("GET", f"/api/v1/helpers/{pending.id}", {}),
    ]


async def test_admin_of_another_district_is_refused(client: httpx.AsyncClient, city: City) -> None:
    cases = await scoped_cases(city)
    before = await snapshot()
    wrong = []
    for method, path, body in cases:
        response = await client.request(method, path, json=body, headers=city.west_admin.headers)
        if response.status_code != 403:
            wrong.append(f"{method} {path} -> {response.status_code} {response.text[:120]}")
    assert wrong == []
    assert await snapshot() == before


async def test_admin_of_the_district_is_allowed(client: httpx.AsyncClient, city: City) -> None:
    failed = []
    for method, path, body in await scoped_cases(city):
        response = await client.request(
            method, path, json=body, headers=city["centre_admin"].headers
        )
        if response.status_code >= 300:
            failed.append(f"{method} {path} -> {response.status_code} {response.text[:160]}")
    assert failed == []


class TestElderRecordScope:
    async def test_unlinked_family_is_refused(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(
            f"/api/v1/elders/{city['elder'].user.id}", headers=city["family"].headers
        )
        assert response.status_code == 403

    async def test_linked_family_sees_phone_not_health(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await FamilyLink.create(
            family=city["family"].user,
            elder=city["elder"].user,
            relation="child",
            status="approved",
        )
        response = await client.get(
            f"/api/v1/elders/{city['elder'].user.id}", headers=city["family"].headers
        )
        assert response.status_code == 200
        assert set(response.json()["elder"]["sensitive"]) == {"phone", "address"}
        log = await AccessLog.get(actor_id=city["family"].user.id)
        assert log.fields_read == ["phone", "address"]

    async def test_elder_reads_own_record_without_log(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.get(
            f"/api/v1/elders/{city['elder'].user.id}", headers=city["elder"].headers
        )
        assert response.json()["elder"]["sensitive"]["phone"] == city["elder"].phone
        assert await AccessLog.all().count() == 0

    @pytest.mark.parametrize("role", ["volunteer", "provider_staff", "auditor"])
    async def test_other_roles_cannot_read_elders(
        self, client: httpx.AsyncClient, city: City, role: str
    ) -> None:
        response = await client.get(
            f"/api/v1/elders/{city['elder'].user.id}", headers=city[role].headers
        )
        assert response.status_code == 403
