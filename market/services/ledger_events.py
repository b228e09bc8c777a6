"""Ledger entries as realtime events, written in the transaction that appends them.

`EventedStore` is the ledger's `TortoiseStore` with one addition: when its writer writes new
entries, it publishes one `ledger.entry` event on the `user:<id>` stream of every user account
an entry debits or credits, on the writer's own connection, before the commit. The entry and
its events therefore commit together or not at all: no event for a rolled-back append, no
append without its event. `ledger/` stays ignorant of all this (it never imports `market`);
the market only wraps the store the ledger is handed.

Where the events go depends on the transaction the append runs in:
- its own (the usual case: the gateway's appends, transfers, gifts): published at once, stream
  by stream in sorted order (the same global order every publisher uses, so no two
  transactions wait on each other's streams in a cycle), and the process doorbells ring after
  the commit;
- a market transaction that registered itself with `publishing_into(tx)` (settlement, gifts
  checked under the payer's lock): handed to that transaction's buffer, which publishes them
  with its own events at its end and rings after its commit;
- any other caller's transaction: published at once; no doorbell rings, because ringing before
  the caller commits could announce an event that still rolls back. PostgreSQL's NOTIFY is
  delivered on commit anyway, and the hub re-reads stream heads every few seconds.

Payload (`ledger.entry`): the entry's district, seq, id, kind, debit, credit, minutes,
category, ref, time, transfer id, the stream owner's account and its balance after the entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import Any, Protocol
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.connection import get_connections

from ledger.entries import USER_PREFIX, Entry
from ledger.rules import deltas
from ledger.storage.base import Write
from ledger.storage.tortoise_store import TortoiseStore
from market.realtime.bells import PROCESS_DOORBELLS
from market.realtime.events import Event, EventTransaction, user_stream

ENTRY_EVENT = "ledger.entry"
CHECKPOINT_EVENT = "ledger.checkpoint"


class Buffer(Protocol):
    """A market transaction that publishes its events at its own end (BookingTransaction)."""

    async def publish(
        self, streams: Sequence[str], kind: str, payload: Mapping[str, Any]
    ) -> Any: ...


_BUFFER: ContextVar[Buffer | None] = ContextVar("ledger_event_buffer", default=None)


@contextmanager
def publishing_into(buffer: Buffer) -> Iterator[None]:
    """Ledger appends made inside this block (on `buffer`'s transaction) hand their events to
    `buffer` instead of publishing them themselves."""
    token = _BUFFER.set(buffer)
    try:
        yield
    finally:
        _BUFFER.reset(token)


def account_owner(account: str) -> UUID | None:
    """The user of a `user:<uuid>` account; None for district accounts and foreign ids."""
    if not account.startswith(USER_PREFIX):
        return None
    try:
        return UUID(account[len(USER_PREFIX) :])
    except ValueError:
        return None


def touched(write: Write) -> list[tuple[str, str]]:
    """(district, account) of every user account the write's entries name, first seen first."""
    keys = [(e.district, a) for e in write.entries for a in (e.debit, e.credit)]
    return [key for key in dict.fromkeys(keys) if account_owner(key[1]) is not None]


def entry_events(
    write: Write, unchanged: Mapping[tuple[str, str], int] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(stream, payload) for every user account each new entry touches, in entry order.

    `unchanged` holds the balances of touched accounts that the write did not change (a
    hold_post moves nothing), which the write itself does not carry."""
    balances = {**(unchanged or {}), **(write.balances or {})}
    after: list[dict[tuple[str, str], int]] = []
    # Walk back from the balances after the whole write to each entry's own "after".
    for entry in reversed(write.entries):
        after.append(dict(balances))
        for account, delta in deltas(entry.kind, entry.debit, entry.credit, entry.minutes):
            key = (entry.district, account)
            if key in balances:
                balances[key] -= delta
    after.reverse()
    out = []
    for entry, balance in zip(write.entries, after, strict=True):
        for account in dict.fromkeys((entry.debit, entry.credit)):
            owner = account_owner(account)
            if owner is not None:
                payload = entry_payload(entry, account, balance.get((entry.district, account)))
                out.append((user_stream(owner), payload))
    return out


def entry_payload(entry: Entry, account: str, balance: int | None) -> dict[str, Any]:
    return {
        "district": entry.district,
        "seq": entry.seq,
        "entry_id": entry.id,
        "kind": str(entry.kind),
        "debit": entry.debit,
        "credit": entry.credit,
        "minutes": entry.minutes,
        "category": entry.category,
        "ref": entry.ref,
        "at_ms": entry.at_ms,
        "transfer": entry.transfer_id,
        "account": account,
        "balance_minutes": balance,
    }


def _current(client: BaseDBAsyncClient) -> BaseDBAsyncClient:
    return get_connections().get(client.connection_name)


async def _publish_sorted(
    connection: BaseDBAsyncClient, events: list[tuple[str, dict[str, Any]]]
) -> list[Event]:
    tx = EventTransaction(connection)
    published: list[Event] = []
    for stream in sorted({stream for stream, _ in events}):
        for name, payload in events:
            if name == stream:
                published += await tx.publish([stream], ENTRY_EVENT, payload)
    return published


class _EventedWriter:
    """The ledger's writer, publishing the events of what it writes before its commit."""

    def __init__(self, inner: Any, store: EventedStore, buffer: Buffer | None) -> None:
        self._inner = inner
        self._store = store
        self._buffer = buffer
        self.published: list[Event] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write(self, write: Write) -> None:
        await self._inner.write(write)
        changed = write.balances or {}
        unchanged = {
            key: await self._store.balance(*key) for key in touched(write) if key not in changed
        }
        events = entry_events(write, unchanged)
        if not events:
            return
        if self._buffer is not None:
            for stream, payload in events:
                await self._buffer.publish([stream], ENTRY_EVENT, payload)
            return
        connection = _current(self._store.client)
        self.published += await _publish_sorted(connection, events)


class EventedStore(TortoiseStore):
    """The market's ledger store: every appended entry also becomes its users' events."""

    @asynccontextmanager
    async def writer(self, districts: Sequence[str]) -> AsyncIterator[Any]:
        enclosing = isinstance(_current(self.client), TransactionalDBClient)
        buffer = _BUFFER.get() if enclosing else None
        async with super().writer(districts) as inner:
            evented = _EventedWriter(inner, self, buffer)
            yield evented
        if evented.published and not enclosing:
            # Our own transaction has committed: nothing announced can roll back now.
            PROCESS_DOORBELLS.ring(sorted(evented.published, key=lambda e: (e.stream, e.seq)))
