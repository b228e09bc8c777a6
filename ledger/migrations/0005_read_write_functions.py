"""The append path's two statements as functions that keep their plans.

Every transaction of the append path reads what the rules need in one statement and writes
everything in another. As prepared statements PostgreSQL planned them again on every call
(their array arguments make each custom plan look cheaper than the generic one): about half a
millisecond of server CPU each, more than running them for a single entry. As PL/pgSQL
functions with `plan_cache_mode = force_generic_plan` they are planned once per connection.

- `ledger_snapshot(...)`: entries and failed ids by (district, id), failed ids only, the
  closers of entries, balances (text keys as strings joined by U+001F) and Merkle nodes, as
  rows tagged e, f, c, b, n. Every key is looked up through its unique index (LATERAL ...
  LIMIT 1, which the planner cannot flatten into a hash join against the whole table).
- `ledger_write(...)`: entries, balances, Merkle nodes, refused ids and new heads (0003's
  row types), in one statement.
SQLite gets nothing: its statements are planned cheaply and it has no such functions.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

SNAPSHOT = """
CREATE OR REPLACE FUNCTION ledger_snapshot(
    e_district text, e_id text, f_district text, f_id text, c_district text, c_ref text,
    b_district text, b_account text, n_district text[], n_level int[], n_idx bigint[]
) RETURNS TABLE (tag text, district text, key text, n bigint, data bytea, code text,
                 message text, content text)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH ek AS (SELECT * FROM unnest(string_to_array(e_district, chr(31)),
                                     string_to_array(e_id, chr(31))) AS k(d, i)),
         fk AS (SELECT * FROM unnest(string_to_array(f_district, chr(31)),
                                     string_to_array(f_id, chr(31))) AS k(d, i)),
         ck AS (SELECT * FROM unnest(string_to_array(c_district, chr(31)),
                                     string_to_array(c_ref, chr(31))) AS k(d, i)),
         bk AS (SELECT * FROM unnest(string_to_array(b_district, chr(31)),
                                     string_to_array(b_account, chr(31))) AS k(d, i)),
         nk AS (SELECT * FROM unnest(n_district, n_level, n_idx) AS k(d, lv, i))
    SELECT 'e'::text, x.district::text, x.entry_id::text, NULL::bigint, x.body,
           NULL::text, NULL::text, NULL::text
      FROM ek CROSS JOIN LATERAL (
           SELECT * FROM ledger_entry y WHERE y.district = ek.d AND y.entry_id = ek.i LIMIT 1
      ) x
    UNION ALL
    SELECT 'f', x.district::text, x.entry_id::text, x.at_ms, NULL, x.code::text, x.message,
           x.content
      FROM fk CROSS JOIN LATERAL (
           SELECT * FROM ledger_failed_id y
            WHERE y.district = fk.d AND y.entry_id = fk.i LIMIT 1
      ) x
    UNION ALL
    SELECT 'c', x.district::text, x.settles::text, NULL, NULL, x.entry_id::text, NULL, NULL
      FROM ck CROSS JOIN LATERAL (
           SELECT * FROM ledger_entry y WHERE y.district = ck.d AND y.settles = ck.i LIMIT 1
      ) x
    UNION ALL
    SELECT 'b', x.district::text, x.account::text, x.minutes, NULL, NULL, NULL, NULL
      FROM bk CROSS JOIN LATERAL (
           SELECT * FROM ledger_balance y WHERE y.district = bk.d AND y.account = bk.i LIMIT 1
      ) x
    UNION ALL
    SELECT 'n', x.district::text, x.level::text, x.idx, x.hash, NULL, NULL, NULL
      FROM nk CROSS JOIN LATERAL (
           SELECT * FROM ledger_merkle_node y
            WHERE y.district = nk.d AND y.level = nk.lv AND y.idx = nk.i LIMIT 1
      ) x
     WHERE nk.lv > 0
    UNION ALL
    SELECT 'n', x.district::text, '0', x.seq, x.hash, NULL, NULL, NULL
      FROM nk CROSS JOIN LATERAL (
           SELECT * FROM ledger_entry y WHERE y.district = nk.d AND y.seq = nk.i LIMIT 1
      ) x
     WHERE nk.lv = 0;
END
$$
"""

WRITE = """
CREATE OR REPLACE FUNCTION ledger_write(
    entries ledger_entry_row[], balances ledger_balance_row[], nodes ledger_node_row[],
    failures ledger_failure_row[], heads ledger_head_row[]
) RETURNS void
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
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
               SELECT * FROM unnest(failures)
               ON CONFLICT (district, entry_id) DO NOTHING)
    UPDATE ledger_chain AS c SET size = h.size, head = h.head
      FROM unnest(heads) AS h
     WHERE c.district = h.district;
END
$$
"""

SIGNATURES = (
    "ledger_snapshot(text, text, text, text, text, text, text, text, text[], int[], bigint[])",
    "ledger_write(ledger_entry_row[], ledger_balance_row[], ledger_node_row[], "
    "ledger_failure_row[], ledger_head_row[])",
)


async def create(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(SNAPSHOT)
        await client.execute_script(WRITE)


async def drop(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        for signature in SIGNATURES:
            await client.execute_script(f"DROP FUNCTION IF EXISTS {signature}")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0004_entry_key")]

    operations = [ops.RunPython(create, drop)]
