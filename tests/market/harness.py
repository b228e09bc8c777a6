"""Running the app in tests: a lifespan driver and a per-test database cloned from a template."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from starlette.types import ASGIApp, Receive, Scope, Send


class LifespanApp:
    """Runs an ASGI app's lifespan like a server does and hands its state to every request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "state": dict(self.state)}
        await self.app(scope, receive, send)

    async def _receive(self) -> dict[str, Any]:
        return await self._to_app.get()

    async def _send(self, message: dict[str, Any]) -> None:
        await self._from_app.put(message)

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._task = asyncio.create_task(self.app(scope, self._receive, self._send))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._from_app.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(message.get("message", "lifespan startup failed"))

    async def shutdown(self) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        message = await self._from_app.get()
        assert self._task is not None
        await self._task
        if message["type"] != "lifespan.shutdown.complete":
            raise RuntimeError(message.get("message", "lifespan shutdown failed"))


@dataclass
class RunningService:
    http: httpx.AsyncClient
    state: dict[str, Any]


@asynccontextmanager
async def running(
    app: ASGIApp, *, raise_app_exceptions: bool = True
) -> AsyncIterator[RunningService]:
    """`raise_app_exceptions=False` answers as a server does when a handler lets an exception
    escape (the error handler's 500); by default the exception reaches the test instead."""
    wrapped = LifespanApp(app)
    await wrapped.startup()
    try:
        transport = httpx.ASGITransport(
            app=wrapped, client=("203.0.113.7", 50000), raise_app_exceptions=raise_app_exceptions
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield RunningService(client, wrapped.state)
    finally:
        await wrapped.shutdown()


def _pg_dsn(url: str, database: str) -> str:
    parts = urlsplit(url.replace("postgres://", "postgresql://", 1))
    return urlunsplit(parts._replace(path=f"/{database}"))


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


# Emptying a used PostgreSQL test database (rows deleted with triggers off, sequences
# restarted) takes a few tens of milliseconds; cloning the template takes a third of a second.
# Only the superuser's replica role may switch the append-only triggers off: test cleanup only.
RECYCLE_TIMEOUT_MS = 5000
_LIST_TABLES = (
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> $1 ORDER BY 1"
)
_LIST_SEQUENCES = "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1"
MIGRATIONS_TABLE = "tortoise_migrations"


class DatabaseFactory:
    """Migrates one template database per session, then clones it for each test.

    On PostgreSQL a test's database is emptied and handed to a later test instead of dropped,
    when it still holds exactly the template's migrations and nothing else stops it; anything
    unusual (a test that migrated it elsewhere, a lock that does not let go) drops it instead.
    """

    def __init__(self, base_url: str, workdir: Path) -> None:
        self.base_url = base_url
        self.workdir = workdir
        self.postgres = base_url.startswith(("postgres://", "postgresql://"))
        self.template = f"eldercare_tpl_{uuid.uuid4().hex[:8]}"
        self._spare: list[str] = []
        self._migrations: list[str] = []

    def template_url(self) -> str:
        if self.postgres:
            return _with_database(self.base_url, self.template)
        return f"sqlite://{self.workdir / 'template.sqlite3'}"

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(_pg_dsn(self.base_url, urlsplit(self.base_url).path[1:]))

    async def create_template(self) -> None:
        from market.migrate import apply_migrations

        if self.postgres:
            admin = await self._admin()
            try:
                await admin.execute(f'CREATE DATABASE "{self.template}"')
            finally:
                await admin.close()
        await apply_migrations(self.template_url())
        if self.postgres:
            conn = await asyncpg.connect(_pg_dsn(self.base_url, self.template))
            try:
                self._migrations = await self._applied(conn)
            finally:
                await conn.close()

    @staticmethod
    async def _applied(conn: asyncpg.Connection) -> list[str]:
        rows = await conn.fetch(f"SELECT app, name FROM {MIGRATIONS_TABLE} ORDER BY app, name")
        return [f"{r['app']}.{r['name']}" for r in rows]

    async def clone(self) -> str:
        if self._spare:
            return self._spare.pop()
        name = f"t_{uuid.uuid4().hex[:12]}"
        if not self.postgres:
            target = self.workdir / f"{name}.sqlite3"
            shutil.copyfile(self.workdir / "template.sqlite3", target)
            return f"sqlite://{target}"
        admin = await self._admin()
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        finally:
            await admin.close()
        return _with_database(self.base_url, name)

    async def drop(self, url: str) -> None:
        if not self.postgres:
            await asyncio.to_thread(Path(url.removeprefix("sqlite://")).unlink, missing_ok=True)
            return
        name = urlsplit(url).path[1:]
        if name.startswith("t_") and await self._emptied(name):
            self._spare.append(url)
            return
        await self._drop(url)

    async def _emptied(self, name: str) -> bool:
        """Empty a used clone back to the template's state; False when it cannot be."""
        admin = await self._admin()
        try:
            # Whatever a test left connected (a server process, a listener) lets go first.
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        finally:
            await admin.close()
        try:
            conn = await asyncpg.connect(_pg_dsn(self.base_url, name))
        except (asyncpg.PostgresError, OSError):
            return False
        try:
            if await self._applied(conn) != self._migrations:
                return False
            tables = [r[0] for r in await conn.fetch(_LIST_TABLES, MIGRATIONS_TABLE)]
            sequences = [r[0] for r in await conn.fetch(_LIST_SEQUENCES)]
            async with conn.transaction():
                await conn.execute(f"SET LOCAL statement_timeout = {RECYCLE_TIMEOUT_MS}")
                await conn.execute("SET LOCAL session_replication_role = replica")
                for statement in [
                    *(f'DELETE FROM "{t}"' for t in tables),
                    *(f'ALTER SEQUENCE "{s}" RESTART' for s in sequences),
                ]:
                    await conn.execute(statement)
            return True
        except (asyncpg.PostgresError, OSError):
            return False
        finally:
            await conn.close()

    async def _drop(self, url: str) -> None:
        admin = await self._admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
        finally:
            await admin.close()

    async def drop_template(self) -> None:
        if self.postgres:
            for url in self._spare:
                await self._drop(url)
            self._spare.clear()
            await self._drop(self.template_url())
