"""Group commit for single appends: many concurrent callers, one transaction per flush.

A chain serialises its appends (the head row lock) and every transaction ends with a WAL flush,
so one transaction per append caps a chain at one flush per entry. `GroupCommitter.append`
queues the proposal; while a flush is running, new proposals wait, and the next flush takes all
of them, of every district, in one `append_many` transaction: one WAL flush for the group.
Every caller gets its own outcome (its entry, or the `LedgerError` that refused it) only after
that transaction committed, so an acknowledgement still means "durable".

Use one committer per store and process; several processes may each have one, since the
database locks still serialise their flushes per chain.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from ledger.entries import Entry
from ledger.errors import LedgerError
from ledger.rules import Limits, Proposal
from ledger.service import DEFAULT_LIMITS, append_many, check_request
from ledger.storage.base import ChainStore

Waiting = tuple[Proposal, "asyncio.Future[Entry]"]


@dataclass
class GroupCommitter:
    store: ChainStore
    limits: Limits = DEFAULT_LIMITS
    max_batch: int = 2000
    _queue: list[Waiting] = field(default_factory=list)
    _flusher: asyncio.Task[None] | None = None

    async def append(self, proposal: Proposal) -> Entry:
        # A bad district or id would fail the whole group's transaction: refuse it to its
        # caller alone.
        check_request(proposal)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        self._queue.append((proposal, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await self._flush(batch)
        finally:
            self._flusher = None

    async def _flush(self, batch: list[Waiting]) -> None:
        try:
            outcomes = await append_many(self.store, [p for p, _ in batch], limits=self.limits)
        except Exception as error:  # the transaction failed as a whole: tell every caller
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():
                continue  # the caller was cancelled; its entry is committed all the same
            if isinstance(outcome, LedgerError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    async def close(self) -> None:
        """Wait until every queued proposal is flushed."""
        while self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
