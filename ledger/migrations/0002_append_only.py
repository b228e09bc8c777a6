"""Append-only enforcement and the ledger's partial indexes.

Triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the write-once tables: the
application never edits or deletes an entry, and the database refuses it too, so a bug or a
hand-written SQL statement cannot rewrite history quietly.

Partial indexes (same syntax in SQLite and PostgreSQL), cheaper than full ones on the append
path because almost no entry closes another one or is a hold:
- unique (district, settles) over closing entries: at most one reversal of an entry, at most
  one post-or-void of a hold, enforced by the database;
- (district, seq) over pending holds, for `open_holds`.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

WRITE_ONCE_TABLES = ("ledger_entry", "ledger_failed_id", "ledger_checkpoint", "ledger_merkle_node")

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger: % on % refused, the table is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql
"""


PARTIAL_INDEXES = (
    "CREATE UNIQUE INDEX ledger_entry_settles ON ledger_entry (district, settles) "
    "WHERE settles IS NOT NULL",
    "CREATE INDEX ledger_entry_holds ON ledger_entry (district, seq) WHERE kind = 'hold_pending'",
)


def forward_statements(dialect: str) -> list[str]:
    return [*PARTIAL_INDEXES, *trigger_statements(dialect)]


def trigger_statements(dialect: str) -> list[str]:
    if dialect == "postgres":
        statements = [POSTGRES_FUNCTION]
        for table in WRITE_ONCE_TABLES:
            statements.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
            )
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()"
            )
        return statements
    if dialect == "sqlite":
        statements = []
        for table in WRITE_ONCE_TABLES:
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger: {op} on {table} refused, "
                    "the table is append-only'); END"
                )
        return statements
    raise NotImplementedError(f"no append-only triggers written for dialect {dialect!r}")


def backward_statements(dialect: str) -> list[str]:
    statements = []
    for table in WRITE_ONCE_TABLES:
        if dialect == "postgres":
            statements.append(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_update")
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgres":
        statements.append("DROP FUNCTION IF EXISTS ledger_refuse_change()")
    statements.append("DROP INDEX IF EXISTS ledger_entry_settles")
    statements.append("DROP INDEX IF EXISTS ledger_entry_holds")
    return statements


async def create_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in forward_statements(client.capabilities.dialect):
        await client.execute_script(statement)


async def drop_triggers(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in backward_statements(client.capabilities.dialect):
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial")]

    operations = [ops.RunPython(create_triggers, drop_triggers)]
