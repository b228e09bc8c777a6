"""Migrations apply cleanly to an empty database, twice, and `serve` refuses an unmigrated one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tortoise import Tortoise

from market import db
from market.migrate import apply_migrations
from tests.market.harness import DatabaseFactory

EMPTY_TEMPLATE = "template0"


async def empty_database(db_factory: DatabaseFactory, tmp_path: Path) -> str:
    if not db_factory.postgres:
        return f"sqlite://{tmp_path / 'empty.sqlite3'}"
    import asyncpg

    name = f"empty_{os.getpid()}_{abs(hash(tmp_path)) % 10**8}"
    admin = await db_factory._admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE {EMPTY_TEMPLATE}')
    finally:
        await admin.close()
    del asyncpg
    return db_factory.template_url().rsplit("/", 1)[0] + f"/{name}"


async def pending_on(url: str) -> list[str]:
    await Tortoise.init(config=db.tortoise_config(url))
    try:
        return await db.pending_migrations()
    finally:
        await Tortoise.close_connections()


async def test_apply_to_empty_database_then_nothing_pending(
    db_factory: DatabaseFactory, tmp_path: Path
) -> None:
    url = await empty_database(db_factory, tmp_path)
    try:
        assert await pending_on(url) != []
        await apply_migrations(url)
        assert await pending_on(url) == []
        await apply_migrations(url)
        assert await pending_on(url) == []
    finally:
        await db_factory.drop(url)


def test_serve_refuses_unmigrated_database(tmp_path: Path) -> None:
    env = {**os.environ, "ELDERCARE_DATA_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "market.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not migrated" in result.stderr
    assert "eldercare migrate" in result.stderr
