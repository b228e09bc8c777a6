"""Worker processes for the multi-process concurrency and crash tests.

Run as `python -m tests.ledger.pg_worker MODE URL NAME [ARGS]`. Every acknowledged append is
printed as one JSON line (flushed) before the next one starts, so the parent knows exactly
what was acknowledged when it kills the process.

Modes:
- `concurrent N`: 20 tasks, each N operations on the shared chains A and B: deposits,
  redemptions of shared accounts (often refused), retries of its own ids and of ids that every
  process uses with the same content.
- `grouped N`: the same, but 15 of the tasks append through one `GroupCommitter` per process
  (so several committers keep the same chains, and plain appends move their heads).
- `batches SIZE [PAUSE]`: batched appends of SIZE entries over A and B until killed; with
  PAUSE, batch number PAUSE stops inside its open write transaction (see below).
- `transfer STEP`: one cross-district transfer that stops dead (prints and sleeps) at STEP,
  between two steps ("hold", "answer"), waiting for SIGKILL.
- `transfer-tx STEP`: the same transfer, stopped inside the open write transaction of STEP:
  "hold", "credit", "post", or "void" (the serving side's clock is then past the deadline, so
  it aborts and the hold is voided).

Stopping inside a transaction (`PausingStore`): the writer that writes the chosen entry id has
sent every row of its transaction to PostgreSQL (entries, balances, Merkle nodes, heads) and
not committed; it prints `{"paused": id, "pid": <backend pid>, "xid": <transaction id>}` and
sleeps. A kill after that line lands before COMMIT, by construction.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from ledger.committer import GroupCommitter
from ledger.entries import Entry, Kind
from ledger.errors import IdempotencyFailed, InsufficientMinutes
from ledger.rules import Proposal
from ledger.service import append, append_batch
from ledger.storage.base import ChainStore, Write
from ledger.storage.database import open_store
from ledger.storage.tortoise_store import TortoiseStore
from ledger.transfer import (
    LocalServing,
    TransferRequest,
    credit_id,
    hold_id,
    post_id,
    run_transfer,
    void_id,
)

TASKS = 20
ACCOUNTS = [f"user:s{i}" for i in range(4)]


def say(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def ack(entry: Entry) -> None:
    say(district=entry.district, id=entry.id, seq=entry.seq, hash=entry.hash.hex())


def proposal(
    district: str, pid: str, kind: Kind, debit: str, credit: str, minutes: int
) -> Proposal:
    return Proposal(district, pid, kind, debit, credit, minutes, "worker", 1, 1_000)


Append = Callable[[Proposal], Awaitable[Entry]]


class _PausingWriter:
    def __init__(self, inner: Any, pause_at: str) -> None:
        self._inner = inner
        self._pause_at = pause_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def write(self, write: Write) -> None:
        await self._inner.write(write)
        if any(e.id == self._pause_at for e in write.entries):
            # The writer's own connection, inside its transaction (a test reaches in on purpose).
            conn = self._inner._conn
            (row,) = await conn.execute_query_dict(
                "SELECT pg_backend_pid() AS pid, txid_current_if_assigned()::text AS xid"
            )
            say(paused=self._pause_at, pid=row["pid"], xid=row["xid"], rows=len(write.entries))
            await asyncio.sleep(3600)


class PausingStore(TortoiseStore):
    """The store whose writer stops before COMMIT once it has written the entry `pause_at`."""

    def __init__(self, store: TortoiseStore, pause_at: str) -> None:
        super().__init__(store.client)
        self.pause_at = pause_at

    @asynccontextmanager
    async def writer(self, districts: Sequence[str]) -> AsyncIterator[Any]:
        async with super().writer(districts) as inner:
            yield _PausingWriter(inner, self.pause_at)


async def concurrent_task(append: Append, name: str, task: int, ops: int) -> None:
    rng = random.Random(f"{name}-{task}")
    for i in range(ops):
        district = rng.choice("AB")
        account = rng.choice(ACCOUNTS)
        roll = rng.random()
        if roll < 0.45:
            p = proposal(district, f"{name}-{task}-{i}", Kind.DEPOSIT, "issuance", account, 30)
        elif roll < 0.9:
            minutes = rng.randint(10, 60)
            p = proposal(district, f"{name}-{task}-{i}", Kind.REDEEM, account, "issuance", minutes)
        else:
            # The same id and content from every process and task: written exactly once.
            shared = rng.randrange(10)
            p = proposal(district, f"shared-{shared}", Kind.DEPOSIT, "issuance", ACCOUNTS[0], 5)
        try:
            entry = await append(p)
        except (InsufficientMinutes, IdempotencyFailed):
            continue
        ack(entry)
        if rng.random() < 0.2:
            # A client that lost the acknowledgement retries with the same id.
            again = await append(p)
            assert again.hash == entry.hash
            ack(again)


async def concurrent(store: ChainStore, name: str, ops: int, *, grouped: bool = False) -> None:
    committer = GroupCommitter(store)

    def plain(p: Proposal) -> Awaitable[Entry]:
        return append(store, p)

    def way(task: int) -> Append:
        return committer.append if grouped and task % 4 else plain

    await asyncio.gather(*(concurrent_task(way(t), name, t, ops) for t in range(TASKS)))
    await committer.close()


def batch_proposals(name: str, n: int, size: int) -> list[Proposal]:
    """Batch number `n`: the same ids and content every time it is built."""
    return [
        proposal("AB"[i % 2], f"{name}-b{n}-{i}", Kind.DEPOSIT, "issuance", ACCOUNTS[i % 4], 7)
        for i in range(size)
    ]


async def batches(store: TortoiseStore, name: str, size: int, pause: int | None) -> None:
    writing: ChainStore = store if pause is None else PausingStore(store, f"{name}-b{pause}-0")
    n = 0
    while True:
        entries = await append_batch(writing, batch_proposals(name, n, size))
        say(batch=n, size=len(entries))
        n += 1


DEADLINE_MS = 60_000
FUND = 100


def transfer_request(name: str) -> TransferRequest:
    return TransferRequest(
        transfer_id=name,
        home="A",
        serving="B",
        payer="user:e",
        payee="user:h",
        minutes=40,
        actor="worker",
        policy=1,
        deadline_ms=DEADLINE_MS,
    )


async def fund_payer(store: ChainStore, name: str) -> None:
    await append(store, proposal("A", f"{name}-fund", Kind.DEPOSIT, "issuance", "user:e", FUND))


async def transfer(store: ChainStore, name: str, stop_at: str) -> None:
    await fund_payer(store, name)

    async def crash(step: str) -> None:
        if step == stop_at:
            say(stopped=step)
            await asyncio.sleep(3600)

    serving = LocalServing(store, clock=lambda: 2_000)
    request = transfer_request(name)
    await run_transfer(store, request, network=lambda d: serving, now_ms=2_000, crash=crash)
    say(done=name)


# The entry each step of a transfer writes, in the home (A) or the serving (B) chain.
STEP_ENTRIES: dict[str, tuple[str, Callable[[str], str]]] = {
    "hold": ("A", hold_id),
    "credit": ("B", credit_id),
    "post": ("A", post_id),
    "void": ("A", void_id),
}


async def transfer_in_transaction(store: TortoiseStore, name: str, step: str) -> None:
    await fund_payer(store, name)
    pausing = PausingStore(store, STEP_ENTRIES[step][1](name))
    # Past the deadline the serving side aborts instead of crediting: the hold is voided.
    serving_now = DEADLINE_MS + 1 if step == "void" else 2_000
    serving = LocalServing(pausing, clock=lambda: serving_now)
    request = transfer_request(name)
    await run_transfer(pausing, request, network=lambda d: serving, now_ms=2_000)
    say(done=name)


async def main(mode: str, url: str, name: str, arg: str, *rest: str) -> None:
    async with open_store(url) as store:
        if mode in ("concurrent", "grouped"):
            await concurrent(store, name, int(arg), grouped=mode == "grouped")
        elif mode == "batches":
            await batches(store, name, int(arg), int(rest[0]) if rest else None)
        elif mode == "transfer":
            await transfer(store, name, arg)
        elif mode == "transfer-tx":
            await transfer_in_transaction(store, name, arg)
        else:
            raise SystemExit(f"unknown mode {mode}")
    say(finished=name)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
