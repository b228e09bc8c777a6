"""Open-ended recurring series with a rolling horizon: `until` may be empty, and the series
keeps what its bookings are made of (`template`) and how far they are booked
(`expanded_through`), so `market.services.series_horizon` can book further occurrences.

Written by hand around what `makemigrations` proposed: on SQLite, Tortoise drops the NOT NULL
of `until` (and, going back, the new columns) by rebuilding the table, which drops the district index with the old table and
fails while bookings reference a series (their foreign key is RESTRICT). Dropping NOT NULL does
not change how SQLite stores rows, so there the stored table definition is edited in place
(SQLite's documented procedure for such changes), and its schema version bumped so every
connection reads it again.
"""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

TABLE = "recurring_series"
NOT_NULL = '"until" DATE NOT NULL'
NULLABLE = '"until" DATE'


async def _rewrite_sqlite_column(client, old: str, new: str) -> None:
    rows = await client.execute_query_dict(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [TABLE]
    )
    if old not in rows[0]["sql"]:
        raise RuntimeError(f"{TABLE} is not defined as expected: {rows[0]['sql']}")
    version = (await client.execute_query_dict("PRAGMA schema_version"))[0]["schema_version"]
    await client.execute_script("PRAGMA writable_schema = ON")
    try:
        await client.execute_query(
            "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = ?",
            [old, new, TABLE],
        )
        await client.execute_script(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        await client.execute_script("PRAGMA writable_schema = OFF")


class UntilOptional(ops.AlterField):
    """`until` becomes nullable; on SQLite by editing the stored definition, not a rebuild."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is None:
            return
        if state_editor.client.capabilities.dialect == "sqlite":
            await _rewrite_sqlite_column(state_editor.client, NOT_NULL, NULLABLE)
            return
        await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is None:
            return
        client = state_editor.client
        open_ended = await client.execute_query_dict(
            f'SELECT COUNT(*) AS n FROM "{TABLE}" WHERE "until" IS NULL'
        )
        if int(open_ended[0]["n"]) > 0:
            raise RuntimeError("open-ended series exist; end them before going back")
        if client.capabilities.dialect == "sqlite":
            await _rewrite_sqlite_column(client, NULLABLE + ",", NOT_NULL + ",")
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)


class AddSeriesColumn(ops.AddField):
    """A nullable column; on SQLite dropped in place when going back (a rebuild, as above,
    would lose the index and fail against the bookings' RESTRICT key)."""

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is None:
            return
        if state_editor.client.capabilities.dialect == "sqlite":
            await state_editor.client.execute_script(
                f'ALTER TABLE "{TABLE}" DROP COLUMN "{self.name}"'
            )
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [("market", "0005_crews_and_match_notes")]

    initial = False

    operations = [
        UntilOptional(
            model_name="RecurringSeries",
            name="until",
            field=fields.DateField(null=True),
        ),
        AddSeriesColumn(
            model_name="RecurringSeries",
            name="expanded_through",
            field=fields.DateField(null=True),
        ),
        AddSeriesColumn(
            model_name="RecurringSeries",
            name="template",
            field=fields.JSONField(
                null=True,
                encoder=functools.partial(dumps, separators=(",", ":")),
                decoder=loads,
            ),
        ),
    ]
