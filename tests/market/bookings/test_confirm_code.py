"""Who holds a booking's one-time confirmation code: the elder, approved linked family (the code
"sent to a family member") and the centre of the booking's district (a printed card, each read
access-logged); never the helper, so a helper can never confirm their own work alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from market.models import AccessLog, FamilyLink, LinkStatus
from market.realtime.events import read_stream, user_stream
from tests.market.bookings.world import (
    HOME,
    accepted_booking,
    book,
    completed_booking,
    neighbourhood,
    offer_for,
    post,
    run_round,
)
from tests.market.conftest import Actor, City

POSITION = {"latitude": HOME[0], "longitude": HOME[1]}


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


async def code_of(client: httpx.AsyncClient, town: City, booking_id: str) -> str:
    """The code as the elder sees it on their own booking."""
    response = await client.get(f"/api/v1/bookings/{booking_id}", headers=town["elder"].headers)
    assert response.status_code == 200, response.text
    return str(response.json()["booking"]["confirm_code"])


async def card(client: httpx.AsyncClient, who: Actor, booking_id: str) -> httpx.Response:
    return await client.get(f"/api/v1/bookings/{booking_id}/confirm-code", headers=who.headers)


async def served_with_code(
    client: httpx.AsyncClient, town: City, booking_id: str, code: str
) -> str:
    """The volunteer checks in, then out with the code read out to them; the booking's state."""
    base = f"/api/v1/bookings/{booking_id}"
    response = await post(client, town["volunteer"], f"{base}/check-in", POSITION)
    assert response.status_code == 200, response.text
    response = await post(
        client, town["volunteer"], f"{base}/check-out", {**POSITION, "code": code}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["booking"]["state"])


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


class TestTheHelper:
    async def test_never_reads_the_code_anywhere_from_offer_to_check_out(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        helper = town["volunteer"]
        booking = await book(client, town["elder"])
        code = await code_of(client, town, booking["id"])
        base = f"/api/v1/bookings/{booking['id']}"
        assert await run_round() == 1
        seen: list[Any] = [await offer_for(client, helper, booking["id"])]
        offer_id = seen[0]["id"]
        for path, body in [
            (f"/api/v1/offers/{offer_id}/accept", {}),
            (f"{base}/start", {}),
            (f"{base}/check-in", POSITION),
            (f"{base}/check-out", POSITION),
        ]:
            response = await post(client, helper, path, body)
            assert response.status_code == 200, response.text
            seen.append(response.json())
            seen.append((await client.get(base, headers=helper.headers)).json())
            seen.append((await client.get("/api/v1/bookings", headers=helper.headers)).json())
        events = await read_stream(user_stream(helper.user.id), 0, 100)
        seen.extend(e.payload for e in events)
        assert len(events) >= 5
        found = [s for s in strings(seen) if s == code or s == "confirm_code"]
        assert found == []

    async def test_is_refused_the_printed_card(self, client: httpx.AsyncClient, town: City) -> None:
        booking = await accepted_booking(client, town)
        response = await card(client, town["volunteer"], booking["id"])
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_forbidden"
        assert await AccessLog.filter(purpose="confirmation_card").count() == 0


class TestLinkedFamily:
    async def test_an_approved_family_member_reads_the_code(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        code = await code_of(client, town, booking["id"])
        family = town["family"]
        one = await client.get(f"/api/v1/bookings/{booking['id']}", headers=family.headers)
        assert one.status_code == 200
        assert one.json()["booking"]["confirm_code"] == code
        listed = await client.get("/api/v1/bookings", headers=family.headers)
        assert [b["confirm_code"] for b in listed.json()["bookings"]] == [code]

    async def test_the_code_the_family_passed_on_confirms_at_check_out(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        family = town["family"]
        seen = await client.get(f"/api/v1/bookings/{booking['id']}", headers=family.headers)
        code = seen.json()["booking"]["confirm_code"]
        assert await served_with_code(client, town, booking["id"], code) == "settled"

    @pytest.mark.parametrize("status", [LinkStatus.pending, LinkStatus.revoked])
    async def test_a_link_not_approved_reads_nothing(
        self, client: httpx.AsyncClient, town: City, status: LinkStatus
    ) -> None:
        booking = await accepted_booking(client, town)
        family = town["family"]
        await FamilyLink.filter(family_id=family.user.id).update(status=status)
        one = await client.get(f"/api/v1/bookings/{booking['id']}", headers=family.headers)
        assert one.status_code == 403
        assert one.json()["error"]["code"] == "booking_forbidden"
        listed = await client.get("/api/v1/bookings", headers=family.headers)
        assert listed.json()["bookings"] == []
        assert (await card(client, family, booking["id"])).status_code == 403


class TestPrintedCard:
    async def test_the_districts_centre_gets_the_code_and_the_read_is_logged(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        code = await code_of(client, town, booking["id"])
        admin = town["centre_admin"]
        response = await card(client, admin, booking["id"])
        assert response.status_code == 200, response.text
        printed = response.json()["card"]
        assert printed["code"] == code
        assert printed["booking_id"] == booking["id"]
        assert printed["elder_name"] == town["elder"].user.name
        assert printed["service"] == "cleaning"
        (log,) = await AccessLog.filter(purpose="confirmation_card")
        assert (log.actor_id, log.subject_id) == (admin.user.id, town["elder"].user.id)
        assert log.fields_read == ["confirm_code"]

    async def test_the_centres_booking_views_do_not_carry_the_code(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        # Otherwise every list the centre opens would read codes past the access log.
        booking = await accepted_booking(client, town)
        admin = town["centre_admin"]
        one = await client.get(f"/api/v1/bookings/{booking['id']}", headers=admin.headers)
        assert "confirm_code" not in one.json()["booking"]
        listed = await client.get("/api/v1/bookings", headers=admin.headers)
        assert all("confirm_code" not in b for b in listed.json()["bookings"])

    async def test_the_printed_code_confirms_at_check_out(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        printed = (await card(client, town["centre_admin"], booking["id"])).json()["card"]
        assert await served_with_code(client, town, booking["id"], printed["code"]) == "settled"

    async def test_another_districts_centre_is_refused_and_nothing_logged(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        response = await card(client, town.west_admin, booking["id"])
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "district_forbidden"
        assert "code" not in response.json()
        assert await AccessLog.filter(purpose="confirmation_card").count() == 0

    @pytest.mark.parametrize("role", ["elder", "family", "provider_staff", "auditor"])
    async def test_other_roles_are_refused(
        self, client: httpx.AsyncClient, town: City, role: str
    ) -> None:
        booking = await accepted_booking(client, town)
        response = await card(client, town[role], booking["id"])
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_forbidden"

    async def test_an_unknown_booking_is_404(self, client: httpx.AsyncClient, town: City) -> None:
        response = await card(client, town["centre_admin"], str(uuid.uuid4()))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "booking_not_found"

    async def test_a_bad_id_is_422(self, client: httpx.AsyncClient, town: City) -> None:
        response = await card(client, town["centre_admin"], "not-a-uuid")
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_id"

    async def test_a_booking_past_confirmation_is_409_and_nothing_logged(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        await post(client, town["elder"], f"/api/v1/bookings/{booking['id']}/confirm")
        response = await card(client, town["centre_admin"], booking["id"])
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "booking.wrong_state"
        assert error["details"]["state"] == "settled"
        assert await AccessLog.filter(purpose="confirmation_card").count() == 0
