"""The centre's overdue queue: order, the 24-hour rule after a major change, paging, scope."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from market.models import Role
from market.services.runtime import Runtime
from tests.market.conftest import City, make_actor
from tests.market.visits.conftest import elder_with, now, seed_change, seed_visit


def queue_url(city: City, query: str = "") -> str:
    return f"/api/v1/districts/{city.east.id}/visit-queue{query}"


def minutes_between(later: datetime, earlier: datetime) -> int:
    return int((later - earlier).total_seconds()) // 60


class TestOrder:
    async def test_most_overdue_first_across_tiers(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        admin = city["centre_admin"]
        high = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        priority = await elder_with(client, runtime, city.east_street, flags=["disabled"])
        general = await elder_with(client, runtime, city.east_community, flags=[])
        t = now()
        await seed_visit(high, admin, t - timedelta(days=10), runtime)  # 3 days overdue
        await seed_visit(priority, admin, t - timedelta(days=40), runtime)  # 10 days overdue
        await seed_visit(general, admin, t - timedelta(days=92), runtime)  # 1 day overdue
        response = await client.get(queue_url(city, "?overdue_only=true"), headers=admin.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        order = [(e["elder_id"], e["tier"]) for e in body["elders"]]
        assert order == [
            (str(priority.user.id), "priority"),
            (str(high.user.id), "high_risk"),
            (str(general.user.id), "general"),
        ]
        overdue = [e["overdue_minutes"] for e in body["elders"]]
        assert abs(overdue[0] - 10 * 24 * 60) <= 1
        assert abs(overdue[1] - 3 * 24 * 60) <= 1

    async def test_elders_not_yet_due_come_after_and_are_not_overdue(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        admin = city["centre_admin"]
        fresh = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        late = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        await seed_visit(fresh, admin, now() - timedelta(days=1), runtime)
        await seed_visit(late, admin, now() - timedelta(days=8), runtime)
        body = (await client.get(queue_url(city), headers=admin.headers)).json()
        ours = [
            e for e in body["elders"] if e["elder_id"] in {str(fresh.user.id), str(late.user.id)}
        ]
        assert [e["elder_id"] for e in ours] == [str(late.user.id), str(fresh.user.id)]
        assert ours[1]["overdue_minutes"] == 0
        only = (
            await client.get(queue_url(city, "?overdue_only=true"), headers=admin.headers)
        ).json()
        assert str(fresh.user.id) not in {e["elder_id"] for e in only["elders"]}

    async def test_never_visited_elder_is_due_an_interval_after_registration(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        elder = await elder_with(
            client, runtime, city.east_community, flags=["disabled"], registered_days_ago=31
        )
        body = (
            await client.get(
                queue_url(city, "?overdue_only=true"), headers=city["centre_admin"].headers
            )
        ).json()
        [entry] = [e for e in body["elders"] if e["elder_id"] == str(elder.user.id)]
        assert entry["last_visit_at"] is None
        assert abs(entry["overdue_minutes"] - 24 * 60) <= 1

    async def test_elders_below_every_tier_are_not_listed(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        young = await elder_with(client, runtime, city.east_community, flags=[], birth_year=1975)
        body = (await client.get(queue_url(city), headers=city["centre_admin"].headers)).json()
        assert str(young.user.id) not in {e["elder_id"] for e in body["elders"]}


class TestMajorChangeRule:
    async def test_high_risk_elder_is_due_24_hours_after_a_major_change(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        admin = city["centre_admin"]
        elder = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        t = now()
        await seed_visit(elder, admin, t - timedelta(days=2), runtime)
        change_at = t - timedelta(hours=30)
        await seed_change(elder, change_at, admin)
        body = (await client.get(queue_url(city), headers=admin.headers)).json()
        [entry] = [e for e in body["elders"] if e["elder_id"] == str(elder.user.id)]
        due = datetime.fromisoformat(entry["due_at"])
        assert due == change_at + timedelta(hours=24)
        assert abs(entry["overdue_minutes"] - 6 * 60) <= 1
        assert body["elders"][0]["elder_id"] == str(elder.user.id)

    async def test_a_visit_after_the_change_answers_it(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        admin = city["centre_admin"]
        elder = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        t = now()
        await seed_change(elder, t - timedelta(hours=30), admin)
        await seed_visit(elder, admin, t - timedelta(hours=20), runtime)
        body = (await client.get(queue_url(city), headers=admin.headers)).json()
        [entry] = [e for e in body["elders"] if e["elder_id"] == str(elder.user.id)]
        assert entry["overdue_minutes"] == 0
        assert (
            abs(minutes_between(datetime.fromisoformat(entry["due_at"]), t) - (7 * 24 - 20) * 60)
            <= 1
        )

    async def test_recorded_change_moves_the_elder_to_the_front(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        admin = city["centre_admin"]
        calm = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        fallen = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        t = now()
        await seed_visit(calm, admin, t - timedelta(days=7, hours=1), runtime)
        await seed_visit(fallen, admin, t - timedelta(days=3), runtime)
        response = await client.post(
            f"/api/v1/elders/{fallen.user.id}/major-changes",
            headers=admin.headers,
            json={"kind": "fall", "at": (t - timedelta(hours=26)).isoformat()},
        )
        assert response.status_code == 201, response.text
        body = (
            await client.get(queue_url(city, "?overdue_only=true"), headers=admin.headers)
        ).json()
        assert [e["elder_id"] for e in body["elders"]][:2] == [
            str(fallen.user.id),
            str(calm.user.id),
        ]


class TestPaging:
    async def test_limit_and_offset_page_the_same_order(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        admin = city["centre_admin"]
        for days in (10, 20, 30):
            elder = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
            await seed_visit(elder, admin, now() - timedelta(days=days), runtime)
        full = (await client.get(queue_url(city), headers=admin.headers)).json()
        first = (await client.get(queue_url(city, "?limit=1"), headers=admin.headers)).json()
        second = (
            await client.get(queue_url(city, "?limit=1&offset=1"), headers=admin.headers)
        ).json()
        assert first["total"] == full["total"] >= 3
        assert [first["elders"][0], second["elders"][0]] == full["elders"][:2]

    async def test_limit_above_the_bound_is_422(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.get(
            queue_url(city, "?limit=201"), headers=city["centre_admin"].headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"] == [
            {"field": "limit", "problem": "must be a whole number from 1 to 200"}
        ]

    async def test_non_numeric_offset_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(
            queue_url(city, "?offset=-1"), headers=city["centre_admin"].headers
        )
        assert response.status_code == 422

    async def test_bad_flag_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(
            queue_url(city, "?overdue_only=yes"), headers=city["centre_admin"].headers
        )
        assert response.status_code == 422


class TestScope:
    async def test_admin_of_another_district_is_refused(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.get(queue_url(city), headers=city.west_admin.headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "district_forbidden"

    async def test_volunteer_is_refused(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(queue_url(city), headers=city["volunteer"].headers)
        assert response.status_code == 403

    async def test_community_admin_sees_only_the_community(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:

        street_elder = await elder_with(client, runtime, city.east_street, flags=["disabled"])
        local = await make_actor(client, runtime, Role.centre_admin, city.east_community)
        body = (
            await client.get(
                f"/api/v1/districts/{city.east_community.id}/visit-queue", headers=local.headers
            )
        ).json()
        ids = {e["elder_id"] for e in body["elders"]}
        assert str(city["elder"].user.id) in ids
        assert str(street_elder.user.id) not in ids
