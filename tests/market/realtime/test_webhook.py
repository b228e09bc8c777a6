"""The outbound webhook sender against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from market.realtime.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookRefused,
    canonical_body,
    send_webhook,
    sign,
    verify_signature,
)

SECRET = b"sixteen-byte-secret-for-tests"
PAYLOAD = {"emergency": "e-1", "elder": "Wang Fang", "step": "sms"}

Behaviour = Callable[[int], Awaitable[web.StreamResponse]]


@dataclass
class Gateway:
    """An SMS gateway stand-in: answers the n-th request as told and records every request."""

    url: str
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    behaviour: Behaviour | None = None


async def ok(_n: int) -> web.StreamResponse:
    return web.json_response({"queued": True})


@pytest_asyncio.fixture
async def gateway() -> AsyncIterator[Gateway]:
    state = Gateway(url="")

    async def handle(request: web.Request) -> web.StreamResponse:
        state.received.append((await request.read(), dict(request.headers)))
        behaviour = state.behaviour or ok
        return await behaviour(len(state.received))

    app = web.Application()
    app.router.add_post("/sms", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/sms"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def failing_until(good_from: int, status: int = 503) -> Behaviour:
    async def behaviour(n: int) -> web.StreamResponse:
        if n < good_from:
            return web.Response(status=status, text="busy")
        return web.json_response({"queued": True})

    return behaviour


class TestDelivery:
    async def test_delivers_a_signed_body_once(
        self, gateway: Gateway, session: aiohttp.ClientSession
    ) -> None:
        result = await send_webhook(
            gateway.url, PAYLOAD, secret=SECRET, attempts=3, backoff=0.01, session=session
        )
        assert result.delivered and result.status == 200 and len(result.attempts) == 1
        ((body, headers),) = gateway.received
        assert body == canonical_body(PAYLOAD)
        assert headers[DELIVERY_HEADER] == result.delivery_id
        assert verify_signature(SECRET, headers[SIGNATURE_HEADER], body, now=time.time())

    async def test_retries_server_errors_with_the_same_delivery_id(
        self, gateway: Gateway, session: aiohttp.ClientSession
    ) -> None:
        gateway.behaviour = failing_until(3)
        result = await send_webhook(
            gateway.url, PAYLOAD, secret=SECRET, attempts=5, backoff=0.01, session=session
        )
        assert result.delivered
        assert [(a.number, a.status) for a in result.attempts] == [(1, 503), (2, 503), (3, 200)]
        assert {headers[DELIVERY_HEADER] for _, headers in gateway.received} == {result.delivery_id}

    async def test_backoff_doubles_between_attempts(
        self, gateway: Gateway, session: aiohttp.ClientSession
    ) -> None:
        gateway.behaviour = failing_until(99)
        waits: list[float] = []

        async def record(seconds: float) -> None:
            waits.append(seconds)

        result = await send_webhook(
            gateway.url,
            PAYLOAD,
            secret=SECRET,
            attempts=4,
            backoff=0.5,
            max_backoff=1.5,
            session=session,
            sleep=record,
        )
        assert not result.delivered and result.error == "HTTP 503"
        assert waits == [0.5, 1.0, 1.5]

    async def test_honours_retry_after_on_429(
        self, gateway: Gateway, session: aiohttp.ClientSession
    ) -> None:
        async def throttled(n: int) -> web.StreamResponse:
            if n == 1:
                return web.Response(status=429, headers={"Retry-After": "7"})
            return web.json_response({})

        gateway.behaviour = throttled
        waits: list[float] = []

        async def record(seconds: float) -> None:
            waits.append(seconds)

        result = await send_webhook(
            gateway.url,
            PAYLOAD,
            secret=SECRET,
            attempts=2,
            backoff=0.1,
            session=session,
            sleep=record,
        )
        assert result.delivered and waits == [7.0]

    async def test_client_errors_are_not_retried(
        self, gateway: Gateway, session: aiohttp.ClientSession
    ) -> None:
        gateway.behaviour = failing_until(99, status=400)
        result = await send_webhook(
            gateway.url, PAYLOAD, secret=SECRET, attempts=5, backoff=0.01, session=session
        )
        assert not result.delivered and len(result.attempts) == 1 and result.status == 400

    async def test_timeouts_are_retried(
        self, gateway: Gateway, session: aiohttp.ClientSession
    ) -> None:
        async def slow_then_fine(n: int) -> web.StreamResponse:
            if n == 1:
                await asyncio.sleep(1.0)
            return web.json_response({})

        gateway.behaviour = slow_then_fine
        result = await send_webhook(
            gateway.url,
            PAYLOAD,
            secret=SECRET,
            attempts=2,
            backoff=0.01,
            attempt_timeout=0.2,
            session=session,
        )
        assert result.delivered
        assert result.attempts[0].error is not None and "timed out" in result.attempts[0].error

    async def test_unreachable_gateway_fails_after_every_attempt(
        self, session: aiohttp.ClientSession
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # bound, never listening: connections are refused
            result = await send_webhook(
                f"http://127.0.0.1:{port}/sms",
                PAYLOAD,
                secret=SECRET,
                attempts=3,
                backoff=0.01,
                session=session,
            )
        assert not result.delivered and result.status is None
        assert len(result.attempts) == 3
        assert all(a.error and "Connect" in a.error for a in result.attempts)


class TestSignature:
    def test_tampered_body_or_wrong_secret_or_stale_time_fail(self) -> None:
        body = canonical_body(PAYLOAD)
        header = sign(SECRET, body, timestamp=1_000_000)
        assert verify_signature(SECRET, header, body, now=1_000_010)
        assert not verify_signature(SECRET, header, body + b" ", now=1_000_010)
        assert not verify_signature(b"another-secret-of-16b", header, body, now=1_000_010)
        assert not verify_signature(SECRET, header, body, now=1_000_000 + 301)
        assert not verify_signature(SECRET, "v1=abc", body, now=1_000_000)

    def test_body_is_canonical_json(self) -> None:
        assert canonical_body({"b": 1, "a": "é"}) == '{"a":"é","b":1}'.encode()


class TestRefusedCalls:
    @pytest.mark.parametrize(
        ("url", "secret", "attempts", "payload", "problem"),
        [
            ("ftp://gateway/sms", SECRET, 3, PAYLOAD, "http"),
            ("http:///sms", SECRET, 3, PAYLOAD, "http"),
            ("http://gateway/sms", b"short", 3, PAYLOAD, "secret"),
            ("http://gateway/sms", SECRET, 0, PAYLOAD, "attempts"),
            ("http://gateway/sms", SECRET, 21, PAYLOAD, "attempts"),
            ("http://gateway/sms", SECRET, 3, {"x": float("inf")}, "not JSON"),
            ("http://gateway/sms", SECRET, 3, {"x": "y" * 70_000}, "larger"),
        ],
    )
    async def test_unusable_call_raises_before_sending(
        self,
        session: aiohttp.ClientSession,
        url: str,
        secret: bytes,
        attempts: int,
        payload: dict[str, object],
        problem: str,
    ) -> None:
        with pytest.raises(WebhookRefused, match=problem):
            await send_webhook(
                url, payload, secret=secret, attempts=attempts, backoff=0.01, session=session
            )
