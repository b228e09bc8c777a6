"""Group commit for single appends: many concurrent callers, one transaction per flush.

A chain serialises its appends (the head row lock) and every transaction ends with a WAL flush,
so one transaction per append caps a chain at one flush per entry. `GroupCommitter.append`
queues the proposal; while a flush is running, new proposals wait, and the next flush takes all
of them, of every district of its lane (below), in one transaction: one WAL flush for the group.
Every caller gets its own outcome (its entry, or the `LedgerError` that refused it) only after
that transaction committed, so an acknowledgement still means "durable".

On PostgreSQL (`TortoiseStore.direct_appends`) a flush is one statement, one round trip: the
committer keeps each chain's head, Merkle frontier and the balances it has seen, applies the
rules to them (`service.Plan.cached`) and hands the result to `append_if_current`, which
writes it only if every head is still the one the committer saw and no id needs its stored
record. Anything else takes the general path (`service.append_many`: lock, read, write, commit)
and the committer reads its chains again:
- a head that moved (another writer appended): nothing written, the group is redone;
- an id that is already an entry (the unique key refuses it) or an id refused before: the
  stored records decide (idempotent retry, conflict, or the first refusal);
- a proposal that closes another entry (reverse, hold_post, hold_void): it needs that entry;
- a chain the committer has not read yet.
So a committer is fastest as its chains' main writer; other writers only cost it a re-read.

Chains may be shared out among `lanes` (each chain to one lane for good): a lane has its own
queue and connection, and the flushes of different lanes run at the same time, so one group's
commit (its WAL flush) overlaps another lane's work. That pays when a core is free; on a busy
machine more, smaller groups cost more CPU per entry, hence one lane by default.

Use one committer per store and process; several processes may each have one, since the
database locks still serialise their flushes per chain.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from ledger.entries import Entry
from ledger.errors import LedgerError
from ledger.merkle import NodeKey
from ledger.rules import CLOSING, Limits, Proposal
from ledger.service import DEFAULT_LIMITS, Plan, append_many, check_request, valid_accounts
from ledger.storage.base import AccountKey, ChainStore, Conflict, Head, Write
from ledger.storage.nodes import frontier

Waiting = tuple[Proposal, "asyncio.Future[Entry]"]
Outcome = Entry | LedgerError
# Balances kept per committer; past this many accounts it forgets them all and reads again.
MAX_CACHED_BALANCES = 200_000


@dataclass
class _Chain:
    head: Head
    nodes: dict[NodeKey, bytes]  # hashes of nodes.frontier(head.size)


@dataclass
class _Lane:
    """A share of the chains with its own queue, flusher and (on PostgreSQL) connection."""

    queue: list[Waiting] = field(default_factory=list)
    flusher: asyncio.Task[None] | None = None
    session: Any = None  # TortoiseStore.direct_session(), held until close()
    districts: int = 0


@dataclass
class GroupCommitter:
    store: ChainStore
    limits: Limits = DEFAULT_LIMITS
    max_batch: int = 2000
    lanes: int = 1
    _lanes: list[_Lane] = field(default_factory=list)
    _lane_of: dict[str, _Lane] = field(default_factory=dict)
    _chains: dict[str, _Chain] = field(default_factory=dict)
    _balances: dict[AccountKey, int] = field(default_factory=dict)
    _exit: AsyncExitStack = field(default_factory=AsyncExitStack)

    def __post_init__(self) -> None:
        self._lanes = [_Lane() for _ in range(max(1, self.lanes))]

    async def append(self, proposal: Proposal) -> Entry:
        # A bad district or id would fail the whole group's transaction: refuse it to its
        # caller alone.
        check_request(proposal)
        future: asyncio.Future[Entry] = asyncio.get_running_loop().create_future()
        lane = self._lane(proposal.district)
        lane.queue.append((proposal, future))
        if lane.flusher is None:
            lane.flusher = asyncio.create_task(self._drain(lane))
        return await future

    def _lane(self, district: str) -> _Lane:
        """A chain's lane: the one with the fewest chains when it is first seen, for good."""
        lane = self._lane_of.get(district)
        if lane is None:
            lane = min(self._lanes, key=lambda candidate: candidate.districts)
            lane.districts += 1
            self._lane_of[district] = lane
        return lane

    async def _drain(self, lane: _Lane) -> None:
        try:
            while lane.queue:
                batch = lane.queue[: self.max_batch]
                del lane.queue[: self.max_batch]
                await self._flush(lane, batch)
        finally:
            lane.flusher = None

    async def _flush(self, lane: _Lane, batch: list[Waiting]) -> None:
        proposals = [p for p, _ in batch]
        try:
            outcomes = await self._direct(lane, proposals)
            if outcomes is None:
                outcomes = await append_many(self.store, proposals, limits=self.limits)
                self._forget(proposals)
        except Exception as error:  # the transaction failed as a whole: tell every caller
            self._forget(proposals)
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

    def _forget(self, proposals: list[Proposal]) -> None:
        """Drop what the committer knows of these chains: the next flush reads them again."""
        districts = {p.district for p in proposals}
        for district in districts:
            self._chains.pop(district, None)
        for key in [k for k in self._balances if k[0] in districts]:
            del self._balances[key]

    async def _direct(self, lane: _Lane, proposals: list[Proposal]) -> list[Outcome] | None:
        """The group in one statement, or None when it must take the general path."""
        store: Any = self.store
        if not getattr(store, "direct_appends", False):
            return None
        if lane.session is None:
            lane.session = await self._exit.enter_async_context(store.direct_session())
        session = lane.session
        if any(isinstance(p.kind, str) and p.kind in CLOSING for p in proposals):
            return None
        districts = sorted({p.district for p in proposals})
        accounts = valid_accounts(proposals)
        missing = [k for k in accounts if k not in self._balances]
        unknown = [d for d in districts if d not in self._chains]
        if (unknown or missing) and not await self._read(session, unknown, missing):
            return None  # a chain without a head row yet: the general path creates it
        chains = {d: self._chains[d] for d in districts}
        expected = {d: c.head for d, c in chains.items()}
        balances = self._balances
        plan = Plan.cached(
            expected, {d: c.nodes for d, c in chains.items()}, {k: balances[k] for k in accounts}
        )
        outcomes: list[Outcome] = []
        for p in proposals:
            try:
                outcomes.append(plan.apply(p, self.limits))
            except LedgerError as error:
                outcomes.append(error)
        write = plan.to_write()
        try:
            written = await session.append_if_current(expected, write)
        except Conflict:
            written = False
        if not written:
            return None
        self._remember(chains, write)
        return outcomes

    async def _read(self, session: Any, districts: list[str], accounts: list[AccountKey]) -> bool:
        if len(self._balances) + len(accounts) > MAX_CACHED_BALANCES:
            self._balances.clear()
        state = await session.chain_state(districts, accounts)
        self._balances.update(state.balances)
        for district in districts:
            if district not in state.heads:
                return False
            self._chains[district] = _Chain(state.heads[district], state.nodes[district])
        return True

    def _remember(self, chains: dict[str, _Chain], write: Write) -> None:
        """What the chains look like after `write` committed."""
        self._balances.update(write.balances or {})
        leaves: dict[str, dict[NodeKey, bytes]] = {}
        for entry in write.entries:
            leaves.setdefault(entry.district, {})[(0, entry.seq)] = entry.hash
        for district, head in (write.heads or {}).items():
            known = {**chains[district].nodes, **(write.nodes or {}).get(district, {})}
            known.update(leaves.get(district, {}))
            self._chains[district] = _Chain(head, {k: known[k] for k in frontier(head.size)})

    async def close(self) -> None:
        """Wait until every queued proposal is flushed, then give back the held connections."""
        while busy := [lane.flusher for lane in self._lanes if lane.flusher is not None]:
            await asyncio.gather(*busy, return_exceptions=True)
        for lane in self._lanes:
            lane.session = None
        await self._exit.aclose()
