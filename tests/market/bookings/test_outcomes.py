"""Each way a booking can go other than the happy path ends in the right state, with the right
ledger effect: no entry, or exactly one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from tortoise.connection import get_connection

from ledger.storage.tortoise_store import TortoiseStore
from market.models import Booking, Offer, OfferState
from market.services import payments
from market.services.runtime import Runtime
from tests.market.bookings.payworld import balance, entries_of
from tests.market.bookings.world import (
    accepted_booking,
    book,
    completed_booking,
    fund,
    ledger_minutes,
    neighbourhood,
    now,
    offer_for,
    post,
    run_round,
    state_of,
)
from tests.market.conftest import City


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


async def entries_for(booking_id: str) -> int:
    store = TortoiseStore(get_connection("default"))
    return len([e for e in await store.entries("east") if e.ref == booking_id])


# An `hours` booking of the default 5 minutes, paid from the elder's 60.
FUNDED = 60
HELD = 5


async def hours_booking(client: httpx.AsyncClient, runtime: Runtime, town: City) -> dict[str, Any]:
    await fund(runtime, town["elder"].user.id, FUNDED)
    booking = await book(client, town["elder"], payment="hours")
    assert await payments.held_by_payer(town["elder"].user.id) == HELD
    return booking


async def assert_untouched(runtime: Runtime, town: City, booking_id: str, *, held: int) -> None:
    """No entry in any chain for the booking; the payer's balance whole, `held` minutes held."""
    assert await entries_of(runtime.ledger, booking_id) == []
    assert await balance(runtime.ledger, town["elder"].user.id) == FUNDED
    assert await payments.held_by_payer(town["elder"].user.id) == held
    assert await balance(runtime.ledger, town["volunteer"].user.id) == 0


class TestCancel:
    async def test_before_the_window_is_free(self, client: httpx.AsyncClient, town: City) -> None:
        # Cleaning's window is 120 minutes; this booking starts in five hours.
        start = now() + timedelta(hours=5)
        booking = await book(
            client,
            town["elder"],
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=1)).isoformat(),
        )
        path = f"/api/v1/bookings/{booking['id']}/cancel"
        response = await post(client, town["family"], path, {"reason": "visiting us"})
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert (view["state"], view["outcome"]) == ("cancelled", "free")
        assert view["history"][-1]["reason"] == "visiting us"
        assert await entries_for(booking["id"]) == 0

    async def test_inside_the_window_is_late_and_withdraws_the_offer(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        await run_round()
        path = f"/api/v1/bookings/{booking['id']}/cancel"
        response = await post(client, town["elder"], path, {"reason": "feeling better"})
        assert response.status_code == 200, response.text
        assert response.json()["booking"]["outcome"] == "late"
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.state is OfferState.withdrawn
        assert await entries_for(booking["id"]) == 0

    async def test_a_cancelled_booking_cannot_be_cancelled_again(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        path = f"/api/v1/bookings/{booking['id']}/cancel"
        await post(client, town["elder"], path, {"reason": "no"})
        response = await post(client, town["elder"], path, {"reason": "again"})
        assert response.status_code == 409
        assert response.json()["error"]["details"]["state"] == "cancelled"

    async def test_the_helper_drops_out_and_the_booking_is_restaffed(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        path = f"/api/v1/bookings/{booking['id']}/cancel"
        response = await post(client, town["volunteer"], path, {"reason": "bike broke"})
        assert response.status_code == 200, response.text
        assert await state_of(booking["id"]) == "requested"
        assert await run_round() == 1
        offer = await offer_for(client, town["provider_staff"], booking["id"])
        assert offer["state"] == "open"


class TestDecline:
    async def test_decline_rematches_without_that_helper(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        await run_round()
        offer = await offer_for(client, town["volunteer"], booking["id"])
        response = await post(
            client, town["volunteer"], f"/api/v1/offers/{offer['id']}/decline", {"reason": "busy"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["offer"]["state"] == "declined"
        assert await state_of(booking["id"]) == "requested"
        assert await run_round() == 1
        second = await offer_for(client, town["provider_staff"], booking["id"])
        assert second["helper_id"] == str(town["provider_staff"].user.id)
        assert await entries_for(booking["id"]) == 0

    async def test_a_declined_offer_cannot_be_accepted(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        await run_round()
        offer = await offer_for(client, town["volunteer"], booking["id"])
        await post(client, town["volunteer"], f"/api/v1/offers/{offer['id']}/decline")
        response = await post(client, town["volunteer"], f"/api/v1/offers/{offer['id']}/accept")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "offer.closed"
        assert await entries_for(booking["id"]) == 0

    async def test_an_hours_booking_keeps_its_hold_for_the_next_helper(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        booking = await hours_booking(client, runtime, town)
        await run_round()
        offer = await offer_for(client, town["volunteer"], booking["id"])
        path = f"/api/v1/offers/{offer['id']}/decline"
        assert (await post(client, town["volunteer"], path, {"reason": "busy"})).is_success
        assert await state_of(booking["id"]) == "requested"
        # Still open for another helper: the minutes stay set aside, nothing is debited.
        await assert_untouched(runtime, town, booking["id"], held=HELD)

    async def test_an_hours_booking_the_centre_declines_releases_its_hold(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        booking = await hours_booking(client, runtime, town)
        await run_round(now() + timedelta(minutes=36))
        path = f"/api/v1/bookings/{booking['id']}/refuse"
        response = await post(client, town["centre_admin"], path, {"reason": "no staff today"})
        assert response.json()["booking"]["state"] == "declined"
        await assert_untouched(runtime, town, booking["id"], held=0)


class TestOfferTimeout:
    async def test_a_lapsed_offer_goes_to_the_next_helper(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        await run_round()
        offer = await offer_for(client, town["volunteer"], booking["id"])
        # Default policy: offers lapse after 300 s.
        later = now() + timedelta(seconds=301)
        assert await run_round(later) == 1
        assert (await Offer.get(id=offer["id"])).state is OfferState.expired
        assert await state_of(booking["id"]) == "offered"
        row = await Booking.get(id=booking["id"])
        second = await Offer.get(booking_id=row.id, state=OfferState.open)
        assert second.helper_id == town["provider_staff"].user.id  # type: ignore[attr-defined]
        assert await entries_for(booking["id"]) == 0

    async def test_past_the_latest_start_it_escalates_then_expires(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        await run_round()
        # Window: 40 minutes, service 5; the latest start is 35 minutes from now.
        await run_round(now() + timedelta(minutes=36))
        assert await state_of(booking["id"]) == "escalated"
        await run_round(now() + timedelta(minutes=41))
        assert await state_of(booking["id"]) == "expired"
        assert await entries_for(booking["id"]) == 0

    async def test_an_hours_booking_whose_offer_lapses_keeps_its_hold(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        booking = await hours_booking(client, runtime, town)
        await run_round()
        offer = await offer_for(client, town["volunteer"], booking["id"])
        await run_round(now() + timedelta(seconds=301))
        assert (await Offer.get(id=offer["id"])).state is OfferState.expired
        await assert_untouched(runtime, town, booking["id"], held=HELD)

    async def test_an_hours_booking_that_expires_unstaffed_releases_its_hold(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        booking = await hours_booking(client, runtime, town)
        await run_round()
        await run_round(now() + timedelta(minutes=36))
        await run_round(now() + timedelta(minutes=41))
        assert await state_of(booking["id"]) == "expired"
        await assert_untouched(runtime, town, booking["id"], held=0)


class TestCentreQueue:
    async def test_the_centre_dispatches_an_escalated_booking(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        await run_round(now() + timedelta(minutes=36))
        assert await state_of(booking["id"]) == "escalated"
        path = f"/api/v1/bookings/{booking['id']}/dispatch"
        body = {"helper_id": str(town["provider_staff"].user.id), "reason": "called them"}
        response = await post(client, town["centre_admin"], path, body)
        assert response.status_code == 201, response.text
        offer = await offer_for(client, town["provider_staff"], booking["id"])
        accept = await post(client, town["provider_staff"], f"/api/v1/offers/{offer['id']}/accept")
        assert accept.status_code == 200
        assert accept.json()["booking"]["state"] == "accepted"

    async def test_the_centre_declines_what_it_cannot_staff(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        await run_round(now() + timedelta(minutes=36))
        path = f"/api/v1/bookings/{booking['id']}/refuse"
        response = await post(client, town["centre_admin"], path, {"reason": "no staff today"})
        assert response.status_code == 200
        assert response.json()["booking"]["state"] == "declined"


class TestNoShow:
    async def test_the_helper_reports_the_elder_not_home(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        path = f"/api/v1/bookings/{booking['id']}/no-show"
        body = {"side": "elder_not_home", "reason": "nobody answered"}
        response = await post(client, town["volunteer"], path, body)
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert (view["state"], view["no_show_side"]) == ("no_show", "elder_not_home")
        assert await entries_for(booking["id"]) == 0

    async def test_the_elder_reports_the_helper_absent_once_the_window_opened(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(
            client, town, window_start=(now() - timedelta(minutes=2)).isoformat()
        )
        path = f"/api/v1/bookings/{booking['id']}/no-show"
        body = {"side": "helper_absent", "reason": "never came"}
        response = await post(client, town["elder"], path, body)
        assert response.status_code == 200, response.text
        assert response.json()["booking"]["no_show_side"] == "helper_absent"
        assert await entries_for(booking["id"]) == 0
        assert await ledger_minutes(town["volunteer"].user.id) == 0

    async def test_the_helper_is_not_absent_before_the_window(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        path = f"/api/v1/bookings/{booking['id']}/no-show"
        body = {"side": "helper_absent", "reason": "impatient"}
        response = await post(client, town["elder"], path, body)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "booking.too_early"
        assert await state_of(booking["id"]) == "accepted"

    async def test_the_elder_refuses_at_the_door(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await accepted_booking(client, town)
        base = f"/api/v1/bookings/{booking['id']}"
        await post(client, town["volunteer"], f"{base}/start")
        body = {"side": "elder_refused", "reason": "did not want a stranger"}
        response = await post(client, town["volunteer"], f"{base}/no-show", body)
        assert response.status_code == 200
        assert response.json()["booking"]["no_show_side"] == "elder_refused"
        assert await entries_for(booking["id"]) == 0
        assert await ledger_minutes(town["volunteer"].user.id) == 0

    @pytest.mark.parametrize(
        ("side", "reporter"),
        [
            ("helper_absent", "elder"),
            ("elder_not_home", "volunteer"),
            ("elder_refused", "volunteer"),
        ],
    )
    async def test_an_hours_booking_releases_its_hold_and_debits_nobody(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City, side: str, reporter: str
    ) -> None:
        await fund(runtime, town["elder"].user.id, FUNDED)
        # The window opened two minutes ago, so the helper can be reported absent.
        start = (now() - timedelta(minutes=2)).isoformat()
        booking = await accepted_booking(client, town, payment="hours", window_start=start)
        assert await payments.held_by_payer(town["elder"].user.id) == HELD
        base = f"/api/v1/bookings/{booking['id']}"
        if side == "elder_refused":
            assert (await post(client, town["volunteer"], f"{base}/start")).is_success
        body = {"side": side, "reason": "it did not happen"}
        response = await post(client, town[reporter], f"{base}/no-show", body)
        assert response.status_code == 200, response.text
        assert response.json()["booking"]["state"] == "no_show"
        await assert_untouched(runtime, town, booking["id"], held=0)


class TestDispute:
    async def test_upheld_means_no_hours(self, client: httpx.AsyncClient, town: City) -> None:
        booking = await completed_booking(client, town)
        base = f"/api/v1/bookings/{booking['id']}"
        response = await post(client, town["family"], f"{base}/dispute", {"reason": "left early"})
        assert response.status_code == 200
        assert response.json()["booking"]["state"] == "disputed"
        # A disputed booking is not auto-confirmed, however long it waits.
        await run_round(now() + timedelta(days=30))
        assert await state_of(booking["id"]) == "disputed"
        decision = {"decision": "upheld", "note": "visit log shows 5 minutes"}
        response = await post(client, town["centre_admin"], f"{base}/dispute/decision", decision)
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert (view["state"], view["outcome"]) == ("cancelled", "dispute_upheld")
        assert await entries_for(booking["id"]) == 0
        assert await ledger_minutes(town["volunteer"].user.id) == 0

    async def test_rejected_confirms_and_settles_once(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        base = f"/api/v1/bookings/{booking['id']}"
        await post(client, town["elder"], f"{base}/dispute", {"reason": "not sure"})
        decision = {"decision": "rejected", "note": "service was given"}
        response = await post(client, town["centre_admin"], f"{base}/dispute/decision", decision)
        assert response.status_code == 200, response.text
        assert response.json()["booking"]["state"] == "settled"
        assert await entries_for(booking["id"]) == 1

    async def test_the_complaint_is_told_to_the_centre_and_the_elder_side_only(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        base = f"/api/v1/bookings/{booking['id']}"
        await post(client, town["family"], f"{base}/dispute", {"reason": "left early"})
        seen = {}
        for role in ("centre_admin", "elder", "family", "volunteer"):
            response = await client.get(base, headers=town[role].headers)
            assert response.status_code == 200, response.text
            seen[role] = response.json()["booking"]["dispute_reason"]
        # The helper hears of it from the centre, not from the booking.
        expected = {"centre_admin": "left early", "elder": "left early", "family": "left early"}
        assert seen == {**expected, "volunteer": None}

    async def test_another_districts_admin_cannot_decide(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        base = f"/api/v1/bookings/{booking['id']}"
        await post(client, town["elder"], f"{base}/dispute", {"reason": "not sure"})
        decision = {"decision": "rejected", "note": "x"}
        response = await post(client, town.west_admin, f"{base}/dispute/decision", decision)
        assert response.status_code == 403
        assert await state_of(booking["id"]) == "disputed"


class TestAutoConfirm:
    async def test_unanswered_completion_confirms_after_the_period(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        await run_round(now() + timedelta(hours=47))
        assert await state_of(booking["id"]) == "completed"
        await run_round(now() + timedelta(hours=48, minutes=1))
        assert await state_of(booking["id"]) == "settled"
        assert await entries_for(booking["id"]) == 1
        # Settlement is idempotent: a second sweep adds nothing.
        await run_round(now() + timedelta(hours=49))
        assert await entries_for(booking["id"]) == 1


class TestSettlementRecovery:
    async def test_a_confirmed_booking_left_unsettled_is_settled_by_the_loop(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await completed_booking(client, town)
        # As if the process died between the confirming commit and the settlement.
        await Booking.filter(id=booking["id"]).update(state="confirmed", confirmed_at=now())
        await run_round()
        # The sweep leaves a fresh confirmation to its own request for a minute.
        assert await state_of(booking["id"]) == "confirmed"
        await run_round(now() + timedelta(minutes=2))
        assert await state_of(booking["id"]) == "settled"
        assert await entries_for(booking["id"]) == 1

    async def test_settling_twice_appends_once_and_answers_settled(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        from market.services import settlement

        booking = await completed_booking(client, town)
        await Booking.filter(id=booking["id"]).update(state="confirmed", confirmed_at=now())
        stale = await Booking.get(id=booking["id"])
        first = await settlement.settle_booking(await Booking.get(id=booking["id"]), now=now())
        second = await settlement.settle_booking(stale, now=now())
        assert first.state.value == second.state.value == "settled"
        assert await entries_for(booking["id"]) == 1
