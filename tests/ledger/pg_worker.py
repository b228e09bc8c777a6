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
- `batches SIZE`: batched appends of SIZE entries over A and B until killed.
- `transfer STEP`: one cross-district transfer that stops dead (prints and sleeps) at STEP,
  waiting for SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections.abc import Awaitable, Callable

from ledger.committer import GroupCommitter
from ledger.entries import Entry, Kind
from ledger.errors import IdempotencyFailed, InsufficientMinutes
from ledger.rules import Proposal
from ledger.service import append, append_batch
from ledger.storage.base import ChainStore
from ledger.storage.database import open_store
from ledger.transfer import LocalServing, TransferRequest, run_transfer

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


async def batches(store: ChainStore, name: str, size: int) -> None:
    n = 0
    while True:
        ps = [
            proposal("AB"[i % 2], f"{name}-b{n}-{i}", Kind.DEPOSIT, "issuance", ACCOUNTS[i % 4], 7)
            for i in range(size)
        ]
        entries = await append_batch(store, ps)
        say(batch=n, size=len(entries))
        n += 1


async def transfer(store: ChainStore, name: str, stop_at: str) -> None:
    await append(store, proposal("A", f"{name}-fund", Kind.DEPOSIT, "issuance", "user:e", 100))

    async def crash(step: str) -> None:
        if step == stop_at:
            say(stopped=step)
            await asyncio.sleep(3600)

    request = TransferRequest(
        transfer_id=name,
        home="A",
        serving="B",
        payer="user:e",
        payee="user:h",
        minutes=40,
        actor="worker",
        policy=1,
        deadline_ms=60_000,
    )
    serving = LocalServing(store, clock=lambda: 2_000)
    await run_transfer(store, request, network=lambda d: serving, now_ms=2_000, crash=crash)
    say(done=name)


async def main(mode: str, url: str, name: str, arg: str) -> None:
    async with open_store(url) as store:
        if mode in ("concurrent", "grouped"):
            await concurrent(store, name, int(arg), grouped=mode == "grouped")
        elif mode == "batches":
            await batches(store, name, int(arg))
        elif mode == "transfer":
            await transfer(store, name, arg)
        else:
            raise SystemExit(f"unknown mode {mode}")
    say(finished=name)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
