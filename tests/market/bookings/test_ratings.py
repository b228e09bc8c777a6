"""Ratings after settlement feed the helper's average, which the matcher reads."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from market.models import HelperProfile
from tests.market.bookings.world import completed_booking, neighbourhood, post
from tests.market.conftest import City


@pytest.fixture
async def town(city: City) -> City:
    return await neighbourhood(city)


async def settled_booking(client: httpx.AsyncClient, town: City) -> str:
    booking = await completed_booking(client, town)
    confirmed = await post(client, town["elder"], f"/api/v1/bookings/{booking['id']}/confirm")
    assert confirmed.json()["booking"]["state"] == "settled", confirmed.text
    return booking["id"]  # type: ignore[no-any-return]


class TestRatings:
    async def test_ratings_given_at_once_all_count(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        ids = [await settled_booking(client, town) for _ in range(3)]
        answers = await asyncio.gather(
            *(
                post(client, town["elder"], f"/api/v1/bookings/{i}/rate", {"stars": stars})
                for i, stars in zip(ids, (5, 4, 2), strict=True)
            )
        )
        assert [a.status_code for a in answers] == [200, 200, 200]
        profile = await HelperProfile.get(user_id=town["volunteer"].user.id)
        assert (profile.rating_sum, profile.rating_count) == (11, 3)

    async def test_a_booking_is_rated_once(self, client: httpx.AsyncClient, town: City) -> None:
        booking_id = await settled_booking(client, town)
        path = f"/api/v1/bookings/{booking_id}/rate"
        assert (await post(client, town["elder"], path, {"stars": 5})).status_code == 200
        again = await post(client, town["elder"], path, {"stars": 1})
        assert again.status_code == 409
        profile = await HelperProfile.get(user_id=town["volunteer"].user.id)
        assert (profile.rating_sum, profile.rating_count) == (5, 1)

    @pytest.mark.parametrize("body", [{"stars": 0}, {"stars": 6}, {"stars": "5"}, {}])
    async def test_stars_outside_one_to_five_are_refused(
        self, client: httpx.AsyncClient, town: City, body: dict[str, object]
    ) -> None:
        booking_id = await settled_booking(client, town)
        response = await post(client, town["elder"], f"/api/v1/bookings/{booking_id}/rate", body)
        assert response.status_code == 422
        profile = await HelperProfile.get(user_id=town["volunteer"].user.id)
        assert profile.rating_count == 0
