"""Tortoise configuration for the service and the migration gate.

Two Tortoise apps share one database: `market` (this package) and `ledger` (the time-bank
ledger, which owns its own models and migrations). Schema changes go through the checked-in
migrations only; `serve` refuses to start while any migration is unapplied.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationExecutor

MARKET_APP = "market"
LEDGER_APP = "ledger"
REALTIME_APP = "realtime"
WITNESSING_APP = "witnessing"
VISITS_APP = "visits"
EMERGENCY_APP = "emergency"


class DatabaseNotMigrated(RuntimeError):
    """The database lacks migrations the code needs; run `eldercare migrate`."""


def _ledger_app_present() -> bool:
    return importlib.util.find_spec("ledger.storage.models") is not None


def prepare_sqlite_path(database_url: str) -> None:
    """Create the directory of an SQLite file URL so the first start needs no setup."""
    if database_url.startswith("sqlite://") and ":memory:" not in database_url:
        Path(database_url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)


def apps_config() -> dict[str, dict[str, Any]]:
    apps: dict[str, dict[str, Any]] = {
        MARKET_APP: {
            "models": ["market.models"],
            "default_connection": "default",
            "migrations": "market.migrations",
        },
        # The event log (market.realtime) migrates on its own, apart from the market's schema.
        REALTIME_APP: {
            "models": ["market.realtime.models"],
            "default_connection": "default",
            "migrations": "market.realtime.migrations",
        },
        # Witness co-signatures of ledger checkpoints (market.services.witnesses).
        WITNESSING_APP: {
            "models": ["market.witnessing.models"],
            "default_connection": "default",
            "migrations": "market.witnessing.migrations",
        },
        # Check-in visits and major changes (market.visits), migrated on their own like realtime.
        VISITS_APP: {
            "models": ["market.visits.models"],
            "default_connection": "default",
            "migrations": "market.visits.migrations",
        },
        # Emergency-call records and their step log (market.emergency), migrated on their own.
        EMERGENCY_APP: {
            "models": ["market.emergency.models"],
            "default_connection": "default",
            "migrations": "market.emergency.migrations",
        },
    }
    if _ledger_app_present():
        apps[LEDGER_APP] = {
            "models": ["ledger.storage.models"],
            "default_connection": "default",
            "migrations": "ledger.migrations",
        }
    return apps


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": apps_config(),
        "use_tz": True,
        "timezone": "UTC",
    }


async def pending_migrations() -> list[str]:
    """Names of migrations not yet applied to the initialised default connection."""
    executor = MigrationExecutor(get_connection("default"), apps_config())
    steps = await executor.plan()
    return [f"{step.migration.app_label}.{step.migration.name}" for step in steps]


async def require_migrated() -> None:
    pending = await pending_migrations()
    if pending:
        raise DatabaseNotMigrated(
            f"the database is not migrated ({len(pending)} pending: {', '.join(pending)}); "
            "run `eldercare migrate` first"
        )
