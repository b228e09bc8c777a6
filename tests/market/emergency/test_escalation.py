"""Unacknowledged emergencies escalate on the timer: the duty feed, then the signed webhook to a
real aiohttp gateway on loopback; an acknowledgement stops it; every step is on the record."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from market.emergency.escalation import Escalator, WebhookTarget
from market.emergency.models import CallState, EmergencyStep, Escalation, StepKind, WebhookState
from market.models import Offer, Role
from market.realtime.webhook import DELIVERY_HEADER, SIGNATURE_HEADER, verify_signature
from market.services.auth import now_utc
from market.services.runtime import Runtime
from tests.market.bookings.world import neighbourhood, post
from tests.market.conftest import City, make_actor
from tests.market.emergency.gateway import Gateway, failing, gateway_server
from tests.market.emergency.world import (
    SECRET,
    Clock,
    admin_events,
    after,
    emergency,
    kinds,
    recorder,
    reload,
    steps_of,
)

DUTY, WEBHOOK = 60, 180  # the default policy's timings


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with gateway_server() as server:
        yield server


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest_asyncio.fixture
async def escalator(gateway: Gateway, waits: list[float]) -> AsyncIterator[Escalator]:
    target = WebhookTarget(url=gateway.url, secret=SECRET, attempts=3, backoff_seconds=0.5)
    escalator = Escalator(target, clock=Clock(now_utc()), sleep=recorder(waits))
    try:
        yield escalator
    finally:
        await escalator.close()


@pytest_asyncio.fixture
async def helpers_near(city: City) -> City:
    return await neighbourhood(city)


class TestEscalation:
    async def test_duty_feed_then_webhook_each_once_on_time(
        self,
        client: httpx.AsyncClient,
        helpers_near: City,
        gateway: Gateway,
        escalator: Escalator,
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        assert await escalator.run_round(now=after(call, DUTY - 1)) == 0
        assert await admin_events(city, "emergency.escalated") == []

        assert await escalator.run_round(now=after(call, DUTY)) == 1
        assert await escalator.run_round(now=after(call, DUTY + 1)) == 0
        (alert,) = await admin_events(city, "emergency.escalated")
        assert alert.payload["step"] == "duty_feed" and alert.payload["needs_acknowledgement"]
        assert alert.payload["acknowledge"] == f"/api/v1/emergencies/{call.id}/acknowledgement"
        assert (await reload(call)).escalation is Escalation.duty_feed
        assert gateway.received == []

        assert await escalator.run_round(now=after(call, WEBHOOK - 1)) == 0
        assert await escalator.run_round(now=after(call, WEBHOOK)) == 1
        await escalator.drain()
        assert await escalator.run_round(now=after(call, WEBHOOK + 5)) == 0
        await escalator.drain()

        ((body, headers),) = gateway.received
        assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body, now=time.time())
        payload = json.loads(body)
        assert payload["emergency_id"] == str(call.id)
        assert payload["booking_id"] == booking["id"]
        assert payload["district"] == {"code": "east-s1-c1", "name": "Garden Community"}
        # Nothing about the elder beyond ids: no name, phone, address or position.
        elder = city["elder"]
        text = body.decode()
        assert elder.user.name not in text and elder.phone not in text
        assert "30.0" not in text and "latitude" not in text
        assert set(payload) == {
            "type",
            "emergency_id",
            "booking_id",
            "district",
            "opened_at",
            "text",
        }

        row = await reload(call)
        assert row.state is CallState.open and row.webhook_state is WebhookState.delivered
        assert str(row.webhook_delivery_id) == headers[DELIVERY_HEADER]
        assert row.webhook_lease_until is None
        assert await kinds(call) == [
            "created",
            "offered",
            "duty_feed",
            "webhook_started",
            "webhook_attempt",
            "webhook_delivered",
        ]
        attempt = await EmergencyStep.get(call_id=call.id, kind=StepKind.webhook_attempt)
        assert attempt.detail["status"] == 200 and attempt.detail["attempt"] == 1
        outcomes = [
            e.payload.get("outcome") for e in await admin_events(city, "emergency.escalated")
        ]
        assert outcomes == [None, "delivered"]

    async def test_a_failing_gateway_is_retried_then_logged_as_failed(
        self,
        client: httpx.AsyncClient,
        helpers_near: City,
        gateway: Gateway,
        escalator: Escalator,
        waits: list[float],
    ) -> None:
        gateway.behaviour = failing(503)
        _, call = await emergency(client, helpers_near["elder"])
        await escalator.run_round(now=after(call, WEBHOOK))
        await escalator.drain()
        assert len(gateway.received) == 3
        assert len({h[DELIVERY_HEADER] for _, h in gateway.received}) == 1
        assert waits == [0.5, 1.0]
        steps = await steps_of(call)
        assert [s.kind.value for s in steps] == [
            "created",
            "offered",
            "duty_feed",
            "webhook_started",
            "webhook_attempt",
            "webhook_attempt",
            "webhook_attempt",
            "webhook_failed",
        ]
        attempts = [s.detail for s in steps if s.kind is StepKind.webhook_attempt]
        assert [(a["attempt"], a["status"], a["error"]) for a in attempts] == [
            (1, 503, "HTTP 503"),
            (2, 503, "HTTP 503"),
            (3, 503, "HTTP 503"),
        ]
        assert steps[-1].detail["error"] == "HTTP 503" and steps[-1].detail["attempts"] == 3
        row = await reload(call)
        # Still unacknowledged: the duty feed keeps showing it, and knows the SMS did not go.
        assert row.state is CallState.open and row.webhook_state is WebhookState.failed
        (_, failed) = await admin_events(helpers_near, "emergency.escalated")
        assert failed.payload["outcome"] == "failed"
        # A failed webhook is not sent again by later rounds.
        await escalator.run_round(now=after(call, WEBHOOK * 10))
        await escalator.drain()
        assert len(gateway.received) == 3

    async def test_an_unreachable_gateway_is_logged_per_attempt(
        self, client: httpx.AsyncClient, helpers_near: City
    ) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/sms"
            target = WebhookTarget(url=url, secret=SECRET, attempts=2, backoff_seconds=0.0)
            escalator = Escalator(target)
            try:
                _, call = await emergency(client, helpers_near["elder"])
                await escalator.run_round(now=after(call, WEBHOOK))
                await escalator.drain()
            finally:
                await escalator.close()
        steps = await steps_of(call)
        attempts = [s.detail for s in steps if s.kind is StepKind.webhook_attempt]
        assert len(attempts) == 2
        assert all(a["status"] is None and "Connect" in a["error"] for a in attempts)
        assert steps[-1].kind is StepKind.webhook_failed

    async def test_a_refusing_gateway_is_not_retried(
        self, client: httpx.AsyncClient, helpers_near: City, gateway: Gateway, escalator: Escalator
    ) -> None:
        gateway.behaviour = failing(400)
        _, call = await emergency(client, helpers_near["elder"])
        await escalator.run_round(now=after(call, WEBHOOK))
        await escalator.drain()
        assert len(gateway.received) == 1
        assert (await steps_of(call))[-1].detail["status"] == 400

    async def test_without_a_webhook_the_step_is_logged_as_skipped(
        self, client: httpx.AsyncClient, helpers_near: City
    ) -> None:
        escalator = Escalator(None)
        _, call = await emergency(client, helpers_near["elder"])
        assert await escalator.run_round(now=after(call, WEBHOOK)) == 2
        assert await kinds(call) == ["created", "offered", "duty_feed", "webhook_skipped"]
        assert (await reload(call)).webhook_state is WebhookState.skipped
        await escalator.close()

    async def test_timings_come_from_the_district_policy(
        self, client: httpx.AsyncClient, helpers_near: City, escalator: Escalator
    ) -> None:
        from tests.market.bookings.world import set_policy

        await set_policy(
            helpers_near, emergency_duty_feed_after_seconds=5, emergency_webhook_after_seconds=20
        )
        _, call = await emergency(client, helpers_near["elder"])
        assert call.duty_feed_due_at == after(call, 5) and call.webhook_due_at == after(call, 20)
        assert call.policy_version == 1
        assert await escalator.run_round(now=after(call, 5)) == 1
        assert await escalator.run_round(now=after(call, 20)) == 1
        await escalator.drain()


class TestAcknowledgementStopsIt:
    async def test_a_helper_accept_before_the_timer_stops_every_step(
        self,
        client: httpx.AsyncClient,
        helpers_near: City,
        gateway: Gateway,
        escalator: Escalator,
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        offer = await Offer.get(booking_id=booking["id"], helper_id=city["volunteer"].user.id)
        accepted = await post(client, city["volunteer"], f"/api/v1/offers/{offer.id}/accept")
        assert accepted.status_code == 200
        assert await escalator.run_round(now=after(call, WEBHOOK * 2)) == 0
        await escalator.drain()
        assert gateway.received == []
        assert await admin_events(city, "emergency.escalated") == []
        assert await kinds(call) == ["created", "offered", "acknowledged"]
        (ack,) = await admin_events(city, "emergency.acknowledged")
        assert ack.payload["via"] == "accept" and ack.payload["role"] == "volunteer"

    async def test_a_centre_ack_after_the_duty_feed_stops_the_webhook(
        self,
        client: httpx.AsyncClient,
        helpers_near: City,
        gateway: Gateway,
        escalator: Escalator,
    ) -> None:
        city = helpers_near
        _, call = await emergency(client, city["elder"])
        await escalator.run_round(now=after(call, DUTY))
        response = await post(
            client,
            city["centre_admin"],
            f"/api/v1/emergencies/{call.id}/acknowledgement",
            {"handling": True},
        )
        assert response.status_code == 201, response.text
        record = response.json()["emergency"]
        assert record["acknowledgement"]["via"] == "centre"
        assert record["acknowledgement"]["handling"] is True
        assert record["acknowledgement"]["by"] == str(city["centre_admin"].user.id)
        assert await escalator.run_round(now=after(call, WEBHOOK * 2)) == 0
        await escalator.drain()
        assert gateway.received == []
        assert await kinds(call) == ["created", "offered", "duty_feed", "acknowledged"]

    async def test_an_ack_between_retries_stops_the_webhook(
        self, client: httpx.AsyncClient, helpers_near: City, gateway: Gateway
    ) -> None:
        city = helpers_near
        gateway.behaviour = failing(503)
        acks: list[int] = []

        async def ack_while_waiting(_seconds: float) -> None:
            response = await post(
                client, city["centre_admin"], f"/api/v1/emergencies/{call.id}/acknowledgement"
            )
            acks.append(response.status_code)

        target = WebhookTarget(url=gateway.url, secret=SECRET, attempts=5, backoff_seconds=1.0)
        escalator = Escalator(target, sleep=ack_while_waiting)
        try:
            _, call = await emergency(client, city["elder"])
            await escalator.run_round(now=after(call, WEBHOOK))
            await escalator.drain()
        finally:
            await escalator.close()
        assert acks == [201] and len(gateway.received) == 1
        assert await kinds(call) == [
            "created",
            "offered",
            "duty_feed",
            "webhook_started",
            "webhook_attempt",
            "acknowledged",
            "webhook_stopped",
        ]
        row = await reload(call)
        assert row.state is CallState.acknowledged and row.webhook_state is WebhookState.stopped

    async def test_concurrent_acknowledgements_exactly_one_wins(
        self, client: httpx.AsyncClient, runtime: Runtime, helpers_near: City
    ) -> None:
        city = helpers_near
        second_admin = await make_actor(client, runtime, Role.centre_admin, city.east_street)
        booking, call = await emergency(client, city["elder"])
        offer = await Offer.get(booking_id=booking["id"], helper_id=city["volunteer"].user.id)
        path = f"/api/v1/emergencies/{call.id}/acknowledgement"
        admins = [city["centre_admin"], second_admin] * 5
        responses = await asyncio.gather(
            post(client, city["volunteer"], f"/api/v1/offers/{offer.id}/accept"),
            *(
                post(client, admin, path, {"handling": i % 2 == 0})
                for i, admin in enumerate(admins)
            ),
        )
        accept, *acks = responses
        assert accept.status_code == 200
        assert {r.status_code for r in acks} <= {200, 201}
        steps = await steps_of(call)
        acknowledged = [s for s in steps if s.kind is StepKind.acknowledged]
        assert len(acknowledged) == 1
        row = await reload(call)
        winners = [r for r in acks if r.status_code == 201]
        if row.acknowledged_via.value == "accept":  # type: ignore[union-attr]
            assert winners == []
            assert row.acknowledged_by_id == city["volunteer"].user.id
        else:
            (winner,) = winners
            assert winner.json()["acknowledged_now"] is True
            # The helper still took the job: logged, but it is not a second acknowledgement.
            assert [s.kind for s in steps].count(StepKind.helper_accepted) == 1
        # Every answer shows the one standing acknowledgement.
        standing = {json.dumps(r.json()["emergency"]["acknowledgement"]) for r in acks}
        assert len(standing) == 1


class TestClosing:
    async def test_a_cancelled_booking_closes_the_call_and_stops_escalation(
        self,
        client: httpx.AsyncClient,
        helpers_near: City,
        gateway: Gateway,
        escalator: Escalator,
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        cancelled = await post(
            client, city["elder"], f"/api/v1/bookings/{booking['id']}/cancel", {"reason": "ok now"}
        )
        assert cancelled.status_code == 200, cancelled.text
        assert await escalator.run_round(now=after(call, WEBHOOK)) == 1
        await escalator.drain()
        assert gateway.received == []
        row = await reload(call)
        assert row.state is CallState.closed and row.closed_reason == "booking cancelled"
        assert await kinds(call) == ["created", "offered", "closed"]
        assert (await steps_of(call))[-1].detail == {
            "booking_state": "cancelled",
            "unacknowledged": True,
        }
        late = await post(
            client, city["centre_admin"], f"/api/v1/emergencies/{call.id}/acknowledgement"
        )
        assert late.status_code == 409 and late.json()["error"]["code"] == "emergency.closed"

    async def test_an_acknowledged_call_closes_when_the_service_is_done(
        self, client: httpx.AsyncClient, helpers_near: City, escalator: Escalator
    ) -> None:
        city = helpers_near
        booking, call = await emergency(client, city["elder"])
        offer = await Offer.get(booking_id=booking["id"], helper_id=city["volunteer"].user.id)
        await post(client, city["volunteer"], f"/api/v1/offers/{offer.id}/accept")
        base = f"/api/v1/bookings/{booking['id']}"
        position = {"latitude": 30.0, "longitude": 120.0}
        for step, body in (("start", None), ("check-in", position), ("check-out", position)):
            response = await post(client, city["volunteer"], f"{base}/{step}", body)
            assert response.status_code == 200, response.text
        assert await escalator.run_round(now=after(call, 1)) == 1
        assert await kinds(call) == ["created", "offered", "acknowledged", "closed"]
        row = await reload(call)
        assert row.state is CallState.closed and row.acknowledged_at is not None
        # Acknowledging a call that was acknowledged before it closed stays idempotent.
        again = await post(
            client, city["centre_admin"], f"/api/v1/emergencies/{call.id}/acknowledgement"
        )
        assert again.status_code == 200 and again.json()["acknowledged_now"] is False


class TestRestarts:
    async def test_a_new_process_resumes_a_delivery_whose_sender_died(
        self, client: httpx.AsyncClient, helpers_near: City, gateway: Gateway
    ) -> None:
        hang, arrived = asyncio.Event(), asyncio.Event()

        async def hanging(n: int) -> web.StreamResponse:
            if n == 1:
                arrived.set()
                await hang.wait()
            return web.json_response({"queued": True})

        gateway.behaviour = hanging
        target = WebhookTarget(url=gateway.url, secret=SECRET, attempts=2, backoff_seconds=0.0)
        first = Escalator(target)
        _, call = await emergency(client, helpers_near["elder"])
        assert await first.run_round(now=after(call, WEBHOOK)) == 2
        await asyncio.wait_for(arrived.wait(), 10)
        claimed = await reload(call)
        assert claimed.webhook_state is WebhookState.pending
        assert claimed.webhook_lease_until == after(call, WEBHOOK) + target.lease

        # A second process, nothing in memory: the lease holds it off, then it takes over.
        second = Escalator(target)
        try:
            assert await second.run_round(now=after(call, WEBHOOK + 10)) == 0
            resumed_at = claimed.webhook_lease_until
            assert resumed_at is not None
            assert await second.run_round(now=resumed_at) == 1
            await second.drain()
        finally:
            await second.close()
            await first.close()
            hang.set()
        delivery_ids = {h[DELIVERY_HEADER] for _, h in gateway.received}
        assert delivery_ids == {str(claimed.webhook_delivery_id)}
        assert len(gateway.received) == 2
        assert await kinds(call) == [
            "created",
            "offered",
            "duty_feed",
            "webhook_started",
            "webhook_resumed",
            "webhook_attempt",
            "webhook_delivered",
        ]

    async def test_shutdown_hands_the_lease_back_for_the_next_start(
        self, client: httpx.AsyncClient, helpers_near: City, gateway: Gateway
    ) -> None:
        hang, arrived = asyncio.Event(), asyncio.Event()

        async def hanging(n: int) -> web.StreamResponse:
            if n == 1:
                arrived.set()
                await hang.wait()
            return web.json_response({"queued": True})

        gateway.behaviour = hanging
        target = WebhookTarget(url=gateway.url, secret=SECRET, attempts=2, backoff_seconds=0.0)
        stopping = Escalator(target, clock=Clock(now_utc()))
        _, call = await emergency(client, helpers_near["elder"])
        await stopping.run_round(now=after(call, WEBHOOK))
        await asyncio.wait_for(arrived.wait(), 10)
        await stopping.close()
        hang.set()
        handed_back = await reload(call)
        assert handed_back.webhook_state is WebhookState.pending
        assert handed_back.webhook_lease_until is not None
        assert handed_back.webhook_lease_until < after(call, WEBHOOK + 1)
        restarted = Escalator(target)
        try:
            assert await restarted.run_round(now=after(call, WEBHOOK + 1)) == 1
            await restarted.drain()
        finally:
            await restarted.close()
        assert (await reload(call)).webhook_state is WebhookState.delivered

    async def test_two_processes_take_each_step_once(
        self, client: httpx.AsyncClient, helpers_near: City, gateway: Gateway
    ) -> None:
        target = WebhookTarget(url=gateway.url, secret=SECRET, attempts=2, backoff_seconds=0.0)
        a, b = Escalator(target), Escalator(target)
        try:
            _, call = await emergency(client, helpers_near["elder"])
            for at in (DUTY, WEBHOOK, WEBHOOK + 1):
                await asyncio.gather(
                    a.run_round(now=after(call, at)), b.run_round(now=after(call, at))
                )
            await asyncio.gather(a.drain(), b.drain())
        finally:
            await a.close()
            await b.close()
        assert len(gateway.received) == 1
        assert await kinds(call) == [
            "created",
            "offered",
            "duty_feed",
            "webhook_started",
            "webhook_attempt",
            "webhook_delivered",
        ]


class TestConfiguration:
    def test_no_url_means_no_webhook(self) -> None:
        from market.settings import Settings

        assert WebhookTarget.from_settings(Settings()) is None

    @pytest.mark.parametrize(
        ("url", "secret", "attempts", "problem"),
        [
            ("ftp://gateway/sms", "s" * 16, 5, "URL"),
            ("https:///sms", "s" * 16, 5, "URL"),
            ("https://gateway/sms", "", 5, "SECRET"),
            ("https://gateway/sms", "short", 5, "SECRET"),
            ("https://gateway/sms", "s" * 16, 21, "ATTEMPTS"),
        ],
    )
    def test_an_unusable_webhook_stops_the_start(
        self, url: str, secret: str, attempts: int, problem: str
    ) -> None:
        from market.settings import Settings

        settings = Settings(
            emergency_webhook_url=url,
            emergency_webhook_secret=secret,
            emergency_webhook_attempts=attempts,
        )
        with pytest.raises(ValueError, match=problem):
            Escalator.from_settings(settings)

    def test_settings_come_from_the_environment(self) -> None:
        from market.settings import load_settings

        settings = load_settings(
            {
                "ELDERCARE_EMERGENCY_WEBHOOK_URL": "https://sms.example/hook",
                "ELDERCARE_EMERGENCY_WEBHOOK_SECRET": "0123456789abcdef",
                "ELDERCARE_EMERGENCY_WEBHOOK_ATTEMPTS": "3",
                "ELDERCARE_EMERGENCY_WEBHOOK_BACKOFF_SECONDS": "4",
            }
        )
        target = WebhookTarget.from_settings(settings)
        assert target is not None
        assert (target.url, target.secret, target.attempts, target.backoff_seconds) == (
            "https://sms.example/hook",
            b"0123456789abcdef",
            3,
            4.0,
        )
