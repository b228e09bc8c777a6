"""A call re-opened when its helper drops out escalates again on the delays it opened with, so
the delays are kept on the row (`duty_feed_after_seconds`, `webhook_after_seconds`), filled in
for calls opened before from their due times; and the step kind `reopened`.

Written by hand around what `makemigrations` proposed: the columns are added with a database
default (Tortoise's default lives in Python only, and NOT NULL without one fails on a table
with rows), and the new step kind, which changes only the column's description, is no
database change on SQLite, where Tortoise would rebuild the append-only step table for it and
drop its triggers and unique index with the old table.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from market.emergency.models import StepKind

TABLE = "emergency_call"
DELAYS = (
    ("duty_feed_after_seconds", "duty_feed_due_at"),
    ("webhook_after_seconds", "webhook_due_at"),
)


def _seconds_between(dialect: str, start: str, end: str) -> str:
    if dialect == "postgres":
        return f"GREATEST(0, ROUND(EXTRACT(EPOCH FROM ({end} - {start}))))::integer"
    if dialect == "sqlite":
        return f"CAST(MAX(0, ROUND((julianday({end}) - julianday({start})) * 86400)) AS INTEGER)"
    raise NotImplementedError(f"no delay backfill written for dialect {dialect!r}")


async def backfill(client) -> None:
    """The delays of the calls already stored: their due times less their opening time."""
    dialect = client.capabilities.dialect
    assignments = ", ".join(
        f"{column} = {_seconds_between(dialect, 'created_at', due)}" for column, due in DELAYS
    )
    await client.execute_script(f"UPDATE {TABLE} SET {assignments}")


class AddDelayColumn(ops.AddField):
    """NOT NULL with a database default, then the stored calls' delays filled in."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is None:
            return
        client = state_editor.client
        await client.execute_script(
            f"ALTER TABLE {TABLE} ADD COLUMN {self.name} INTEGER NOT NULL DEFAULT 0"
        )
        if self.name == DELAYS[-1][0]:
            await backfill(client)


class DescribeStepKinds(ops.AlterField):
    """Only the column comment changes: PostgreSQL gets it, SQLite has no comments."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is None or state_editor.client.capabilities.dialect == "sqlite":
            return
        await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is None or state_editor.client.capabilities.dialect == "sqlite":
            return
        await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [("emergency", "0002_append_only")]

    initial = False

    operations = [
        AddDelayColumn(
            model_name="EmergencyCall",
            name="duty_feed_after_seconds",
            field=fields.IntField(default=0),
        ),
        AddDelayColumn(
            model_name="EmergencyCall",
            name="webhook_after_seconds",
            field=fields.IntField(default=0),
        ),
        DescribeStepKinds(
            model_name="EmergencyStep",
            name="kind",
            field=fields.CharEnumField(
                description="\n".join(f"{k.name}: {k.value}" for k in StepKind),
                enum_type=StepKind,
                max_length=32,
            ),
        ),
    ]
