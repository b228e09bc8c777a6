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
async def running(app: ASGIApp) -> AsyncIterator[RunningService]:
    wrapped = LifespanApp(app)
    await wrapped.startup()
    try:
        transport = httpx.ASGITransport(app=wrapped, client=("203.0.113.7", 50000))
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


class DatabaseFactory:
    """Migrates one template database per session, then clones it for each test."""

    def __init__(self, base_url: str, workdir: Path) -> None:
        self.base_url = base_url
        self.workdir = workdir
        self.postgres = base_url.startswith(("postgres://", "postgresql://"))
        self.template = f"eldercare_tpl_{uuid.uuid4().hex[:8]}"

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

    async def clone(self) -> str:
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
        admin = await self._admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
        finally:
            await admin.close()

    async def drop_template(self) -> None:
        if self.postgres:
            await self.drop(self.template_url())
