"""Migrations apply cleanly to an empty database, twice, and `serve` refuses an unmigrated one."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tortoise import Model, Tortoise
from tortoise.context import TortoiseContext
from tortoise.migrations.autodetector import MigrationAutodetector

import ledger
import market
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


# ---- models and migrations agree, for every Tortoise app -------------------------------------


def _all_models() -> Iterator[type[Model]]:
    """Every model class defined in the service's packages (imported here, so a model module
    nobody registered is found too)."""
    for package in (market, ledger):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
    seen: set[type[Model]] = set()
    stack = list(Model.__subclasses__())
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        stack.extend(model.__subclasses__())
        if model.__module__.split(".")[0] in ("market", "ledger"):
            yield model


async def drift(config: dict[str, Any]) -> dict[str, list[str]]:
    """Per app, the operations a migration would need to bring the checked-in migrations up to
    the models (empty lists: they agree)."""
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
        found: dict[str, list[str]] = {label: [] for label in config["apps"]}
        for writer in writers:
            found[writer.app_label] += [type(op).__name__ for op in writer.operations]
        return found


def test_every_app_has_migrations() -> None:
    apps = db.apps_config()
    assert {"market", "ledger", "realtime", "witnessing", "visits"} <= set(apps)
    assert [label for label, app in apps.items() if not app.get("migrations")] == []


async def test_every_model_belongs_to_a_migrated_app() -> None:
    apps = db.apps_config()
    models = list(_all_models())
    async with TortoiseContext() as ctx:
        await ctx.init(config=db.tortoise_config("sqlite://:memory:"))
        stray = [
            f"{m.__module__}.{m.__name__}"
            for m in models
            if not m._meta.abstract and m._meta.app not in apps
        ]
    assert models and stray == []


@pytest.mark.parametrize("label", sorted(db.apps_config()))
async def test_models_and_migrations_agree(label: str) -> None:
    changes = await drift(db.tortoise_config("sqlite://:memory:"))
    assert changes[label] == [], f"{label}: models changed without a migration: {changes[label]}"


DRIFT_MODELS = """
from tortoise import fields
from tortoise.models import Model


class Note(Model):
    id = fields.IntField(primary_key=True)
    text = fields.CharField(max_length=20)
    added_later = fields.IntField(default=0)

    class Meta:
        table = "drift_note"
"""

DRIFT_MIGRATION = """
from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Note",
            fields=[
                ("id", fields.IntField(primary_key=True)),
                ("text", fields.CharField(max_length=20)),
            ],
            options={"table": "drift_note", "app": "drift", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
"""


async def test_a_field_added_without_a_migration_is_detected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check above is only as good as the detector: prove it sees a missing migration.
    package = tmp_path / "found_drift_app"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(DRIFT_MODELS))
    (package / "migrations" / "__init__.py").write_text("")
    (package / "migrations" / "0001_initial.py").write_text(textwrap.dedent(DRIFT_MIGRATION))
    monkeypatch.syspath_prepend(str(tmp_path))
    config = {
        "connections": {"default": "sqlite://:memory:"},
        "apps": {
            "drift": {
                "models": ["found_drift_app.models"],
                "default_connection": "default",
                "migrations": "found_drift_app.migrations",
            }
        },
    }
    assert await drift(config) == {"drift": ["AddField"]}
