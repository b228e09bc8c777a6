"""Monthly coverage: visited / required per tier against the 100% monthly target."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from market.services.runtime import Runtime
from tests.market.conftest import City
from tests.market.visits.conftest import elder_with, seed_visit

MONTH = "2026-10"


def in_october(day: int) -> datetime:
    return datetime(2026, 10, day, 10, 0, tzinfo=UTC)


def coverage_url(city: City, month: str = MONTH) -> str:
    return f"/api/v1/districts/{city.east.id}/visit-coverage?month={month}"


class TestCoverage:
    async def test_counts_per_tier_and_the_monthly_rate(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        admin = city["centre_admin"]
        weekly = await elder_with(client, runtime, city.east_community, flags=["living_alone"])
        weekly_short = await elder_with(
            client, runtime, city.east_community, flags=["living_alone"]
        )
        monthly = await elder_with(client, runtime, city.east_community, flags=["disabled"])
        missed = await elder_with(client, runtime, city.east_community, flags=["lost_only_child"])
        for day in (1, 8, 15, 22):
            await seed_visit(weekly, admin, in_october(day), runtime)
        await seed_visit(weekly_short, admin, in_october(3), runtime)
        await seed_visit(monthly, admin, in_october(31), runtime)
        # Outside the month on both sides: not counted.
        await seed_visit(missed, admin, datetime(2026, 9, 30, 23, 59, tzinfo=UTC), runtime)
        await seed_visit(missed, admin, datetime(2026, 11, 1, 0, 0, tzinfo=UTC), runtime)
        response = await client.get(coverage_url(city), headers=admin.headers)
        assert response.status_code == 200, response.text
        cover = response.json()["coverage"]
        rows = {row["tier"]: row for row in cover["tiers"]}
        assert rows["high_risk"] == {
            "tier": "high_risk",
            "elders": 2,
            "visits_required_each": 4,
            "visited": 2,
            "fully_covered": 1,
            "visits": 5,
            "visited_rate_bp": 10_000,
        }
        assert (rows["priority"]["elders"], rows["priority"]["visited"]) == (2, 1)
        # The seeded city elder (1940, no flags) is general: quarterly, nothing required monthly.
        assert rows["general"]["visits_required_each"] == 0
        assert rows["general"]["elders"] == 1
        assert (cover["monthly_elders"], cover["monthly_visited"]) == (4, 3)
        assert cover["monthly_rate_bp"] == 7500
        assert cover["target_bp"] == 10_000
        assert cover["target_met"] is False

    async def test_all_visited_meets_the_target(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        admin = city["centre_admin"]
        elder = await elder_with(client, runtime, city.east_community, flags=["disabled"])
        await seed_visit(elder, admin, in_october(12), runtime)
        cover = (await client.get(coverage_url(city), headers=admin.headers)).json()["coverage"]
        assert cover["monthly_rate_bp"] == 10_000
        assert cover["target_met"] is True

    async def test_month_missing_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(
            f"/api/v1/districts/{city.east.id}/visit-coverage", headers=city["centre_admin"].headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "month"

    async def test_month_thirteen_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(
            coverage_url(city, "2026-13"), headers=city["centre_admin"].headers
        )
        assert response.status_code == 422

    async def test_admin_of_another_district_is_refused(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        response = await client.get(coverage_url(city), headers=city.west_admin.headers)
        assert response.status_code == 403
