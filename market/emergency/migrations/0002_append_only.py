"""Database triggers that refuse UPDATE and DELETE on the emergency step log: a step is a
fact about what was done for an emergency (an alert sent, an SMS attempted, who acknowledged),
never edited, so the database refuses it too (as for the ledger and the co-signatures)."""

from tortoise import migrations
from tortoise.migrations import operations as ops

TABLE = "emergency_step"

POSTGRES = [
    """
CREATE OR REPLACE FUNCTION emergency_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'emergency: % on % refused, the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql
""",
    f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION emergency_refuse_change()",
    f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION emergency_refuse_change()",
]
SQLITE = [
    f"CREATE TRIGGER {TABLE}_no_{op.lower()} BEFORE {op} ON {TABLE} BEGIN SELECT "
    f"RAISE(ABORT, 'emergency: {op} on {TABLE} refused, the table is append-only'); END"
    for op in ("UPDATE", "DELETE")
]
POSTGRES_BACK = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    "DROP FUNCTION IF EXISTS emergency_refuse_change()",
]
SQLITE_BACK = [f"DROP TRIGGER IF EXISTS {TABLE}_no_{op}" for op in ("update", "delete")]


def _statements(dialect: str, *, forward: bool) -> list[str]:
    if dialect == "postgres":
        return POSTGRES if forward else POSTGRES_BACK
    if dialect == "sqlite":
        return SQLITE if forward else SQLITE_BACK
    raise NotImplementedError(f"no append-only triggers written for dialect {dialect!r}")


async def create_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in _statements(client.capabilities.dialect, forward=True):
        await client.execute_script(statement)


async def drop_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in _statements(client.capabilities.dialect, forward=False):
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("emergency", "0001_initial")]

    operations = [ops.RunPython(create_triggers, drop_triggers)]
