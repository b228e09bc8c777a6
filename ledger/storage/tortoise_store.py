"""The ledger store on a Tortoise connection: SQLite (embedded) or PostgreSQL (asyncpg).

Queries are plain SQL over the tables of `models.py`, because the append path moves thousands
of rows per transaction and the ORM's per-object cost would dominate.

Serialising appends per chain:
- PostgreSQL: the head rows of new chains are created and committed first, on their own; then
  each writer takes `SELECT ... FOR UPDATE` on the head rows of its districts in sorted order
  (no deadlock between writers of overlapping districts); other chains append in parallel.
  Its read and its write are one call each to migration 0005's functions.
- Inside a caller's open `in_transaction()` on the same connection, the writer is a savepoint
  of that transaction and its locks last until the caller commits.
- SQLite: Tortoise opens a deferred `BEGIN`; the writer's first statement inserts any missing
  head rows, a write, so the connection takes SQLite's single write lock before it reads
  anything. Nothing it reads can then change under it, and a second process waits on
  `busy_timeout` instead of failing on a lock upgrade.

`direct_session()` (PostgreSQL) holds one connection for a writer that caches its chains, the
group committer: a group is one call to `ledger_append_if_current` (migration 0003).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.connection import get_connections
from tortoise.exceptions import ConfigurationError, IntegrityError

from ledger.entries import ZERO_HASH, Entry, entry_from_bytes
from ledger.storage.base import (
    AccountKey,
    CategoryTotal,
    ChainState,
    Conflict,
    EntryKey,
    Failure,
    Head,
    Snapshot,
    StoredCheckpoint,
    Write,
    total_order,
)
from ledger.storage.nodes import NodeKey, derive, expand
from ledger.storage.postgres import (
    pg_append_if_current,
    pg_chain_state,
    pg_nodes,
    pg_snapshot,
    pg_write,
)
from ledger.storage.rows import ENTRY_COLUMNS, FAILURE_COLUMNS, entry_row, stored_nodes

# SQLite allows 32766 bound parameters; keep IN lists well below.
CHUNK = 500


def _chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _by_district(keys: Sequence[tuple[Any, Any]]) -> dict[Any, list[Any]]:
    """Group (first, second) pairs by their first element, keeping order."""
    grouped: dict[Any, list[Any]] = {}
    for first, second in keys:
        grouped.setdefault(first, []).append(second)
    return grouped


class _Sql:
    """Dialect differences: placeholders, IN lists, bulk inserts."""

    def __init__(self, client: BaseDBAsyncClient) -> None:
        self.postgres = client.capabilities.dialect == "postgres"

    def q(self, sql: str) -> str:
        if not self.postgres:
            return sql
        parts = sql.split("?")
        out = [parts[0]]
        for n, part in enumerate(parts[1:], start=1):
            out.append(f"${n}{part}")
        return "".join(out)

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if self.postgres:
            return f"{column} = ANY(?)", [list(values)]
        return f"{column} IN ({','.join('?' * len(values))})", list(values)


async def _select(
    conn: BaseDBAsyncClient, sql: _Sql, query: str, values: list[Any]
) -> list[dict[str, Any]]:
    return await conn.execute_query_dict(sql.q(query), values)


async def _insert_rows(
    conn: BaseDBAsyncClient,
    sql: _Sql,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    conflict: str = "",
) -> None:
    """SQLite bulk insert (PostgreSQL writes through `PG_WRITE`)."""
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    query = f"INSERT INTO {table} ({names}) VALUES ({marks}) {conflict}"
    await conn.execute_many(query, [list(r) for r in rows])


class TortoiseWriter:
    def __init__(self, conn: BaseDBAsyncClient, sql: _Sql, heads: dict[str, Head]) -> None:
        self._conn = conn
        self._sql = sql
        self._heads = heads

    async def heads(self) -> dict[str, Head]:
        return dict(self._heads)

    async def snapshot(
        self,
        *,
        entries: Sequence[EntryKey],
        closers: Sequence[EntryKey] = (),
        accounts: Sequence[AccountKey] = (),
        nodes: Mapping[str, Sequence[NodeKey]] | None = None,
        failed: Sequence[EntryKey] = (),
    ) -> Snapshot:
        if self._sql.postgres:
            return await pg_snapshot(
                self._conn, entries, closers, accounts, nodes or {}, failed=failed
            )
        conn, sql = self._conn, self._sql
        found: dict[EntryKey, Entry] = {}
        failures: dict[EntryKey, Failure] = {}
        closed: dict[EntryKey, str] = {}
        balances: dict[AccountKey, int] = {k: 0 for k in accounts}
        for district, ids in _by_district(entries).items():
            for chunk in _chunks(ids):
                cond, values = sql.in_list("entry_id", chunk)
                for row in await _select(
                    conn, sql, f"SELECT body FROM ledger_entry WHERE district = ? AND {cond}",
                    [district, *values],
                ):  # fmt: skip
                    entry = entry_from_bytes(bytes(row["body"]))
                    found[(district, entry.id)] = entry
        for district, ids in _by_district(list(dict.fromkeys([*entries, *failed]))).items():
            for chunk in _chunks(ids):
                cond, values = sql.in_list("entry_id", chunk)
                for row in await _select(
                    conn, sql, f"SELECT {FAILURE_COLUMNS} FROM ledger_failed_id "
                    f"WHERE district = ? AND {cond}", [district, *values],
                ):  # fmt: skip
                    failures[(district, row["entry_id"])] = Failure(**row)
        for district, ids in _by_district(closers).items():
            for chunk in _chunks(ids):
                cond, values = sql.in_list("settles", chunk)
                for row in await _select(
                    conn, sql, "SELECT settles, entry_id FROM ledger_entry "
                    f"WHERE district = ? AND {cond}", [district, *values],
                ):  # fmt: skip
                    closed[(district, row["settles"])] = row["entry_id"]
        for district, names in _by_district(accounts).items():
            for chunk in _chunks(names):
                cond, values = sql.in_list("account", chunk)
                for row in await _select(
                    conn, sql, "SELECT account, minutes FROM ledger_balance "
                    f"WHERE district = ? AND {cond}", [district, *values],
                ):  # fmt: skip
                    balances[(district, row["account"])] = int(row["minutes"])
        node_hashes = {
            d: await _read_nodes(conn, sql, d, keys) for d, keys in (nodes or {}).items()
        }
        return Snapshot(found, failures, closed, balances, node_hashes)

    async def write(self, write: Write) -> None:
        for district in write.heads or {}:
            if district not in self._heads:
                raise RuntimeError(f"writer did not lock chain {district}")
        try:
            if self._sql.postgres:
                await pg_write(self._conn, write)
            else:
                await _sqlite_write(self._conn, self._sql, write)
        except IntegrityError as error:
            # Every unique key the append path does not read first is an entry's (district,
            # id) or (district, seq): the transaction is lost and the caller starts again.
            raise Conflict(str(error)) from error
        self._heads.update(write.heads or {})


async def _sqlite_write(conn: BaseDBAsyncClient, sql: _Sql, write: Write) -> None:
    await _insert_rows(
        conn, sql, "ledger_entry", ENTRY_COLUMNS, [entry_row(e) for e in write.entries]
    )
    balances = sorted((write.balances or {}).items())
    await _insert_rows(
        conn,
        sql,
        "ledger_balance",
        ("district", "account", "minutes"),
        [(d, a, v) for (d, a), v in balances],
        'ON CONFLICT ("district", "account") DO UPDATE SET "minutes" = excluded."minutes"',
    )
    await _insert_rows(
        conn, sql, "ledger_merkle_node", ("district", "level", "idx", "hash"), stored_nodes(write)
    )
    await _insert_rows(
        conn,
        sql,
        "ledger_failed_id",
        ("district", "entry_id", "code", "message", "content", "at_ms"),
        [(f.district, f.entry_id, f.code, f.message, f.content, f.at_ms) for f in write.failures],
        'ON CONFLICT ("district", "entry_id") DO NOTHING',
    )
    for district, head in sorted((write.heads or {}).items()):
        await conn.execute_query(
            sql.q("UPDATE ledger_chain SET size = ?, head = ? WHERE district = ?"),
            [head.size, head.head, district],
        )


async def _read_nodes(
    conn: BaseDBAsyncClient, sql: _Sql, district: str, keys: Sequence[NodeKey]
) -> dict[NodeKey, bytes]:
    found: dict[NodeKey, bytes] = {}
    for level, idxs in _by_district(expand(keys)).items():
        for chunk in _chunks(idxs):
            if level == 0:
                cond, values = sql.in_list("seq", chunk)
                query = f"SELECT seq AS idx, hash FROM ledger_entry WHERE district = ? AND {cond}"
            else:
                cond, values = sql.in_list("idx", chunk)
                values = [level, *values]
                query = (
                    "SELECT idx, hash FROM ledger_merkle_node WHERE district = ? AND level = ? "
                    f"AND {cond}"
                )
            for row in await _select(conn, sql, query, [district, *values]):
                found[(level, int(row["idx"]))] = bytes(row["hash"])
    return derive(keys, found)


class TortoiseStore:
    """`ChainStore` on one Tortoise connection (the market passes its `default` client)."""

    def __init__(self, client: BaseDBAsyncClient) -> None:
        self.client = client
        self._sql = _Sql(client)
        self._known_heads: set[str] = set()  # districts whose head row is known to exist

    @property
    def postgres(self) -> bool:
        return self._sql.postgres

    def _current(self) -> BaseDBAsyncClient:
        """The caller's open transaction on our connection, if there is one, else our client.

        A service that already holds `in_transaction()` (say, settling a booking) then appends
        inside its own transaction (a savepoint): the entry commits or rolls back with the rest
        of its work, and on SQLite the append does not wait for the lock that transaction holds.
        """
        try:
            current = get_connections().get(self.client.connection_name)
        except (ConfigurationError, KeyError):
            return self.client  # no Tortoise context in this task, or not our connection
        parent = current
        while parent is not self.client:
            parent = getattr(parent, "_parent", None)
            if parent is None:
                return self.client  # another database under the same connection name
        return current

    @asynccontextmanager
    async def writer(self, districts: Sequence[str]) -> AsyncIterator[TortoiseWriter]:
        ordered = sorted(set(districts))
        sql = self._sql
        if sql.postgres:
            await self._ensure_heads(ordered)
        async with self._current()._in_transaction() as conn:
            if not sql.postgres:
                # The first statement writes, so SQLite takes its write lock before any read.
                await self._create_heads(conn, ordered)
            heads = await self._lock_heads(conn, ordered)
            if len(heads) < len(ordered):  # a head row gone since `_ensure_heads` saw it
                await self._create_heads(conn, ordered)
                heads = await self._lock_heads(conn, ordered)
            yield TortoiseWriter(
                conn,
                sql,
                {r["district"]: Head(int(r["size"]), bytes(r["head"])) for r in heads},
            )

    async def _ensure_heads(self, districts: list[str]) -> None:
        """PostgreSQL: the head rows of new chains, created and committed on their own before
        a writer locks anything. Created inside the writer's transaction, a new head would be
        locked out of order: a writer that locked the existing heads of B then inserts A's
        waits for another that inserted A and now waits for B's lock (a deadlock)."""
        new = [d for d in districts if d not in self._known_heads]
        if not new:
            return
        await self._create_heads(self.client, new)  # no transaction: committed at once
        self._known_heads.update(new)

    async def _create_heads(self, conn: BaseDBAsyncClient, districts: list[str]) -> None:
        rows = ", ".join("(?, 0, ?)" for _ in districts)
        values: list[Any] = [v for d in districts for v in (d, ZERO_HASH)]
        await conn.execute_query(
            self._sql.q(
                f"INSERT INTO ledger_chain (district, size, head) VALUES {rows} "
                "ON CONFLICT (district) DO NOTHING"
            ),
            values,
        )

    async def _lock_heads(
        self, conn: BaseDBAsyncClient, districts: list[str]
    ) -> list[dict[str, Any]]:
        # Sorted, so writers of overlapping districts lock in the same order: no deadlock.
        cond, values = self._sql.in_list("district", districts)
        lock = " FOR UPDATE" if self._sql.postgres else ""
        return await _select(
            conn,
            self._sql,
            f"SELECT district, size, head FROM ledger_chain WHERE {cond} ORDER BY district{lock}",
            values,
        )

    async def _rows(self, query: str, values: list[Any]) -> list[dict[str, Any]]:
        return await _select(self._current(), self._sql, query, values)

    async def head(self, district: str) -> Head:
        rows = await self._rows(
            "SELECT size, head FROM ledger_chain WHERE district = ?", [district]
        )
        return Head(int(rows[0]["size"]), bytes(rows[0]["head"])) if rows else Head()

    async def districts(self) -> list[str]:
        rows = await self._rows("SELECT district FROM ledger_chain ORDER BY district", [])
        return [r["district"] for r in rows]

    async def entries(self, district: str, start: int = 0, end: int | None = None) -> list[Entry]:
        query = "SELECT body FROM ledger_entry WHERE district = ? AND seq >= ?"
        values: list[Any] = [district, max(start, 0)]
        if end is not None:
            query += " AND seq < ?"
            values.append(end)
        rows = await self._rows(query + " ORDER BY seq", values)
        return [entry_from_bytes(bytes(r["body"])) for r in rows]

    async def raw_bodies(
        self, district: str, start: int = 0, end: int | None = None
    ) -> list[tuple[int, bytes]]:
        """(seq, stored bytes) in order, unparsed: what a verifier hashes."""
        query = "SELECT seq, body FROM ledger_entry WHERE district = ? AND seq >= ?"
        values: list[Any] = [district, max(start, 0)]
        if end is not None:
            query += " AND seq < ?"
            values.append(end)
        rows = await self._rows(query + " ORDER BY seq", values)
        return [(int(r["seq"]), bytes(r["body"])) for r in rows]

    async def stream_bodies(
        self, district: str, *, chunk: int = 20_000, start: int = 0, end: int | None = None
    ) -> AsyncIterator[list[tuple[int, bytes]]]:
        """The chain (seq in [start, end)) as (seq, stored bytes) in chunks, by seq ranges
        (keyset paging), for verifying a large chain without holding it in memory."""
        while end is None or start < end:
            stop = start + chunk if end is None else min(start + chunk, end)
            rows = await self.raw_bodies(district, start, stop)
            if not rows:
                return
            yield rows
            start = rows[-1][0] + 1

    async def size_and_balances(
        self, district: str, *, balances: bool = True
    ) -> tuple[int, dict[str, int] | None]:
        """The chain's size and (if asked) its stored balances, read in one snapshot."""
        conn: Any
        async with self._current()._in_transaction() as conn:
            if self.postgres:  # one snapshot for both reads
                await conn.execute_script("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows = await _select(
                conn, self._sql, "SELECT size FROM ledger_chain WHERE district = ?", [district]
            )
            size = int(rows[0]["size"]) if rows else 0
            if not balances:
                return size, None
            rows = await _select(
                conn,
                self._sql,
                "SELECT account, minutes FROM ledger_balance WHERE district = ? ORDER BY account",
                [district],
            )
            return size, {r["account"]: int(r["minutes"]) for r in rows}

    def connection_parameters(self) -> dict[str, Any]:
        """What `asyncpg.connect` needs for another connection to the same PostgreSQL database
        (a helper process verifying part of a chain)."""
        client: Any = self.client
        return {
            "host": client.host,
            "port": client.port,
            "user": client.user,
            "password": client.password,
            "database": client.database,
        }

    async def entry(self, district: str, entry_id: str) -> Entry | None:
        rows = await self._rows(
            "SELECT body FROM ledger_entry WHERE district = ? AND entry_id = ?",
            [district, entry_id],
        )
        return entry_from_bytes(bytes(rows[0]["body"])) if rows else None

    async def failure(self, district: str, entry_id: str) -> Failure | None:
        rows = await self._rows(
            f"SELECT {FAILURE_COLUMNS} FROM ledger_failed_id WHERE district = ? AND entry_id = ?",
            [district, entry_id],
        )
        return Failure(**rows[0]) if rows else None

    async def balance(self, district: str, account: str) -> int:
        rows = await self._rows(
            "SELECT minutes FROM ledger_balance WHERE district = ? AND account = ?",
            [district, account],
        )
        return int(rows[0]["minutes"]) if rows else 0

    async def balances(self, district: str) -> dict[str, int]:
        rows = await self._rows(
            "SELECT account, minutes FROM ledger_balance WHERE district = ? ORDER BY account",
            [district],
        )
        return {r["account"]: int(r["minutes"]) for r in rows}

    async def statement(
        self, district: str, account: str, *, after_seq: int = -1, limit: int = 100
    ) -> list[Entry]:
        rows = await self._rows(
            "SELECT body FROM ledger_entry WHERE district = ? AND (debit = ? OR credit = ?) "
            "AND seq > ? ORDER BY seq LIMIT ?",
            [district, account, account, after_seq, limit],
        )
        return [entry_from_bytes(bytes(r["body"])) for r in rows]

    async def open_holds(self, district: str) -> list[Entry]:
        rows = await self._rows(
            "SELECT h.body FROM ledger_entry h WHERE h.district = ? AND h.kind = 'hold_pending' "
            "AND NOT EXISTS (SELECT 1 FROM ledger_entry c "
            "WHERE c.district = h.district AND c.settles = h.entry_id) ORDER BY h.seq",
            [district],
        )
        return [entry_from_bytes(bytes(r["body"])) for r in rows]

    async def category_totals(
        self, district: str, *, start_ms: int, end_ms: int, category: str | None = None
    ) -> list[CategoryTotal]:
        # Served by the (district, at_ms, category) index (migration 0006).
        query = (
            "SELECT category, kind, COUNT(*) AS n, SUM(minutes) AS m FROM ledger_entry "
            "WHERE district = ? AND at_ms >= ? AND at_ms < ?"
        )
        values: list[Any] = [district, start_ms, end_ms]
        if category is not None:
            query += " AND category = ?"
            values.append(category)
        rows = await self._rows(query + " GROUP BY category, kind", values)
        totals = [CategoryTotal(r["category"], r["kind"], int(r["n"]), int(r["m"])) for r in rows]
        return sorted(totals, key=total_order)

    async def nodes(self, district: str, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        if self._sql.postgres:
            return await pg_nodes(self._current(), district, keys)
        return await _read_nodes(self._current(), self._sql, district, keys)

    # -- one-statement group commits (PostgreSQL) -------------------------------------------

    @property
    def direct_appends(self) -> bool:
        """Whether `direct_session` may be used: on PostgreSQL, unless a subclass wraps the
        writer (like the market's events, which must see every write)."""
        return self.postgres and type(self).writer is TortoiseStore.writer

    @asynccontextmanager
    async def direct_session(self) -> AsyncIterator[DirectSession]:
        """One pooled connection held for a writer that caches its chains (the group
        committer): its statements run outside any transaction block, each its own."""
        if not self.direct_appends:
            raise RuntimeError("direct appends need a plain TortoiseStore on PostgreSQL")
        async with self.client.acquire_connection() as connection:
            yield DirectSession(connection)

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        c = checkpoint
        await self._current().execute_query(
            self._sql.q(
                "INSERT INTO ledger_checkpoint (district, size, root, at_ms, body) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (district, size) DO NOTHING"
            ),
            [c.district, c.size, c.root, c.at_ms, c.body],
        )

    async def checkpoints(self, district: str) -> list[StoredCheckpoint]:
        rows = await self._rows(
            "SELECT district, size, root, at_ms, body FROM ledger_checkpoint "
            "WHERE district = ? ORDER BY size",
            [district],
        )
        return [
            StoredCheckpoint(
                r["district"], int(r["size"]), bytes(r["root"]), int(r["at_ms"]), bytes(r["body"])
            )
            for r in rows
        ]

    async def close(self) -> None:
        await self.client.close()


class DirectSession:
    """Statements on one held asyncpg connection, outside any transaction block (each one is
    its own transaction), without the pool's per-use reset: one round trip each."""

    def __init__(self, connection: Any) -> None:
        self._conn = connection

    async def chain_state(
        self, districts: Sequence[str], accounts: Sequence[AccountKey] = ()
    ) -> ChainState:
        """Heads (chains without a head row are left out), their frontier nodes and the
        `accounts`' balances, read in no transaction: `append_if_current` checks them later."""
        return await pg_chain_state(self._conn, districts, accounts)

    async def append_if_current(self, expected: Mapping[str, Head], write: Write) -> bool:
        """Commit `write` in one statement if every chain in `expected` still has that head
        and none of its ids needs a stored record (migration 0003): True when written, False
        when nothing was. `Conflict` when an entry's id is taken."""
        return await pg_append_if_current(self._conn, expected, write) == "ok"
