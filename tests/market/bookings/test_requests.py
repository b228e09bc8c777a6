"""Creating requests: who may book, idempotent retries, recurrence, and the policy's rules."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from market.models import (
    Booking,
    Certificate,
    ElderProfile,
    FamilyLink,
    HelperProfile,
    LinkStatus,
    Offer,
    RecurringSeries,
)
from market.services.runtime import Runtime
from tests.market.bookings.world import (
    book,
    fund,
    neighbourhood,
    now,
    post,
    priced_provider,
    request_body,
    run_round,
    snapshot,
)
from tests.market.conftest import City


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


class TestWhoBooks:
    async def test_the_place_defaults_to_the_elders_home(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"], notes="door code 12")
        assert booking["location"] == {"latitude": 30.0, "longitude": 120.0}
        assert booking["state"] == "requested" and booking["notes"] == "door code 12"
        assert len(booking["confirm_code"]) == 6

    async def test_family_without_an_approved_link_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await FamilyLink.filter(family_id=town["family"].user.id).update(status=LinkStatus.pending)
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests",
            json=request_body(elder_id=str(town["elder"].user.id)),
            headers=town["family"].headers,
        )
        assert response.status_code == 403
        assert await snapshot() == before

    async def test_another_districts_centre_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests",
            json=request_body(elder_id=str(town["elder"].user.id)),
            headers=town.west_admin.headers,
        )
        assert response.status_code == 403
        assert await snapshot() == before

    async def test_a_centre_admin_must_name_the_elder(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        response = await client.post(
            "/api/v1/requests", json=request_body(), headers=town["centre_admin"].headers
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "elder_id"


class TestIdempotency:
    async def test_same_key_and_body_answer_the_same_booking(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        body = request_body()
        headers = {**town["elder"].headers, "Idempotency-Key": "tap-1"}
        first = await client.post("/api/v1/requests", json=body, headers=headers)
        second = await client.post("/api/v1/requests", json=body, headers=headers)
        assert first.status_code == second.status_code == 201
        assert second.headers["Idempotent-Replayed"] == "true"
        assert first.json()["bookings"][0]["id"] == second.json()["bookings"][0]["id"]
        assert await Booking.all().count() == 1

    async def test_same_key_with_another_body_is_409(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        headers = {**town["elder"].headers, "Idempotency-Key": "tap-2"}
        await client.post("/api/v1/requests", json=request_body(), headers=headers)
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests", json=request_body(notes="other"), headers=headers
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_key_reused"
        assert await snapshot() == before

    async def test_keys_belong_to_their_user(self, client: httpx.AsyncClient, town: City) -> None:
        body = request_body(elder_id=str(town["elder"].user.id))
        for actor in (town["family"], town["centre_admin"]):
            headers = {**actor.headers, "Idempotency-Key": "same"}
            assert (
                await client.post("/api/v1/requests", json=body, headers=headers)
            ).status_code == 201
        assert await Booking.all().count() == 2

    async def test_a_bad_key_is_400(self, client: httpx.AsyncClient, town: City) -> None:
        headers = {**town["elder"].headers, "Idempotency-Key": "x" * 201}
        response = await client.post("/api/v1/requests", json=request_body(), headers=headers)
        assert response.status_code == 400
        assert await Booking.all().count() == 0


class TestRecurrence:
    async def test_weekdays_expand_with_skips_and_moves(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        start = (now() + timedelta(days=1)).replace(hour=3, minute=0, second=0, microsecond=0)
        days = [(start + timedelta(days=i)).date() for i in range(14)]
        weekdays = sorted({start.weekday(), (start + timedelta(days=2)).weekday()})
        occurrences = [d for d in days if d.weekday() in weekdays]
        skipped, moved = occurrences[1], occurrences[2]
        moved_to = (start + timedelta(days=(moved - start.date()).days, hours=2)).isoformat()
        body = request_body(
            service="meal",
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=1)).isoformat(),
            recurrence={
                "weekdays": weekdays,
                "until": days[-1].isoformat(),
                "skip": [skipped.isoformat()],
                "move": [{"occurrence": moved.isoformat(), "to": moved_to}],
            },
        )
        response = await client.post("/api/v1/requests", json=body, headers=town["elder"].headers)
        assert response.status_code == 201, response.text
        created = response.json()["bookings"]
        assert [b["occurrence"] for b in created] == [
            d.isoformat() for d in occurrences if d != skipped
        ]
        by_day = {b["occurrence"]: b for b in created}
        assert by_day[moved.isoformat()]["window_start"].startswith(moved_to[:16])
        assert await RecurringSeries.all().count() == 1

    async def test_the_same_helper_is_kept_when_possible(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        # The provider is the farther helper, but served the series before.
        start = now() + timedelta(minutes=1)
        body = request_body(
            service="meal",
            window_end=(start + timedelta(hours=1)).isoformat(),
            recurrence={
                "weekdays": [start.weekday()],
                "until": (start + timedelta(days=7)).date().isoformat(),
            },
        )
        response = await client.post("/api/v1/requests", json=body, headers=town["elder"].headers)
        first, second = (b["id"] for b in response.json()["bookings"])
        await Booking.filter(id=first).update(
            helper_id=town["provider_staff"].user.id, state="confirmed"
        )
        await run_round(now() + timedelta(days=7) - timedelta(minutes=1))
        offer = await Offer.get(booking_id=second)
        assert offer.helper_id == town["provider_staff"].user.id  # type: ignore[attr-defined]

    async def test_an_emergency_cannot_recur(self, client: httpx.AsyncClient, town: City) -> None:
        body = request_body(
            service="emergency",
            recurrence={"weekdays": [0], "until": (now() + timedelta(days=8)).date().isoformat()},
        )
        response = await client.post("/api/v1/requests", json=body, headers=town["elder"].headers)
        assert response.status_code == 422
        assert await Booking.all().count() == 0

    async def test_a_series_ending_more_than_a_year_ahead_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        body = request_body(
            recurrence={"weekdays": [0], "until": (now() + timedelta(days=400)).date().isoformat()}
        )
        response = await client.post("/api/v1/requests", json=body, headers=town["elder"].headers)
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == "recurrence.until"
        assert await Booking.all().count() == 0


class TestEligibility:
    async def test_bathing_a_frail_elder_is_never_offered_to_a_volunteer(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="moderate")
        booking = await book(client, town["elder"], service="bathing")
        assert await run_round() == 0
        assert await Offer.filter(booking_id=booking["id"]).count() == 0

    async def test_the_centre_cannot_dispatch_it_to_a_volunteer_and_is_told_the_rule(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="severe")
        booking = await book(client, town["elder"], service="medical")
        before = await snapshot()
        body = {"helper_id": str(town["volunteer"].user.id), "reason": "only one free"}
        path = f"/api/v1/bookings/{booking['id']}/dispatch"
        response = await post(client, town["centre_admin"], path, body)
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "policy.forbids"
        assert error["details"] == {
            "rule": "services.medical.certified_only_from",
            "policy_version": 0,
        }
        assert await snapshot() == before

    async def test_uncertified_provider_staff_are_told_which_certificates(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="severe")
        booking = await book(client, town["elder"], service="medical")
        body = {"helper_id": str(town["provider_staff"].user.id), "reason": "x"}
        path = f"/api/v1/bookings/{booking['id']}/dispatch"
        response = await post(client, town["centre_admin"], path, body)
        assert response.status_code == 403
        assert response.json()["error"]["details"]["rule"] == "services.medical.certificates"

    async def test_certified_provider_staff_get_the_offer(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="severe")
        await Certificate.create(
            helper_id=town["provider_staff"].user.id,
            kind="nursing",  # as `AddCertificate` records it
            number_enc="x",
            expires_on=(now() + timedelta(days=365)).date(),
            verified_at=now(),
        )
        booking = await book(client, town["elder"], service="medical")
        assert await run_round() == 1
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.helper_id == town["provider_staff"].user.id  # type: ignore[attr-defined]

    async def test_lifting_a_frail_elder_needs_certified_staff(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="moderate")
        await HelperProfile.filter(user_id=town["provider_staff"].user.id).update(latitude=None)
        booking = await book(client, town["elder"], service="escort", needs_lifting=True)
        assert await run_round() == 0
        assert await Offer.filter(booking_id=booking["id"]).count() == 0


class TestPayment:
    async def test_hours_below_the_redemption_age_are_refused_naming_the_rule(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(birth_year=now().year - 55)
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests", json=request_body(payment="hours"), headers=town["elder"].headers
        )
        assert response.status_code == 403
        assert response.json()["error"]["details"]["rule"] == "time_bank.redemption_age"
        assert await snapshot() == before

    async def test_a_relation_outside_the_redeemers_may_not_pay_hours(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await FamilyLink.filter(family_id=town["family"].user.id).update(relation="sibling")
        body = request_body(payment="hours", elder_id=str(town["elder"].user.id))
        response = await client.post("/api/v1/requests", json=body, headers=town["family"].headers)
        assert response.status_code == 403
        assert response.json()["error"]["details"]["rule"] == "time_bank.redeemers"

    async def test_a_child_pays_hours_for_a_parent(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await fund(runtime, town["family"].user.id, 60)
        body = request_body(payment="hours", elder_id=str(town["elder"].user.id))
        response = await client.post("/api/v1/requests", json=body, headers=town["family"].headers)
        assert response.status_code == 201
        row = await Booking.get(id=response.json()["bookings"][0]["id"])
        assert row.payer_id == town["family"].user.id
        assert (row.hold_minutes, row.hold_chain) == (5, "east")

    async def test_subsidy_needs_a_moderate_assessment(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        response = await client.post(
            "/api/v1/requests", json=request_body(payment="subsidy"), headers=town["elder"].headers
        )
        assert response.status_code == 403
        assert response.json()["error"]["details"]["rule"] == "vouchers.eligible_from"


class TestBadInput:
    @pytest.mark.parametrize(
        "change",
        [
            {"service": "massage"},
            {"payment": "cash"},
            {"window_start": "tomorrow"},
            {"window_start": "2030-01-01T09:00:00"},
            {"duration_minutes": 0},
            {"place": {"latitude": 91, "longitude": 0}},
            {"notes": "x" * 2001},
            {"surprise": 1},
        ],
    )
    async def test_refused_with_422_and_nothing_written(
        self, client: httpx.AsyncClient, town: City, change: dict[str, object]
    ) -> None:
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests", json=request_body(**change), headers=town["elder"].headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"]
        assert await snapshot() == before

    @pytest.mark.parametrize(
        "window",
        [
            {"window_start": "2000-01-01T09:00:00+00:00"},
            {"window_end": "2000-01-01T09:00:00+00:00"},
        ],
    )
    async def test_impossible_windows_are_422(
        self, client: httpx.AsyncClient, town: City, window: dict[str, str]
    ) -> None:
        response = await client.post(
            "/api/v1/requests", json=request_body(**window), headers=town["elder"].headers
        )
        assert response.status_code == 422
        assert await Booking.all().count() == 0

    async def test_not_json_is_400(self, client: httpx.AsyncClient, town: City) -> None:
        response = await client.post(
            "/api/v1/requests",
            content=b"{",
            headers={**town["elder"].headers, "content-type": "application/json"},
        )
        assert response.status_code == 400
        assert await Booking.all().count() == 0


class TestHelperLists:
    async def test_a_blocked_helper_is_never_offered_the_elders_bookings(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        path = f"/api/v1/elders/{town['elder'].user.id}/helper-lists"
        body = {"helper_id": str(town["volunteer"].user.id), "kind": "blocked"}
        response = await post(client, town["family"], path, body)
        assert response.status_code == 200, response.text
        assert response.json()["helpers"]["blocked"] == [str(town["volunteer"].user.id)]
        booking = await book(client, town["elder"])
        assert await run_round() == 1
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.helper_id == town["provider_staff"].user.id  # type: ignore[attr-defined]

    async def test_a_preferred_helper_wins_over_a_nearer_one(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        path = f"/api/v1/elders/{town['elder'].user.id}/helper-lists"
        body = {"helper_id": str(town["provider_staff"].user.id), "kind": "preferred"}
        assert (await post(client, town["elder"], path, body)).status_code == 200
        booking = await book(client, town["elder"])
        assert await run_round() == 1
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.helper_id == town["provider_staff"].user.id  # type: ignore[attr-defined]

    async def test_null_kind_takes_the_helper_off(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        path = f"/api/v1/elders/{town['elder'].user.id}/helper-lists"
        helper = str(town["volunteer"].user.id)
        await post(client, town["elder"], path, {"helper_id": helper, "kind": "blocked"})
        response = await post(client, town["elder"], path, {"helper_id": helper, "kind": None})
        assert response.json()["helpers"] == {"preferred": [], "blocked": []}


class TestSelfPaid:
    async def test_a_self_paid_booking_goes_to_provider_staff_only(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await priced_provider(town, cleaning=6000)
        booking = await book(client, town["elder"], payment="self")
        assert booking["payment_detail"]["quote_fen"] == 6000
        assert await run_round() == 1
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.helper_id == town["provider_staff"].user.id  # type: ignore[attr-defined]
