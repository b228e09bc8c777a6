"""A process SIGKILLed amid batched appends or a transfer leaves nothing half done.

Two kinds of kill: at an arbitrary moment or between two steps of a transfer, and inside an
open write transaction. For the latter the worker (`pg_worker.PausingStore`) prints its pause
line only after its transaction has sent every row and before COMMIT; the test confirms from
outside that the worker's backend is `idle in transaction` with a transaction id (it has
written), kills the worker, waits until PostgreSQL has ended that backend (rolling back), then
checks that none of the rows is there, the chains verify, balances equal replay, recovery
completes or voids the transfer, and retries with the same ids change nothing.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import asyncpg
import pytest

from ledger.entries import Entry
from ledger.service import append_batch
from ledger.storage.base import ChainStore
from ledger.storage.database import open_store
from ledger.transfer import (
    LocalServing,
    State,
    credit_id,
    hold_id,
    post_id,
    resume_transfers,
    run_transfer,
    settlement_report,
    transfer_state,
    void_id,
)
from tests.ledger.chain_checks import check_store, verify_with_core
from tests.ledger.pg_worker import FUND, STEP_ENTRIES, batch_proposals, transfer_request

ROOT = Path(__file__).resolve().parents[2]
BATCH = 500


async def start(url: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.ledger.pg_worker",
        args[0],
        url,
        *args[1:],
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_until(proc: asyncio.subprocess.Process, key: str) -> list[dict[str, object]]:
    assert proc.stdout is not None
    lines = []
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        if not raw:
            err = await proc.stderr.read() if proc.stderr else b""
            raise AssertionError(f"worker ended early: {err.decode()[-2000:]}")
        line = json.loads(raw)
        lines.append(line)
        if key in line:
            return lines


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.postgres
@pytest.mark.parametrize("delay", [0.0, 0.027])
async def test_kill_during_batched_appends(pg_url: str, delay: float) -> None:
    proc = await start(pg_url, "batches", "w", str(BATCH))
    acked = await read_until(proc, "batch")
    acked += await read_until(proc, "batch")
    # Kill at an arbitrary moment, most likely inside the next batch's transaction.
    await asyncio.sleep(delay)
    await kill(proc)
    async with open_store(pg_url) as store:
        chains = await check_store(store)
        await verify_with_core(store)
        ids = [e.id for chain in chains.values() for e in chain]
        per_batch: dict[str, int] = {}
        for entry_id in ids:
            batch = entry_id.split("-")[1]
            per_batch[batch] = per_batch.get(batch, 0) + 1
        # Batches are all or nothing, and every acknowledged one is there.
        assert set(per_batch.values()) == {BATCH}
        for line in acked:
            if "batch" in line:
                assert per_batch[f"b{line['batch']}"] == BATCH


@pytest.mark.postgres
@pytest.mark.parametrize("step", ["hold", "answer"])
async def test_kill_during_transfer_then_resume(pg_url: str, step: str) -> None:
    proc = await start(pg_url, "transfer", "t1", step)
    await read_until(proc, "stopped")
    await kill(proc)
    async with open_store(pg_url) as store:
        await check_store(store)
        assert (await transfer_state(store, "A", "t1")).state == State.PENDING
        credited = await store.entry("B", credit_id("t1")) is not None
        assert credited == (step == "answer")
        serving = LocalServing(store, clock=lambda: 3_000)
        (outcome,) = await resume_transfers(store, network=lambda d: serving, now_ms=3_000)
        assert outcome.state == State.POSTED
        await check_store(store)
        await verify_with_core(store)
        report = await settlement_report(store)
        assert report.mirrored and report.open_holds == 0
        assert await store.balance("A", "user:e") == 60
        assert await store.balance("B", "user:h") == 40


@pytest.mark.postgres
async def test_kill_after_hold_then_deadline_voids(pg_url: str) -> None:
    proc = await start(pg_url, "transfer", "t2", "hold")
    await read_until(proc, "stopped")
    await kill(proc)
    async with open_store(pg_url) as store:
        late = 61_000  # past the worker's deadline
        serving = LocalServing(store, clock=lambda: late)
        (outcome,) = await resume_transfers(store, network=lambda d: serving, now_ms=late)
        assert outcome.state == State.VOIDED
        assert await store.balance("A", "user:e") == 100
        assert await store.entry("B", credit_id("t2")) is None
        await check_store(store)
        assert (await settlement_report(store)).mirrored


# ----- kills inside an open write transaction ------------------------------------------------


async def paused_in_transaction(proc: asyncio.subprocess.Process, url: str) -> dict[str, object]:
    """The worker's pause line, once PostgreSQL confirms its backend holds an open
    transaction that has written (a transaction id is assigned only on a first write)."""
    paused = (await read_until(proc, "paused"))[-1]
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT state, backend_xid::text AS xid FROM pg_stat_activity WHERE pid = $1",
            paused["pid"],
        )
        assert row is not None, f"no backend {paused['pid']}"
        assert row["state"] == "idle in transaction"
        assert row["xid"] is not None
        # txid_current_if_assigned() carries the epoch in its high bits; backend_xid does not.
        assert int(row["xid"]) == int(str(paused["xid"])) % 2**32
        invisible = await conn.fetchval(
            "SELECT count(*) FROM ledger_entry WHERE entry_id = $1", paused["paused"]
        )
        assert invisible == 0  # not committed, so no other session sees it
    finally:
        await conn.close()
    return paused


async def kill_and_wait_for_rollback(
    proc: asyncio.subprocess.Process, url: str, pid: object
) -> None:
    await kill(proc)
    # The backend sees its client's socket closed, rolls back and exits.
    conn = await asyncpg.connect(url)
    try:
        for _ in range(1200):
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"backend {pid} still alive after its client was killed")
    finally:
        await conn.close()


async def stored_entries(url: str, pattern: str) -> int:
    """Rows of ledger_entry whose id matches the LIKE `pattern`, read straight from PostgreSQL."""
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM ledger_entry WHERE entry_id LIKE $1", pattern)
        )
    finally:
        await conn.close()


def per_batch(chains: dict[str, list[Entry]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for chain in chains.values():
        for entry in chain:
            batch = entry.id.split("-")[1]
            counts[batch] = counts.get(batch, 0) + 1
    return counts


@pytest.mark.postgres
async def test_kill_inside_a_batch_transaction(pg_url: str) -> None:
    proc = await start(pg_url, "batches", "w", str(BATCH), "2")
    paused = await paused_in_transaction(proc, pg_url)
    assert (paused["paused"], paused["rows"]) == ("w-b2-0", BATCH)
    await kill_and_wait_for_rollback(proc, pg_url, paused["pid"])
    assert await stored_entries(pg_url, "w-b2-%") == 0
    async with open_store(pg_url) as store:
        chains = await check_store(store)  # links, hashes, roots, balances == replay
        await verify_with_core(store)
        assert per_batch(chains) == {"b0": BATCH, "b1": BATCH}
        assert {d: (await store.head(d)).size for d in chains} == {"A": BATCH, "B": BATCH}
        stored = {e.id: e.hash for chain in chains.values() for e in chain}
        # Retries with the same ids: an acknowledged batch returns what is stored, the killed
        # one is written once.
        acked_again = await append_batch(store, batch_proposals("w", 1, BATCH))
        assert [e.hash for e in acked_again] == [stored[e.id] for e in acked_again]
        written = await append_batch(store, batch_proposals("w", 2, BATCH))
        again = await append_batch(store, batch_proposals("w", 2, BATCH))
        assert [e.hash for e in again] == [e.hash for e in written]
        chains = await check_store(store)
        await verify_with_core(store)
        assert per_batch(chains) == {"b0": BATCH, "b1": BATCH, "b2": BATCH}
        # user:s0 gets 7 minutes from every fourth entry of each batch, all in chain A.
        assert await store.balance("A", "user:s0") == 3 * (BATCH // 4) * 7


async def written_steps(store: ChainStore, name: str) -> dict[str, bool]:
    return {
        "hold": await store.entry("A", hold_id(name)) is not None,
        "credit": await store.entry("B", credit_id(name)) is not None,
        "refused": await store.failure("B", credit_id(name)) is not None,
        "closed": await store.entry("A", post_id(name)) is not None
        or await store.entry("A", void_id(name)) is not None,
    }


# What had committed when the worker was killed inside each step's transaction.
COMMITTED_BEFORE = {
    "hold": {"hold": False, "credit": False, "refused": False, "closed": False},
    "credit": {"hold": True, "credit": False, "refused": False, "closed": False},
    "post": {"hold": True, "credit": True, "refused": False, "closed": False},
    "void": {"hold": True, "credit": False, "refused": True, "closed": False},
}


@pytest.mark.postgres
@pytest.mark.parametrize("step", ["hold", "credit", "post", "void"])
async def test_kill_inside_a_transfer_step_then_recover(pg_url: str, step: str) -> None:
    name = f"tx-{step}"
    _, make_id = STEP_ENTRIES[step]
    proc = await start(pg_url, "transfer-tx", name, step)
    paused = await paused_in_transaction(proc, pg_url)
    assert paused["paused"] == make_id(name)
    await kill_and_wait_for_rollback(proc, pg_url, paused["pid"])
    assert await stored_entries(pg_url, make_id(name)) == 0
    request = transfer_request(name)
    async with open_store(pg_url) as store:
        await check_store(store)
        await verify_with_core(store)
        assert await written_steps(store, name) == COMMITTED_BEFORE[step]
        serving = LocalServing(store, clock=lambda: 3_000)

        def network(d: str) -> LocalServing:
            return serving

        outcomes = await resume_transfers(store, network=network, now_ms=3_000)
        if step == "hold":
            # Nothing was held, so there is nothing to recover: the payer still has it all,
            # and the client's retry of the same transfer runs it from the start.
            assert outcomes == []
            assert await store.balance("A", "user:e") == FUND
            outcome = await run_transfer(store, request, network=network, now_ms=3_000)
        else:
            (outcome,) = outcomes
        paid = 0 if step == "void" else request.minutes
        assert outcome.state == (State.VOIDED if step == "void" else State.POSTED)
        chains = await check_store(store)
        await verify_with_core(store)
        report = await settlement_report(store)
        assert report.mirrored and report.open_holds == 0
        assert await store.balance("A", "user:e") == FUND - paid
        assert await store.balance("B", "user:h") == paid
        # Retrying the transfer with the same ids returns the same outcome and writes nothing.
        again = await run_transfer(store, request, network=network, now_ms=3_000)
        assert (again.state, again.closing) == (outcome.state, outcome.closing)
        assert await resume_transfers(store, network=network, now_ms=3_000) == []
        assert await check_store(store) == chains
