"""Verify a chain straight from its database, with the passes that verify an export.

`verify_stored(store, district, ...)` reads the chain's size and, if asked, its stored
balances in one snapshot, then streams the bodies in seq order into `verify.feed_both`:
- PostgreSQL: `COPY (SELECT body ... ORDER BY seq) TO STDOUT` in binary format, rows fed to the
  passes as they arrive, so nothing holds the whole chain. A long chain is verified in two
  processes like an export file (`ledger.export`): a spawned helper streams and verifies the
  later part detached, over its own connection, while the caller does the first part; the parts
  join (`LinkPass.absorb`, `ReplayPass.absorb`), or, when they do not join cleanly, the whole
  chain is verified again in order, which names the first bad seq.
- SQLite: pages by seq (`TortoiseStore.stream_bodies`), one process.

Entries below the size read first never change (append-only), so the parts need no common
transaction; appends made meanwhile are simply not part of this verification.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from ledger.checkpoint import Checkpoint, KeysArgument
from ledger.entries import check_district
from ledger.errors import ChainBroken
from ledger.verify import (
    LinkPass,
    ReplayPass,
    TailSummary,
    VerifyReport,
    combine,
    feed_both,
)

PARALLEL_FROM = 100_000  # entries; below this a second process costs more than it saves
BATCH = 65_536  # bodies handed to the passes at a time

# asyncpg wraps it in COPY (...) TO STDOUT, with the arguments written in as literals.
COPY_BODIES = (
    "SELECT body FROM ledger_entry WHERE district = $1 AND seq >= $2 AND seq < $3 ORDER BY seq"
)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_ROW = struct.Struct(">hi")  # fields in the row (always 1 here), length of the body
_TRAILER = b"\xff\xff"  # -1 fields: the end of the stream
_HEADER_REST = struct.Struct(">ii")  # flags, length of the header extension


class CopyRows:
    """Splits a binary COPY stream of one bytea column into the column's values."""

    def __init__(self) -> None:
        self._pending = b""
        self._started = False
        self.ended = False

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._pending + chunk if self._pending else chunk
        pos = 0
        if not self._started:
            if len(data) >= 11 and not data.startswith(_COPY_SIGNATURE):
                raise ChainBroken("the database sent no binary COPY stream")
            if len(data) < 19:
                self._pending = data
                return []
            _, extension = _HEADER_REST.unpack_from(data, 11)
            if len(data) < 19 + extension:
                self._pending = data
                return []
            pos = 19 + extension
            self._started = True
        rows: list[bytes] = []
        append, unpack, size_of_data = rows.append, _ROW.unpack_from, len(data)
        while pos + 6 <= size_of_data:
            fields, length = unpack(data, pos)
            if fields != 1:
                if fields == -1:  # the trailer
                    self.ended = True
                    pos += 2
                    break
                raise ChainBroken("a stored entry body is missing")
            end = pos + 6 + length
            if end > size_of_data:
                break
            append(data[pos + 6 : end])
            pos = end
        else:
            if data[pos : pos + 2] == _TRAILER:
                self.ended = True
                pos += 2
        self._pending = data[pos:]
        return rows


async def copy_bodies(
    connection: Any,
    district: str,
    start: int,
    end: int,
    sink: Callable[[list[bytes]], None],
) -> int:
    """Stream bodies with seq in [start, end) to `sink` in batches; returns how many came."""
    rows, pending, count = CopyRows(), [], 0

    async def received(chunk: bytes) -> None:
        nonlocal pending, count
        pending += rows.feed(bytes(chunk))
        if len(pending) >= BATCH:
            count += len(pending)
            sink(pending)
            pending = []

    await connection.copy_from_query(
        COPY_BODIES, district, start, end, output=received, format="binary"
    )
    if pending:
        count += len(pending)
        sink(pending)
    return count


def _verify_tail(
    connect: Mapping[str, Any],
    district: str,
    start: int,
    end: int,
    sizes: list[int],
    max_minutes: int | None,
) -> tuple[TailSummary, ReplayPass]:
    """Helper process: stream [start, end) over its own connection and verify it detached."""
    import asyncpg  # the helper's own connection; the store's pool stays in the parent

    links, replay = LinkPass(start), ReplayPass(district, max_minutes=max_minutes, start=start)

    async def run() -> None:
        settings = {"application_name": "ledger verify helper"}
        connection = await asyncpg.connect(**connect, server_settings=settings)
        try:
            await copy_bodies(connection, district, start, end, _feeder(links, replay))
        finally:
            await connection.close()

    asyncio.run(run())
    replay.pack()
    return links.tail_summary(sizes), replay


def _feeder(links: LinkPass, replay: ReplayPass) -> Callable[[list[bytes]], None]:
    def feed(bodies: list[bytes]) -> None:
        feed_both(links, replay, bodies)

    return feed


def parent_share(count: int) -> int:
    """The caller's part: a little over half, because the helper first has to start Python."""
    return count * 52 // 100


async def verify_stored(
    store: Any,
    district: str,
    *,
    checkpoints: Sequence[Checkpoint] = (),
    public_keys: KeysArgument = None,
    trusted_key_id: str | None = None,
    compare_balances: bool = True,
    max_minutes: int | None = None,
    workers: int = 2,
) -> VerifyReport:
    """Verify `district`'s chain in `store` (a `TortoiseStore`) as it is now; see the module.
    `compare_balances` checks the stored balances, read in the same snapshot as the size."""
    check_district(district)
    size, stored = await store.size_and_balances(district, balances=compare_balances)
    options: dict[str, Any] = {
        "checkpoints": list(checkpoints),
        "public_keys": public_keys,
        "trusted_key_id": trusted_key_id,
        "stored_balances": stored,
    }
    if store.postgres and workers >= 2 and size >= PARALLEL_FROM:
        joined = await _verify_in_two(store, district, size, checkpoints, max_minutes)
        if joined is not None:
            return combine(district, *joined, **options)
    links, replay = LinkPass(), ReplayPass(district, max_minutes=max_minutes)
    await _stream(store, district, 0, size, _feeder(links, replay))
    return combine(district, links, replay, **options)


async def _stream(
    store: Any, district: str, start: int, end: int, sink: Callable[[list[bytes]], None]
) -> None:
    if store.postgres:
        async with store.client.acquire_connection() as connection:
            await copy_bodies(connection, district, start, end, sink)
        return
    async for rows in store.stream_bodies(district, start=start, end=end):
        sink([body for _, body in rows])


async def _verify_in_two(
    store: Any,
    district: str,
    size: int,
    checkpoints: Sequence[Checkpoint],
    max_minutes: int | None,
) -> tuple[LinkPass, ReplayPass] | None:
    start = parent_share(size)
    sizes = sorted({cp.size for cp in checkpoints})
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        tail: Awaitable[tuple[TailSummary, ReplayPass]] = (
            asyncio.get_running_loop().run_in_executor(
                pool,
                _verify_tail,
                store.connection_parameters(),
                district,
                start,
                size,
                sizes,
                max_minutes,
            )
        )
        links, replay = LinkPass(), ReplayPass(district, max_minutes=max_minutes)
        await _stream(store, district, 0, start, _feeder(links, replay))
        links.own_index()  # while the helper may still be working
        try:
            summary, later = await tail
        except Exception:  # the helper failed: verify everything in this process instead
            return None
        pool.shutdown(wait=True)  # its work is done: let it exit (and count as a child)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if not links.absorb(summary) or not replay.absorb(later):
        return None
    return links, replay
