"""Elder records: who may change what, assessments as health data, family links ending."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import httpx
from tortoise.connection import get_connection

from market import assessment, policy
from market.models import AccessLog, DistrictPolicy, FamilyLink, LinkStatus
from tests.market.conftest import City


def scores(total_loss: int = 0) -> dict[str, int]:
    result = {item.code: item.max_score for item in assessment.ITEMS}
    for item in assessment.ITEMS:
        take = min(total_loss, result[item.code])
        result[item.code] -= take
        total_loss -= take
    return result


def assessment_body(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "item_scores": scores(40),
        "assessor_1": "A",
        "assessor_2": "B",
        "informant": "C",
        "assessed_on": "2026-11-01",
        "dementia_or_mental_disorder": True,
    }
    body.update(overrides)
    return body


class TestProfileChanges:
    async def test_elder_cannot_set_own_priority_flags(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        elder = city["elder"]
        response = await client.post(
            f"/api/v1/elders/{elder.user.id}/profile",
            json={"flags": ["economic_hardship"]},
            headers=elder.headers,
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "flags_forbidden"

    async def test_centre_sets_flags(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            f"/api/v1/elders/{city['elder'].user.id}/profile",
            json={"flags": ["living_alone", "very_old"]},
            headers=city["centre_admin"].headers,
        )
        assert response.json()["elder"]["flags"] == ["living_alone", "very_old"]

    async def test_phone_of_another_account_is_a_conflict(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        elder = city["elder"]
        response = await client.post(
            f"/api/v1/elders/{elder.user.id}/profile",
            json={"phone": city["family"].phone},
            headers=elder.headers,
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "phone_taken"


class TestAssessments:
    async def test_level_computed_and_diagnosis_kept_encrypted(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        elder_id = city["elder"].user.id
        response = await client.post(
            f"/api/v1/elders/{elder_id}/assessments",
            json=assessment_body(),
            headers=city["centre_admin"].headers,
        )
        assert response.status_code == 201
        result = response.json()["assessment"]
        assert (result["total"], result["preliminary_level"], result["final_level"]) == (
            50,
            "moderate",
            "severe",
        )
        assert any("dementia" in reason for reason in result["reasons"])
        _, rows = await get_connection("default").execute_query('SELECT * FROM "assessment"')
        assert "dementia" not in str([dict(row) for row in rows])

    async def test_level_cannot_be_sent_by_the_client(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.post(
            f"/api/v1/elders/{city['elder'].user.id}/assessments",
            json=assessment_body(final_level="intact"),
            headers=city["centre_admin"].headers,
        )
        assert response.status_code == 422

    async def test_future_date_is_refused(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            f"/api/v1/elders/{city['elder'].user.id}/assessments",
            json=assessment_body(assessed_on="2199-01-01"),
            headers=city["centre_admin"].headers,
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"] == [
            {"field": "assessed_on", "problem": "must not be in the future"}
        ]

    async def test_family_cannot_read_assessments(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await FamilyLink.create(
            family=city["family"].user,
            elder=city["elder"].user,
            relation="child",
            status="approved",
        )
        response = await client.get(
            f"/api/v1/elders/{city['elder'].user.id}/assessments", headers=city["family"].headers
        )
        assert response.status_code == 403

    async def test_centre_read_is_logged(self, client: httpx.AsyncClient, city: City) -> None:
        elder_id = city["elder"].user.id
        await client.post(
            f"/api/v1/elders/{elder_id}/assessments",
            json=assessment_body(),
            headers=city["centre_admin"].headers,
        )
        response = await client.get(
            f"/api/v1/elders/{elder_id}/assessments", headers=city["centre_admin"].headers
        )
        assert [a["final_level"] for a in response.json()["assessments"]] == ["severe"]
        assert (
            await AccessLog.filter(subject_id=elder_id, purpose="assessment_history").count() == 1
        )


class TestFamilyLinks:
    async def test_concurrent_requests_make_one_link_and_no_500(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        body = {"elder_phone": city["elder"].phone, "relation": "child"}
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/family-links", json=body, headers=city["family"].headers)
                for _ in range(3)
            )
        )
        assert sorted(r.status_code for r in responses)[0] == 201
        assert {r.status_code for r in responses} <= {201, 409}
        assert await FamilyLink.all().count() == 1

    async def test_elder_ends_a_link_and_access_ends(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        link = await FamilyLink.create(
            family=city["family"].user,
            elder=city["elder"].user,
            relation="child",
            status="approved",
        )
        elder_url = f"/api/v1/elders/{city['elder'].user.id}"
        assert (await client.get(elder_url, headers=city["family"].headers)).status_code == 200
        response = await client.post(
            f"/api/v1/family-links/{link.id}/revoke", headers=city["elder"].headers
        )
        assert response.json()["link"]["status"] == "revoked"
        assert (await client.get(elder_url, headers=city["family"].headers)).status_code == 403

    async def test_stranger_cannot_end_a_link(self, client: httpx.AsyncClient, city: City) -> None:
        link = await FamilyLink.create(
            family=city["family"].user, elder=city["elder"].user, relation="child"
        )
        response = await client.post(
            f"/api/v1/family-links/{link.id}/revoke", headers=city.west_admin.headers
        )
        assert response.status_code == 403
        assert (await FamilyLink.get(id=link.id)).status is LinkStatus.pending


async def policy_with_reassessment(city: City, months: int, effective: datetime) -> int:
    """A policy version of `east` with this re-assessment period (written directly: the API
    refuses back-dated versions, and the test needs one already in force)."""
    content = policy.policy_to_json(
        dataclasses.replace(
            policy.DEFAULT_POLICY, assessment=policy.AssessmentRules(reassessment_months=months)
        )
    )
    latest = await DistrictPolicy.filter(district=city.east).order_by("-version").first()
    version = (latest.version if latest else 0) + 1
    await DistrictPolicy.create(
        district=city.east, version=version, effective_from=effective, content=content
    )
    return version


class TestReassessmentSchedule:
    """assessment.reassessment_months of the policy in force on the assessment's date."""

    async def record(self, client: httpx.AsyncClient, city: City, on: str) -> dict[str, object]:
        response = await client.post(
            f"/api/v1/elders/{city['elder'].user.id}/assessments",
            json=assessment_body(assessed_on=on),
            headers=city["centre_admin"].headers,
        )
        assert response.status_code == 201, response.text
        return response.json()["assessment"]  # type: ignore[no-any-return]

    async def test_the_built_in_default_is_six_months(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        body = await self.record(client, city, "2026-03-15")
        assert body["reassessment_due"] == "2026-09-15"
        assert body["reassessment_rule"] == {
            "rule": "assessment.reassessment_months",
            "months": 6,
            "policy_version": 0,
        }

    async def test_the_districts_period_is_used(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        version = await policy_with_reassessment(city, 3, datetime(2026, 1, 1, tzinfo=UTC))
        body = await self.record(client, city, "2026-03-15")
        assert body["reassessment_due"] == "2026-06-15"
        assert body["reassessment_rule"] == {
            "rule": "assessment.reassessment_months",
            "months": 3,
            "policy_version": version,
        }

    async def test_each_assessment_keeps_the_rule_of_its_date(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await policy_with_reassessment(city, 3, datetime(2026, 1, 1, tzinfo=UTC))
        await self.record(client, city, "2025-10-01")  # before the 3-month version
        await self.record(client, city, "2026-02-01")
        response = await client.get(
            f"/api/v1/elders/{city['elder'].user.id}/assessments",
            headers=city["centre_admin"].headers,
        )
        due = [(a["assessed_on"], a["reassessment_due"]) for a in response.json()["assessments"]]
        assert due == [("2026-02-01", "2026-05-01"), ("2025-10-01", "2026-04-01")]
