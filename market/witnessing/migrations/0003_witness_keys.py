"""Pinned witness keys: one Ed25519 public key per auditor, registered once, never changed
(UPDATE and DELETE refused by triggers, as for co-signatures)."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

TABLE = "ledger_witness_key"

# witnessing_refuse_change() is created by 0002_append_only.
POSTGRES = [
    f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
    "FOR EACH ROW EXECUTE FUNCTION witnessing_refuse_change()",
    f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
    "FOR EACH STATEMENT EXECUTE FUNCTION witnessing_refuse_change()",
]
SQLITE = [
    f"CREATE TRIGGER {TABLE}_no_{op.lower()} BEFORE {op} ON {TABLE} BEGIN SELECT "
    f"RAISE(ABORT, 'witnessing: {op} on {TABLE} refused, the table is append-only'); END"
    for op in ("UPDATE", "DELETE")
]
POSTGRES_BACK = [
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
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
    dependencies = [("witnessing", "0002_append_only")]

    operations = [
        ops.CreateModel(
            name="WitnessKey",
            fields=[
                (
                    "row",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("witness", fields.CharField(unique=True, max_length=100)),
                ("key_id", fields.CharField(max_length=32)),
                ("public", fields.BinaryField()),
                ("at_ms", fields.BigIntField()),
            ],
            options={"table": "ledger_witness_key", "app": "witnessing", "pk_attr": "row"},
            bases=["Model"],
        ),
        ops.RunPython(create_triggers, drop_triggers),
    ]
