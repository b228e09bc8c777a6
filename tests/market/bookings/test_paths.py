"""End to end over HTTP, per booker: book -> match -> offer -> accept -> en route -> check-in
-> check-out -> confirm -> settled with a ledger deposit for the helper."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from ledger import merkle
from market.models import Booking, BookingEvent
from market.services import checkpoints
from market.services.runtime import Runtime
from tests.market.bookings.world import (
    HOME,
    accepted_booking,
    completed_booking,
    ledger_minutes,
    neighbourhood,
    now,
    post,
)
from tests.market.conftest import Actor, City

POSITION = {"latitude": HOME[0], "longitude": HOME[1]}


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


async def statement_line_is_proven(
    client: httpx.AsyncClient, runtime: Runtime, helper: Actor, booking_id: str
) -> None:
    """The booking's deposit is a line of the helper's statement whose inclusion proof checks
    against the district's signed checkpoint."""
    await checkpoints.checkpoint_all(runtime.ledger, force=True)
    url = f"/api/v1/ledger/accounts/{helper.user.id}/statement"
    response = await client.get(url, headers=helper.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    lines = [line for line in body["lines"] if line["ref"] == booking_id]
    assert len(lines) == 1, body["lines"]
    line = lines[0]
    assert line["kind"] == "deposit" and line["signed_minutes"] > 0
    cp = body["checkpoint"]["checkpoint"]
    proof = [bytes.fromhex(h) for h in line["proof"]["hashes"]]
    root = bytes.fromhex(cp["root"])
    assert merkle.verify_inclusion(
        bytes.fromhex(line["hash"]), line["seq"], cp["size"], proof, root
    )


class TestRolePaths:
    @pytest.mark.parametrize("booker", ["elder", "family", "centre_admin"])
    async def test_booked_matched_served_confirmed_settled(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City, booker: str
    ) -> None:
        actor = town[booker]
        extra = {} if booker == "elder" else {"elder_id": str(town["elder"].user.id)}
        booking = await completed_booking(client, town, actor, **extra)
        assert booking["state"] == "completed"
        assert booking["served_minutes"] >= 1
        response = await post(client, actor, f"/api/v1/bookings/{booking['id']}/confirm")
        assert response.status_code == 200, response.text
        settled = response.json()["booking"]
        assert settled["state"] == "settled"
        history = [(h["action"], h["to"]) for h in settled["history"]]
        assert history == [
            ("request", "requested"),
            ("offer", "offered"),
            ("accept", "accepted"),
            ("start", "en_route"),
            ("check_in", "in_service"),
            ("check_out", "completed"),
            ("confirm", "confirmed"),
            ("settle", "settled"),
        ]
        volunteer = town["volunteer"].user.id
        assert await ledger_minutes(volunteer) == settled["served_minutes"]
        await statement_line_is_proven(client, runtime, town["volunteer"], booking["id"])

    async def test_the_elder_rates_after_settlement(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        base = f"/api/v1/bookings/{booking['id']}"
        await post(client, town["elder"], f"{base}/confirm")
        response = await post(
            client, town["elder"], f"{base}/rate", {"stars": 5, "comment": "kind"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["booking"]["state"] == "rated"


class TestOneTimeCode:
    async def test_the_helper_checks_out_with_the_code_read_out(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        seen = await client.get(f"/api/v1/bookings/{booking['id']}", headers=town["elder"].headers)
        code = seen.json()["booking"]["confirm_code"]
        base = f"/api/v1/bookings/{booking['id']}"
        helper = town["volunteer"]
        await post(client, helper, f"{base}/check-in", POSITION)
        response = await post(client, helper, f"{base}/check-out", {**POSITION, "code": code})
        assert response.status_code == 200, response.text
        assert response.json()["booking"]["state"] == "settled"
        confirm = await BookingEvent.get(booking_id=booking["id"], action="confirm")
        assert confirm.detail == {"by_code": True}

    async def test_the_helper_never_sees_the_code(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        seen = await client.get(
            f"/api/v1/bookings/{booking['id']}", headers=town["volunteer"].headers
        )
        assert seen.status_code == 200
        assert "confirm_code" not in seen.json()["booking"]

    async def test_a_helper_cannot_confirm_without_the_code(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        response = await post(
            client, town["volunteer"], f"/api/v1/bookings/{booking['id']}/confirm"
        )
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "booking.code_required"
        assert (await Booking.get(id=booking["id"])).state.value == "completed"

    async def test_a_wrong_code_is_refused_and_counted(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        seen = await client.get(f"/api/v1/bookings/{booking['id']}", headers=town["elder"].headers)
        wrong = "000000" if seen.json()["booking"]["confirm_code"] != "000000" else "111111"
        path = f"/api/v1/bookings/{booking['id']}/confirm"
        response = await post(client, town["volunteer"], path, {"code": wrong})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "booking.code_wrong"
        row = await Booking.get(id=booking["id"])
        assert row.state.value == "completed" and row.code_attempts == 1

    async def test_the_code_locks_after_five_wrong_tries(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        seen = await client.get(f"/api/v1/bookings/{booking['id']}", headers=town["elder"].headers)
        right = seen.json()["booking"]["confirm_code"]
        wrong = "000000" if right != "000000" else "111111"
        path = f"/api/v1/bookings/{booking['id']}/confirm"
        for _ in range(5):
            await post(client, town["volunteer"], path, {"code": wrong})
        response = await post(client, town["volunteer"], path, {"code": right})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "booking.code_locked"
        response = await post(client, town["family"], path)
        assert response.status_code == 200
        assert response.json()["booking"]["state"] == "settled"


class TestCheckInTolerance:
    async def test_far_from_the_elder_needs_a_reason(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        path = f"/api/v1/bookings/{booking['id']}/check-in"
        far = {"latitude": 30.02, "longitude": 120.0}
        response = await post(client, town["volunteer"], path, far)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "checkin.reason_required"
        assert (await Booking.get(id=booking["id"])).state.value == "accepted"

    async def test_with_a_reason_it_is_flagged_for_the_centre(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        path = f"/api/v1/bookings/{booking['id']}/check-in"
        far = {"latitude": 30.02, "longitude": 120.0, "reason": "elder waited at the gate"}
        response = await post(client, town["volunteer"], path, far)
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert view["state"] == "in_service" and view["flagged"] is True
        assert view["flags"][0]["outside"] == ["distance"]
        assert view["flags"][0]["distance_m"] > 2000

    async def test_leaving_early_needs_a_reason(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(
            client, town, duration_minutes=120, window_end=(now() + timedelta(hours=3)).isoformat()
        )
        base = f"/api/v1/bookings/{booking['id']}"
        await post(client, town["volunteer"], f"{base}/check-in", POSITION)
        response = await post(client, town["volunteer"], f"{base}/check-out", POSITION)
        assert response.status_code == 422
        response = await post(
            client, town["volunteer"], f"{base}/check-out", {**POSITION, "reason": "elder tired"}
        )
        assert response.status_code == 200
        assert response.json()["booking"]["flags"][0]["outside"] == ["time"]


class TestEvents:
    async def test_every_transition_reaches_the_elder_helper_and_centre_streams(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        from market.realtime.events import admin_stream, elder_stream, read_stream, user_stream

        booking = await completed_booking(client, town)
        await post(client, town["elder"], f"/api/v1/bookings/{booking['id']}/confirm")
        expected = [
            "request",
            "offer",
            "accept",
            "start",
            "check_in",
            "check_out",
            "confirm",
            "settle",
        ]
        elder = await read_stream(elder_stream(town["elder"].user.id), 0, 100)
        assert [e.payload["action"] for e in elder if e.kind == "booking.state"] == expected
        centre = await read_stream(admin_stream(town.east_community.id), 0, 100)
        assert [e.payload["action"] for e in centre if e.kind == "booking.state"] == expected
        helper = await read_stream(user_stream(town["volunteer"].user.id), 0, 100)
        assert [e.kind for e in helper][:2] == ["offer.new", "booking.state"]
        assert [e.payload["action"] for e in helper if e.kind == "booking.state"] == expected[1:]
