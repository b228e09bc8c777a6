"""The event log: publish inside the caller's transaction, read back for replay.

    async with event_transaction() as tx:
        booking = await Booking.create(..., using_db=tx.connection)
        await tx.publish([elder_stream(elder_id), user_stream(helper_id)], "booking.offered",
                         {"booking": str(booking.id), "state": "offered"})

Each stream has a gap-free sequence: the stream-head row is upserted with `last_seq + n ...
RETURNING`, which holds its row lock until commit (PostgreSQL) or runs under SQLite's single
write lock, so concurrent publishers to one stream commit in seq order and never skip a number.
On PostgreSQL the transaction also issues `pg_notify` (delivered only on commit, payload
`<stream> <seq>`); after the commit returns, the process doorbells ring. A rollback writes no
event and rings nothing.

The cursor a client resumes from is (stream, seq), never a global id: global ids become
visible out of order under concurrent transactions, and a client would skip events.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from uuid import UUID, uuid4

from tortoise.backends.base.client import BaseDBAsyncClient, NestedTransactionContext
from tortoise.functions import Min
from tortoise.transactions import in_transaction

from market.realtime.bells import PROCESS_DOORBELLS, Doorbells
from market.realtime.models import StoredEvent, StreamHead
from market.realtime.topics import (
    InvalidStream,
    admin_stream,
    elder_stream,
    may_read,
    parse_stream,
    readable_streams,
    user_stream,
)

__all__ = [
    "NOTIFY_CHANNEL",
    "Event",
    "EventTransaction",
    "InvalidEvent",
    "InvalidStream",
    "admin_stream",
    "elder_stream",
    "event_transaction",
    "first_seqs",
    "may_read",
    "read_stream",
    "readable_streams",
    "stream_heads",
    "user_stream",
]

NOTIFY_CHANNEL = "eldercare_events"
MAX_KIND_LENGTH = 64
# Events travel whole to every subscriber; keep them small (ids and states, not documents).
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_STREAMS_PER_PUBLISH = 64
MAX_READ = 10_000


class InvalidEvent(ValueError):
    """A publish call with an unusable stream, kind or payload (a programming error)."""


@dataclass(frozen=True)
class Event:
    id: UUID
    stream: str
    seq: int
    kind: str
    payload: Mapping[str, Any]
    at: datetime

    @cached_property
    def wire(self) -> str:
        """`to_json()` encoded once, however many subscribers it is sent to."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))

    def to_json(self) -> dict[str, Any]:
        """The event frame sent to websocket clients (a JSON-ready dict)."""
        return {
            "type": "event",
            "id": str(self.id),
            "stream": self.stream,
            "seq": self.seq,
            "kind": self.kind,
            "payload": dict(self.payload),
            "at": self.at.isoformat(),
        }


def _event_of(row: StoredEvent) -> Event:
    return Event(
        id=row.event_id,
        stream=row.stream,
        seq=row.seq,
        kind=row.kind,
        payload=row.payload,  # type: ignore[arg-type]
        at=row.created_at,
    )


def _checked_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        raise InvalidEvent("payload must be a mapping")
    try:
        encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"payload is not JSON: {exc}") from None
    if len(encoded.encode()) > MAX_PAYLOAD_BYTES:
        raise InvalidEvent(f"payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    # A decoded copy: the caller may mutate its dict after publishing.
    return json.loads(encoded)  # type: ignore[no-any-return]


def _checked_streams(streams: Sequence[str]) -> list[str]:
    if isinstance(streams, str):
        raise InvalidEvent("streams must be a sequence of stream names, not one string")
    unique = sorted(set(streams))
    if not unique:
        raise InvalidEvent("publish needs at least one stream")
    if len(unique) > MAX_STREAMS_PER_PUBLISH:
        raise InvalidEvent(f"at most {MAX_STREAMS_PER_PUBLISH} streams per publish")
    for stream in unique:
        try:
            parse_stream(stream)
        except InvalidStream as exc:
            raise InvalidEvent(str(exc)) from None
    return unique


class _Dialect:
    def __init__(self, connection: BaseDBAsyncClient) -> None:
        self.postgres = connection.capabilities.dialect == "postgres"

    def q(self, sql: str) -> str:
        if not self.postgres:
            return sql
        parts = sql.split("?")
        return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))


_CLAIM_SEQS = (
    "INSERT INTO realtime_stream (stream, last_seq) VALUES (?, ?) "
    "ON CONFLICT (stream) DO UPDATE SET last_seq = realtime_stream.last_seq + excluded.last_seq "
    "RETURNING last_seq"
)


class EventTransaction:
    """One database transaction that may publish events; see `event_transaction`."""

    def __init__(self, connection: BaseDBAsyncClient) -> None:
        self.connection = connection
        self._dialect = _Dialect(connection)
        self._published: list[Event] = []

    @property
    def published(self) -> list[Event]:
        return list(self._published)

    async def publish(
        self, streams: Sequence[str], kind: str, payload: Mapping[str, Any]
    ) -> list[Event]:
        """Append one event per stream (same kind and payload); returns them in stream order."""
        if not isinstance(kind, str) or not 0 < len(kind) <= MAX_KIND_LENGTH:
            raise InvalidEvent(f"kind must be a string of 1..{MAX_KIND_LENGTH} characters")
        body = _checked_payload(payload)
        names = _checked_streams(streams)
        at = datetime.now(UTC)
        events: list[Event] = []
        # Sorted stream order: two publishers touching the same streams lock them in one order.
        for stream in names:
            rows = await self.connection.execute_query_dict(
                self._dialect.q(_CLAIM_SEQS), [stream, 1]
            )
            seq = int(rows[0]["last_seq"])
            events.append(Event(uuid4(), stream, seq, kind, body, at))
        await StoredEvent.bulk_create(
            [
                StoredEvent(
                    stream=e.stream,
                    seq=e.seq,
                    event_id=e.id,
                    kind=e.kind,
                    payload=e.payload,
                    created_at=e.at,
                )
                for e in events
            ],
            using_db=self.connection,
        )
        if self._dialect.postgres:
            for e in events:
                # Delivered on commit only; the payload names a position, never the body.
                await self.connection.execute_query(
                    "SELECT pg_notify($1, $2)", [NOTIFY_CHANNEL, f"{e.stream} {e.seq}"]
                )
        self._published.extend(events)
        return events


@asynccontextmanager
async def event_transaction(
    connection_name: str | None = None, *, doorbells: Doorbells = PROCESS_DOORBELLS
) -> AsyncIterator[EventTransaction]:
    """A transaction whose published events commit with it and ring the doorbells after.

    It must be the outermost transaction: inside another `in_transaction()` it would only be a
    savepoint, and ringing at its end would announce events that could still roll back.
    """
    context = in_transaction(connection_name)
    if isinstance(context, NestedTransactionContext):
        raise RuntimeError(
            "event_transaction() must open the outermost transaction, not nest in another"
        )
    async with context as connection:
        tx = EventTransaction(connection)
        yield tx
    if tx.published:
        doorbells.ring(sorted(tx.published, key=lambda e: (e.stream, e.seq)))


async def read_stream(
    stream: str,
    after_seq: int,
    limit: int,
    *,
    connection: BaseDBAsyncClient | None = None,
) -> list[Event]:
    """Up to `limit` events of `stream` with seq > `after_seq`, in seq order."""
    if limit <= 0:
        return []
    query = StoredEvent.filter(stream=stream, seq__gt=after_seq).order_by("seq")
    if connection is not None:
        query = query.using_db(connection)
    rows = await query.limit(min(limit, MAX_READ))
    return [_event_of(row) for row in rows]


async def stream_heads(
    streams: Sequence[str], *, connection: BaseDBAsyncClient | None = None
) -> dict[str, int]:
    """The last seq of each stream (0 for a stream nobody has published to)."""
    heads = dict.fromkeys(streams, 0)
    if not heads:
        return heads
    query = StreamHead.filter(stream__in=list(heads))
    if connection is not None:
        query = query.using_db(connection)
    for stream, last_seq in await query.values_list("stream", "last_seq"):
        heads[stream] = int(last_seq)  # type: ignore[call-overload]
    return heads


async def first_seqs(
    streams: Sequence[str], *, connection: BaseDBAsyncClient | None = None
) -> dict[str, int]:
    """The oldest retained seq of each stream that still has events (for the purge check)."""
    if not streams:
        return {}
    query = StoredEvent.filter(stream__in=list(streams))
    if connection is not None:
        query = query.using_db(connection)
    rows = await query.group_by("stream").annotate(first=Min("seq")).values("stream", "first")
    return {row["stream"]: int(row["first"]) for row in rows}
