"""Which services are intimate care (the elder's gender preference binds) and who may lift an
elder are district policy: today's values by default, changed by a new policy version, checked
when the version is written, applied by the matcher and by dispatch alike."""

from __future__ import annotations

import copy
import dataclasses
from datetime import timedelta
from typing import Any

import httpx
import pytest

import matching
from market import catalogue
from market import policy as rules
from market.assessment import Level
from market.models import Certificate, DistrictPolicy, ElderProfile, Offer, User
from market.policy import CertificateKind, LiftingRule, ServiceCode
from market.services.auth import now_utc
from tests.market.bookings.world import (
    adopt_policy,
    book,
    neighbourhood,
    now,
    post,
    run_round,
    snapshot,
)
from tests.market.conftest import City


@pytest.fixture
async def town(city: City) -> City:
    return await neighbourhood(city)


def default_json() -> dict[str, Any]:
    return copy.deepcopy(rules.policy_to_json(rules.DEFAULT_POLICY))


def tuned(**services: Any) -> rules.DistrictPolicy:
    """The default policy with these fields of `services` replaced (a rule per name)."""
    current = rules.DEFAULT_POLICY.services
    changes = {}
    for name, fields in services.items():
        rule = getattr(current, name)
        changes[name] = dataclasses.replace(rule, **fields) if isinstance(fields, dict) else fields
    return dataclasses.replace(
        rules.DEFAULT_POLICY, services=dataclasses.replace(current, **changes)
    )


class TestDefaults:
    def test_bathing_and_medical_are_intimate_care(self) -> None:
        intimate = {c for c in ServiceCode if rules.DEFAULT_POLICY.services.rule(c).intimate}
        assert intimate == {ServiceCode.BATHING, ServiceCode.MEDICAL}

    def test_lifting_is_certified_from_moderate(self) -> None:
        lifting = rules.DEFAULT_POLICY.services.lifting
        assert lifting.certified_only_from is Level.MODERATE
        assert lifting.certificates == {CertificateKind.NURSE, CertificateKind.CAREGIVER}

    def test_a_version_stored_before_these_rules_reads_with_each_services_default(self) -> None:
        data = default_json()
        del data["services"]["lifting"]
        for rule in data["services"].values():
            del rule["intimate"]
        assert rules.policy_from_json(data) == rules.DEFAULT_POLICY

    @pytest.mark.parametrize(
        ("medical", "level", "certificates"),
        [
            ({"certified_only_from": "mild", "certificates": ["nurse"]}, Level.MILD, {"nurse"}),
            ({"certified_only_from": "severe"}, Level.SEVERE, {"nurse", "caregiver"}),
        ],
    )
    def test_a_version_stored_before_lifting_keeps_its_medical_tuning(
        self, medical: dict[str, Any], level: Level, certificates: set[str]
    ) -> None:
        # Lifting used to be the district's own medical rule: a stored version that tightened
        # medical must not come back with the looser default for lifting.
        data = default_json()
        del data["services"]["lifting"]
        data["services"]["medical"].update(medical)
        lifting = rules.policy_from_json(data).services.lifting
        assert lifting.certified_only_from is level
        assert {c.value for c in lifting.certificates} == certificates

    def test_a_bad_medical_rule_without_lifting_is_a_problem_not_a_crash(self) -> None:
        data = default_json()
        del data["services"]["lifting"]
        data["services"]["medical"]["radius_minutes"] = 1.5
        with pytest.raises(rules.PolicyInvalid) as refused:
            rules.policy_from_json(data)
        assert "services.medical.radius_minutes" in str(refused.value)

    def test_the_matcher_gets_the_default_rules(self) -> None:
        engine = catalogue.matching_policy(0, rules.DEFAULT_POLICY)
        intimate = {s for s, rule in engine.rules.items() if rule.intimate}
        assert intimate == {matching.Service.BATHING, matching.Service.MEDICAL}
        assert engine.lifting_from_grade is matching.Grade.MODERATE
        assert engine.lifting_any_of == {
            matching.CertificateKind.NURSE,
            matching.CertificateKind.CAREGIVER,
        }


class TestValidation:
    @pytest.mark.parametrize(
        ("change", "path"),
        [
            (
                lambda d: d["services"]["bathing"].update(intimate="yes"),
                "services.bathing.intimate",
            ),
            (
                lambda d: d["services"]["lifting"].update(certificates=[]),
                "services.lifting.certificates",
            ),
            (
                lambda d: d["services"]["lifting"].update(certified_only_from="sometimes"),
                "services.lifting.certified_only_from",
            ),
            (
                lambda d: d["services"]["lifting"].pop("certificates"),
                "services.lifting.certificates",
            ),
            (
                lambda d: d["services"]["lifting"].update(radius_minutes=5),
                "services.lifting.radius_minutes",
            ),
        ],
    )
    def test_a_bad_rule_is_refused_at_its_field(self, change: Any, path: str) -> None:
        data = default_json()
        change(data)
        with pytest.raises(rules.PolicyInvalid) as info:
            rules.policy_from_json(data)
        assert info.value.problems[0][0] == path

    async def test_the_policy_endpoint_refuses_it_and_writes_nothing(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        data = default_json()
        data["services"]["lifting"]["certificates"] = []
        body = {"effective_from": (now_utc() + timedelta(days=1)).isoformat(), "content": data}
        before = await DistrictPolicy.filter(district=town.east).count()
        path = f"/api/v1/districts/{town.east.id}/policies"
        response = await post(client, town["centre_admin"], path, body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "policy_invalid"
        assert error["details"][0]["field"] == "content.services.lifting.certificates"
        assert await DistrictPolicy.filter(district=town.east).count() == before

    async def test_the_policy_endpoint_stores_a_tuned_version(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        data = default_json()
        data["services"]["cleaning"]["intimate"] = True
        data["services"]["lifting"] = {"certified_only_from": "severe", "certificates": ["nurse"]}
        body = {"effective_from": (now_utc() + timedelta(days=1)).isoformat(), "content": data}
        path = f"/api/v1/districts/{town.east.id}/policies"
        response = await post(client, town["centre_admin"], path, body)
        assert response.status_code == 201, response.text
        stored = await DistrictPolicy.filter(district=town.east).order_by("-version").first()
        assert stored is not None
        policy = rules.policy_from_json(stored.content)
        assert policy.services.cleaning.intimate is True
        assert policy.services.lifting == LiftingRule(
            Level.SEVERE, frozenset({CertificateKind.NURSE})
        )


class TestIntimateCareTuned:
    """The district makes cleaning intimate care and bathing not."""

    @pytest.fixture
    async def tuned_town(self, town: City) -> City:
        await adopt_policy(town, tuned(cleaning={"intimate": True}, bathing={"intimate": False}))
        await ElderProfile.filter(user_id=town["elder"].user.id).update(
            preferences={"helper_gender_for_intimate_care": "female"}
        )
        await User.filter(id=town["volunteer"].user.id).update(gender="male")
        await User.filter(id=town["provider_staff"].user.id).update(gender="male")
        return town

    async def dispatch(
        self, client: httpx.AsyncClient, town: City, booking_id: str
    ) -> httpx.Response:
        path = f"/api/v1/bookings/{booking_id}/dispatch"
        body = {"helper_id": str(town["volunteer"].user.id), "reason": "called them"}
        return await post(client, town["centre_admin"], path, body)

    async def test_dispatch_honours_the_preference_for_cleaning(
        self, client: httpx.AsyncClient, tuned_town: City
    ) -> None:
        booking = await book(client, tuned_town["elder"], service="cleaning")
        before = await snapshot()
        response = await self.dispatch(client, tuned_town, booking["id"])
        assert response.status_code == 403
        assert response.json()["error"]["details"] == {
            "rule": "services.cleaning.intimate",
            "policy_version": 1,
        }
        assert await snapshot() == before

    async def test_dispatch_no_longer_binds_it_for_bathing(
        self, client: httpx.AsyncClient, tuned_town: City
    ) -> None:
        booking = await book(client, tuned_town["elder"], service="bathing")
        response = await self.dispatch(client, tuned_town, booking["id"])
        assert response.status_code == 201, response.text

    async def test_the_matcher_offers_cleaning_to_nobody_of_the_wrong_gender(
        self, client: httpx.AsyncClient, tuned_town: City
    ) -> None:
        booking = await book(client, tuned_town["elder"], service="cleaning")
        assert await run_round() == 0
        assert await Offer.filter(booking_id=booking["id"]).count() == 0

    async def test_the_matcher_offers_bathing_to_them(
        self, client: httpx.AsyncClient, tuned_town: City
    ) -> None:
        booking = await book(client, tuned_town["elder"], service="bathing")
        assert await run_round() == 1
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.helper_id == tuned_town["volunteer"].user.id  # type: ignore[attr-defined]


class TestLiftingTuned:
    async def test_a_district_that_certifies_lifting_only_from_severe_lets_volunteers_lift(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="moderate")
        await adopt_policy(
            town, tuned(lifting=LiftingRule(Level.SEVERE, frozenset({CertificateKind.NURSE})))
        )
        booking = await book(client, town["elder"], service="escort", needs_lifting=True)
        assert await run_round() == 1
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.helper_id == town["volunteer"].user.id  # type: ignore[attr-defined]

    async def test_the_districts_lifting_certificates_are_the_ones_asked_for(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="severe")
        await adopt_policy(
            town, tuned(lifting=LiftingRule(Level.MODERATE, frozenset({CertificateKind.FIRST_AID})))
        )
        # A nurse's licence no longer qualifies: this district asks for first aid.
        await Certificate.create(
            helper_id=town["provider_staff"].user.id,
            kind="nursing",
            number_enc="x",
            expires_on=(now() + timedelta(days=365)).date(),
            verified_at=now(),
        )
        booking = await book(client, town["elder"], service="escort", needs_lifting=True)
        path = f"/api/v1/bookings/{booking['id']}/dispatch"
        body = {"helper_id": str(town["provider_staff"].user.id), "reason": "called them"}
        response = await post(client, town["centre_admin"], path, body)
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["details"] == {"rule": "services.lifting.certificates", "policy_version": 1}
        assert "first_aid" in error["message"]
        assert await run_round() == 0


class TestCatalogue:
    async def test_the_catalogue_shows_the_districts_rules(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        lifting = LiftingRule(Level.SEVERE, frozenset({CertificateKind.FIRST_AID}))
        await adopt_policy(town, tuned(cleaning={"intimate": True}, lifting=lifting))
        path = f"/api/v1/districts/{town.east.id}/catalogue"
        response = await client.get(path, headers=town["elder"].headers)
        assert response.status_code == 200, response.text
        body = response.json()
        intimate = sorted(s["code"] for s in body["services"] if s["intimate"])
        assert intimate == ["bathing", "cleaning", "medical"]
        assert body["lifting"] == {"certified_only_from": "severe", "certificates": ["first_aid"]}
