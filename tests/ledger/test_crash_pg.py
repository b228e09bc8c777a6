"""A process SIGKILLed amid batched appends or a transfer leaves nothing half done."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import pytest

from ledger.storage.database import open_store
from ledger.transfer import (
    LocalServing,
    State,
    credit_id,
    resume_transfers,
    settlement_report,
    transfer_state,
)
from tests.ledger.chain_checks import check_store, verify_with_core

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
