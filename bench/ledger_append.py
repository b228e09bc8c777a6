"""Ledger append throughput on PostgreSQL (fsync on): batched, naive ORM, single acknowledged.

    python bench/ledger_append.py [--url postgres://postgres@127.0.0.1:5432/ledger_bench]
                                  [--entries 200000] [--seconds 5]

Recreates the `ledger_bench` database, migrates it, then measures
1. batched appends (`append_batch`, 1,000 entries per transaction) by 4 concurrent writers,
   one per district chain, through the full append path (rules, idempotency lookup, balances,
   Merkle nodes, head row lock), in 1 and in `--processes` OS processes (Python builds and
   hashes every entry, so one process is bound to one core);
2. inclusion proofs read from the stored Merkle nodes (one query per proof), on chain D1 or
   on a chain grown to `--proof-chain` entries;
3. the naive one-entry-per-transaction ORM append (Tortoise models, `select_for_update`),
   for the ratio;
4. single acknowledged appends by 4 concurrent clients per district (16 in all), each call
   returning only after its commit: once with one transaction per append, once through the
   `GroupCommitter` (concurrent appends share a commit). Median and p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tortoise.transactions import in_transaction

from ledger.committer import GroupCommitter
from ledger.entries import Kind, build_entry
from ledger.merkle import verify_inclusion
from ledger.rules import Proposal
from ledger.service import append, append_batch, inclusion_proof, tree_root
from ledger.storage.database import open_store
from ledger.storage.models import Balance, ChainHead, LedgerEntry

DISTRICTS = ["D1", "D2", "D3", "D4"]
BATCH = 1000


def deposit(district: str, pid: str, n: int) -> Proposal:
    user = f"user:v{n % 50}"
    return Proposal(district, pid, Kind.DEPOSIT, "issuance", user, 30, "bench", 1, 1_700_000_000)


async def recreate(url: str) -> None:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    conn = await asyncpg.connect(admin)
    try:
        fsync = await conn.fetchval("SHOW fsync")
        sync_commit = await conn.fetchval("SHOW synchronous_commit")
        if fsync != "on" or sync_commit != "on":
            raise SystemExit(f"fsync={fsync} synchronous_commit={sync_commit}: need both on")
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    async with open_store(url, migrate=True):
        pass


async def _batched_writers(url: str, districts: list[str], per_district: int) -> None:
    async with open_store(url + "?maxsize=4") as store:

        async def writer(district: str) -> None:
            for start in range(0, per_district, BATCH):
                ps = [
                    deposit(district, f"b-{district}-{n}", n)
                    for n in range(start, min(start + BATCH, per_district))
                ]
                await append_batch(store, ps)

        await asyncio.gather(*(writer(d) for d in districts))


def _batched_process(
    url: str, districts: list[str], per_district: int, start_at: float
) -> tuple[float, float]:
    # Every process starts at the same wall-clock moment (or as soon as it has imported
    # everything, if later) and reports when it really began and finished.
    time.sleep(max(0.0, start_at - time.time()))
    began = time.time()
    asyncio.run(_batched_writers(url, districts, per_district))
    return began, time.time()


async def batched(url: str, total: int, processes: int) -> float:
    """Entries/s of `processes` OS processes sharing the 4 district chains between them."""
    per_district = total // len(DISTRICTS)
    start_at = time.time() + 8.0
    shares = [DISTRICTS[i::processes] for i in range(processes)]
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        spans = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _batched_process, url, share, per_district, start_at)
                for share in shares
            )
        )
    began = min(b for b, _ in spans)
    return per_district * len(DISTRICTS) / (max(e for _, e in spans) - began)


async def naive_orm(url: str, total: int) -> float:
    """One entry per transaction through the ORM: lock head, read balance, insert, update."""
    async with open_store(url + "?maxsize=8"):

        async def one(district: str, n: int) -> None:
            async with in_transaction():
                head = await ChainHead.filter(district=district).select_for_update().first()
                if head is None:
                    head = await ChainHead.create(district=district, size=0, head=bytes(32))
                p = deposit(district, f"n-{district}-{n}", n)
                e = build_entry(
                    district=district, seq=head.size, prev=head.head, id=p.id, kind=p.kind,
                    debit=p.debit, credit=p.credit, minutes=p.minutes, actor=p.actor,
                    policy=p.policy, at_ms=p.at_ms,
                )  # fmt: skip
                await LedgerEntry.create(
                    district=district, seq=e.seq, entry_id=e.id, kind=str(e.kind),
                    debit=e.debit, credit=e.credit, minutes=e.minutes, actor=e.actor,
                    policy=e.policy, at_ms=e.at_ms, hash=e.hash, body=e.body,
                )  # fmt: skip
                for account, delta in ((e.debit, -e.minutes), (e.credit, e.minutes)):
                    row = await Balance.filter(district=district, account=account).first()
                    if row is None:
                        await Balance.create(district=district, account=account, minutes=delta)
                    else:
                        row.minutes += delta
                        await row.save()
                head.size, head.head = e.seq + 1, e.hash
                await head.save()

        per_district = total // len(DISTRICTS)

        async def writer(district: str) -> None:
            for n in range(per_district):
                await one(district, n)

        began = time.perf_counter()
        await asyncio.gather(*(writer(f"N{d}") for d in DISTRICTS))
        elapsed = time.perf_counter() - began
    return per_district * len(DISTRICTS) / elapsed


async def _acknowledged_clients(
    url: str, districts: list[str], seconds: float, grouped: bool, tag: str
) -> list[float]:
    latencies: list[float] = []
    async with open_store(url + "?maxsize=16") as store:
        committer = GroupCommitter(store)
        deadline = time.perf_counter() + seconds

        async def client(district: str, c: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                p = deposit(f"{tag}{district}", f"{tag}-{district}-{c}-{n}", n)
                began = time.perf_counter()
                if grouped:
                    await committer.append(p)
                else:
                    await append(store, p)
                latencies.append(time.perf_counter() - began)
                n += 1

        await asyncio.gather(*(client(d, c) for d in districts for c in range(4)))
        await committer.close()
    return latencies


def _acknowledged_process(
    url: str, districts: list[str], seconds: float, grouped: bool, tag: str, start_at: float
) -> list[float]:
    time.sleep(max(0.0, start_at - time.time()))
    return asyncio.run(_acknowledged_clients(url, districts, seconds, grouped, tag))


async def acknowledged(
    url: str, seconds: float, grouped: bool, processes: int
) -> tuple[float, float, float]:
    """(appends/s per chain, median ms, p99 ms) for 4 clients per district, the 4 districts
    shared among `processes` OS processes (each with its own committer)."""
    tag = f"{'g' if grouped else 's'}{processes}"
    start_at = time.time() + 8.0
    shares = [DISTRICTS[i::processes] for i in range(processes)]
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        results = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _acknowledged_process, url, share, seconds, grouped, tag, start_at
                )
                for share in shares
            )
        )
    latencies = sorted(x for lat in results for x in lat)
    per_chain = len(latencies) / seconds / len(DISTRICTS)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return per_chain, statistics.median(latencies) * 1000, p99 * 1000


async def proofs(url: str, district: str, count: int, chain: int) -> tuple[int, float, float]:
    """(chain size, median ms, p99 ms) of inclusion proofs for random entries, each verified."""
    rng = random.Random(1)
    async with open_store(url) as store:
        if chain:
            done = (await store.head(district)).size
            for start in range(done, chain, BATCH):
                ps = [
                    deposit(district, f"p-{n}", n) for n in range(start, min(start + BATCH, chain))
                ]
                await append_batch(store, ps)
        size = (await store.head(district)).size
        root = await tree_root(store, district, size)
        took = []
        for _ in range(count):
            seq = rng.randrange(size)
            began = time.perf_counter()
            proof = await inclusion_proof(store, district, seq, size)
            took.append(time.perf_counter() - began)
            (entry,) = await store.entries(district, seq, seq + 1)
            assert verify_inclusion(entry.hash, seq, size, proof, root)
    took.sort()
    return size, statistics.median(took) * 1000, took[int(len(took) * 0.99)] * 1000


async def commit_floor(url: str, count: int = 300) -> float:
    """Median ms of one durable commit of a one-row insert: the floor of any acknowledged append."""
    parts = urlsplit(url)
    conn = await asyncpg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, "", "")))
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (n int)")
        took = []
        for n in range(count):
            began = time.perf_counter()
            await conn.execute("INSERT INTO bench_commit_probe VALUES ($1)", n)
            took.append(time.perf_counter() - began)
        await conn.execute("DROP TABLE bench_commit_probe")
    finally:
        await conn.close()
    return statistics.median(took) * 1000


def machine() -> str:
    model = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    date = time.strftime("%Y-%m-%d", time.gmtime())
    return f"{os.cpu_count()} cores, {model}, {platform.python_version()}, {date}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/ledger_bench")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--naive", type=int, default=4_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--proof-chain", type=int, default=0, help="grow chain P to this size for the proofs"
    )
    parser.add_argument(
        "--stages", default="batched,proofs,naive,acknowledged", help="comma-separated subset"
    )
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    print(f"machine: {machine()}, load {os.getloadavg()[0]:.1f}")
    await recreate(args.url)
    rate = 0.0
    if "batched" in stages:
        for processes in sorted({1, args.processes}):
            measured = await batched(args.url, args.entries, processes)
            rate = max(rate, measured)
            print(
                f"batched append, 4 districts, {BATCH}/tx, {processes} process(es): "
                f"{measured:,.0f} entries/s"
            )
    if "proofs" in stages:
        district = "P" if args.proof_chain else DISTRICTS[0]
        size, median, p99 = await proofs(args.url, district, 2000, args.proof_chain)
        print(
            f"inclusion proof from PostgreSQL, chain of {size:,}: "
            f"median {median:.2f} ms, p99 {p99:.2f} ms"
        )
    if "naive" in stages:
        naive = await naive_orm(args.url, args.naive)
        print(f"naive ORM append, 1 entry/tx, 4 districts: {naive:,.0f} entries/s")
        if rate:
            print(f"ratio best batched / naive: {rate / naive:,.1f}x")
    if "acknowledged" in stages:
        floor = await commit_floor(args.url)
        print(f"one durable commit (INSERT + fsync'd COMMIT, one client): median {floor:.2f} ms")
        for grouped in (False, True):
            for processes in sorted({1, args.processes}):
                per_chain, median, p99 = await acknowledged(
                    args.url, args.seconds, grouped, processes
                )
                label = "group commit" if grouped else "one tx per append"
                print(
                    f"acknowledged appends ({label}), 4 clients x 4 districts, "
                    f"{processes} process(es): {per_chain:,.0f}/s per chain, "
                    f"median {median:.2f} ms, p99 {p99:.2f} ms"
                )
    print(f"load at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    asyncio.run(main())
