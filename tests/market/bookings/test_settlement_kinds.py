"""Each payment kind end to end over HTTP: book -> match -> accept -> check-in -> check-out ->
confirm -> settled, with exactly the ledger entries (or the price) that kind owes."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import httpx
import pytest

from ledger.transfer import TransportError, settlement_report
from market import policy as rules
from market.models import Booking, DistrictPolicy, ElderProfile
from market.realtime.events import admin_stream, read_stream, user_stream
from market.services import payments, settlement
from market.services.runtime import Runtime
from tests.market.bookings.payworld import (
    balance,
    booked_and_served,
    confirm,
    entries_of,
    make_pool_elder,
    only_provider_staff,
    row,
    serve,
    west_child,
)
from tests.market.bookings.world import (
    adopt_policy,
    book,
    fund,
    neighbourhood,
    now,
    offer_for,
    post,
    priced_provider,
    request_body,
    run_round,
    snapshot,
)
from tests.market.conftest import Actor, City
from tests.market.ledger.conftest import stop_background


@pytest.fixture
async def town(client: httpx.AsyncClient, runtime: Runtime, city: City) -> City:
    # The tests decide when transfers resume: no background checkpoint pass meanwhile.
    await stop_background(runtime.ledger)
    return await neighbourhood(city)


def user(actor: object) -> str:
    return f"user:{actor.user.id}"  # type: ignore[attr-defined]


class TestPublic:
    async def test_a_volunteers_hours_are_minted(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        volunteer = town["volunteer"]
        view = await booked_and_served(client, town, volunteer, town["elder"])
        assert view["state"] == "settled"
        minutes = view["served_minutes"]
        assert await entries_of(runtime.ledger, view["id"]) == [
            ("east", "deposit", "issuance", user(volunteer), minutes)
        ]
        detail = view["payment_detail"]
        assert detail["settlement"]["funding"] == "issuance"
        assert detail["charged_minutes"] == minutes
        # The deposit reached the volunteer's own stream as it was written.
        kinds = [e.kind for e in await read_stream(user_stream(volunteer.user.id), 0, 500)]
        assert "ledger.entry" in kinds

    async def test_provider_staff_are_paid_the_providers_price_not_hours(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        provider = await priced_provider(town, cleaning=4500)
        await only_provider_staff(town)
        view = await booked_and_served(client, town, town["provider_staff"], town["elder"])
        assert view["state"] == "settled"
        assert await entries_of(runtime.ledger, view["id"]) == []
        detail = view["payment_detail"]
        assert detail["settlement"]["funding"] == "district"
        assert detail["settlement"]["provider_id"] == str(provider.id)
        assert detail["price_fen"] == 4500


class TestHours:
    async def test_the_elders_own_hours_pay_the_volunteer(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        elder, volunteer = town["elder"], town["volunteer"]
        await fund(runtime, elder.user.id, 60)
        view = await booked_and_served(client, town, volunteer, elder, payment="hours")
        assert view["state"] == "settled"
        minutes = view["served_minutes"]
        assert await entries_of(runtime.ledger, view["id"]) == [
            ("east", "deposit", user(elder), user(volunteer), minutes)
        ]
        assert await balance(runtime.ledger, elder.user.id) == 60 - minutes
        assert await balance(runtime.ledger, volunteer.user.id) == minutes
        assert view["payment_detail"]["settlement"]["funding"] == "payer"
        # Settled: the booking holds nothing any more.
        assert await payments.held_by_payer(elder.user.id) == 0

    async def test_a_child_pays_for_a_parent(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        family, volunteer = town["family"], town["volunteer"]
        await fund(runtime, family.user.id, 30)
        elder_id = str(town["elder"].user.id)
        view = await booked_and_served(
            client, town, volunteer, family, payment="hours", elder_id=elder_id
        )
        minutes = view["served_minutes"]
        assert await entries_of(runtime.ledger, view["id"]) == [
            ("east", "deposit", user(family), user(volunteer), minutes)
        ]
        assert await balance(runtime.ledger, family.user.id) == 30 - minutes

    async def test_the_request_holds_the_booked_minutes_until_settlement(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        elder = town["elder"]
        await fund(runtime, elder.user.id, 60)
        from tests.market.bookings.world import book

        booking = await book(client, elder, payment="hours", duration_minutes=20)
        assert booking["payment_detail"]["hold_minutes"] == 20
        assert await payments.held_by_payer(elder.user.id) == 20
        # A hold is the market's: the ledger balance is untouched until settlement.
        assert await balance(runtime.ledger, elder.user.id) == 60


async def weigh_cleaning(city: City, weight: rules.Ratio) -> None:
    """Cleaning (the test bookings' service) earns `weight` hours per hour served."""
    services = rules.DEFAULT_POLICY.services
    cleaning = dataclasses.replace(services.cleaning, hour_weight=weight)
    await adopt_policy(
        city,
        dataclasses.replace(
            rules.DEFAULT_POLICY, services=dataclasses.replace(services, cleaning=cleaning)
        ),
    )


async def served_for(
    client: httpx.AsyncClient, town: City, booker: Actor, minutes: int, **overrides: object
) -> dict[str, object]:
    """Booked, served by the volunteer for `minutes` (as the check-out recorded), confirmed."""
    end = (now() + timedelta(hours=2)).isoformat()
    booking = await book(client, booker, window_end=end, **overrides)
    assert await run_round() == 1
    await serve(client, town["volunteer"], booking["id"])
    await Booking.filter(id=booking["id"]).update(served_minutes=minutes)
    return await confirm(client, town["elder"], booking["id"])


class TestHourWeight:
    """The service's hour weight, an exact ratio in the policy, multiplies the minutes served;
    the ledger holds whole minutes, so the product is rounded down."""

    @pytest.mark.parametrize(
        ("weight", "served", "credited"),
        [
            (rules.Ratio(3, 2), 45, 67),  # 67.5 rounds down
            (rules.Ratio(3, 2), 46, 69),  # exact
            (rules.Ratio(2, 1), 7, 14),
            (rules.Ratio(1, 3), 10, 3),  # 3.33 rounds down
        ],
    )
    async def test_a_volunteer_is_credited_the_weighted_minutes(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        town: City,
        weight: rules.Ratio,
        served: int,
        credited: int,
    ) -> None:
        volunteer = town["volunteer"]
        await weigh_cleaning(town, weight)
        view = await served_for(client, town, town["elder"], served)
        assert (view["state"], view["served_minutes"]) == ("settled", served)
        assert await entries_of(runtime.ledger, view["id"]) == [  # type: ignore[arg-type]
            ("east", "deposit", "issuance", user(volunteer), credited)
        ]
        assert await balance(runtime.ledger, volunteer.user.id) == credited

    @pytest.mark.parametrize(
        ("booked", "served", "held", "debited"),
        [
            (30, 29, 45, 43),  # 43.5 rounds down, within the 45 held
            (20, 40, 30, 30),  # 60 weighted, but the payer agreed to the 30 held
        ],
    )
    async def test_an_hours_booking_holds_and_debits_the_weighted_minutes(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        town: City,
        booked: int,
        served: int,
        held: int,
        debited: int,
    ) -> None:
        elder, volunteer = town["elder"], town["volunteer"]
        await fund(runtime, elder.user.id, 100)
        await weigh_cleaning(town, rules.Ratio(3, 2))
        view = await served_for(
            client, town, elder, served, payment="hours", duration_minutes=booked
        )
        assert view["payment_detail"]["hold_minutes"] == held  # type: ignore[index]
        assert await entries_of(runtime.ledger, view["id"]) == [  # type: ignore[arg-type]
            ("east", "deposit", user(elder), user(volunteer), debited)
        ]
        assert await balance(runtime.ledger, elder.user.id) == 100 - debited
        assert await payments.held_by_payer(elder.user.id) == 0


class TestCrossDistrict:
    async def test_hours_earned_in_another_district_pay_by_two_phase_transfer(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        child = await west_child(client, runtime, town)
        volunteer = town["volunteer"]
        await fund(runtime, child.user.id, 50)
        elder_id = str(town["elder"].user.id)
        view = await booked_and_served(
            client, town, volunteer, child, payment="hours", elder_id=elder_id
        )
        assert view["state"] == "settled"
        m = view["served_minutes"]
        assert await entries_of(runtime.ledger, view["id"]) == [
            ("east", "transfer_credit", "clearing:west", user(volunteer), m),
            ("west", "hold_pending", user(child), "clearing:east", m),
            ("west", "hold_post", user(child), "clearing:east", m),
        ]
        assert await balance(runtime.ledger, child.user.id) == 50 - m
        assert await balance(runtime.ledger, volunteer.user.id) == m
        settlement = view["payment_detail"]["settlement"]
        assert (settlement["funding"], settlement["transfer"]) == (
            "transfer",
            f"booking-{view['id']}",
        )
        report = await settlement_report(runtime.ledger.store)
        assert report.mirrored and report.open_holds == 0


class Unreachable:
    """A serving district that does not answer credits (a crash or a partition between the
    two phases); aborts reach it, as they would once it is back."""

    def __init__(self, real: object) -> None:
        self.real = real

    async def credit(self, request: object) -> object:
        raise TransportError("the serving district did not answer")

    async def abort(self, request: object) -> object:
        return await self.real.abort(request)  # type: ignore[attr-defined]


class TestCrossDistrictFailure:
    async def test_a_failure_between_the_phases_voids_the_hold_and_charges_nobody(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        town: City,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        gateway = runtime.ledger
        child = await west_child(client, runtime, town)
        volunteer = town["volunteer"]
        await fund(runtime, child.user.id, 50)
        real_network = gateway.network
        monkeypatch.setattr(
            gateway,
            "network",
            lambda local: lambda district: Unreachable(real_network(local)(district)),
        )
        elder_id = str(town["elder"].user.id)
        view = await booked_and_served(
            client, town, volunteer, child, payment="hours", elder_id=elder_id
        )
        m = view["served_minutes"]
        # Phase one happened: the minutes are held in the payer's chain, nothing credited.
        assert view["state"] == "confirmed"
        assert await balance(gateway, child.user.id) == 50 - m
        assert await balance(gateway, volunteer.user.id) == 0
        # Past the transfer's deadline the home district aborts: the serving side records the
        # refusal, the home side voids the hold.
        later = gateway.clock() + 25 * 3600 * 1000
        monkeypatch.setattr(gateway, "clock", lambda: later)
        # Two settlers at once (a confirming request and the loop's sweep): one void, one note.
        copies = [await row(view["id"]), await row(view["id"])]
        await asyncio.gather(*(settlement.settle_booking(b, now=now()) for b in copies))
        assert await entries_of(gateway, view["id"]) == [
            ("west", "hold_pending", user(child), "clearing:east", m),
            ("west", "hold_void", "clearing:east", user(child), m),
        ]
        assert await balance(gateway, child.user.id) == 50
        assert await balance(gateway, volunteer.user.id) == 0
        voided = await row(view["id"])
        assert voided.state.value == "confirmed"
        assert voided.settle_blocked["code"] == "ledger.transfer_voided"  # type: ignore[index]
        assert voided.settle_attempt == 1
        # The payer's hours are still held for this booking, and the parties were told.
        assert await payments.held_by_payer(child.user.id) == voided.hold_minutes
        told = [e.kind for e in await read_stream(admin_stream(town.east_community.id), 0, 500)]
        assert "booking.settlement_blocked" in told

        # The serving district answers again: the next attempt, after the pause, settles once.
        monkeypatch.setattr(gateway, "network", real_network)
        assert (await settlement.settle_booking(voided, now=now())).state.value == "confirmed"
        settled = await settlement.settle_booking(voided, now=now() + timedelta(minutes=2))
        assert settled.state.value == "settled"
        # Chain by chain: east's one credit, then west's voided hold and the posted one.
        assert await entries_of(gateway, view["id"]) == [
            ("east", "transfer_credit", "clearing:west", user(volunteer), m),
            ("west", "hold_pending", user(child), "clearing:east", m),
            ("west", "hold_void", "clearing:east", user(child), m),
            ("west", "hold_pending", user(child), "clearing:east", m),
            ("west", "hold_post", user(child), "clearing:east", m),
        ]
        assert await balance(gateway, child.user.id) == 50 - m
        assert await balance(gateway, volunteer.user.id) == m
        assert (await row(view["id"])).settlement["transfer"] == f"booking-{view['id']}-1"  # type: ignore[index]

    async def test_a_serving_district_that_refuses_voids_at_once(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        town: City,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        gateway = runtime.ledger
        child = await west_child(client, runtime, town)
        await fund(runtime, child.user.id, 50)

        class Refusing(Unreachable):
            async def credit(self, request: object) -> object:
                return await self.real.abort(request)  # type: ignore[attr-defined]

        real_network = gateway.network
        monkeypatch.setattr(
            gateway,
            "network",
            lambda local: lambda district: Refusing(real_network(local)(district)),
        )
        elder_id = str(town["elder"].user.id)
        view = await booked_and_served(
            client, town, town["volunteer"], child, payment="hours", elder_id=elder_id
        )
        assert view["state"] == "confirmed"
        assert [kind for _, kind, *_ in await entries_of(gateway, view["id"])] == [
            "hold_pending",
            "hold_void",
        ]
        assert await balance(gateway, child.user.id) == 50
        assert view["payment_detail"]["settle_blocked"]["code"] == "ledger.transfer_voided"


async def fill_pool(runtime: Runtime, donor: object, minutes: int) -> None:
    donor_id = donor.user.id  # type: ignore[attr-defined]
    await fund(runtime, donor_id, minutes, entry_id=f"pool-fund-{donor_id}-{minutes}")
    await runtime.ledger.donate(
        donor_id=donor_id, minutes=minutes, entry_id=f"pool-gift-{donor_id}", actor="test"
    )


class TestPool:
    async def test_donated_hours_pay_for_an_elder_without_hours(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await make_pool_elder(town)
        await fill_pool(runtime, town["provider_staff"], 40)
        volunteer = town["volunteer"]
        booking = await book(client, town["elder"], payment="pool")
        detail = booking["payment_detail"]
        assert (detail["hold_minutes"], booking["payment"]) == (5, "pool")
        assert await payments.held_from_pool("east") == 5
        assert await run_round() == 1
        await serve(client, volunteer, booking["id"])
        view = await confirm(client, town["elder"], booking["id"])
        assert view["state"] == "settled"
        m = view["served_minutes"]
        assert await entries_of(runtime.ledger, view["id"]) == [
            ("east", "deposit", "pool", user(volunteer), m)
        ]
        assert await runtime.ledger.store.balance("east", "pool") == 40 - m
        assert await payments.held_from_pool("east") == 0

    async def test_an_elder_the_pool_does_not_serve_first_is_refused_naming_the_rule(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await fill_pool(runtime, town["provider_staff"], 40)
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests", json=request_body(payment="pool"), headers=town["elder"].headers
        )
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert (error["code"], error["details"]["rule"]) == (
            "policy.forbids",
            "time_bank.pool_priority",
        )
        assert await snapshot() == before

    async def test_an_elder_with_enough_hours_pays_with_them(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await make_pool_elder(town)
        await fill_pool(runtime, town["provider_staff"], 40)
        await fund(runtime, town["elder"].user.id, 30)
        response = await client.post(
            "/api/v1/requests", json=request_body(payment="pool"), headers=town["elder"].headers
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "payment.use_hours"

    async def test_the_pool_gives_only_what_it_holds_less_its_holds(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await make_pool_elder(town)
        await fill_pool(runtime, town["provider_staff"], 8)
        await book(client, town["elder"], payment="pool")
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests", json=request_body(payment="pool"), headers=town["elder"].headers
        )
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "payment.pool_insufficient"
        assert error["details"] == {"available_minutes": 3, "needed_minutes": 5}
        assert await snapshot() == before


async def voucher_policy(city: City, **vouchers: int) -> None:
    policy = dataclasses.replace(
        rules.DEFAULT_POLICY,
        vouchers=dataclasses.replace(rules.DEFAULT_POLICY.vouchers, **vouchers),
    )
    latest = await DistrictPolicy.filter(district=city.east).count()
    await DistrictPolicy.create(
        district=city.east,
        version=latest + 1,
        effective_from=now() - timedelta(days=1),
        content=rules.policy_to_json(policy),
    )


class TestSubsidy:
    @pytest.fixture
    async def assessed(self, town: City) -> City:
        await ElderProfile.filter(user_id=town["elder"].user.id).update(capability_level="moderate")
        await priced_provider(town, cleaning=10_000)
        return town

    async def test_the_voucher_pays_its_share_and_the_elder_the_rest(
        self, client: httpx.AsyncClient, runtime: Runtime, assessed: City
    ) -> None:
        booking = await book(client, assessed["elder"], payment="subsidy")
        held = booking["payment_detail"]
        assert (held["quote_fen"], held["voucher_hold_fen"]) == (10_000, 5_000)
        # A voucher buys a provider's service: only the provider's staff is offered it.
        assert await run_round() == 1
        await serve(client, assessed["provider_staff"], booking["id"])
        view = await confirm(client, assessed["elder"], booking["id"])
        assert view["state"] == "settled"
        detail = view["payment_detail"]
        assert (detail["price_fen"], detail["voucher_fen"], detail["copay_fen"]) == (
            10_000,
            5_000,
            5_000,
        )
        assert detail["settlement"]["funding"] == "voucher"
        assert await entries_of(runtime.ledger, view["id"]) == []
        month = detail["voucher_month"]
        used, live = await payments.voucher_use(assessed["elder"].user.id, month)
        assert (used, live) == (5_000, 0)
        # The family follows the month's vouchers.
        url = f"/api/v1/elders/{assessed['elder'].user.id}/vouchers?month={month}"
        response = await client.get(url, headers=assessed["family"].headers)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "elder_id": str(assessed["elder"].user.id),
            "month": month,
            "policy_version": 0,
            "monthly_cap_fen": 80_000,
            "share_bp": 5_000,
            "used_fen": 5_000,
            "held_fen": 0,
            "left_fen": 75_000,
        }

    async def test_the_months_vouchers_show_what_live_bookings_hold(
        self, client: httpx.AsyncClient, assessed: City
    ) -> None:
        booking = await book(client, assessed["elder"], payment="subsidy")
        url = f"/api/v1/elders/{assessed['elder'].user.id}/vouchers"
        response = await client.get(url, headers=assessed["elder"].headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["month"] == booking["payment_detail"]["voucher_month"]
        assert (body["used_fen"], body["held_fen"], body["left_fen"]) == (0, 5_000, 75_000)

    @pytest.mark.parametrize("month", ["2025-13", "25-01", "2025-1", "month", "2025-01&x=1"])
    async def test_a_bad_month_is_422(
        self, client: httpx.AsyncClient, assessed: City, month: str
    ) -> None:
        url = f"/api/v1/elders/{assessed['elder'].user.id}/vouchers"
        response = await client.get(url, params={"month": month}, headers=assessed["elder"].headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "month"

    async def test_a_month_whose_vouchers_are_used_up_is_refused_naming_the_rule(
        self, client: httpx.AsyncClient, assessed: City
    ) -> None:
        await voucher_policy(assessed, monthly_cap_fen=8_000)
        first = await book(client, assessed["elder"], payment="subsidy")
        second = await book(client, assessed["elder"], payment="subsidy")
        # The second gets what the month has left; the third finds nothing left.
        assert first["payment_detail"]["voucher_hold_fen"] == 5_000
        assert second["payment_detail"]["voucher_hold_fen"] == 3_000
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests",
            json=request_body(payment="subsidy"),
            headers=assessed["elder"].headers,
        )
        assert response.status_code == 403, response.text
        error = response.json()["error"]
        assert error["details"] == {"rule": "vouchers.monthly_cap_fen", "policy_version": 1}
        assert await snapshot() == before

    async def test_a_cancelled_booking_gives_its_voucher_back(
        self, client: httpx.AsyncClient, assessed: City
    ) -> None:
        await voucher_policy(assessed, monthly_cap_fen=5_000)
        first = await book(client, assessed["elder"], payment="subsidy")
        path = f"/api/v1/bookings/{first['id']}/cancel"
        assert (await post(client, assessed["elder"], path, {"reason": "x"})).status_code == 200
        again = await book(client, assessed["elder"], payment="subsidy")
        assert again["payment_detail"]["voucher_hold_fen"] == 5_000


class TestSelfPaid:
    async def test_the_elder_pays_the_serving_providers_price(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await priced_provider(town, cleaning=6_000)
        booking = await book(client, town["elder"], payment="self")
        assert booking["payment_detail"]["quote_fen"] == 6_000
        assert await run_round() == 1
        await serve(client, town["provider_staff"], booking["id"])
        view = await confirm(client, town["elder"], booking["id"])
        detail = view["payment_detail"]
        assert (view["state"], detail["price_fen"], detail["copay_fen"]) == (
            "settled",
            6_000,
            6_000,
        )
        assert detail["settlement"]["funding"] == "self"
        assert await entries_of(runtime.ledger, view["id"]) == []

    async def test_nobody_prices_the_service_so_it_cannot_be_self_paid(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        before = await snapshot()
        response = await client.post(
            "/api/v1/requests", json=request_body(payment="self"), headers=town["elder"].headers
        )
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "payment.unpriced"
        assert await snapshot() == before


class TestGuaranteedRedemption:
    async def test_volunteers_first_then_the_district_buys_from_a_provider(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await priced_provider(town, cleaning=7_000)
        await only_provider_staff(town)
        await fund(runtime, town["elder"].user.id, 60)
        # Cleaning's cancellation window is two hours; this booking starts in five.
        start = now() + timedelta(hours=5)
        window = {
            "window_start": start.isoformat(),
            "window_end": (start + timedelta(hours=1)).isoformat(),
        }
        booking = await book(client, town["elder"], payment="hours", **window)
        assert await run_round() == 0  # no volunteer, and providers wait for the guarantee
        assert (await row(booking["id"])).guaranteed_at is None
        assert await run_round(now() + timedelta(hours=3, minutes=1)) == 1
        guaranteed = await row(booking["id"])
        assert guaranteed.guaranteed_at is not None
        offer = await offer_for(client, town["provider_staff"], booking["id"])
        assert offer["booking_id"] == booking["id"]
        feed = await read_stream(admin_stream(town.east_community.id), 0, 500)
        assert "booking.guaranteed" in [e.kind for e in feed]

    async def test_a_guaranteed_booking_redeems_the_payers_hours_to_the_district(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await priced_provider(town, cleaning=7_000)
        await only_provider_staff(town)
        elder = town["elder"]
        await fund(runtime, elder.user.id, 60)
        view = await booked_and_served(client, town, town["provider_staff"], elder, payment="hours")
        assert view["state"] == "settled"
        m = view["served_minutes"]
        assert await entries_of(runtime.ledger, view["id"]) == [
            ("east", "redeem", user(elder), "issuance", m)
        ]
        detail = view["payment_detail"]
        assert (detail["settlement"]["funding"], detail["price_fen"]) == ("redeemed", 7_000)
        assert detail["guaranteed_at"] is not None
        actions = [h["action"] for h in view["history"]]
        assert actions.index("guarantee") < actions.index("offer")

    async def test_a_provider_may_not_take_an_hours_booking_before_the_guarantee(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await priced_provider(town, cleaning=7_000)
        await fund(runtime, town["elder"].user.id, 60)
        start = now() + timedelta(hours=5)
        booking = await book(
            client,
            town["elder"],
            payment="hours",
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=1)).isoformat(),
        )
        body = {"helper_id": str(town["provider_staff"].user.id), "reason": "by phone"}
        path = f"/api/v1/bookings/{booking['id']}/dispatch"
        response = await post(client, town["centre_admin"], path, body)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "payment.volunteers_first"

    async def test_an_hours_paid_emergency_goes_to_providers_at_once(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City
    ) -> None:
        await priced_provider(town, emergency=20_000)
        await only_provider_staff(town)
        elder, staff = town["elder"], town["provider_staff"]
        await fund(runtime, elder.user.id, 120)
        booking = await book(client, elder, service="emergency", payment="hours")
        await serve(client, staff, booking["id"])
        view = await confirm(client, elder, booking["id"])
        assert view["state"] == "settled"
        assert [kind for _, kind, *_ in await entries_of(runtime.ledger, view["id"])] == ["redeem"]
        assert view["payment_detail"]["price_fen"] == 20_000


class TestCrossDistrictCap:
    @pytest.fixture
    async def capped(self, client: httpx.AsyncClient, runtime: Runtime, town: City) -> Actor:
        """The east volunteer at east's cap of 60 minutes; a west child who pays in hours."""
        await time_bank_policy(town, account_cap_minutes=60)
        await fund(runtime, town["volunteer"].user.id, 60)
        child = await west_child(client, runtime, town)
        await fund(runtime, child.user.id, 50)
        return child

    async def test_a_credit_past_the_cap_is_refused_before_any_hold(
        self, client: httpx.AsyncClient, runtime: Runtime, town: City, capped: Actor
    ) -> None:
        elder_id = str(town["elder"].user.id)
        view = await booked_and_served(
            client, town, town["volunteer"], capped, payment="hours", elder_id=elder_id
        )
        assert view["state"] == "confirmed"
        assert view["payment_detail"]["settle_blocked"]["rule"] == "time_bank.account_cap_minutes"
        assert await entries_of(runtime.ledger, view["id"]) == []

    async def test_the_serving_district_refuses_a_credit_past_the_cap_under_its_lock(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        town: City,
        capped: Actor,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async def passes(gateway: object, plan: settlement.Plan, now: object) -> settlement.Plan:
            return plan  # as if the volunteer's balance rose right after the check

        monkeypatch.setattr(settlement, "_check_cap", passes)
        elder_id = str(town["elder"].user.id)
        view = await booked_and_served(
            client, town, town["volunteer"], capped, payment="hours", elder_id=elder_id
        )
        assert view["state"] == "confirmed"
        assert [kind for _, kind, *_ in await entries_of(runtime.ledger, view["id"])] == [
            "hold_pending",
            "hold_void",
        ]
        blocked = view["payment_detail"]["settle_blocked"]
        assert blocked["code"] == "ledger.transfer_voided"
        assert "max_balance" in blocked["message"]
        assert await balance(runtime.ledger, capped.user.id) == 50
        assert await balance(runtime.ledger, town["volunteer"].user.id) == 60


async def time_bank_policy(city: City, **time_bank: int) -> None:
    policy = dataclasses.replace(
        rules.DEFAULT_POLICY,
        time_bank=dataclasses.replace(rules.DEFAULT_POLICY.time_bank, **time_bank),
    )
    latest = await DistrictPolicy.filter(district=city.east).count()
    await DistrictPolicy.create(
        district=city.east,
        version=latest + 1,
        effective_from=now() - timedelta(days=1),
        content=rules.policy_to_json(policy),
    )
