"""Several OS processes x 20 asyncio tasks appending to the same chains (PostgreSQL, and the
embedded SQLite file too), directly or most of them through a group committer per process."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from ledger.storage.database import open_store
from tests.ledger.chain_checks import check_store, verify_with_core

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 2
OPS_PER_TASK = 10


async def run_worker(url: str, name: str, mode: str = "concurrent") -> list[dict[str, object]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.ledger.pg_worker",
        mode,
        url + "?maxsize=10" if url.startswith("postgres") else url,
        name,
        str(OPS_PER_TASK),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()[-3000:]
    return [json.loads(line) for line in out.decode().splitlines()]


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def shared_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_url" if request.param == "postgres" else "sqlite_url"))


@pytest.mark.parametrize("mode", ["concurrent", "grouped"])
async def test_processes_append_to_shared_chains(shared_url: str, mode: str) -> None:
    workers = (run_worker(shared_url, f"p{i}", mode) for i in range(PROCESSES))
    results = await asyncio.gather(*workers)
    acks = [line for lines in results for line in lines if "id" in line]
    assert all(any("finished" in line for line in lines) for lines in results)
    async with open_store(shared_url) as store:
        chains = await check_store(store)  # links, hashes, balances == replay, none negative
        await verify_with_core(store)
        by_key = {(e.district, e.id): e for chain in chains.values() for e in chain}
        # Every acknowledged append is there, at the acknowledged position, exactly once.
        for a in acks:
            entry = by_key[(str(a["district"]), str(a["id"]))]
            assert (entry.seq, entry.hash.hex()) == (a["seq"], a["hash"])
        ids = [e.id for chain in chains.values() for e in chain]
        assert len(ids) == len(by_key)
        shared = [key for key in by_key if key[1].startswith("shared-")]
        assert len(shared) == len(set(shared)) and shared
        # Redemptions competed for the same accounts: some were refused, and stay refused.
        total = sum(len(chain) for chain in chains.values())
        assert total < PROCESSES * 20 * OPS_PER_TASK
        for account in ("user:s0", "user:s1", "user:s2", "user:s3"):
            for district in ("A", "B"):
                assert await store.balance(district, account) >= 0


@pytest.mark.postgres
async def test_a_new_head_is_created_before_any_head_is_locked(pg_url: str) -> None:
    """A writer of chains A (new) and B must not lock B and then wait to create A: another
    transaction that is creating A and then wants B would deadlock with it."""
    import asyncpg

    from ledger.entries import Kind
    from ledger.rules import Proposal
    from ledger.service import append, append_batch

    def deposit(district: str, pid: str) -> Proposal:
        return Proposal(district, pid, Kind.DEPOSIT, "issuance", "user:a", 5, "t", 1, 1)

    async with open_store(pg_url) as store:
        await append(store, deposit("B", "b0"))
        other = await asyncpg.connect(pg_url.replace("postgres://", "postgresql://", 1))
        try:
            creating = other.transaction()
            await creating.start()  # another writer, half way through creating A
            await other.execute(
                "INSERT INTO ledger_chain (district, size, head) VALUES ('A', 0, $1)", bytes(32)
            )
            writer = asyncio.create_task(
                append_batch(store, [deposit("A", "a1"), deposit("B", "b1")])
            )
            await asyncio.sleep(0.5)  # the writer now waits for A, and must hold nothing
            await other.execute("SET lock_timeout = '3s'")
            await other.execute("SELECT 1 FROM ledger_chain WHERE district = 'B' FOR UPDATE")
            await creating.commit()
            entries = await asyncio.wait_for(writer, 10)
        finally:
            await other.close()
        assert [e.seq for e in entries] == [0, 1]
        await check_store(store)
