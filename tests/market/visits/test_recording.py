"""Recording visits and major changes: who may, what is refused, what reaches the database."""

from __future__ import annotations

from datetime import timedelta

import httpx

from market.models import (
    AccessLog,
    District,
    DistrictLevel,
    ElderProfile,
    HelperProfile,
    Role,
    VettingStatus,
)
from market.realtime.topics import admin_stream
from market.services.keys import rotate_field_key
from market.services.runtime import Runtime
from tests.market.conftest import City, make_actor
from tests.market.visits.conftest import (
    FINANCES,
    HEALTH,
    change_rows,
    events,
    iso,
    now,
    raw_table,
    visit_body,
    visit_rows,
)


def visits_url(city: City) -> str:
    return f"/api/v1/elders/{city['elder'].user.id}/visits"


class TestRecordVisit:
    async def test_centre_admin_records_and_the_district_feed_hears_it(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=visit_body()
        )
        assert response.status_code == 201, response.text
        visit = response.json()["visit"]
        assert visit["visitor_id"] == str(city["centre_admin"].user.id)
        assert visit["record"]["health"] == HEALTH
        assert visit["district_id"] == str(city.east_community.id)
        [event] = await events("visit.recorded")
        assert event.stream == admin_stream(city.east_community.id)
        assert event.payload["visit"] == visit["id"]
        # 1940-born, no flags: general tier, next due a quarter after this visit.
        assert event.payload["tier"] == "general"

    async def test_vetted_volunteer_of_the_district_records_own_visit(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.post(
            visits_url(city), headers=city["volunteer"].headers, json=visit_body(method="phone")
        )
        assert response.status_code == 201, response.text
        assert response.json()["visit"]["visitor_id"] == str(city["volunteer"].user.id)

    async def test_volunteer_of_the_street_above_may_visit_its_communities(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        street_volunteer = await make_actor(client, runtime, Role.volunteer, city.east_street)
        response = await client.post(
            visits_url(city), headers=street_volunteer.headers, json=visit_body()
        )
        assert response.status_code == 201, response.text

    async def test_admin_records_a_visit_made_by_a_helper(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        body = visit_body(visitor_id=str(city["provider_staff"].user.id))
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=body
        )
        assert response.status_code == 201, response.text
        assert response.json()["visit"]["visitor_id"] == str(city["provider_staff"].user.id)

    async def test_admin_of_another_district_is_refused(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.post(
            visits_url(city), headers=city.west_admin.headers, json=visit_body()
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "visit_forbidden"
        assert await visit_rows() == []

    async def test_family_may_not_record(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            visits_url(city), headers=city["family"].headers, json=visit_body()
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_forbidden"
        assert await visit_rows() == []

    async def test_unvetted_volunteer_is_refused(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        newcomer = await make_actor(client, runtime, Role.volunteer, city.east_community)
        await HelperProfile.filter(user_id=newcomer.user.id).update(
            vetting_status=VettingStatus.pending
        )
        response = await client.post(visits_url(city), headers=newcomer.headers, json=visit_body())
        assert response.status_code == 403
        assert await visit_rows() == []

    async def test_volunteer_of_another_district_is_refused(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        outsider = await make_actor(client, runtime, Role.volunteer, city.west)
        response = await client.post(visits_url(city), headers=outsider.headers, json=visit_body())
        assert response.status_code == 403
        assert await visit_rows() == []

    async def test_volunteer_of_a_sibling_community_is_refused(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        sibling = await District.create(
            code="east-s1-c2", name="River", level=DistrictLevel.community, parent=city.east_street
        )
        neighbour = await make_actor(client, runtime, Role.volunteer, sibling)
        response = await client.post(visits_url(city), headers=neighbour.headers, json=visit_body())
        assert response.status_code == 403
        assert await visit_rows() == []

    async def test_helper_may_not_record_for_someone_else(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        body = visit_body(visitor_id=str(city["provider_staff"].user.id))
        response = await client.post(visits_url(city), headers=city["volunteer"].headers, json=body)
        assert response.status_code == 403
        assert await visit_rows() == []

    async def test_admin_may_not_name_a_family_member_as_visitor(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        body = visit_body(visitor_id=str(city["family"].user.id))
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=body
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "visitor_not_eligible"
        assert await visit_rows() == []

    async def test_unknown_method_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=visit_body(method="pigeon")
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "method"
        assert await visit_rows() == []

    async def test_future_visit_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        body = visit_body(visited_at=iso(now() + timedelta(hours=2)))
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=body
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"] == [
            {"field": "visited_at", "problem": "must not be in the future"}
        ]
        assert await visit_rows() == []

    async def test_visit_older_than_a_quarter_is_422(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        body = visit_body(visited_at=iso(now() - timedelta(days=93)))
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=body
        )
        assert response.status_code == 422
        assert await visit_rows() == []

    async def test_empty_record_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        body = visit_body(record={"health": "", "needs": ""})
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=body
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "record"
        assert await visit_rows() == []

    async def test_unknown_record_section_is_422(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        body = visit_body(record={"health": "fine", "diary": "x"})
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=body
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "record.diary"
        assert await visit_rows() == []

    async def test_naive_time_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        body = visit_body(visited_at="2026-11-20T09:00:00")
        response = await client.post(
            visits_url(city), headers=city["centre_admin"].headers, json=body
        )
        assert response.status_code == 422
        assert await visit_rows() == []

    async def test_not_json_is_400(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            visits_url(city),
            headers={**city["centre_admin"].headers, "Content-Type": "application/json"},
            content=b"{not json",
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "malformed_body"
        assert await visit_rows() == []

    async def test_unknown_elder_is_404(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            f"/api/v1/elders/{city['volunteer'].user.id}/visits",
            headers=city["centre_admin"].headers,
            json=visit_body(),
        )
        assert response.status_code == 404
        assert await visit_rows() == []


class TestEncryptedAtRest:
    async def test_raw_rows_hold_no_findings(self, client: httpx.AsyncClient, city: City) -> None:
        await client.post(visits_url(city), headers=city["centre_admin"].headers, json=visit_body())
        change = {"kind": "bereavement", "at": iso(now()), "note": "丈夫去世，失眠"}
        response = await client.post(
            f"/api/v1/elders/{city['elder'].user.id}/major-changes",
            headers=city["centre_admin"].headers,
            json=change,
        )
        assert response.status_code == 201, response.text
        raw = await raw_table("visit_record") + await raw_table("visit_major_change")
        for secret in (HEALTH, FINANCES, "170/100", "低保", "weekly bath", "失眠"):
            assert secret not in raw


class TestMajorChange:
    def url(self, city: City) -> str:
        return f"/api/v1/elders/{city['elder'].user.id}/major-changes"

    async def test_centre_records_and_feed_hears_the_new_due_time(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await ElderProfile.filter(user_id=city["elder"].user.id).update(flags=["living_alone"])
        at = now() - timedelta(hours=2)
        response = await client.post(
            self.url(city),
            headers=city["centre_admin"].headers,
            json={"kind": "hospital_discharge", "at": iso(at)},
        )
        assert response.status_code == 201, response.text
        schedule = response.json()["schedule"]
        assert schedule["tier"] == "high_risk"
        [event] = await events("visit.due_changed")
        assert event.payload["due_at"] == schedule["due_at"]
        assert event.stream == admin_stream(city.east_community.id)

    async def test_volunteer_may_not_record(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            self.url(city),
            headers=city["volunteer"].headers,
            json={"kind": "fall", "at": iso(now())},
        )
        assert response.status_code == 403
        assert await change_rows() == []

    async def test_admin_of_another_district_is_refused(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.post(
            self.url(city), headers=city.west_admin.headers, json={"kind": "fall", "at": iso(now())}
        )
        assert response.status_code == 403
        assert await change_rows() == []

    async def test_unknown_kind_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            self.url(city),
            headers=city["centre_admin"].headers,
            json={"kind": "holiday", "at": iso(now())},
        )
        assert response.status_code == 422
        assert await change_rows() == []

    async def test_future_change_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            self.url(city),
            headers=city["centre_admin"].headers,
            json={"kind": "fall", "at": iso(now() + timedelta(days=1))},
        )
        assert response.status_code == 422
        assert await change_rows() == []


class TestHistory:
    async def test_centre_reads_decrypted_records_and_the_read_is_logged(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await client.post(visits_url(city), headers=city["volunteer"].headers, json=visit_body())
        response = await client.get(visits_url(city), headers=city["centre_admin"].headers)
        assert response.status_code == 200
        body = response.json()
        assert [v["record"]["health"] for v in body["visits"]] == [HEALTH]
        assert body["schedule"]["tier"] == "general"
        log = await AccessLog.filter(subject_id=city["elder"].user.id, purpose="visit_history")
        assert [entry.actor_id for entry in log] == [city["centre_admin"].user.id]

    async def test_helper_may_not_read(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(visits_url(city), headers=city["volunteer"].headers)
        assert response.status_code == 403
        assert await AccessLog.all().count() == 0

    async def test_admin_of_another_district_may_not_read(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.get(visits_url(city), headers=city.west_admin.headers)
        assert response.status_code == 403
        assert await AccessLog.all().count() == 0


class TestKeyRotation:
    async def test_records_stay_readable_after_rotation(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        await client.post(visits_url(city), headers=city["centre_admin"].headers, json=visit_body())
        before = await raw_table("visit_record")
        report = await rotate_field_key(runtime)
        assert report.reencrypted >= 1
        assert await raw_table("visit_record") != before
        response = await client.get(visits_url(city), headers=city["centre_admin"].headers)
        assert [v["record"]["health"] for v in response.json()["visits"]] == [HEALTH]
