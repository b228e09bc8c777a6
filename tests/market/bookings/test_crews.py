"""Certified bathing goes to a crew of provider staff as large as the policy asks (two by
default); the centre sets the crew; why a booking waits is kept on it and told once."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from market.models import Booking, Certificate, ElderProfile, HelperProfile, Offer
from market.realtime.models import StoredEvent
from tests.market.bookings.world import book, neighbourhood, now, post, run_round, snapshot
from tests.market.conftest import City


@pytest.fixture
async def bath_town(city: City) -> City:
    """A moderate elder; the provider staff hold a verified bathing certificate."""
    town = await neighbourhood(city)
    await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="moderate")
    await Certificate.create(
        helper_id=town["provider_staff"].user.id,
        kind="bathing",
        number_enc="x",
        expires_on=(now() + timedelta(days=365)).date(),
        verified_at=now(),
    )
    return town


async def set_crew(client: httpx.AsyncClient, town: City, size: int) -> httpx.Response:
    path = f"/api/v1/helpers/{town['provider_staff'].user.id}/crew"
    return await post(client, town["centre_admin"], path, {"crew_size": size})


async def unmatched_events(booking_id: str) -> int:
    events = await StoredEvent.filter(kind="booking.unmatched").values_list("payload", flat=True)
    return sum(1 for payload in events if payload["booking_id"] == booking_id)  # type: ignore[index]


class TestCrews:
    async def test_a_single_certified_bather_is_not_offered_and_the_booking_says_why(
        self, client: httpx.AsyncClient, bath_town: City
    ) -> None:
        booking = await book(client, bath_town["elder"], service="bathing")
        assert await run_round() == 0
        stored = await Booking.get(id=booking["id"])
        assert stored.match_note is not None
        assert stored.match_note["code"] == "crew_too_small"
        assert stored.match_note["message"]
        view = await client.get(
            f"/api/v1/bookings/{booking['id']}", headers=bath_town["family"].headers
        )
        assert view.json()["booking"]["match_note"]["code"] == "crew_too_small"
        # Told once on the elder's stream (family reads it) and once on the centre's.
        assert await unmatched_events(booking["id"]) == 2
        # The same reason next round is not told again.
        assert await run_round() == 0
        assert await unmatched_events(booking["id"]) == 2

    async def test_a_crew_of_two_gets_the_offer_and_the_note_is_cleared(
        self, client: httpx.AsyncClient, bath_town: City
    ) -> None:
        booking = await book(client, bath_town["elder"], service="bathing")
        await run_round()
        response = await set_crew(client, bath_town, 2)
        assert response.status_code == 200, response.text
        assert response.json()["helper"]["crew_size"] == 2
        assert await run_round() == 1
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.helper_id == bath_town["provider_staff"].user.id  # type: ignore[attr-defined]
        assert (await Booking.get(id=booking["id"])).match_note is None

    async def test_dispatching_a_crew_too_small_names_the_rule(
        self, client: httpx.AsyncClient, bath_town: City
    ) -> None:
        booking = await book(client, bath_town["elder"], service="bathing")
        before = await snapshot()
        body = {"helper_id": str(bath_town["provider_staff"].user.id), "reason": "on call"}
        path = f"/api/v1/bookings/{booking['id']}/dispatch"
        response = await post(client, bath_town["centre_admin"], path, body)
        assert response.status_code == 403
        assert response.json()["error"]["details"]["rule"] == "services.bathing.certified_min_staff"
        assert await snapshot() == before


class TestSetCrew:
    async def test_a_volunteer_serves_alone(self, client: httpx.AsyncClient, city: City) -> None:
        path = f"/api/v1/helpers/{city['volunteer'].user.id}/crew"
        response = await post(client, city["centre_admin"], path, {"crew_size": 2})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "crew_volunteer"
        profile = await HelperProfile.get(user_id=city["volunteer"].user.id)
        assert profile.crew_size == 1

    @pytest.mark.parametrize("body", [{"crew_size": 0}, {"crew_size": 11}, {"crew_size": "2"}, {}])
    async def test_bad_sizes_are_422(
        self, client: httpx.AsyncClient, city: City, body: dict[str, object]
    ) -> None:
        path = f"/api/v1/helpers/{city['provider_staff'].user.id}/crew"
        response = await post(client, city["centre_admin"], path, body)
        assert response.status_code == 422
        profile = await HelperProfile.get(user_id=city["provider_staff"].user.id)
        assert profile.crew_size == 1

    async def test_the_helper_may_not_set_their_own_crew(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        path = f"/api/v1/helpers/{city['provider_staff'].user.id}/crew"
        response = await post(client, city["provider_staff"], path, {"crew_size": 2})
        assert response.status_code == 403
