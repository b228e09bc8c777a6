"""A fingerprint of every table of every Tortoise app: "nothing was written" checks.

Every model the app registers is included, so a table added later is covered without a list to
keep up to date.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tortoise import Tortoise


def _table_name(model: Any) -> str:
    return f"{model._meta.app}.{model._meta.db_table}"


async def snapshot() -> dict[str, tuple[int, str]]:
    """Per table: the row count and a SHA-256 of its rows (each row's values, sorted)."""
    tables: dict[str, tuple[int, str]] = {}
    for models in Tortoise.apps.values():
        for model in models.values():
            rows = sorted(repr(sorted(row.items())) for row in await model.all().values())
            digest = hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()
            tables[_table_name(model)] = (len(rows), digest)
    assert tables, "no Tortoise models are registered"
    return tables


def changed(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]]) -> list[str]:
    """The tables whose rows differ between two snapshots, with their row counts."""
    return [
        f"{name}: {before.get(name, (0, ''))[0]} -> {after.get(name, (0, ''))[0]} rows"
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    ]
