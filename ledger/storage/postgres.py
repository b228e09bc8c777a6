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
from ledger.storage.base import (
    AccountKey,
    ChainState,
    Conflict,
    EntryKey,
    Failure,
    Head,
    Snapshot,
    Write,
)
from ledger.storage.nodes import NodeKey, derive, expand, frontier
from ledger.storage.rows import ENTRY_COLUMNS, columns, entry_row, stored_nodes

# One round trip for everything the rules need, and one to write: migration 0005's functions,
# which PostgreSQL plans once per connection (as prepared statements it planned them on every
# call). The snapshot returns rows tagged e(ntry), f(ailure), c(loser), b(alance), n(ode);
# level-0 Merkle nodes are the entries' own hashes. Text keys travel as one string per column,
# joined by the unit separator (U+001F, which no district, id or account may hold): a text[] of
# a thousand ids costs the client a type check per element.
PG_SNAPSHOT = "SELECT * FROM ledger_snapshot($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"


def _snapshot_values(
    entries: Sequence[EntryKey],
    closers: Sequence[EntryKey],
    accounts: Sequence[AccountKey],
    nodes: Mapping[str, Sequence[NodeKey]],
    failed: Sequence[EntryKey],
) -> list[list[Any]]:
    node_keys = [(d, level, idx) for d, keys in nodes.items() for level, idx in expand(keys)]
    failure_keys = list(dict.fromkeys([*entries, *failed]))
    text_keys = [
        _joined(column)
        for keys in (entries, failure_keys, closers, accounts)
        for column in columns(keys, 2)
    ]
    return [*text_keys, *columns(node_keys, 3)]


_SEPARATOR = "\x1f"


def _joined(values: Sequence[str]) -> str:
    text = _SEPARATOR.join(values)
    if text.count(_SEPARATOR) != max(len(values) - 1, 0) or "" in values:
        raise ValueError("a snapshot key is empty or holds U+001F")
    return text


def _snapshot_from(
    rows: Sequence[Mapping[str, Any]],
    accounts: Sequence[AccountKey],
    nodes: Mapping[str, Sequence[NodeKey]],
) -> Snapshot:
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


async def pg_snapshot(
    conn: BaseDBAsyncClient,
    entries: Sequence[EntryKey],
    closers: Sequence[EntryKey],
    accounts: Sequence[AccountKey],
    nodes: Mapping[str, Sequence[NodeKey]],
    failed: Sequence[EntryKey] = (),
) -> Snapshot:
    values = _snapshot_values(entries, closers, accounts, nodes, failed)
    rows = await conn.execute_query_dict(PG_SNAPSHOT, values)
    return _snapshot_from(rows, accounts, nodes)


# Each table's rows go as one array of records (migration 0003's row types).
PG_WRITE = (
    "SELECT ledger_write($1::ledger_entry_row[], $2::ledger_balance_row[], "
    "$3::ledger_node_row[], $4::ledger_failure_row[], $5::ledger_head_row[])"
)


def _rows(write: Write) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Balances, Merkle nodes, refused ids and heads of `write` as records."""
    return (
        [(d, a, v) for (d, a), v in sorted((write.balances or {}).items())],
        stored_nodes(write),
        [(f.district, f.entry_id, f.code, f.message, f.content, f.at_ms) for f in write.failures],
        [(d, h.size, h.head) for d, h in sorted((write.heads or {}).items())],
    )


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
    balances, nodes, failures, heads = _rows(write)
    values = [[entry_row(e) for e in entries], balances, nodes, failures, heads]
    await conn.execute_query_dict(PG_WRITE, values)


async def pg_nodes(
    conn: BaseDBAsyncClient, district: str, keys: Sequence[NodeKey]
) -> dict[NodeKey, bytes]:
    """Merkle nodes in one round trip (a proof on a 1M chain needs about 40 of them)."""
    snap = await pg_snapshot(conn, (), (), (), {district: keys})
    return snap.nodes[district]


APPEND_IF_CURRENT = (
    "SELECT ledger_append_if_current($1::ledger_head_row[], $2::ledger_head_row[], "
    "$3::ledger_entry_row[], $4::ledger_balance_row[], $5::ledger_node_row[], "
    "$6::ledger_failure_row[])"
)
CHAIN_HEADS = "SELECT district, size, head FROM ledger_chain WHERE district = ANY($1::text[])"


async def pg_chain_state(
    conn: asyncpg.Connection, districts: Sequence[str], accounts: Sequence[AccountKey]
) -> ChainState:
    """Heads, their Merkle frontier and balances on a raw asyncpg connection, no transaction."""
    heads: dict[str, Head] = {}
    if districts:
        rows = await conn.fetch(CHAIN_HEADS, list(districts))
        heads = {r["district"]: Head(int(r["size"]), bytes(r["head"])) for r in rows}
    nodes = {d: frontier(h.size) for d, h in heads.items()}
    snap = _snapshot_from(
        await conn.fetch(PG_SNAPSHOT, *_snapshot_values((), (), accounts, nodes, ())),
        accounts,
        nodes,
    )
    return ChainState(heads, snap.nodes, snap.balances)


async def pg_append_if_current(
    conn: asyncpg.Connection, expected: Mapping[str, Head], write: Write
) -> str:
    """One statement (migration 0003's function) on a raw asyncpg connection outside any
    transaction block: 'ok' when written, 'moved' or 'known' when nothing was; `Conflict`
    when an entry's id is taken."""
    balances, nodes, failures, heads = _rows(write)
    values = [
        [(d, h.size, h.head) for d, h in sorted(expected.items())],
        heads,
        [entry_row(e) for e in write.entries],
        balances,
        nodes,
        failures,
    ]
    try:
        return str(await conn.fetchval(APPEND_IF_CURRENT, *values))
    except asyncpg.IntegrityConstraintViolationError as error:
        raise Conflict(str(error)) from error
