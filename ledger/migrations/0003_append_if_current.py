"""Composite row types for writes, and `ledger_append_if_current`: a group commit in one
statement for a writer that caches its chains (`ledger.committer.GroupCommitter`).

Row types: a write sends each table's new rows as one array of records (`ledger_entry_row[]`
and so on) instead of one array per column, which costs the client a fraction of the
encoding and the server nothing more.

The function gets what the writer computed from the chain heads it last saw: entries,
balances, Merkle nodes, refused ids and the new heads. It locks the heads (sorted, like every
writer), then, in fresh snapshots (each statement of a volatile function in READ COMMITTED
takes its own):
- returns 'moved' and writes nothing if a head is not what the writer saw: someone else
  appended, so the writer's balances and frontier may be stale;
- returns 'known' and writes nothing if an id it would append or refuse was refused before, or
  an id it would refuse is an entry: those answers need the stored records;
- else writes everything and moves the heads: 'ok'.
An id that is already an entry makes the insert fail on the unique key. Called outside a
transaction block, the call is its own transaction: one round trip, one WAL flush.
SQLite gets nothing: its writers never need either.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

ROW_TYPES = {
    "ledger_entry_row": (
        "district text, seq bigint, entry_id text, kind text, debit text, credit text, "
        "minutes bigint, category text, ref text, actor text, policy bigint, at_ms bigint, "
        "settles text, hash bytea, body bytea"
    ),
    "ledger_balance_row": "district text, account text, minutes bigint",
    "ledger_node_row": "district text, level int, idx bigint, hash bytea",
    "ledger_failure_row": (
        "district text, entry_id text, code text, message text, content text, at_ms bigint"
    ),
    "ledger_head_row": "district text, size bigint, head bytea",
}

FUNCTION = """
CREATE OR REPLACE FUNCTION ledger_append_if_current(
    expected ledger_head_row[], heads ledger_head_row[], entries ledger_entry_row[],
    balances ledger_balance_row[], nodes ledger_node_row[], failures ledger_failure_row[]
) RETURNS text LANGUAGE plpgsql VOLATILE
-- Its statements are the same on every call, only the array lengths change: with custom
-- plans PostgreSQL would plan them all again on every call.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    current int;
BEGIN
    SELECT count(*) INTO current FROM (
        SELECT c.size = x.size AND c.head = x.head AS same
          FROM ledger_chain c JOIN unnest(expected) AS x ON c.district = x.district
         ORDER BY c.district FOR UPDATE OF c
    ) AS locked WHERE locked.same;
    IF current <> cardinality(expected) THEN
        RETURN 'moved';
    END IF;
    IF EXISTS (SELECT 1 FROM (SELECT district, entry_id FROM unnest(entries)
                              UNION ALL SELECT district, entry_id FROM unnest(failures)) AS k
                 JOIN ledger_failed_id AS f
                   ON f.district = k.district AND f.entry_id = k.entry_id)
       OR (cardinality(failures) > 0
           AND EXISTS (SELECT 1 FROM unnest(failures) AS k
                         JOIN ledger_entry AS e
                           ON e.district = k.district AND e.entry_id = k.entry_id)) THEN
        RETURN 'known';
    END IF;
    WITH e AS (INSERT INTO ledger_entry (district, seq, entry_id, kind, debit, credit, minutes,
                                         category, ref, actor, policy, at_ms, settles, hash,
                                         body)
               SELECT * FROM unnest(entries)),
         b AS (INSERT INTO ledger_balance (district, account, minutes)
               SELECT * FROM unnest(balances)
               ON CONFLICT (district, account) DO UPDATE SET minutes = excluded.minutes),
         m AS (INSERT INTO ledger_merkle_node (district, level, idx, hash)
               SELECT * FROM unnest(nodes)),
         f AS (INSERT INTO ledger_failed_id (district, entry_id, code, message, content, at_ms)
               SELECT * FROM unnest(failures))
    UPDATE ledger_chain AS c SET size = h.size, head = h.head
      FROM unnest(heads) AS h
     WHERE c.district = h.district;
    RETURN 'ok';
END
$$
"""

SIGNATURE = (
    "ledger_append_if_current(ledger_head_row[], ledger_head_row[], ledger_entry_row[], "
    "ledger_balance_row[], ledger_node_row[], ledger_failure_row[])"
)


async def create(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    for name, fields in ROW_TYPES.items():
        await client.execute_script(f"CREATE TYPE {name} AS ({fields})")
    await client.execute_script(FUNCTION)


async def drop(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect != "postgres":
        return
    await client.execute_script(f"DROP FUNCTION IF EXISTS {SIGNATURE}")
    for name in ROW_TYPES:
        await client.execute_script(f"DROP TYPE IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_append_only")]

    operations = [ops.RunPython(create, drop)]
