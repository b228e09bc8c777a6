"""Holds, cancellation, idempotent settlement and the per-account cap, over HTTP where a user
would act, with the exact ledger effect of each (none, or exactly one entry)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import httpx
import pytest

from market import policy as rules
from market.models import Booking, DistrictPolicy
from market.realtime.events import read_stream, user_stream
from market.services import payments, settlement
from market.services.runtime import Runtime
from tests.market.bookings.payworld import (
    balance,
    confirm,
    entries_of,
    row,
)
from tests.market.bookings.world import (
    accepted_booking,
    book,
    completed_booking,
    fund,
    neighbourhood,
    now,
    post,
    request_body,
    run_round,
    snapshot,
)
from tests.market.conftest import City


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


def user(actor: object) -> str:
    return f"user:{actor.user.id}"  # type: ignore[attr-defined]


async def new_policy(city: City, **sections: dict[str, int]) -> None:
    """A policy version for east, in force now, with these fields changed per section."""
    policy = rules.DEFAULT_POLICY
    for section, fields in sections.items():
        policy = dataclasses.replace(
            policy, **{section: dataclasses.replace(getattr(policy, section), **fields)}
        )
    latest = await DistrictPolicy.filter(district=city.east).count()
    await DistrictPolicy.create(
        district=city.east,
        version=latest + 1,
        effective_from=now() - timedelta(days=1),
        content=rules.policy_to_json(policy),
    )


class TestHoldsAtRequest:
    async def test_too_few_hours_are_refused_and_nothing_is_written(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await fund(runtime, town["elder"].user.id, 4)
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests", json=request_body(payment="hours"), headers=town["elder"].headers
        )
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert error["code"] == "payment.insufficient_hours"
        assert error["details"] == {"spendable_minutes": 4, "needed_minutes": 5}
        assert await snapshot() == before

    async def test_holds_add_up_across_requests(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await fund(runtime, town["elder"].user.id, 8)
        await book(client, town["elder"], payment="hours")
        response = await client.post(
            "/api/v1/requests", json=request_body(payment="hours"), headers=town["elder"].headers
        )
        assert response.status_code == 409
        assert response.json()["error"]["details"]["spendable_minutes"] == 3

    async def test_a_recurring_request_holds_every_occurrence(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await fund(runtime, town["elder"].user.id, 12)
        start = now() + timedelta(minutes=1)
        body = request_body(
            payment="hours",
            recurrence={
                "weekdays": [0, 1, 2, 3, 4, 5, 6],
                "until": (start + timedelta(days=2)).date().isoformat(),
            },
        )
        response = await client.post("/api/v1/requests", json=body, headers=town["elder"].headers)
        assert response.status_code == 409
        assert response.json()["error"]["details"]["needed_minutes"] == 15

    async def test_two_requests_at_once_cannot_both_hold_the_same_minutes(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await fund(runtime, town["elder"].user.id, 8)
        headers = town["elder"].headers
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/requests", json=request_body(payment="hours"), headers=headers)
                for _ in range(2)
            )
        )
        assert sorted(r.status_code for r in responses) == [201, 409]
        assert await payments.held_by_payer(town["elder"].user.id) == 5

    async def test_held_minutes_cannot_be_gifted_or_donated(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        family, elder = town["family"], town["elder"]
        await fund(runtime, family.user.id, 8)
        await book(client, family, payment="hours", elder_id=str(elder.user.id))
        gift = {"recipient_id": str(elder.user.id), "minutes": 5, "request_id": "g-1"}
        response = await post(client, family, "/api/v1/ledger/gifts", gift)
        assert response.status_code == 409, response.text
        error = response.json()["error"]
        assert (error["code"], error["details"]) == (
            "ledger.insufficient_minutes",
            {"balance_minutes": 8, "held_minutes": 5},
        )
        donation = {"minutes": 4, "request_id": "d-1"}
        response = await post(client, family, "/api/v1/ledger/donations", donation)
        assert response.status_code == 409
        gift = {**gift, "minutes": 3, "request_id": "g-2"}
        response = await post(client, family, "/api/v1/ledger/gifts", gift)
        assert response.status_code == 201, response.text
        assert await balance(runtime.ledger, family.user.id) == 5


class TestCancellation:
    async def test_before_the_window_the_hold_is_released_and_nothing_is_charged(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        elder = town["elder"]
        await fund(runtime, elder.user.id, 60)
        await new_policy(town, bookings={"late_cancellation_charge_bp": 10_000})
        # Cleaning's window is two hours; this booking starts in five.
        start = now() + timedelta(hours=5)
        booking = await accepted_booking(
            client,
            town,
            payment="hours",
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=1)).isoformat(),
        )
        path = f"/api/v1/bookings/{booking['id']}/cancel"
        response = await post(client, elder, path, {"reason": "my son is visiting"})
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert (view["state"], view["outcome"]) == ("cancelled", "free")
        cancel = view["history"][-1]
        assert cancel["action"] == "cancel"
        assert await entries_of(runtime.ledger, view["id"]) == []
        assert await payments.held_by_payer(elder.user.id) == 0
        assert await balance(runtime.ledger, elder.user.id) == 60
        stored = await row(view["id"])
        assert stored.charged_minutes is None

    async def test_late_the_policy_charges_its_share_to_the_accepted_helper(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        elder, volunteer = town["elder"], town["volunteer"]
        await fund(runtime, elder.user.id, 60)
        await new_policy(town, bookings={"late_cancellation_charge_bp": 5_000})
        booking = await accepted_booking(client, town, payment="hours", duration_minutes=20)
        path = f"/api/v1/bookings/{booking['id']}/cancel"
        response = await post(client, elder, path, {"reason": "not today"})
        assert response.status_code == 200, response.text
        view = response.json()["booking"]
        assert (view["state"], view["outcome"]) == ("cancelled", "late")
        assert await entries_of(runtime.ledger, view["id"]) == [
            ("east", "deposit", user(elder), user(volunteer), 10)
        ]
        assert await balance(runtime.ledger, elder.user.id) == 50
        detail = view["payment_detail"]
        assert detail["charged_minutes"] == 10
        assert detail["settlement"]["late_cancellation"] is True
        kinds = [e.kind for e in await read_stream(user_stream(volunteer.user.id), 0, 500)]
        assert "booking.cancellation_charged" in kinds and "ledger.entry" in kinds
        # Cancelling again changes nothing.
        again = await post(client, elder, path, {"reason": "not today"})
        assert again.status_code == 409
        assert len(await entries_of(runtime.ledger, view["id"])) == 1

    async def test_late_under_the_default_policy_costs_nothing(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        elder = town["elder"]
        await fund(runtime, elder.user.id, 60)
        booking = await accepted_booking(client, town, payment="hours")
        path = f"/api/v1/bookings/{booking['id']}/cancel"
        view = (await post(client, elder, path, {"reason": "not today"})).json()["booking"]
        assert view["outcome"] == "late"
        assert await entries_of(runtime.ledger, view["id"]) == []
        assert await balance(runtime.ledger, elder.user.id) == 60

    async def test_late_before_any_helper_accepted_costs_nothing(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        elder = town["elder"]
        await fund(runtime, elder.user.id, 60)
        await new_policy(town, bookings={"late_cancellation_charge_bp": 10_000})
        booking = await book(client, elder, payment="hours")
        await run_round()  # offered, not accepted
        path = f"/api/v1/bookings/{booking['id']}/cancel"
        view = (await post(client, elder, path, {"reason": "not today"})).json()["booking"]
        assert view["outcome"] == "late"
        assert await entries_of(runtime.ledger, view["id"]) == []


async def confirmed_unsettled(client: httpx.AsyncClient, town: City, **overrides: object) -> str:
    """A booking confirmed but not settled yet, as if the process died between the two."""
    booking = await completed_booking(client, town, **overrides)
    await Booking.filter(id=booking["id"]).update(state="confirmed", confirmed_at=now())
    return booking["id"]  # type: ignore[no-any-return]


class TestIdempotentSettlement:
    async def test_settling_an_hours_booking_twice_moves_the_hours_once(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await fund(runtime, town["elder"].user.id, 60)
        booking_id = await confirmed_unsettled(client, town, payment="hours")
        stale = await row(booking_id)
        first = await settlement.settle_booking(await row(booking_id), now=now())
        second = await settlement.settle_booking(stale, now=now())
        assert first.state.value == second.state.value == "settled"
        assert len(await entries_of(runtime.ledger, booking_id)) == 1

    async def test_concurrent_settlements_append_once(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await fund(runtime, town["elder"].user.id, 60)
        booking_id = await confirmed_unsettled(client, town, payment="hours")
        copies = [await row(booking_id) for _ in range(4)]
        outcomes = await asyncio.gather(*(settlement.settle_booking(b, now=now()) for b in copies))
        assert {o.state.value for o in outcomes} == {"settled"}
        assert len(await entries_of(runtime.ledger, booking_id)) == 1
        events = await read_stream(user_stream(town["volunteer"].user.id), 0, 500)
        settles = [
            e
            for e in events
            if e.kind == "booking.state"
            and e.payload["booking_id"] == booking_id
            and e.payload["action"] == "settle"
        ]
        assert len(settles) == 1


class TestCap:
    async def test_a_deposit_past_the_cap_waits_until_the_helper_donates(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        volunteer = town["volunteer"]
        await new_policy(town, time_bank={"account_cap_minutes": 60})
        await fund(runtime, volunteer.user.id, 60)
        booking = await completed_booking(client, town)
        view = await confirm(client, town["elder"], booking["id"])
        assert view["state"] == "confirmed"
        blocked = view["payment_detail"]["settle_blocked"]
        assert (blocked["code"], blocked["rule"], blocked["policy_version"]) == (
            "policy.forbids",
            "time_bank.account_cap_minutes",
            1,
        )
        assert await entries_of(runtime.ledger, booking["id"]) == []
        told = [e for e in await read_stream(user_stream(volunteer.user.id), 0, 500)]
        assert "booking.settlement_blocked" in [e.kind for e in told]
        # Minutes above the cap can only be donated: the volunteer makes room, the loop settles.
        donation = {"minutes": 10, "request_id": "room"}
        assert (
            await post(client, volunteer, "/api/v1/ledger/donations", donation)
        ).status_code == 201
        await run_round(now() + timedelta(minutes=3))
        settled = await row(booking["id"])
        assert settled.state.value == "settled"
        assert settled.settle_blocked is None
        m = settled.served_minutes
        assert await entries_of(runtime.ledger, booking["id"]) == [
            ("east", "deposit", "issuance", user(volunteer), m)
        ]
        assert await balance(runtime.ledger, volunteer.user.id) == 50 + m

    async def test_a_refusal_under_the_chain_lock_is_retried_under_a_new_id(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        town: City,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        volunteer = town["volunteer"]
        await new_policy(town, time_bank={"account_cap_minutes": 60})
        await fund(runtime, volunteer.user.id, 60)
        booking_id = await confirmed_unsettled(client, town)

        async def passes(gateway: object, plan: settlement.Plan, now: object) -> settlement.Plan:
            return plan  # as if a concurrent deposit landed right after the check

        monkeypatch.setattr(settlement, "_check_cap", passes)
        blocked = await settlement.settle_booking(await row(booking_id), now=now())
        assert blocked.state.value == "confirmed"
        assert blocked.settle_attempt == 1
        assert blocked.settle_blocked["rule"] == "time_bank.account_cap_minutes"  # type: ignore[index]
        failed = await runtime.ledger.store.failure("east", f"booking-{booking_id}")
        assert failed is not None
        monkeypatch.undo()
        donation = {"minutes": 10, "request_id": "room"}
        assert (
            await post(client, volunteer, "/api/v1/ledger/donations", donation)
        ).status_code == 201
        settled = await settlement.settle_booking(blocked, now=now() + timedelta(minutes=2))
        assert settled.state.value == "settled"
        entry = await runtime.ledger.store.entry("east", f"booking-{booking_id}-1")
        assert entry is not None and entry.credit == user(volunteer)
        assert len(await entries_of(runtime.ledger, booking_id)) == 1

    async def test_settlement_waits_for_its_pause_after_a_refusal(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await new_policy(town, time_bank={"account_cap_minutes": 60})
        await fund(runtime, town["volunteer"].user.id, 60)
        booking_id = await confirmed_unsettled(client, town)
        first = await settlement.settle_booking(await row(booking_id), now=now())
        assert first.settle_blocked["tries"] == 1  # type: ignore[index]
        # Within the pause nothing is tried again; after it, the refusal is counted again.
        again = await settlement.settle_booking(first, now=now())
        assert again.settle_blocked["tries"] == 1  # type: ignore[index]
        later = await settlement.settle_booking(first, now=now() + timedelta(minutes=2))
        assert later.settle_blocked["tries"] == 2  # type: ignore[index]


class TestBookingsMadeBeforeHolds:
    """Bookings confirmed before this release (no hold, no payment rules) settle too."""

    async def test_an_hours_booking_without_a_hold_pays_what_was_served(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        elder, volunteer = town["elder"], town["volunteer"]
        await fund(runtime, elder.user.id, 60)
        booking_id = await confirmed_unsettled(client, town, payment="hours")
        await Booking.filter(id=booking_id).update(hold_minutes=None, hold_chain=None)
        settled = await settlement.settle_booking(await row(booking_id), now=now())
        assert settled.state.value == "settled"
        m = settled.served_minutes
        assert await entries_of(runtime.ledger, booking_id) == [
            ("east", "deposit", user(elder), user(volunteer), m)
        ]

    async def test_a_subsidised_booking_a_volunteer_served_is_district_funded(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        booking_id = await confirmed_unsettled(client, town)
        await Booking.filter(id=booking_id).update(payment="subsidy")
        settled = await settlement.settle_booking(await row(booking_id), now=now())
        assert settled.state.value == "settled"
        assert settled.settlement["funding"] == "issuance"  # type: ignore[index]
        assert await entries_of(runtime.ledger, booking_id) == [
            ("east", "deposit", "issuance", user(town["volunteer"]), settled.served_minutes)
        ]
