"""The escalation timer: unacknowledged emergencies go to the duty feed, then the webhook.

One round (`Escalator.run_round(now=...)`, which tests call with an injected clock):
1. close the calls whose booking is over (served, cancelled, expired, ...);
2. alert the duty feed for open calls past `duty_feed_due_at` (an `emergency.escalated` event
   on the district's admin stream that needs acknowledging);
3. claim the webhook step for open calls past `webhook_due_at` and send it in a task of its
   own (so a slow gateway never holds up another call's alert);
4. resume webhook deliveries whose sender's lease ran out (the process died mid-send).

Everything the timer needs is on the call row; nothing is kept in memory between rounds, so a
restarted process, or any of several processes, carries on where the last one stopped. Each
step is claimed under the call row's lock with its state re-checked, so two processes never
take the same step; a webhook resumed after a crash is sent with the same delivery id and body,
so the gateway drops it if the first process had in fact delivered it.

The webhook body is what an SMS gateway needs to text the district's duty officer, and
nothing more: ids of the call and booking, the district's code and name, when the call came in
and a ready short text. No name, phone number, address, position or health detail of the elder
leaves the service this way; the duty officer reads those in the app, signed in.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import aiohttp

from market.emergency import calls
from market.emergency.models import CallState, EmergencyCall, Escalation, StepKind, WebhookState
from market.models import Booking, BookingState, District
from market.realtime.webhook import WebhookAttempt, WebhookRefused, WebhookResult, send_webhook
from market.services.booking_tx import BookingTransaction, booking_transaction
from market.settings import MIN_WEBHOOK_SECRET_BYTES, Settings

log = logging.getLogger("eldercare.emergency")

S = BookingState
# Once the booking is here the emergency is over: served, or it will not be served.
FINISHED = frozenset(
    {
        S.completed,
        S.confirmed,
        S.settled,
        S.rated,
        S.disputed,
        S.cancelled,
        S.expired,
        S.declined,
        S.no_show,
    }
)
ROUND_LIMIT = 500
CHECK_SECONDS = 1.0
ATTEMPT_TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 60.0
MIN_SECRET_BYTES = MIN_WEBHOOK_SECRET_BYTES


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WebhookTarget:
    """Where the last step goes (deployment configuration, not district policy)."""

    url: str
    secret: bytes
    attempts: int = 5
    backoff_seconds: float = 2.0
    attempt_timeout_seconds: float = ATTEMPT_TIMEOUT_SECONDS
    max_backoff_seconds: float = MAX_BACKOFF_SECONDS

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"ELDERCARE_EMERGENCY_WEBHOOK_URL must be http(s)://host/...; got {self.url!r}"
            )
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(
                "ELDERCARE_EMERGENCY_WEBHOOK_SECRET must be set, at least "
                f"{MIN_SECRET_BYTES} bytes, when ELDERCARE_EMERGENCY_WEBHOOK_URL is"
            )
        if not 1 <= self.attempts <= 20:
            raise ValueError("ELDERCARE_EMERGENCY_WEBHOOK_ATTEMPTS must be 1-20")

    @property
    def lease(self) -> timedelta:
        """Longer than one sender can take for every attempt and wait between them."""
        per_attempt = self.attempt_timeout_seconds + self.max_backoff_seconds
        return timedelta(seconds=self.attempts * per_attempt + 60)

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookTarget | None:
        if not settings.emergency_webhook_url:
            return None
        return cls(
            url=settings.emergency_webhook_url,
            secret=settings.emergency_webhook_secret.encode(),
            attempts=settings.emergency_webhook_attempts,
            backoff_seconds=float(settings.emergency_webhook_backoff_seconds),
        )


async def webhook_payload(call: EmergencyCall) -> dict[str, Any]:
    """The same body on every attempt and after a restart: built from the record only."""
    district = await District.get(id=call.district_id)
    opened = call.created_at.astimezone(UTC)
    return {
        "type": "emergency.unacknowledged",
        "emergency_id": str(call.id),
        "booking_id": str(call.booking_id),
        "district": {"code": district.code, "name": district.name},
        "opened_at": opened.isoformat(),
        "text": (
            f"Emergency call in {district.name} not acknowledged since "
            f"{opened:%H:%M} UTC. Open the duty feed, call {str(call.id)[:8]}."
        ),
    }


def _attempt_detail(delivery_id: UUID, attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "delivery_id": str(delivery_id),
        "attempt": attempt.number,
        "status": attempt.status,
        "error": attempt.error,
        "elapsed_ms": attempt.elapsed_ms,
    }


class Escalator:
    def __init__(
        self,
        target: WebhookTarget | None,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.target = target
        self._session = session
        self._own_session = session is None
        self._clock = clock
        self._sleep = sleep
        self._deliveries: set[asyncio.Task[None]] = set()
        self._sending: dict[UUID, asyncio.Task[None]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Escalator:
        """Refuses (ValueError) an unusable webhook configuration before the service starts."""
        return cls(WebhookTarget.from_settings(settings))

    # ---- the round ---------------------------------------------------------------------------

    async def run_round(self, *, now: datetime) -> int:
        """One pass over the open calls; returns how many steps it took (deliveries it started
        run on: `drain()` waits for them)."""
        taken = await self._close_finished(now)
        for call_id in await self._due(Escalation.none, "duty_feed_due_at", now):
            taken += await self._alert_duty_feed(call_id, now)
        for call_id in await self._due(Escalation.duty_feed, "webhook_due_at", now):
            taken += await self._claim_webhook(call_id, now)
        stale = (
            await EmergencyCall.filter(
                webhook_state=WebhookState.pending, webhook_lease_until__lte=now
            )
            .order_by("created_at")
            .limit(ROUND_LIMIT)
            .values_list("id", flat=True)
        )
        for call_id in stale:
            taken += await self._resume_webhook(call_id, now)  # type: ignore[arg-type]
        return taken

    async def _due(self, level: Escalation, due_field: str, now: datetime) -> list[UUID]:
        rows = (
            await EmergencyCall.filter(
                state=CallState.open, escalation=level, **{f"{due_field}__lte": now}
            )
            .order_by(due_field)
            .limit(ROUND_LIMIT)
            .values_list("id", flat=True)
        )
        return list(rows)  # type: ignore[arg-type]

    async def _close_finished(self, now: datetime) -> int:
        live = (
            await EmergencyCall.filter(state__in=(CallState.open, CallState.acknowledged))
            .order_by("created_at")
            .limit(ROUND_LIMIT)
            .values_list("id", "booking_id")
        )
        states = dict(await Booking.filter(id__in=[b for _, b in live]).values_list("id", "state"))
        closed = 0
        for call_id, booking_id in live:
            state = states.get(booking_id)
            if state is not None and BookingState(state) in FINISHED:
                closed += await self._close(call_id, BookingState(state), now)  # type: ignore[arg-type]
        return closed

    async def _close(self, call_id: UUID, booking_state: BookingState, now: datetime) -> int:
        async with booking_transaction() as tx:
            call = await calls.lock_call(tx, id=call_id)
            if call is None or call.state is CallState.closed:
                return 0
            unacknowledged = call.state is CallState.open
            call.state = CallState.closed
            call.closed_at = now
            call.closed_reason = f"booking {booking_state.value}"
            await call.save(
                using_db=tx.connection, update_fields=["state", "closed_at", "closed_reason"]
            )
            detail = {"booking_state": booking_state.value, "unacknowledged": unacknowledged}
            await calls.log_step(tx, call, StepKind.closed, at=now, detail=detail)
            await calls.publish(tx, call, "emergency.closed", detail)
        return 1

    async def _alert_duty_feed(self, call_id: UUID, now: datetime) -> int:
        async with booking_transaction() as tx:
            call = await calls.lock_call(tx, id=call_id)
            if (
                call is None
                or call.state is not CallState.open
                or call.escalation is not Escalation.none
            ):
                return 0
            await calls.alert_duty_feed(tx, call, now=now, reason="not acknowledged in time")
        return 1

    async def _claim_webhook(self, call_id: UUID, now: datetime) -> int:
        delivery_id = uuid4()
        async with booking_transaction() as tx:
            call = await calls.lock_call(tx, id=call_id)
            if (
                call is None
                or call.state is not CallState.open
                or call.escalation is not Escalation.duty_feed
            ):
                return 0
            call.escalation = Escalation.webhook
            if self.target is None:
                call.webhook_state = WebhookState.skipped
                await call.save(
                    using_db=tx.connection, update_fields=["escalation", "webhook_state"]
                )
                reason = {"reason": "no webhook configured (ELDERCARE_EMERGENCY_WEBHOOK_URL)"}
                await calls.log_step(tx, call, StepKind.webhook_skipped, at=now, detail=reason)
                await calls.publish(
                    tx, call, "emergency.escalated", {"step": "webhook", "outcome": "skipped"}
                )
                return 1
            call.webhook_state = WebhookState.pending
            call.webhook_delivery_id = delivery_id
            call.webhook_lease_until = now + self.target.lease
            await call.save(
                using_db=tx.connection,
                update_fields=[
                    "escalation",
                    "webhook_state",
                    "webhook_delivery_id",
                    "webhook_lease_until",
                ],
            )
            detail = {"delivery_id": str(delivery_id), "attempts": self.target.attempts}
            await calls.log_step(tx, call, StepKind.webhook_started, at=now, detail=detail)
        self._start_delivery(call)
        return 1

    async def _resume_webhook(self, call_id: UUID, now: datetime) -> int:
        async with booking_transaction() as tx:
            call = await calls.lock_call(tx, id=call_id)
            if (
                call is None
                or call.webhook_state is not WebhookState.pending
                or call.webhook_lease_until is None
                or call.webhook_lease_until > now
            ):
                return 0
            if call.state is not CallState.open or self.target is None:
                # Acknowledged or closed while nobody was sending, or the webhook was turned off.
                reason = call.state.value if call.state is not CallState.open else "unconfigured"
                await self._settle(tx, call, WebhookState.stopped, now, {"reason": reason})
                return 1
            call.webhook_lease_until = now + self.target.lease
            await call.save(using_db=tx.connection, update_fields=["webhook_lease_until"])
            detail = {"delivery_id": str(call.webhook_delivery_id)}
            await calls.log_step(tx, call, StepKind.webhook_resumed, at=now, detail=detail)
        self._start_delivery(call)
        return 1

    # ---- the delivery ------------------------------------------------------------------------

    def _start_delivery(self, call: EmergencyCall) -> None:
        task = asyncio.create_task(self._deliver(call))
        self._deliveries.add(task)
        self._sending[call.id] = task
        task.add_done_callback(self._deliveries.discard)
        task.add_done_callback(lambda done: self._forget(call.id, done))

    def _forget(self, call_id: UUID, task: asyncio.Task[None]) -> None:
        if self._sending.get(call_id) is task:
            del self._sending[call_id]

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _deliver(self, call: EmergencyCall) -> None:
        target = self.target
        delivery_id = call.webhook_delivery_id
        assert target is not None and delivery_id is not None

        async def on_attempt(attempt: WebhookAttempt) -> None:
            async with booking_transaction() as tx:
                locked = await calls.lock_call(tx, id=call.id)
                if locked is not None:
                    detail = _attempt_detail(delivery_id, attempt)
                    at = self._clock()
                    await calls.log_step(tx, locked, StepKind.webhook_attempt, at=at, detail=detail)

        async def keep_going() -> bool:
            # Still open and still this delivery's: a call acknowledged and then re-opened
            # meanwhile has dropped it, and will claim a delivery of its own when due.
            return await EmergencyCall.exists(
                id=call.id,
                state=CallState.open,
                webhook_state=WebhookState.pending,
                webhook_delivery_id=delivery_id,
            )

        try:
            result = await send_webhook(
                target.url,
                await webhook_payload(call),
                secret=target.secret,
                attempts=target.attempts,
                backoff=target.backoff_seconds,
                session=self._client(),
                attempt_timeout=target.attempt_timeout_seconds,
                max_backoff=target.max_backoff_seconds,
                delivery_id=str(delivery_id),
                sleep=self._sleep,
                on_attempt=on_attempt,
                keep_going=keep_going,
            )
        except WebhookRefused as exc:
            result = WebhookResult(False, str(delivery_id), None, ())
            await self._finish(call.id, result, refused=str(exc))
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease runs out and a later round resumes the delivery.
            log.exception("emergency webhook for call %s failed", call.id)
            return
        await self._finish(call.id, result)

    async def _finish(self, call_id: UUID, result: WebhookResult, *, refused: str = "") -> None:
        if result.delivered:
            outcome = WebhookState.delivered
        elif result.stopped:
            outcome = WebhookState.stopped
        else:
            outcome = WebhookState.failed
        detail: dict[str, Any] = {
            "delivery_id": result.delivery_id,
            "attempts": len(result.attempts),
            "status": result.status,
        }
        if outcome is WebhookState.failed:
            detail["error"] = refused or result.error
        if outcome is WebhookState.stopped:
            detail["reason"] = "acknowledged or closed"
        async with booking_transaction() as tx:
            call = await calls.lock_call(tx, id=call_id)
            if (
                call is None
                or call.webhook_state is not WebhookState.pending
                or str(call.webhook_delivery_id) != result.delivery_id
            ):
                return  # settled meanwhile, or dropped by a re-opening (`calls.reopen`)
            await self._settle(tx, call, outcome, self._clock(), detail)

    async def _settle(
        self,
        tx: BookingTransaction,
        call: EmergencyCall,
        outcome: WebhookState,
        now: datetime,
        detail: dict[str, Any],
    ) -> None:
        call.webhook_state = outcome
        call.webhook_lease_until = None
        await call.save(
            using_db=tx.connection, update_fields=["webhook_state", "webhook_lease_until"]
        )
        kind = {
            WebhookState.delivered: StepKind.webhook_delivered,
            WebhookState.failed: StepKind.webhook_failed,
            WebhookState.stopped: StepKind.webhook_stopped,
        }[outcome]
        await calls.log_step(tx, call, kind, at=now, detail=detail)
        if outcome is not WebhookState.stopped:
            # The duty feed learns whether the SMS went out; on failure it is all there is.
            await calls.publish(
                tx, call, "emergency.escalated", {"step": "webhook", "outcome": outcome.value}
            )

    # ---- running -----------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait for the deliveries started so far (tests; shutdown cancels them instead)."""
        while self._deliveries:
            await asyncio.gather(*list(self._deliveries), return_exceptions=True)

    async def close(self) -> None:
        """Cancel the deliveries in flight and hand their leases back, so the next start (or
        another process) resumes them at once instead of waiting for the leases to run out."""
        in_flight = [call_id for call_id, task in self._sending.items() if not task.done()]
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(*list(self._deliveries), return_exceptions=True)
        if in_flight:
            try:
                await EmergencyCall.filter(
                    id__in=in_flight, webhook_state=WebhookState.pending
                ).update(webhook_lease_until=self._clock())
            except Exception:
                log.exception("could not hand back the webhook leases of %s", in_flight)
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def run_forever(self, interval_seconds: float = CHECK_SECONDS) -> None:
        """The background task started in the lifespan; a failed round is logged, not fatal.
        On shutdown, deliveries in flight are cancelled: their lease runs out and the next
        start resumes them."""
        try:
            while True:
                try:
                    await self.run_round(now=self._clock())
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("emergency escalation round failed")
                await asyncio.sleep(interval_seconds)
        finally:
            await self.close()
