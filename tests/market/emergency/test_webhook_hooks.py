"""`send_webhook` reports each attempt as it ends and stops retrying when told to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio

from market.realtime.webhook import WebhookAttempt, send_webhook
from tests.market.emergency.gateway import Gateway, failing, gateway_server

SECRET = b"sixteen-byte-secret-for-tests"


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    async with gateway_server() as server:
        yield server


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def test_every_attempt_is_reported_as_it_ends(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    gateway.behaviour = failing(503, until=3)
    heard: list[WebhookAttempt] = []

    async def on_attempt(attempt: WebhookAttempt) -> None:
        # Reported before the next attempt is made.
        assert len(gateway.received) == attempt.number
        heard.append(attempt)

    result = await send_webhook(
        gateway.url,
        {"x": 1},
        secret=SECRET,
        attempts=5,
        backoff=0.01,
        session=session,
        on_attempt=on_attempt,
    )
    assert result.delivered and not result.stopped
    assert heard == list(result.attempts)
    assert [(a.number, a.status) for a in heard] == [(1, 503), (2, 503), (3, 200)]


async def test_keep_going_false_stops_before_the_next_retry(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    gateway.behaviour = failing(503)
    asked = 0

    async def keep_going() -> bool:
        nonlocal asked
        asked += 1
        return asked < 2

    result = await send_webhook(
        gateway.url,
        {"x": 1},
        secret=SECRET,
        attempts=5,
        backoff=0.01,
        session=session,
        keep_going=keep_going,
    )
    assert result.stopped and not result.delivered
    assert len(result.attempts) == 2 == len(gateway.received)
    assert result.error == "HTTP 503"


async def test_keep_going_is_not_asked_after_the_last_attempt(
    gateway: Gateway, session: aiohttp.ClientSession
) -> None:
    gateway.behaviour = failing(503)
    asked = 0

    async def keep_going() -> bool:
        nonlocal asked
        asked += 1
        return True

    result = await send_webhook(
        gateway.url,
        {"x": 1},
        secret=SECRET,
        attempts=3,
        backoff=0.01,
        session=session,
        keep_going=keep_going,
    )
    assert not result.delivered and not result.stopped
    assert asked == 2 and len(result.attempts) == 3
