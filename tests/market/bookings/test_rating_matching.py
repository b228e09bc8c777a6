"""What a rating changes later: the helper's average reaches the matcher, a helper the elder
rated well is kept for the elder's next booking (continuity) and one rated poorly is not, and a
provider's staff's stars show beside its official star grade."""

from __future__ import annotations

import httpx
import pytest

from market.models import HelperProfile, Offer, Role
from market.services.runtime import Runtime
from tests.market.bookings.payworld import booked_and_served, only_provider_staff
from tests.market.bookings.world import (
    book,
    completed_booking,
    neighbourhood,
    place_helper,
    post,
    priced_provider,
    run_round,
)
from tests.market.conftest import Actor, City, make_actor


@pytest.fixture
async def town(city: City) -> City:
    return await neighbourhood(city)


async def served_and_rated(client: httpx.AsyncClient, town: City, stars: int) -> str:
    """A booking the volunteer served, the elder confirmed and rated."""
    booking = await completed_booking(client, town)
    base = f"/api/v1/bookings/{booking['id']}"
    assert (await post(client, town["elder"], f"{base}/confirm")).status_code == 200
    response = await post(client, town["elder"], f"{base}/rate", {"stars": stars})
    assert response.status_code == 200, response.text
    return str(booking["id"])


async def next_offer(client: httpx.AsyncClient, town: City) -> Offer:
    """The offer one matching round makes for a new booking of the elder."""
    booking = await book(client, town["elder"])
    assert await run_round() == 1
    return await Offer.get(booking_id=booking["id"])


async def rival(client: httpx.AsyncClient, runtime: Runtime, town: City, average: int) -> Actor:
    """A second volunteer at the elder's door (nearer than the first), with the same average
    stars from other elders as the first volunteer has: only continuity tells them apart."""
    other = await make_actor(client, runtime, Role.volunteer, town.east_community)
    await place_helper(other, lat=30.0, lon=120.0)
    await HelperProfile.filter(user_id=other.user.id).update(rating_sum=average, rating_count=1)
    return other


class TestAverageReachesTheMatcher:
    async def test_the_offer_costs_the_helpers_average_stars(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        first = await completed_booking(client, town)
        unrated = await Offer.get(booking_id=first["id"])
        # Not yet rated: the neutral four stars, 20 points per star below five.
        assert unrated.cost["rating"] == 20
        base = f"/api/v1/bookings/{first['id']}"
        await post(client, town["elder"], f"{base}/confirm")
        assert (await post(client, town["elder"], f"{base}/rate", {"stars": 3})).status_code == 200
        offer = await next_offer(client, town)
        assert offer.helper_id == town["volunteer"].user.id  # type: ignore[attr-defined]
        assert offer.cost["rating"] == 40
        # Three stars is below the continuity threshold: no bonus for having served before.
        assert offer.cost["continuity"] == 0

    async def test_a_better_average_wins_an_otherwise_equal_choice(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await served_and_rated(client, town, 1)
        # Both at the same spot; the other has no stars yet (the neutral four).
        other = await make_actor(client, runtime, Role.volunteer, town.east_community)
        await place_helper(other)
        offer = await next_offer(client, town)
        assert offer.helper_id == other.user.id  # type: ignore[attr-defined]


class TestContinuity:
    async def test_a_helper_the_elder_rated_well_is_kept(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await served_and_rated(client, town, 5)
        await rival(client, runtime, town, average=5)
        offer = await next_offer(client, town)
        assert offer.helper_id == town["volunteer"].user.id  # type: ignore[attr-defined]
        assert offer.cost["continuity"] == -100

    async def test_a_helper_the_elder_rated_poorly_is_not(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await served_and_rated(client, town, 2)
        other = await rival(client, runtime, town, average=2)
        offer = await next_offer(client, town)
        # The nearer helper wins, as it would for an elder the first had never served.
        assert offer.helper_id == other.user.id  # type: ignore[attr-defined]
        assert offer.cost["continuity"] == 0


class TestProviderGrade:
    async def test_the_staffs_stars_show_beside_the_official_grade(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        provider = await priced_provider(town, cleaning=4500)
        await only_provider_staff(town)
        admin = town["centre_admin"]
        listed = await client.get("/api/v1/providers", headers=admin.headers)
        (before,) = listed.json()["providers"]
        assert before["rating"] == {"average": None, "count": 0}
        for stars in (5, 2):
            view = await booked_and_served(
                client, town, town["provider_staff"], town["elder"], payment="self"
            )
            path = f"/api/v1/bookings/{view['id']}/rate"
            assert (await post(client, town["elder"], path, {"stars": stars})).status_code == 200
        listed = await client.get("/api/v1/providers", headers=admin.headers)
        (after,) = listed.json()["providers"]
        assert after["id"] == str(provider.id)
        assert after["rating"] == {"average": 3.5, "count": 2}
        # The official grade is the centre's assessment; the elders' stars sit beside it.
        assert after["star_grade"] == before["star_grade"] == provider.star_grade
