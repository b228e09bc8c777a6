"""An acknowledgement holds while someone is on the way. When the emergency booking goes back
to be staffed (the accepting helper drops out, the offers the centre had seen all lapse), the
call opens again in that same transaction and the timer escalates it once more: duty feed,
then the webhook, each on the delays the call opened with, counted from the re-opening."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio

from market.emergency import calls
from market.emergency.escalation import Escalator, WebhookTarget
from market.emergency.models import CallState, EmergencyStep, Escalation, StepKind, WebhookState
from market.models import Booking, BookingEvent, BookingState, Offer, Role
from market.realtime.events import admin_stream, elder_stream, read_stream
from market.realtime.webhook import DELIVERY_HEADER
from market.services.auth import now_utc
from market.services.runtime import Runtime
from tests.market.bookings.world import neighbourhood, place_helper, post, run_round
from tests.market.conftest import Actor, City, make_actor
from tests.market.emergency.gateway import Gateway, failing, gateway_server
from tests.market.emergency.world import SECRET, Clock, emergency, kinds, reload, steps_of

DUTY, WEBHOOK = 60, 180  # the default policy's timings


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with gateway_server() as server:
        yield server


@pytest_asyncio.fixture
async def escalator(gateway: Gateway) -> AsyncIterator[Escalator]:
    target = WebhookTarget(url=gateway.url, secret=SECRET, attempts=2, backoff_seconds=0.5)
    escalator = Escalator(target, clock=Clock(now_utc()), sleep=lambda _s: asyncio.sleep(0))
    try:
        yield escalator
    finally:
        await escalator.close()


@pytest_asyncio.fixture
async def helpers_near(city: City) -> City:
    return await neighbourhood(city)


async def newcomer(client: httpx.AsyncClient, runtime: Runtime, city: City) -> Actor:
    """A third helper in reach, placed after the first fan-out (which did not offer to them):
    the one a re-staffing can still offer the emergency to."""
    helper = await make_actor(client, runtime, Role.volunteer, city.east_community)
    await place_helper(helper, lat=30.004, lon=120.004)
    return helper


async def accept(
    client: httpx.AsyncClient, city: City, booking_id: str, helper: str | Actor
) -> None:
    actor = city[helper] if isinstance(helper, str) else helper
    offer = await Offer.get(booking_id=booking_id, helper_id=actor.user.id)
    response = await post(client, actor, f"/api/v1/offers/{offer.id}/accept")
    assert response.status_code == 200, response.text


async def drop_out(client: httpx.AsyncClient, city: City, booking_id: str, helper: str) -> None:
    response = await post(
        client, city[helper], f"/api/v1/bookings/{booking_id}/cancel", {"reason": "car broke"}
    )
    assert response.status_code == 200, response.text


class TestTheHelperDropsOut:
    async def test_the_call_reopens_with_the_drop_out_and_escalates_again(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        helpers_near: City,
        gateway: Gateway,
        escalator: Escalator,
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        third = await newcomer(client, runtime, city)
        await accept(client, city, booking["id"], "volunteer")
        assert (await reload(call)).state is CallState.acknowledged
        await drop_out(client, city, booking["id"], "volunteer")

        row = await reload(call)
        assert row.state is CallState.open and row.escalation is Escalation.none
        assert row.acknowledged_at is None and row.acknowledged_via is None
        assert row.acknowledged_by_id is None and row.handling is False
        cancelled = await BookingEvent.get(booking_id=booking["id"], action="helper_cancel")
        reopened = (await steps_of(call))[-1]
        assert reopened.kind is StepKind.reopened and reopened.at == cancelled.at
        # The delays the call opened with, counted from the drop-out.
        assert row.duty_feed_due_at == cancelled.at + timedelta(seconds=DUTY)
        assert row.webhook_due_at == cancelled.at + timedelta(seconds=WEBHOOK)
        assert reopened.detail == {
            "booking_state": "requested",
            "action": "helper_cancel",
            "via": "accept",
            "acknowledged_role": "volunteer",
            "acknowledged_by": str(city["volunteer"].user.id),
            "handling": False,
            "duty_feed_due_at": row.duty_feed_due_at.isoformat(),
            "webhook_due_at": row.webhook_due_at.isoformat(),
        }
        assert await kinds(call) == ["created", "offered", "acknowledged", "reopened"]

        # The centre and the family are told, in the drop-out's own transaction: the event
        # follows the booking's state change on each stream.
        for stream in (admin_stream(city.east_community.id), elder_stream(city["elder"].user.id)):
            events = await read_stream(stream, 0, 1000)
            (change,) = [
                e
                for e in events
                if e.kind == "booking.state" and e.payload.get("action") == "helper_cancel"
            ]
            following = [e for e in events if e.seq == change.seq + 1]
            assert [e.kind for e in following] == ["emergency.reopened"]
            payload = following[0].payload
            assert payload["needs_acknowledgement"] is True
            assert payload["acknowledge"] == f"/api/v1/emergencies/{call.id}/acknowledgement"
            assert str(city["volunteer"].user.id) not in str(payload)

        # The next matching round offers it to the helper not asked before: on the record.
        assert (await Booking.get(id=booking["id"])).state is BookingState.requested
        await run_round()
        assert await kinds(call) == ["created", "offered", "acknowledged", "reopened", "offered"]
        offered = (await steps_of(call))[-1]
        assert offered.detail["helper_ids"] == [str(third.user.id)]

        # Nobody takes it this time: the duty feed, then the SMS gateway, on the new times.
        at = cancelled.at
        assert await escalator.run_round(now=at + timedelta(seconds=DUTY - 1)) == 0
        assert await escalator.run_round(now=at + timedelta(seconds=DUTY)) == 1
        assert await escalator.run_round(now=at + timedelta(seconds=WEBHOOK)) == 1
        await escalator.drain()
        assert len(gateway.received) == 1
        assert await kinds(call) == [
            "created",
            "offered",
            "acknowledged",
            "reopened",
            "offered",
            "duty_feed",
            "webhook_started",
            "webhook_attempt",
            "webhook_delivered",
        ]
        assert (await reload(call)).webhook_state is WebhookState.delivered

    async def test_a_helper_who_takes_it_after_the_reopening_acknowledges_it_again(
        self,
        client: httpx.AsyncClient,
        runtime: Runtime,
        helpers_near: City,
        escalator: Escalator,
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        third = await newcomer(client, runtime, city)
        await accept(client, city, booking["id"], "volunteer")
        await drop_out(client, city, booking["id"], "volunteer")
        await run_round()
        await accept(client, city, booking["id"], third)
        row = await reload(call)
        assert row.state is CallState.acknowledged
        assert row.acknowledged_by_id == third.user.id
        assert await escalator.run_round(now=now_utc() + timedelta(seconds=WEBHOOK * 2)) == 0
        assert await kinds(call) == [
            "created",
            "offered",
            "acknowledged",
            "reopened",
            "offered",
            "acknowledged",
        ]

    async def test_with_nobody_left_in_reach_the_duty_feed_is_alerted_at_once(
        self, client: httpx.AsyncClient, helpers_near: City
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        await accept(client, city, booking["id"], "volunteer")
        await drop_out(client, city, booking["id"], "volunteer")
        # Both helpers in reach were asked already: the re-staffing finds nobody.
        await run_round()
        assert (await Booking.get(id=booking["id"])).state is BookingState.escalated
        row = await reload(call)
        assert row.state is CallState.open and row.escalation is Escalation.duty_feed
        assert await kinds(call) == [
            "created",
            "offered",
            "acknowledged",
            "reopened",
            "no_helper_in_reach",
            "duty_feed",
        ]

    async def test_the_elder_side_sees_the_reopening_without_the_helper(
        self, client: httpx.AsyncClient, helpers_near: City
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        await accept(client, city, booking["id"], "volunteer")
        await drop_out(client, city, booking["id"], "volunteer")
        for reader in ("elder", "family"):
            response = await client.get(
                f"/api/v1/bookings/{booking['id']}/emergency", headers=city[reader].headers
            )
            record = response.json()["emergency"]
            assert record["state"] == "open" and record["acknowledgement"] is None
            step = record["steps"][-1]
            assert step["kind"] == "reopened" and step["actor_id"] is None
            assert set(step["detail"]) == {
                "booking_state",
                "action",
                "via",
                "handling",
                "duty_feed_due_at",
                "webhook_due_at",
            }
            assert str(city["volunteer"].user.id) not in response.text
        centre = await client.get(
            f"/api/v1/emergencies/{call.id}", headers=city["centre_admin"].headers
        )
        detail = centre.json()["emergency"]["steps"][-1]["detail"]
        assert detail["acknowledged_by"] == str(city["volunteer"].user.id)

    async def test_a_reopening_that_fails_rolls_the_drop_out_back(
        self, client: httpx.AsyncClient, helpers_near: City, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """One transaction: the booking does not go back without its call opening again."""
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        await accept(client, city, booking["id"], "volunteer")

        async def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("the call could not be re-opened")

        monkeypatch.setattr(calls, "reopen", broken)
        with pytest.raises(RuntimeError, match="re-opened"):
            await post(
                client,
                city["volunteer"],
                f"/api/v1/bookings/{booking['id']}/cancel",
                {"reason": "car broke"},
            )
        assert (await Booking.get(id=booking["id"])).state is BookingState.accepted
        assert not await BookingEvent.exists(booking_id=booking["id"], action="helper_cancel")
        assert (await reload(call)).state is CallState.acknowledged
        assert await kinds(call) == ["created", "offered", "acknowledged"]


class TestTheCentresAcknowledgement:
    async def test_offers_that_all_lapse_after_a_centre_ack_reopen_the_call(
        self, client: httpx.AsyncClient, helpers_near: City
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        path = f"/api/v1/emergencies/{call.id}/acknowledgement"
        first = await post(client, city["centre_admin"], path, {"handling": True})
        assert first.status_code == 201
        for helper in ("volunteer", "provider_staff"):
            offer = await Offer.get(booking_id=booking["id"], helper_id=city[helper].user.id)
            declined = await post(
                client, city[helper], f"/api/v1/offers/{offer.id}/decline", {"reason": "away"}
            )
            assert declined.status_code == 200, declined.text
        row = await reload(call)
        assert row.state is CallState.open and row.acknowledged_at is None
        reopened = (await steps_of(call))[-1]
        assert reopened.kind is StepKind.reopened
        assert reopened.detail["action"] == "decline" and reopened.detail["via"] == "centre"
        assert reopened.detail["handling"] is True
        assert reopened.detail["acknowledged_by"] == str(city["centre_admin"].user.id)
        # The centre acknowledges afresh: this request makes the acknowledgement.
        again = await post(client, city["centre_admin"], path)
        assert again.status_code == 201 and again.json()["acknowledged_now"] is True

    async def test_an_open_call_is_not_reopened_and_a_closed_one_stays_closed(
        self, client: httpx.AsyncClient, helpers_near: City, escalator: Escalator
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        for helper in ("volunteer", "provider_staff"):
            offer = await Offer.get(booking_id=booking["id"], helper_id=city[helper].user.id)
            await post(client, city[helper], f"/api/v1/offers/{offer.id}/decline", {})
        # Never acknowledged: going back changes nothing on the call.
        assert await kinds(call) == ["created", "offered"]
        cancelled = await post(
            client, city["elder"], f"/api/v1/bookings/{booking['id']}/cancel", {"reason": "ok"}
        )
        assert cancelled.status_code == 200
        await escalator.run_round(now=now_utc())
        assert (await reload(call)).state is CallState.closed
        assert await kinds(call) == ["created", "offered", "closed"]


class TestAWebhookInFlight:
    async def test_a_delivery_running_when_the_call_reopens_is_stopped_and_a_new_one_sent(
        self, client: httpx.AsyncClient, helpers_near: City, gateway: Gateway
    ) -> None:
        """The helper accepts and drops out while the SMS is between two retries: that
        delivery stops (it belongs to the earlier escalation) and the re-opened call claims
        one of its own, with a new delivery id, when it falls due again."""
        city = helpers_near
        gateway.behaviour = failing(503, until=2)

        async def accept_and_drop_out_while_waiting(_seconds: float) -> None:
            await accept(client, city, booking["id"], "volunteer")
            await drop_out(client, city, booking["id"], "volunteer")

        target = WebhookTarget(url=gateway.url, secret=SECRET, attempts=3, backoff_seconds=1.0)
        escalator = Escalator(target, sleep=accept_and_drop_out_while_waiting)
        try:
            booking, call = await emergency(client, city["elder"])
            await escalator.run_round(now=call.created_at + timedelta(seconds=WEBHOOK))
            await escalator.drain()
            first_delivery = {h[DELIVERY_HEADER] for _, h in gateway.received}
            assert len(gateway.received) == 1
            row = await reload(call)
            assert row.state is CallState.open and row.webhook_state is None
            assert row.webhook_delivery_id is None and row.webhook_lease_until is None

            reopened_at = (await EmergencyStep.get(call_id=call.id, kind=StepKind.reopened)).at
            await escalator.run_round(now=reopened_at + timedelta(seconds=WEBHOOK))
            await escalator.drain()
        finally:
            await escalator.close()
        assert len(gateway.received) == 2
        second_delivery = {gateway.received[1][1][DELIVERY_HEADER]}
        assert second_delivery != first_delivery
        assert str((await reload(call)).webhook_delivery_id) in second_delivery
        assert await kinds(call) == [
            "created",
            "offered",
            "duty_feed",
            "webhook_started",
            "webhook_attempt",
            "acknowledged",
            "webhook_stopped",
            "reopened",
            "duty_feed",
            "webhook_started",
            "webhook_attempt",
            "webhook_delivered",
        ]
        stopped = await EmergencyStep.get(call_id=call.id, kind=StepKind.webhook_stopped)
        assert stopped.detail == {"delivery_id": first_delivery.pop(), "reason": "reopened"}


class TestCallsAcknowledgedBeforeTheFix:
    async def test_a_fan_out_reopens_an_acknowledged_call(
        self, client: httpx.AsyncClient, helpers_near: City
    ) -> None:
        """A call left acknowledged with its booking back to requested (stored before calls
        re-opened with their booking) opens again when the booking is fanned out."""
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        await accept(client, city, booking["id"], "volunteer")
        # As the booking was left by a drop-out before the re-opening existed.
        await Booking.filter(id=booking["id"]).update(
            state=BookingState.requested, helper_id=None, excluded_helpers=[]
        )
        await Offer.filter(booking_id=booking["id"]).update(state="withdrawn")
        await run_round()
        row = await reload(call)
        assert row.state is CallState.open and row.escalation is Escalation.duty_feed
        # Both helpers in reach were asked before: nobody now, so the duty feed at once.
        assert await kinds(call) == [
            "created",
            "offered",
            "acknowledged",
            "reopened",
            "no_helper_in_reach",
            "duty_feed",
        ]
        reopened = await EmergencyStep.get(call_id=call.id, kind=StepKind.reopened)
        assert reopened.detail["action"] == "fan_out"
