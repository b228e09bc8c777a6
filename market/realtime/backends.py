"""Doorbells between processes: PostgreSQL LISTEN/NOTIFY or Redis pub/sub.

A notification says only `<stream> <seq>`; the hub reads the events from the log. Losing a
notification therefore loses no event: after every (re)connection and every `check_seconds`
the hub announces the heads of all the streams it watches, read from the log.

    memory    in-process only (embedded SQLite): the publishing process's doorbells feed the hub
    postgres  publishers `pg_notify` inside their transaction (sent on commit); one dedicated
              asyncpg connection per process LISTENs
    redis     publishers PUBLISH after commit (from processes running the app); one pub/sub
              connection per process SUBSCRIBEs. On PostgreSQL the NOTIFY is still issued, so a
              publisher without the app (a script) is seen at the next check.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from market.realtime.events import NOTIFY_CHANNEL, Event
from market.realtime.hub import Hub

log = logging.getLogger("eldercare.realtime")

REDIS_CHANNEL = NOTIFY_CHANNEL
# The listener's application_name: operators (and tests) find its backend in pg_stat_activity.
LISTENER_NAME = "eldercare-realtime-listener"
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0
MAX_PENDING_PUBLISHES = 10_000


def parse_doorbell(payload: str) -> tuple[str, int] | None:
    stream, _, seq = payload.rpartition(" ")
    try:
        return (stream, int(seq)) if stream else None
    except ValueError:
        return None


def asyncpg_dsn(database_url: str) -> str:
    """The Tortoise URL as a libpq DSN (Tortoise-only query options dropped)."""
    parts = urlsplit(database_url.replace("postgres://", "postgresql://", 1))
    return urlunsplit(parts._replace(query=""))


class _Reconnecting(abc.ABC):
    """A background loop: connect, listen until the connection is lost, back off, repeat."""

    name = "doorbell"

    def __init__(self, hub: Hub, *, check_seconds: float) -> None:
        self.hub = hub
        self.check_seconds = check_seconds
        self.connected = asyncio.Event()
        self.connections = 0  # successful (re)connections, for tests and logs
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected.is_set():
                    delay = BACKOFF_FIRST  # it was up: a fresh loss, not a failing database
                log.warning("%s connection lost (%s); reconnecting in %.1fs", self.name, exc, delay)
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    @abc.abstractmethod
    async def _session(self) -> None:
        """One connection: subscribe, catch up, relay doorbells; return or raise when lost."""


class PostgresListener(_Reconnecting):
    name = "postgres LISTEN"

    def __init__(self, hub: Hub, database_url: str, *, check_seconds: float = 5.0) -> None:
        super().__init__(hub, check_seconds=check_seconds)
        self._dsn = asyncpg_dsn(database_url)
        self.backend_pid: int | None = None

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        parsed = parse_doorbell(payload)
        if parsed is not None:
            self.hub.announce(*parsed)

    async def _session(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, timeout=10, server_settings={"application_name": LISTENER_NAME}
        )
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        try:
            await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            self.backend_pid = conn.get_server_pid()
            self.connections += 1
            # LISTEN is active: whatever committed before it is in the log, so read the heads now.
            await self.hub.catch_up()
            self.connected.set()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self.check_seconds)
                if lost.is_set():
                    break
                # A half-open TCP connection raises here instead of hanging forever.
                await conn.fetchval("SELECT 1", timeout=self.check_seconds)
                await self.hub.catch_up()
            raise ConnectionError("the listening connection was closed")
        finally:
            self.backend_pid = None
            if not conn.is_closed():
                conn.terminate()


class RedisListener(_Reconnecting):
    name = "redis SUBSCRIBE"

    def __init__(self, hub: Hub, redis_url: str, *, check_seconds: float = 5.0) -> None:
        super().__init__(hub, check_seconds=check_seconds)
        self._url = redis_url

    async def _session(self) -> None:
        import redis.asyncio as redis

        client = redis.Redis.from_url(self._url, socket_connect_timeout=10)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(REDIS_CHANNEL)
            self.connections += 1
            await self.hub.catch_up()
            self.connected.set()
            loop = asyncio.get_running_loop()
            next_check = loop.time() + self.check_seconds
            while True:
                message = await pubsub.get_message(timeout=self.check_seconds)
                if message is not None and message.get("type") == "message":
                    data = message["data"]
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    if (parsed := parse_doorbell(text)) is not None:
                        self.hub.announce(*parsed)
                if loop.time() >= next_check:
                    await pubsub.ping()
                    await self.hub.catch_up()
                    next_check = loop.time() + self.check_seconds
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()


class RedisPublisher:
    """A process doorbell that PUBLISHes `<stream> <seq>` after each commit."""

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(redis_url, socket_connect_timeout=5)
        self._tasks: set[asyncio.Task[None]] = set()

    def ring(self, events: Sequence[Event]) -> None:
        if len(self._tasks) >= MAX_PENDING_PUBLISHES:
            # Redis is not keeping up; the subscribers' periodic check will catch up instead.
            log.warning("redis doorbell backlog full; dropping a ring")
            return
        heads: dict[str, int] = {}
        for event in events:
            heads[event.stream] = max(heads.get(event.stream, 0), event.seq)
        task = asyncio.get_running_loop().create_task(self._publish(heads))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, heads: dict[str, int]) -> None:
        try:
            for stream, seq in sorted(heads.items()):
                await self._client.publish(REDIS_CHANNEL, f"{stream} {seq}")
        except Exception as exc:
            log.warning("redis doorbell failed (%s); subscribers will catch up", exc)

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()
