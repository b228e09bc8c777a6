"""Migration 0003 fills in the delays of calls stored before they were kept on the row, from
their due times, on either database; and leaves the step log append-only."""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx
from tortoise import Tortoise, connections
from tortoise.migrations.api.migrate import migrate

from market import db
from market.emergency.models import EmergencyCall
from market.migrate import apply_migrations
from tests.market.bookings.world import neighbourhood, set_policy
from tests.market.conftest import City
from tests.market.emergency.world import emergency, reload
from tests.market.harness import DatabaseFactory
from tests.market.test_migrations import empty_database

reopen_timings = importlib.import_module("market.emergency.migrations.0003_reopen_timings")


async def test_the_backfill_reads_the_delays_from_the_due_times(
    client: httpx.AsyncClient, city: City
) -> None:
    await neighbourhood(city)
    _, default_call = await emergency(client, city["elder"])
    await set_policy(
        city, emergency_duty_feed_after_seconds=7, emergency_webhook_after_seconds=86_400
    )
    _, custom_call = await emergency(client, city["elder"])
    for call, expected in ((default_call, (60, 180)), (custom_call, (7, 86_400))):
        stored = await reload(call)
        assert (stored.duty_feed_after_seconds, stored.webhook_after_seconds) == expected
    # As a call stored before 0003 was: the columns at their database default.
    await EmergencyCall.all().update(duty_feed_after_seconds=0, webhook_after_seconds=0)
    await reopen_timings.backfill(EmergencyCall._meta.db)
    for call, expected in ((default_call, (60, 180)), (custom_call, (7, 86_400))):
        stored = await reload(call)
        assert (stored.duty_feed_after_seconds, stored.webhook_after_seconds) == expected


STORED_BEFORE = (
    "INSERT INTO emergency_call (id, booking_id, elder_id, district_id, state, policy_version, "
    "created_at, escalation, duty_feed_due_at, webhook_due_at, handling, steps) VALUES ("
    "'6f1c1d36-2b0a-4c1e-9c59-0c6a3f1b2a01', '6f1c1d36-2b0a-4c1e-9c59-0c6a3f1b2a02', "
    "'6f1c1d36-2b0a-4c1e-9c59-0c6a3f1b2a03', '6f1c1d36-2b0a-4c1e-9c59-0c6a3f1b2a04', "
    "'acknowledged', 3, '2025-03-01 08:00:00.250000+00:00', 1, "
    "'2025-03-01 08:00:45.250000+00:00', '2025-03-01 08:02:15.250000+00:00', FALSE, 2)"
)


async def test_upgrading_a_database_with_calls_fills_in_their_delays(
    db_factory: DatabaseFactory, tmp_path: Path
) -> None:
    """0003 applied to a database holding a call: the NOT NULL columns get the call's own
    delays (45 s and 135 s here), not an error and not a zero."""
    url = await empty_database(db_factory, tmp_path)
    config = db.tortoise_config(url)
    try:
        db.prepare_sqlite_path(url)
        try:
            await migrate(
                config=config, app_labels=["emergency"], target="emergency.0002_append_only"
            )
            await connections.get("default").execute_script(STORED_BEFORE)
        finally:
            await Tortoise.close_connections()
        await apply_migrations(url)
        await Tortoise.init(config=config)
        try:
            call = await EmergencyCall.get(id="6f1c1d36-2b0a-4c1e-9c59-0c6a3f1b2a01")
            assert (call.duty_feed_after_seconds, call.webhook_after_seconds) == (45, 135)
            assert call.steps == 2 and call.policy_version == 3
        finally:
            await Tortoise.close_connections()
    finally:
        await db_factory.drop(url)
