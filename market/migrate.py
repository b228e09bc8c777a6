"""Applying the checked-in migrations to a database."""

from __future__ import annotations

from collections.abc import Callable

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from market import db

Progress = Callable[[str, str, str], object]


async def apply_migrations(database_url: str, *, progress: Progress | None = None) -> None:
    """Bring the database at `database_url` to the latest schema (idempotent)."""
    db.prepare_sqlite_path(database_url)
    try:
        await migrate(config=db.tortoise_config(database_url), progress=progress)
    finally:
        await Tortoise.close_connections()
