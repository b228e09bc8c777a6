"""The transaction every booking change runs in: rows and events commit together.

Events are buffered and published when the work is done, stream by stream in sorted order.
Each stream's head row is locked from its first event to the commit (gap-free sequences), and
the district's admin stream is shared by every booking there; taking those locks in one global
order, at the end, means two booking transactions never wait on each other's streams in a
cycle, and hold them only for the last statements before the commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from market.realtime.events import EventTransaction, event_transaction


class BookingTransaction:
    def __init__(self, tx: EventTransaction) -> None:
        self._tx = tx
        self.connection: BaseDBAsyncClient = tx.connection
        self._events: list[tuple[frozenset[str], str, dict[str, Any]]] = []

    async def publish(self, streams: Sequence[str], kind: str, payload: Mapping[str, Any]) -> None:
        self._events.append((frozenset(streams), kind, dict(payload)))

    async def flush(self) -> None:
        for stream in sorted({s for streams, _, _ in self._events for s in streams}):
            for streams, kind, payload in self._events:
                if stream in streams:
                    await self._tx.publish([stream], kind, payload)
        self._events.clear()


@asynccontextmanager
async def booking_transaction() -> AsyncIterator[BookingTransaction]:
    async with event_transaction() as tx:
        booking_tx = BookingTransaction(tx)
        yield booking_tx
        await booking_tx.flush()
