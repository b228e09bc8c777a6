"""The PostgreSQL half of the Tortoise store: one statement to read, one to write.

A single append is lock + snapshot + write + commit, so a chain holds its head lock for as few
round trips as possible; a batch of thousands of entries costs the same two statements, with
every column passed as an array and unnested into rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from ledger.entries import Entry, entry_from_bytes
from ledger.storage.base import AccountKey, EntryKey, Failure, Snapshot, Write
from ledger.storage.nodes import NodeKey, derive, expand
from ledger.storage.rows import ENTRY_COLUMNS, ENTRY_TYPES, columns, entry_row, stored_nodes

# One round trip for everything the rules need: rows tagged e(ntry), f(ailure), c(loser),
# b(alance), n(ode); level-0 Merkle nodes are the entries' own hashes. Every key is looked up
# through its unique index (LATERAL ... LIMIT 1, which the planner cannot flatten into a join),
# so the cost grows with the batch, never with the chain: a plain join lets the planner
# hash-join against a sequential scan of the whole table.
PG_SNAPSHOT = """
WITH ek AS (SELECT * FROM unnest($1::text[], $2::text[]) AS k(district, entry_id)),
     fk AS (SELECT * FROM unnest($3::text[], $4::text[]) AS k(district, entry_id)),
     ck AS (SELECT * FROM unnest($5::text[], $6::text[]) AS k(district, settles)),
     bk AS (SELECT * FROM unnest($7::text[], $8::text[]) AS k(district, account)),
     nk AS (SELECT * FROM unnest($9::text[], $10::int[], $11::bigint[]) AS k(district, level, idx))
SELECT 'e' AS tag, e.district, e.entry_id AS key, NULL::bigint AS n, e.body AS data,
       NULL AS code, NULL AS message, NULL AS content
  FROM ek CROSS JOIN LATERAL (
       SELECT * FROM ledger_entry x
        WHERE x.district = ek.district AND x.entry_id = ek.entry_id LIMIT 1
  ) e
UNION ALL
SELECT 'f', f.district, f.entry_id, f.at_ms, NULL, f.code, f.message, f.content
  FROM fk CROSS JOIN LATERAL (
       SELECT * FROM ledger_failed_id x
        WHERE x.district = fk.district AND x.entry_id = fk.entry_id LIMIT 1
  ) f
UNION ALL
SELECT 'c', e.district, e.settles, NULL, NULL, e.entry_id, NULL, NULL
  FROM ck CROSS JOIN LATERAL (
       SELECT * FROM ledger_entry x
        WHERE x.district = ck.district AND x.settles = ck.settles LIMIT 1
  ) e
UNION ALL
SELECT 'b', b.district, b.account, b.minutes, NULL, NULL, NULL, NULL
  FROM bk CROSS JOIN LATERAL (
       SELECT * FROM ledger_balance x
        WHERE x.district = bk.district AND x.account = bk.account LIMIT 1
  ) b
UNION ALL
SELECT 'n', m.district, m.level::text, m.idx, m.hash, NULL, NULL, NULL
  FROM nk CROSS JOIN LATERAL (
       SELECT * FROM ledger_merkle_node x
        WHERE x.district = nk.district AND x.level = nk.level AND x.idx = nk.idx LIMIT 1
  ) m
 WHERE nk.level > 0
UNION ALL
SELECT 'n', e.district, '0', e.seq, e.hash, NULL, NULL, NULL
  FROM nk CROSS JOIN LATERAL (
       SELECT * FROM ledger_entry x WHERE x.district = nk.district AND x.seq = nk.idx LIMIT 1
  ) e
 WHERE nk.level = 0
"""


async def pg_snapshot(
    conn: BaseDBAsyncClient,
    entries: Sequence[EntryKey],
    closers: Sequence[EntryKey],
    accounts: Sequence[AccountKey],
    nodes: Mapping[str, Sequence[NodeKey]],
    failed: Sequence[EntryKey] = (),
) -> Snapshot:
    node_keys = [(d, level, idx) for d, keys in nodes.items() for level, idx in expand(keys)]
    failure_keys = list(dict.fromkeys([*entries, *failed]))
    values = (
        columns(entries, 2)
        + columns(failure_keys, 2)
        + columns(closers, 2)
        + columns(accounts, 2)
        + columns(node_keys, 3)
    )
    rows = await conn.execute_query_dict(PG_SNAPSHOT, values)
    snap = Snapshot({}, {}, {}, {k: 0 for k in accounts}, {d: {} for d in nodes})
    for row in rows:
        tag, district, key = row["tag"], row["district"], row["key"]
        if tag == "e":
            entry = entry_from_bytes(bytes(row["data"]))
            snap.entries[(district, entry.id)] = entry
        elif tag == "f":
            snap.failures[(district, key)] = Failure(
                district, key, row["code"], row["message"], row["content"], int(row["n"])
            )
        elif tag == "c":
            snap.closers[(district, key)] = row["code"]
        elif tag == "b":
            snap.balances[(district, key)] = int(row["n"])
        else:
            snap.nodes[district][(int(key), int(row["n"]))] = bytes(row["data"])
    for district, keys in nodes.items():
        snap.nodes[district] = derive(keys, snap.nodes[district])
    return snap


def _entry_columns(entries: Sequence[Entry]) -> list[list[Any]]:
    rows = [entry_row(e) for e in entries]
    return [[r[i] for r in rows] for i in range(len(ENTRY_COLUMNS))]


def _pg_write_sql() -> str:
    entry_cols = ", ".join(f'"{c}"' for c in ENTRY_COLUMNS)
    entry_arrays = ", ".join(f"${n}::{t}[]" for n, t in enumerate(ENTRY_TYPES, start=1))
    n = len(ENTRY_TYPES)
    return f"""
WITH e AS (INSERT INTO ledger_entry ({entry_cols}) SELECT * FROM unnest({entry_arrays})),
     b AS (INSERT INTO ledger_balance (district, account, minutes)
           SELECT * FROM unnest(${n + 1}::text[], ${n + 2}::text[], ${n + 3}::bigint[])
           ON CONFLICT (district, account) DO UPDATE SET minutes = excluded.minutes),
     m AS (INSERT INTO ledger_merkle_node (district, level, idx, hash)
           SELECT * FROM unnest(${n + 4}::text[], ${n + 5}::int[], ${n + 6}::bigint[],
                                ${n + 7}::bytea[])),
     f AS (INSERT INTO ledger_failed_id (district, entry_id, code, message, content, at_ms)
           SELECT * FROM unnest(${n + 8}::text[], ${n + 9}::text[], ${n + 10}::text[],
                                ${n + 11}::text[], ${n + 12}::text[], ${n + 13}::bigint[])
           ON CONFLICT (district, entry_id) DO NOTHING)
UPDATE ledger_chain c SET size = h.size, head = h.head
  FROM unnest(${n + 14}::text[], ${n + 15}::bigint[], ${n + 16}::bytea[]) AS h(district, size, head)
 WHERE c.district = h.district
"""


PG_WRITE = _pg_write_sql()


# From this many entries on, a write sends them with COPY (binary) ahead of the one statement.
COPY_FROM = 64


async def pg_write(conn: BaseDBAsyncClient, write: Write) -> None:
    """Entries, balances, Merkle nodes, refused ids and heads in one statement; a large batch
    sends its entries first with COPY, which PostgreSQL ingests faster than unnested arrays."""
    entries: Sequence[Entry] = write.entries
    # The asyncpg connection (or pool proxy) under Tortoise's transaction wrapper.
    raw = getattr(conn, "_connection", None)
    if len(entries) >= COPY_FROM and hasattr(raw, "copy_records_to_table"):
        try:
            await raw.copy_records_to_table(
                "ledger_entry", records=[entry_row(e) for e in entries], columns=list(ENTRY_COLUMNS)
            )
        except asyncpg.IntegrityConstraintViolationError as error:
            raise IntegrityError(error) from error  # what Tortoise makes of it elsewhere
        entries = ()
    balances = sorted((write.balances or {}).items())
    failures = [
        (f.district, f.entry_id, f.code, f.message, f.content, f.at_ms) for f in write.failures
    ]
    heads = sorted((write.heads or {}).items())
    values = (
        _entry_columns(entries)
        + columns([(d, a, v) for (d, a), v in balances], 3)
        + columns(stored_nodes(write), 4)
        + columns(failures, 6)
        + columns([(d, h.size, h.head) for d, h in heads], 3)
    )
    await conn.execute_query(PG_WRITE, values)


async def pg_nodes(
    conn: BaseDBAsyncClient, district: str, keys: Sequence[NodeKey]
) -> dict[NodeKey, bytes]:
    """Merkle nodes in one round trip (a proof on a 1M chain needs about 40 of them)."""
    snap = await pg_snapshot(conn, (), (), (), {district: keys})
    return snap.nodes[district]
