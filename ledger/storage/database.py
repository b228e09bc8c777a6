"""Opening and migrating the ledger's database outside the web app (tests, CLI, benchmarks).

The market registers the same app under the same label inside its own Tortoise config:
`{"ledger": LEDGER_APP}` with its `default_connection`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise.context import TortoiseContext
from tortoise.migrations.executor import MigrationExecutor

from ledger.storage.tortoise_store import TortoiseStore

APP_LABEL = "ledger"
LEDGER_APP: dict[str, Any] = {
    "models": ["ledger.storage.models"],
    "default_connection": "default",
    "migrations": "ledger.migrations",
}


def tortoise_config(url: str) -> dict[str, Any]:
    return {"connections": {"default": url}, "apps": {APP_LABEL: dict(LEDGER_APP)}}


async def migrate_context(ctx: TortoiseContext) -> None:
    """Apply the ledger app's migrations on the context's default connection."""
    executor = MigrationExecutor(ctx.db(), {APP_LABEL: dict(LEDGER_APP)})
    await executor.migrate()


@asynccontextmanager
async def open_store(url: str, *, migrate: bool = False) -> AsyncIterator[TortoiseStore]:
    """A `TortoiseStore` on its own Tortoise context, closed on exit."""
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        if migrate:
            await migrate_context(ctx)
        yield TortoiseStore(ctx.db())
