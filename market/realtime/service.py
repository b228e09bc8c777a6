"""The realtime service of one process: the hub, its doorbell backend and the retention task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from market.realtime.backends import PostgresListener, RedisListener, RedisPublisher
from market.realtime.bells import PROCESS_DOORBELLS, Doorbells
from market.realtime.hub import Hub
from market.realtime.retention import purge_events
from market.settings import Settings

log = logging.getLogger("eldercare.realtime")

PURGE_EVERY_SECONDS = 3600.0


class Backend(StrEnum):
    memory = "memory"
    postgres = "postgres"
    redis = "redis"


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgres://", "postgresql://"))


def choose_backend(settings: Settings) -> Backend:
    if not settings.realtime_backend:
        return Backend.postgres if is_postgres(settings.database_url) else Backend.memory
    try:
        backend = Backend(settings.realtime_backend)
    except ValueError:
        raise ValueError(
            f"ELDERCARE_REALTIME_BACKEND must be one of postgres, redis, memory; "
            f"got {settings.realtime_backend!r}"
        ) from None
    if backend is Backend.postgres and not is_postgres(settings.database_url):
        raise ValueError("ELDERCARE_REALTIME_BACKEND=postgres needs a PostgreSQL DATABASE_URL")
    return backend


@dataclass(frozen=True)
class RealtimeConfig:
    backend: Backend
    queue_size: int
    heartbeat_seconds: float
    idle_timeout_seconds: float
    replay_limit: int
    retention: timedelta
    auth_timeout_seconds: float = 10.0
    max_malformed_frames: int = 5
    check_seconds: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RealtimeConfig:
        return cls(
            backend=choose_backend(settings),
            queue_size=settings.realtime_queue_size,
            heartbeat_seconds=settings.realtime_heartbeat_seconds,
            idle_timeout_seconds=settings.realtime_idle_timeout_seconds,
            replay_limit=settings.realtime_replay_limit,
            retention=timedelta(days=settings.realtime_retention_days),
        )


class RealtimeService:
    def __init__(
        self,
        config: RealtimeConfig,
        *,
        hub: Hub,
        listener: PostgresListener | RedisListener | None,
        publisher: RedisPublisher | None,
        doorbells: Doorbells,
    ) -> None:
        self.config = config
        self.hub = hub
        self.listener = listener
        self._publisher = publisher
        self._doorbells = doorbells
        self._purger: asyncio.Task[None] | None = None
        self._checker: asyncio.Task[None] | None = None

    @classmethod
    def start(
        cls, settings: Settings, *, doorbells: Doorbells = PROCESS_DOORBELLS
    ) -> RealtimeService:
        """Start inside the running event loop (the app lifespan)."""
        config = RealtimeConfig.from_settings(settings)
        hub = Hub()
        listener: PostgresListener | RedisListener | None = None
        publisher: RedisPublisher | None = None
        if config.backend is Backend.postgres:
            listener = PostgresListener(
                hub, settings.database_url, check_seconds=config.check_seconds
            )
        elif config.backend is Backend.redis:
            listener = RedisListener(hub, settings.redis_url, check_seconds=config.check_seconds)
            publisher = RedisPublisher(settings.redis_url)
            doorbells.add(publisher)
        # Local commits reach local subscribers at once, whatever carries them to other processes.
        doorbells.add(hub)
        service = cls(config, hub=hub, listener=listener, publisher=publisher, doorbells=doorbells)
        loop = asyncio.get_running_loop()
        if listener is not None:
            listener.start()
        else:
            # No listener re-reads the heads here: a fan-out read that failed (say, SQLite
            # busy) would otherwise wait for the stream's next event.
            service._checker = loop.create_task(service._check_forever())
        service._purger = loop.create_task(service._purge_forever())
        return service

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.check_seconds)
            try:
                await self.hub.catch_up()
            except Exception:
                log.exception("reading stream heads failed; retrying")

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(PURGE_EVERY_SECONDS)
            try:
                removed = await purge_events(older_than=datetime.now(UTC) - self.config.retention)
                if removed:
                    log.info("purged %d realtime events past retention", removed)
            except Exception:
                log.exception("purging realtime events failed; retrying in an hour")

    async def close(self) -> None:
        self._doorbells.remove(self.hub)
        if self._publisher is not None:
            self._doorbells.remove(self._publisher)
            await self._publisher.close()
        for task in (self._purger, self._checker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.listener is not None:
            await self.listener.close()
        await self.hub.close()
