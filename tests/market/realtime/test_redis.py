"""The Redis doorbell backend: two app processes on one database, doorbells through Redis.

Skipped when no Redis answers on ELDERCARE_REDIS_URL (default redis://127.0.0.1:6379/0) or the
`redis` package is missing; it runs on SQLite and on PostgreSQL alike. Marked `redis`: .ci/run
starts Redis and sets REQUIRE_REDIS=1, so there a skip fails the pass (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import os

import pytest

from market.realtime.backends import REDIS_CHANNEL
from market.realtime.client import RealtimeClient
from market.realtime.events import Event, user_stream
from market.realtime.service import Backend
from market.settings import Settings
from tests.market.conftest import City
from tests.market.realtime.conftest import Live
from tests.market.realtime.helpers import collect, publish, server_process

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("ELDERCARE_REDIS_URL", "redis://127.0.0.1:6379/0")


async def redis_answers() -> bool:
    try:
        import redis.asyncio as redis
    except ImportError:
        return False
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(await asyncio.wait_for(client.ping(), 2))
    except Exception:
        return False
    finally:
        await client.aclose()


class TestRedisBackend:
    @pytest.fixture
    def realtime_overrides(self) -> dict[str, object]:
        return {"realtime_backend": "redis", "redis_url": REDIS_URL}

    async def test_commit_in_one_process_reaches_a_client_of_another(
        self, live: Live, city: City, settings: Settings
    ) -> None:
        if not await redis_answers():
            pytest.skip(f"no Redis at {REDIS_URL}")
        service = live.runtime.realtime
        assert service is not None and service.config.backend is Backend.redis
        assert service.listener is not None
        await asyncio.wait_for(service.listener.connected.wait(), 10)
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        extra = {"ELDERCARE_REALTIME_BACKEND": "redis", "ELDERCARE_REDIS_URL": REDIS_URL}
        async with (
            server_process(settings, **extra) as port_b,
            RealtimeClient(
                f"ws://127.0.0.1:{port_b}/api/v1/ws", elder.token, streams=[stream]
            ) as on_b,
        ):
            import redis.asyncio as redis

            watcher = redis.Redis.from_url(REDIS_URL)
            pubsub = watcher.pubsub(ignore_subscribe_messages=True)
            await pubsub.subscribe(REDIS_CHANNEL)
            try:
                items = []
                for n in range(5):
                    await publish([stream], "via.redis", n=n)
                    # Well inside the 5 s log check: the doorbell came through Redis.
                    items += await collect(on_b, 1, within=2)
                bells = []
                async with asyncio.timeout(5):
                    while len(bells) < 5:
                        message = await pubsub.get_message(timeout=1)
                        if message and message["data"].decode().startswith(stream):
                            bells.append(message["data"].decode())
            finally:
                await pubsub.aclose()
                await watcher.aclose()
        assert [(e.seq, e.kind) for e in items if isinstance(e, Event)] == [
            (n, "via.redis") for n in range(1, 6)
        ]
        assert bells == [f"{stream} {n}" for n in range(1, 6)]
