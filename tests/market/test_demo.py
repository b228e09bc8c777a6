"""The demo city: structure, determinism, showcase logins, idempotence and encryption at rest."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from tortoise import connections

from market import demo
from market.assessment import Level
from market.models import (
    Assessment,
    Certificate,
    District,
    DistrictLevel,
    DistrictPolicy,
    ElderProfile,
    FamilyLink,
    HelperKind,
    HelperProfile,
    LinkStatus,
    Provider,
    Role,
    User,
)
from market.policy import DEFAULT_POLICY, policy_from_json
from market.services.auth import phone_index
from market.services.elders import ENCRYPTED
from market.services.runtime import Runtime

Fingerprint = dict[str, list[tuple[Any, ...]]]


def plan_fingerprint(plan: demo.CityPlan) -> Fingerprint:
    """What the database must hold for `plan`: names, flags and coordinates, sorted."""
    return {
        "districts": sorted((d.code, d.name, d.level.value) for d in plan.districts),
        "elders": sorted(
            (e.person.name, e.person.birth_year, e.person.gender, list(e.flags), e.latitude,
             e.longitude)
            for e in plan.elders
        ),
        "helpers": sorted(
            (h.person.name, list(h.skills), h.latitude, h.longitude) for h in plan.helpers
        ),
    }  # fmt: skip


async def database_fingerprint() -> Fingerprint:
    elders = await ElderProfile.all().select_related("user")
    helpers = await HelperProfile.all().select_related("user")
    return {
        "districts": sorted(
            (d.code, d.name, d.level.value) for d in await District.all()
        ),
        "elders": sorted(
            (e.user.name, e.birth_year, e.gender, e.flags, e.latitude, e.longitude) for e in elders
        ),
        "helpers": sorted((h.user.name, h.skills, h.latitude, h.longitude) for h in helpers),
    }  # fmt: skip


@pytest.fixture
async def summary(runtime: Runtime) -> demo.DemoSummary:
    return await demo.build_demo_city(runtime, seed=7)


class TestPlan:
    def test_same_seed_plans_the_same_city(self) -> None:
        assert demo.plan_city(7) == demo.plan_city(7)

    def test_another_seed_plans_another_city(self) -> None:
        assert plan_fingerprint(demo.plan_city(7)) != plan_fingerprint(demo.plan_city(8))

    def test_very_old_means_eighty_or_more(self) -> None:
        for elder in demo.plan_city(7).elders:
            age = demo.AGE_YEAR - elder.person.birth_year
            assert ("very_old" in elder.flags) == (age >= 80)

    def test_volunteers_never_offer_intimate_or_medical_care(self) -> None:
        volunteers = [h for h in demo.plan_city(7).helpers if h.provider is None]
        assert not {s for h in volunteers for s in h.skills} & {"bathing", "medical"}


class TestBuild:
    async def test_writes_exactly_the_planned_city(self, summary: demo.DemoSummary) -> None:
        plan = demo.plan_city(7)
        assert summary == demo.summarise(plan)
        assert await database_fingerprint() == plan_fingerprint(plan)

    async def test_the_city_is_realistic(self, summary: demo.DemoSummary) -> None:
        tops = await District.filter(level=DistrictLevel.district).order_by("code")
        assert len(tops) >= 3
        for top in tops:
            streets = await District.filter(parent=top)
            assert 2 <= len(streets) <= 3
            for street in streets:
                assert 2 <= await District.filter(parent=street).count() <= 3
            policy = await DistrictPolicy.get(district=top)
            assert policy.version == 1
            assert policy_from_json(policy.content) == DEFAULT_POLICY
        admins = await User.filter(role=Role.centre_admin).values_list("district_id", flat=True)
        assert sorted(admins, key=str) == sorted((t.id for t in tops), key=str)

        assert summary.elders == await ElderProfile.all().count() >= 280
        levels = await ElderProfile.exclude(capability_level=None).values_list(
            "capability_level", flat=True
        )
        assert set(levels) == {level.value for level in Level}
        assert await Assessment.all().count() == summary.assessments == len(levels)
        assert await User.filter(role=Role.elder, phone_enc=None).count() > 0

        assert await HelperProfile.filter(kind=HelperKind.volunteer).count() >= 140
        assert await Provider.all().count() == 3
        for provider in await Provider.all():
            staff = await HelperProfile.filter(provider=provider)
            assert 5 <= len(staff) <= 10
            assert all(set(h.skills) <= set(provider.services) for h in staff)
            # Bathing staff go in pairs, so a frail elder's bath can be matched.
            assert all(h.crew_size == (2 if "bathing" in h.skills else 1) for h in staff)
        assert await FamilyLink.filter(status=LinkStatus.approved).count() >= 140
        assert await Certificate.filter(verified_at=None).count() > 0
        assert await Certificate.exclude(verified_at=None).count() > 0
        # Only the showcase accounts can sign in; scrypt for hundreds would make the demo slow.
        assert await User.exclude(password_hash=None).count() == len(summary.logins)

    async def test_reports_progress_and_refuses_a_second_build(self, runtime: Runtime) -> None:
        calls: list[tuple[str, int, int]] = []
        started = time.monotonic()
        first = await demo.build_demo_city(runtime, progress=lambda *call: calls.append(call))
        assert time.monotonic() - started < 20
        stages = {stage for stage, _, _ in calls}
        assert {"districts", "elders", "assessments", "family members", "helpers"} <= stages
        assert all(0 <= done <= total for _, done, total in calls)
        with pytest.raises(demo.DemoAlreadyLoaded, match="already has"):
            await demo.build_demo_city(runtime, seed=7)
        assert await ElderProfile.all().count() == first.elders

    async def test_refuses_a_database_with_any_district(self, runtime: Runtime) -> None:
        await District.create(code="x1", name="Existing", level=DistrictLevel.district)
        with pytest.raises(demo.DemoAlreadyLoaded):
            await demo.build_demo_city(runtime)
        assert await District.all().count() == 1
        assert await User.all().count() == 0


def _index(runtime: Runtime, phone: str) -> str:
    return phone_index(runtime, phone)


class TestShowcaseLogins:
    async def test_every_showcase_login_signs_in(
        self, client: httpx.AsyncClient, runtime: Runtime, summary: demo.DemoSummary
    ) -> None:
        assert {login.role for login in summary.logins} == {role.value for role in Role}
        for login in summary.logins:
            response = await client.post(
                "/api/v1/auth/login", json={"phone": login.phone, "password": login.password}
            )
            assert response.status_code == 200, (login, response.text)
        by_role = {login.role: login for login in summary.logins}
        elder = await User.get(phone_index=_index(runtime, by_role["elder"].phone))
        family = await User.get(phone_index=_index(runtime, by_role["family"].phone))
        link = await FamilyLink.get(family=family, elder=elder)
        assert link.status is LinkStatus.approved


class TestEncryptionAtRest:
    async def test_sensitive_values_are_stored_encrypted(
        self, runtime: Runtime, summary: demo.DemoSummary
    ) -> None:
        plan = demo.plan_city(7)
        secrets = [e.person.phone for e in plan.elders if e.person.phone]
        secrets += [e.id_number for e in plan.elders]
        connection = connections.get("default")
        raw = ""
        for table in ("user", "elder_profile", "assessment", "certificate"):
            rows = await connection.execute_query_dict(f'SELECT * FROM "{table}"')
            raw += json.dumps(rows, default=str, ensure_ascii=False)
        assert len(raw) > 100_000
        assert [s for s in secrets if s in raw] == []
        # ... and readable with the purposes the elder service uses.
        showcase = plan.elders[0]
        elder = await User.get(phone_index=_index(runtime, showcase.person.phone or ""))
        profile = await ElderProfile.get(user=elder)
        assert profile.id_number_enc is not None
        decrypted = runtime.crypto.decrypt(profile.id_number_enc, purpose=ENCRYPTED["id_number"])
        assert decrypted == showcase.id_number
