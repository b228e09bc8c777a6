"""A need found on a visit becomes a booking request for the elder."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from market.models import Booking
from market.services.runtime import Runtime
from market.visits.models import VisitRecord
from tests.market.conftest import City
from tests.market.visits.conftest import events, iso, now, visit_body


async def recorded_visit(client: httpx.AsyncClient, city: City) -> str:
    response = await client.post(
        f"/api/v1/elders/{city['elder'].user.id}/visits",
        headers=city["volunteer"].headers,
        json=visit_body(),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["visit"]["id"])


def referral(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service": "bathing",
        "window_start": iso(now() + timedelta(days=2)),
        "window_end": iso(now() + timedelta(days=2, hours=4)),
        "notes": "found on the check-in visit: cannot bathe alone",
    }
    body.update(overrides)
    return body


class TestReferral:
    async def test_creates_a_booking_request_for_the_elder(
        self, client: httpx.AsyncClient, city: City, runtime: Runtime
    ) -> None:
        visit_id = await recorded_visit(client, city)
        response = await client.post(
            f"/api/v1/visits/{visit_id}/referrals",
            headers=city["centre_admin"].headers,
            json=referral(),
        )
        assert response.status_code == 201, response.text
        [view] = response.json()["bookings"]
        booking = await Booking.get(id=view["id"])
        assert booking.elder_id == city["elder"].user.id  # type: ignore[attr-defined]
        assert booking.service == "bathing"
        assert booking.created_by_id == city["centre_admin"].user.id  # type: ignore[attr-defined]
        visit = await VisitRecord.get(id=visit_id)
        assert visit.referral_booking_ids == [str(booking.id)]
        [event] = await events("visit.referred")
        assert event.payload["bookings"] == [str(booking.id)]

    async def test_the_same_referral_again_is_the_same_booking(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        visit_id = await recorded_visit(client, city)
        body = referral()
        url = f"/api/v1/visits/{visit_id}/referrals"
        first = await client.post(url, headers=city["centre_admin"].headers, json=body)
        again = await client.post(url, headers=city["centre_admin"].headers, json=body)
        assert again.status_code == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["bookings"][0]["id"] == first.json()["bookings"][0]["id"]
        assert await Booking.all().count() == 1
        assert len((await VisitRecord.get(id=visit_id)).referral_booking_ids) == 1

    async def test_window_in_the_past_is_422_and_books_nothing(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        visit_id = await recorded_visit(client, city)
        body = referral(window_start=iso(now() - timedelta(days=1)), window_end=None)
        response = await client.post(
            f"/api/v1/visits/{visit_id}/referrals", headers=city["centre_admin"].headers, json=body
        )
        assert response.status_code == 422
        assert await Booking.all().count() == 0
        assert (await VisitRecord.get(id=visit_id)).referral_booking_ids == []

    async def test_unknown_service_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        visit_id = await recorded_visit(client, city)
        response = await client.post(
            f"/api/v1/visits/{visit_id}/referrals",
            headers=city["centre_admin"].headers,
            json=referral(service="massage"),
        )
        assert response.status_code == 422
        assert await Booking.all().count() == 0

    async def test_admin_of_another_district_is_refused(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        visit_id = await recorded_visit(client, city)
        response = await client.post(
            f"/api/v1/visits/{visit_id}/referrals", headers=city.west_admin.headers, json=referral()
        )
        assert response.status_code == 403
        assert await Booking.all().count() == 0

    async def test_the_visiting_volunteer_may_not_book(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        visit_id = await recorded_visit(client, city)
        response = await client.post(
            f"/api/v1/visits/{visit_id}/referrals",
            headers=city["volunteer"].headers,
            json=referral(),
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_forbidden"
        assert await Booking.all().count() == 0

    async def test_unknown_visit_is_404(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.post(
            f"/api/v1/visits/{city['elder'].user.id}/referrals",
            headers=city["centre_admin"].headers,
            json=referral(),
        )
        assert response.status_code == 404
        assert await Booking.all().count() == 0
