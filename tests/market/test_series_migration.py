"""Market migration 0006 makes `recurring_series.until` optional on SQLite by editing the stored
table definition in place (no rebuild): rows and the district index stay, NULL is accepted
afterwards, and going back restores NOT NULL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tortoise.context import TortoiseContext
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

from market import db

BEFORE = "0005_crews_and_match_notes"
AFTER = "0006_open_series"
SERIES = (
    "00000000-0000-0000-0000-000000000001",
    "00000000-0000-0000-0000-0000000000d1",
    "00000000-0000-0000-0000-0000000000e1",
    "bathing",
    "[1]",
    "09:00",
    "2027-03-01",
    "{}",
    "00000000-0000-0000-0000-0000000000e1",
    "2026-12-01 09:00:00+00:00",
)


async def migrate_to(url: str, name: str) -> None:
    async with TortoiseContext() as ctx:
        await ctx.init(config=db.tortoise_config(url))
        executor = MigrationExecutor(ctx.db(), db.apps_config())
        await executor.migrate([MigrationTarget(db.MARKET_APP, name)])


def insert_series(path: Path, until: str | None) -> None:
    # The standard library's connection leaves foreign keys off: no user row is needed.
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO recurring_series (id, district_id, elder_id, service, weekdays, "
            "start_time, until, exceptions, created_by_id, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*SERIES[:6], until, *SERIES[7:]),
        )


def indexes(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("PRAGMA index_list('recurring_series')").fetchall()
    return sorted(row[1] for row in rows)


async def test_until_becomes_optional_in_place_and_back(tmp_path: Path) -> None:
    path = tmp_path / "series.sqlite3"
    url = f"sqlite://{path}"
    await migrate_to(url, BEFORE)
    insert_series(path, SERIES[6])
    before = indexes(path)
    await migrate_to(url, AFTER)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT id, until, template FROM recurring_series").fetchall() == [
            (SERIES[0], SERIES[6], None)
        ]
        conn.execute("UPDATE recurring_series SET until = NULL")
    assert indexes(path) == before != []
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE recurring_series SET until = ?", (SERIES[6],))
    await migrate_to(url, BEFORE)
    try:
        insert_series(path, None)
    except sqlite3.IntegrityError as exc:
        assert "NOT NULL" in str(exc)
    else:
        raise AssertionError("until accepted NULL after going back to 0005")
