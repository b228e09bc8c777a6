"""ledger_entry's primary key becomes (district, seq), its natural key, and the surrogate
`row` column goes: one index and one sequence fewer to maintain per appended entry.

Tortoise cannot declare a composite primary key, so the model names `seq` as its primary key
(`models.LedgerEntry`); `EntryKeyState` changes only the migration state and `rekey` the
table:
- PostgreSQL: drop the `row` key and column, and the unique constraint on (district, seq),
  then add the primary key (district, seq). Dropping a column fires no trigger.
- SQLite cannot change a primary key in place: the table is rebuilt under the same name,
  rows copied in key order, and its indexes and append-only triggers re-created as they were.
"""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

COLUMNS = (
    "district, seq, entry_id, kind, debit, credit, minutes, category, ref, actor, policy, "
    "at_ms, settles, hash, body"
)
SQLITE_TABLE = """CREATE TABLE "ledger_entry" (
    {row}"district" VARCHAR(64) NOT NULL,
    "seq" BIGINT NOT NULL,
    "entry_id" VARCHAR(256) NOT NULL,
    "kind" VARCHAR(32) NOT NULL,
    "debit" VARCHAR(256) NOT NULL,
    "credit" VARCHAR(256) NOT NULL,
    "minutes" BIGINT NOT NULL,
    "category" VARCHAR(256),
    "ref" VARCHAR(256),
    "actor" VARCHAR(256) NOT NULL,
    "policy" BIGINT NOT NULL,
    "at_ms" BIGINT NOT NULL,
    "settles" VARCHAR(256),
    "hash" BLOB NOT NULL,
    "body" BLOB NOT NULL,
    {key},
    CONSTRAINT "{by_id}" UNIQUE ("district", "entry_id")
)"""
# The names Tortoise gave the unique constraints in 0001.
BY_SEQ = "uid_ledger_entr_distric_b1e5eb"
BY_ID = "uid_ledger_entr_distric_9c7d35"


class EntryKeyState(ops.TortoiseOperation):
    """The model state of the new key, in one step (through Tortoise's own operations the
    model would have two primary keys, or none, in between); `rekey` changes the table."""

    reduces_to_sql = False

    def describe(self) -> str:
        return "LedgerEntry: primary key (district, seq), no row column (state only)"

    def state_forward(self, app_label, state) -> None:
        model = self.get_model_state(state, app_label, "LedgerEntry")
        del model.fields["row"]
        model.fields["seq"] = fields.BigIntField(
            primary_key=True, generated=False, unique=True, db_index=True
        )
        model.options["unique_together"] = (("district", "entry_id"),)
        model.options["pk_attr"] = "seq"
        state.reload_model(app_label, "LedgerEntry")


async def _postgres(client, keyed: bool) -> None:
    if keyed:
        statements = [
            "ALTER TABLE ledger_entry DROP CONSTRAINT ledger_entry_pkey",
            'ALTER TABLE ledger_entry DROP COLUMN "row"',
            f'ALTER TABLE ledger_entry DROP CONSTRAINT "{BY_SEQ}"',
            "ALTER TABLE ledger_entry ADD CONSTRAINT ledger_entry_pkey PRIMARY KEY (district, seq)",
        ]
    else:
        statements = [
            "ALTER TABLE ledger_entry DROP CONSTRAINT ledger_entry_pkey",
            f'ALTER TABLE ledger_entry ADD CONSTRAINT "{BY_SEQ}" UNIQUE (district, seq)',
            'ALTER TABLE ledger_entry ADD COLUMN "row" BIGSERIAL PRIMARY KEY',
        ]
    for statement in statements:
        await client.execute_script(statement)


async def _sqlite(client, keyed: bool) -> None:
    rows = await client.execute_query_dict(
        "SELECT type, sql FROM sqlite_master WHERE tbl_name = 'ledger_entry' "
        "AND type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name"
    )
    if keyed:
        row, key = "", 'PRIMARY KEY ("district", "seq")'
    else:
        row, key = '"row" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,\n    ', (
            f'CONSTRAINT "{BY_SEQ}" UNIQUE ("district", "seq")'
        )
    table = SQLITE_TABLE.format(row=row, key=key, by_id=BY_ID)
    await client.execute_script(table.replace('"ledger_entry"', '"ledger_entry_new"', 1))
    await client.execute_script(
        f"INSERT INTO ledger_entry_new ({COLUMNS}) SELECT {COLUMNS} FROM ledger_entry "
        "ORDER BY district, seq"
    )
    await client.execute_script("DROP TABLE ledger_entry")  # no trigger fires on DROP
    await client.execute_script("ALTER TABLE ledger_entry_new RENAME TO ledger_entry")
    for saved in rows:  # indexes first, then the append-only triggers
        await client.execute_script(saved["sql"])


async def rekey(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await _postgres(client, keyed=True)
    else:
        await _sqlite(client, keyed=True)


async def unkey(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await _postgres(client, keyed=False)
    else:
        await _sqlite(client, keyed=False)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_append_if_current")]

    operations = [EntryKeyState(), ops.RunPython(rekey, unkey)]
