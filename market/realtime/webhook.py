"""Outbound webhooks (e.g. an SMS gateway for unacknowledged emergencies): signed and retried.

Every attempt of one delivery carries the same body and the same `X-Eldercare-Delivery` id,
so the receiver can drop repeats (a retry after a lost response is a repeat). The body is
signed: `X-Eldercare-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`;
the receiver recomputes it with the shared secret (`verify_signature`) and refuses stale
timestamps, so a captured request cannot be replayed later.

Retried: connection errors, timeouts, 408, 429 (after Retry-After, capped) and 5xx, with
exponential backoff (`backoff`, doubled each time, capped at `max_backoff`). Not retried:
other 4xx, which a retry cannot fix. The caller records the result (every attempt is listed);
`on_attempt` hears of each attempt as it ends, so a record survives a crash mid-retries, and
`keep_going` is asked before each retry, so a sender can stop when retrying no longer matters
(an emergency acknowledged meanwhile).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import aiohttp

SIGNATURE_HEADER = "X-Eldercare-Signature"
DELIVERY_HEADER = "X-Eldercare-Delivery"
MAX_ATTEMPTS = 20
MAX_BODY_BYTES = 64 * 1024
SIGNATURE_TOLERANCE_SECONDS = 300
RETRYABLE_STATUS = frozenset({408, 429})


class WebhookRefused(ValueError):
    """The call itself is unusable (bad URL, secret, payload or limits): nothing was sent."""


@dataclass(frozen=True)
class WebhookAttempt:
    number: int
    status: int | None  # HTTP status, None when no response came
    error: str | None  # why the attempt failed, None on success
    elapsed_ms: int


@dataclass(frozen=True)
class WebhookResult:
    delivered: bool
    delivery_id: str
    status: int | None  # of the last attempt
    attempts: tuple[WebhookAttempt, ...]
    # `keep_going` said no before a retry: not delivered, and no longer wanted.
    stopped: bool = False

    @property
    def error(self) -> str | None:
        return None if self.delivered or not self.attempts else self.attempts[-1].error


def canonical_body(payload: Mapping[str, Any]) -> bytes:
    try:
        body = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise WebhookRefused(f"payload is not JSON: {exc}") from None
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRefused(f"payload is larger than {MAX_BODY_BYTES} bytes")
    return body


def sign(secret: bytes, body: bytes, *, timestamp: int) -> str:
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: bytes,
    header: str,
    body: bytes,
    *,
    now: float,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does: right secret, untouched body, timestamp within `tolerance`."""
    parts = dict(item.partition("=")[::2] for item in header.split(","))
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp=timestamp)
    return hmac.compare_digest(expected, header)


def _retry_after(response: aiohttp.ClientResponse, cap: float) -> float | None:
    raw = response.headers.get("Retry-After", "")
    return min(float(raw), cap) if raw.isdigit() else None


def _check(url: str, secret: bytes, attempts: int, backoff: float, timeout: float) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(f"webhook URL must be http(s)://host/...: {url!r}")
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise WebhookRefused("the signing secret must be at least 16 bytes")
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise WebhookRefused(f"attempts must be 1..{MAX_ATTEMPTS}")
    if backoff < 0 or timeout <= 0:
        raise WebhookRefused("backoff must be >= 0 and timeout > 0")


async def send_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: bytes,
    attempts: int,
    backoff: float,
    session: aiohttp.ClientSession,
    attempt_timeout: float = 10.0,
    max_backoff: float = 60.0,
    delivery_id: str | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_attempt: Callable[[WebhookAttempt], Awaitable[object]] | None = None,
    keep_going: Callable[[], Awaitable[bool]] | None = None,
) -> WebhookResult:
    """POST `payload` as signed JSON to `url`, retrying transient failures; never raises for
    a failed delivery (see `WebhookResult.delivered`), only for an unusable call (or what
    `on_attempt` or `keep_going` raise)."""
    _check(url, secret, attempts, backoff, attempt_timeout)
    body = canonical_body(payload)
    delivery = delivery_id or str(uuid4())
    done: list[WebhookAttempt] = []
    status: int | None = None
    for number in range(1, attempts + 1):
        started = time.monotonic()
        wait = backoff * 2 ** (number - 1)
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: delivery,
            SIGNATURE_HEADER: sign(secret, body, timestamp=int(clock())),
        }
        error: str | None
        try:
            async with session.post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=attempt_timeout),
                allow_redirects=False,
            ) as response:
                status = response.status
                await response.read()
                if 200 <= status < 300:
                    error = None
                else:
                    error = f"HTTP {status}"
                    if status == 429:
                        wait = _retry_after(response, max_backoff) or wait
        except TimeoutError:
            status, error = None, f"timed out after {attempt_timeout:g}s"
        except aiohttp.ClientError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        elapsed = int((time.monotonic() - started) * 1000)
        attempt = WebhookAttempt(number, status, error, elapsed)
        done.append(attempt)
        if on_attempt is not None:
            await on_attempt(attempt)
        if error is None:
            return WebhookResult(True, delivery, status, tuple(done))
        permanent = status is not None and status < 500 and status not in RETRYABLE_STATUS
        if permanent or number == attempts:
            break
        await sleep(min(wait, max_backoff))
        if keep_going is not None and not await keep_going():
            return WebhookResult(False, delivery, status, tuple(done), stopped=True)
    return WebhookResult(False, delivery, status, tuple(done))
