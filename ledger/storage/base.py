"""The `ChainStore` interface: what the append service and the readers need from storage.

Writes go through a `ChainWriter`, opened by `ChainStore.writer(districts)`: it is one database
transaction holding the lock of every named chain (a row lock on each chain head in PostgreSQL,
the single write transaction in SQLite, a lock in memory). The service reads what the rules need
through it, decides, then hands everything to `ChainWriter.write` at once; leaving the context
without an exception commits, an exception rolls everything back.

Two implementations: `memory.MemoryStore` (the in-memory twin) and
`tortoise_store.TortoiseStore` (SQLite or PostgreSQL). Keys are `(district, ...)` everywhere:
ids, balances and Merkle nodes are scoped by district.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ledger.entries import ZERO_HASH, Entry
from ledger.storage.nodes import NodeKey

EntryKey = tuple[str, str]  # (district, entry id)
AccountKey = tuple[str, str]  # (district, account)


@dataclass(frozen=True)
class Head:
    """A chain's size and the hash of its last entry (32 zero bytes when empty)."""

    size: int = 0
    head: bytes = ZERO_HASH


@dataclass(frozen=True)
class Failure:
    """An id whose first attempt was refused, with the refusal and the refused content."""

    district: str
    entry_id: str
    code: str
    message: str
    content: str
    at_ms: int


@dataclass(frozen=True)
class StoredCheckpoint:
    district: str
    size: int
    root: bytes
    at_ms: int
    body: bytes


class Conflict(Exception):
    """A write met a unique key already taken, most likely an entry id appended before: the
    transaction must roll back. The append path then redoes its batch reading every id first
    (it reads only the failed ids of a large batch, and lets the unique key catch the rest)."""


@dataclass(frozen=True)
class Write:
    """Everything one writer commits: new entries, the balances they changed (their values
    after the write), the new heads, refused ids and the Merkle nodes completed from level
    `nodes.STORED_FROM` up (level 0 is each entry's hash; levels 1 to 3 are derived from the
    leaves when read)."""

    entries: Sequence[Entry] = ()
    balances: dict[AccountKey, int] | None = None
    heads: dict[str, Head] | None = None
    failures: Sequence[Failure] = ()
    nodes: dict[str, dict[NodeKey, bytes]] | None = None


@dataclass(frozen=True)
class Snapshot:
    """What the rules need about a set of proposals, read under the chain locks at once."""

    entries: dict[EntryKey, Entry]
    failures: dict[EntryKey, Failure]
    closers: dict[EntryKey, str]  # (district, target id) -> id of the entry that closed it
    balances: dict[AccountKey, int]  # every requested key, 0 when the account has no row
    nodes: dict[str, dict[NodeKey, bytes]]


@dataclass(frozen=True)
class ChainState:
    """Chain heads, the Merkle frontier of each (`nodes.frontier`) and balances, as read at one
    moment without a lock: what a writer that caches its chains starts from."""

    heads: dict[str, Head]
    nodes: dict[str, dict[NodeKey, bytes]]
    balances: dict[AccountKey, int]  # every requested key, 0 when the account has no row


@dataclass(frozen=True)
class CategoryTotal:
    """Entries of one service category (None: uncategorised) and kind, and their minutes."""

    category: str | None
    kind: str
    entries: int
    minutes: int


def total_order(total: CategoryTotal) -> tuple[bool, str, str]:
    """Uncategorised first, then by category and kind: every store sorts its totals so."""
    return (total.category is not None, total.category or "", total.kind)


class ChainWriter(Protocol):
    async def heads(self) -> dict[str, Head]: ...

    async def snapshot(
        self,
        *,
        entries: Sequence[EntryKey],
        closers: Sequence[EntryKey] = (),
        accounts: Sequence[AccountKey] = (),
        nodes: Mapping[str, Sequence[NodeKey]] | None = None,
        failed: Sequence[EntryKey] = (),
    ) -> Snapshot:
        """Entries and failures of the `entries` ids, failures only of the `failed` ids, the
        closers of the `closers` targets, balances of `accounts` and the Merkle `nodes` asked
        for (one round trip if it can)."""
        ...

    async def write(self, write: Write) -> None:
        """Stage everything for the commit; `Conflict` if an entry's id or seq is taken."""
        ...


class ChainStore(Protocol):
    def writer(self, districts: Sequence[str]) -> AbstractAsyncContextManager[ChainWriter]: ...

    async def head(self, district: str) -> Head: ...

    async def districts(self) -> list[str]: ...

    async def entries(self, district: str, start: int = 0, end: int | None = None) -> list[Entry]:
        """Entries with start <= seq < end, in order."""
        ...

    async def entry(self, district: str, entry_id: str) -> Entry | None: ...

    async def failure(self, district: str, entry_id: str) -> Failure | None: ...

    async def balance(self, district: str, account: str) -> int: ...

    async def balances(self, district: str) -> dict[str, int]:
        """Stored balances of every account of the chain that was ever touched."""
        ...

    async def statement(
        self, district: str, account: str, *, after_seq: int = -1, limit: int = 100
    ) -> list[Entry]:
        """Entries debiting or crediting `account` with seq > after_seq, in order."""
        ...

    async def open_holds(self, district: str) -> list[Entry]:
        """hold_pending entries of the chain that no hold_post or hold_void closed yet."""
        ...

    async def category_totals(
        self, district: str, *, start_ms: int, end_ms: int, category: str | None = None
    ) -> list[CategoryTotal]:
        """Entries with start_ms <= at_ms < end_ms summed by (category, kind), in
        `total_order`; only those of `category` when it is given."""
        ...

    async def nodes(self, district: str, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]: ...

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None: ...

    async def checkpoints(self, district: str) -> list[StoredCheckpoint]: ...

    async def close(self) -> None: ...
