"""The in-memory twin of the Tortoise store, for tests, the simulation and benchmarks.

Writers are serialised by one lock and buffer nothing until `write`; a writer left by an
exception commits nothing, like a rolled-back transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

from ledger.entries import Entry, Kind
from ledger.storage.base import (
    AccountKey,
    CategoryTotal,
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


class MemoryWriter:
    def __init__(self, store: MemoryStore, districts: Sequence[str]) -> None:
        self._store = store
        self._districts = sorted(set(districts))
        self._pending: list[Write] = []

    async def heads(self) -> dict[str, Head]:
        return {d: self._store._heads.get(d, Head()) for d in self._districts}

    async def snapshot(
        self,
        *,
        entries: Sequence[EntryKey],
        closers: Sequence[EntryKey] = (),
        accounts: Sequence[AccountKey] = (),
        nodes: Mapping[str, Sequence[NodeKey]] | None = None,
        failed: Sequence[EntryKey] = (),
    ) -> Snapshot:
        store = self._store
        found = {}
        for key in entries:
            seq = store._by_id.get(key)
            if seq is not None:
                found[key] = store._chains[key[0]][seq]
        failure_keys = [*entries, *failed]
        return Snapshot(
            entries=found,
            failures={k: store._failures[k] for k in failure_keys if k in store._failures},
            closers={k: store._closers[k] for k in closers if k in store._closers},
            balances={k: store._balances.get(k, 0) for k in accounts},
            nodes={d: await store.nodes(d, keys) for d, keys in (nodes or {}).items()},
        )

    async def write(self, write: Write) -> None:
        # The unique keys of the database stores: (district, id) and (district, seq).
        store = self._store
        staged = {(e.district, e.id) for w in self._pending for e in w.entries}
        for entry in write.entries:
            key = (entry.district, entry.id)
            if key in store._by_id or key in staged:
                raise Conflict(f"{entry.district}: id {entry.id!r} is taken")
            staged.add(key)
        self._pending.append(write)

    def _commit(self) -> None:
        store = self._store
        for w in self._pending:
            for entry in w.entries:
                chain = store._chains.setdefault(entry.district, [])
                if entry.seq != len(chain):
                    raise RuntimeError(f"{entry.district}: seq {entry.seq} after {len(chain)}")
                chain.append(entry)
                store._by_id[(entry.district, entry.id)] = entry.seq
                if entry.kind in (Kind.REVERSE, Kind.HOLD_POST, Kind.HOLD_VOID) and entry.ref:
                    store._closers[(entry.district, entry.ref)] = entry.id
            store._balances.update(w.balances or {})
            store._heads.update(w.heads or {})
            for failure in w.failures:
                store._failures.setdefault((failure.district, failure.entry_id), failure)
            for district, nodes in (w.nodes or {}).items():
                store._nodes.setdefault(district, {}).update(nodes)


class MemoryStore:
    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._chains: dict[str, list[Entry]] = {}
        self._heads: dict[str, Head] = {}
        self._by_id: dict[EntryKey, int] = {}
        self._closers: dict[EntryKey, str] = {}
        self._balances: dict[AccountKey, int] = {}
        self._failures: dict[EntryKey, Failure] = {}
        self._nodes: dict[str, dict[NodeKey, bytes]] = {}
        self._checkpoints: dict[str, dict[int, StoredCheckpoint]] = {}

    @asynccontextmanager
    async def writer(self, districts: Sequence[str]) -> AsyncIterator[MemoryWriter]:
        async with self._lock:
            writer = MemoryWriter(self, districts)
            yield writer
            writer._commit()

    async def head(self, district: str) -> Head:
        return self._heads.get(district, Head())

    async def districts(self) -> list[str]:
        return sorted(self._heads)

    async def entries(self, district: str, start: int = 0, end: int | None = None) -> list[Entry]:
        chain = self._chains.get(district, [])
        return list(chain[max(start, 0) : end])

    async def entry(self, district: str, entry_id: str) -> Entry | None:
        seq = self._by_id.get((district, entry_id))
        return None if seq is None else self._chains[district][seq]

    async def failure(self, district: str, entry_id: str) -> Failure | None:
        return self._failures.get((district, entry_id))

    async def balance(self, district: str, account: str) -> int:
        return self._balances.get((district, account), 0)

    async def balances(self, district: str) -> dict[str, int]:
        return {a: v for (d, a), v in sorted(self._balances.items()) if d == district}

    async def statement(
        self, district: str, account: str, *, after_seq: int = -1, limit: int = 100
    ) -> list[Entry]:
        lines = []
        for entry in self._chains.get(district, [])[after_seq + 1 :]:
            if account in (entry.debit, entry.credit):
                lines.append(entry)
                if len(lines) == limit:
                    break
        return lines

    async def open_holds(self, district: str) -> list[Entry]:
        return [
            e
            for e in self._chains.get(district, [])
            if e.kind == Kind.HOLD_PENDING and (district, e.id) not in self._closers
        ]

    async def category_totals(
        self, district: str, *, start_ms: int, end_ms: int, category: str | None = None
    ) -> list[CategoryTotal]:
        sums: dict[tuple[str | None, str], tuple[int, int]] = {}
        for e in self._chains.get(district, []):
            if start_ms <= e.at_ms < end_ms and (category is None or e.category == category):
                count, minutes = sums.get((e.category, e.kind), (0, 0))
                sums[(e.category, e.kind)] = (count + 1, minutes + e.minutes)
        totals = [CategoryTotal(c, str(k), n, m) for (c, k), (n, m) in sums.items()]
        return sorted(totals, key=total_order)

    async def nodes(self, district: str, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        # Like the database stores: level 0 is each entry's hash, levels 1 to 3 are derived.
        stored = self._nodes.get(district, {})
        chain = self._chains.get(district, [])
        read: dict[NodeKey, bytes] = {}
        for level, idx in expand(keys):
            if level == 0:
                if 0 <= idx < len(chain):
                    read[(0, idx)] = chain[idx].hash
            elif (level, idx) in stored:
                read[(level, idx)] = stored[(level, idx)]
        return derive(keys, read)

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        self._checkpoints.setdefault(checkpoint.district, {}).setdefault(
            checkpoint.size, checkpoint
        )

    async def checkpoints(self, district: str) -> list[StoredCheckpoint]:
        return [cp for _, cp in sorted(self._checkpoints.get(district, {}).items())]

    async def close(self) -> None:
        return None
