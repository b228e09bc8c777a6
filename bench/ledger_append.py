"""Ledger append throughput on PostgreSQL (fsync on): batched, naive ORM, single acknowledged.

    python bench/ledger_append.py [--url postgres://postgres@127.0.0.1:5432/ledger_bench]
                                  [--entries 200000] [--seconds 5] [--runs 3]

Recreates the database of `--url`, migrates it, then measures, `--runs` times each (fresh
district chains per run, so every run starts from the same state):
1. batched appends (`append_batch`, 1,000 entries per transaction) by 4 concurrent writers,
   one per district chain, through the full append path (rules, idempotency, balances, Merkle
   nodes, head row lock), in 1 and in `--processes` OS processes;
2. the naive one-entry-per-transaction ORM append (Tortoise models, `select_for_update`), for
   the ratio;
3. single acknowledged appends by 4 concurrent clients per district (16 in all), each call
   returning only after its commit: one transaction per append, and through the
   `GroupCommitter` (a group in one statement) with one lane or two, in 1 and in
   `--processes` OS processes (each with its own committer); median and p99 latency;
4. inclusion proofs read from the stored Merkle nodes, on chain R1D1 or on a chain grown to
   `--proof-chain` entries.
Each run prints the load average, the CPU time of every benchmark process and of the server
backends that served it, and the cost of one durable commit measured just before it
(`ledger_common`).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger_common import (
    Runs,
    backends_cpu,
    commit_cost,
    cpu_note,
    load,
    machine,
    own_cpu,
    with_query,
)
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


def _spawned(processes: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))


# -- batched --------------------------------------------------------------------------------


async def _batched_writers(
    url: str, districts: list[str], per_district: int, app: str
) -> tuple[float, float, float, float]:
    async with open_store(with_query(url, maxsize=len(districts), application_name=app)) as store:

        async def writer(district: str) -> None:
            for start in range(0, per_district, BATCH):
                ps = [
                    deposit(district, f"b-{district}-{n}", n)
                    for n in range(start, min(start + BATCH, per_district))
                ]
                await append_batch(store, ps)

        cpu, began = own_cpu(), time.time()
        await asyncio.gather(*(writer(d) for d in districts))
        ended, cpu = time.time(), own_cpu() - cpu
        return began, ended, cpu, await backends_cpu(url, app)


def _batched_process(
    url: str, districts: list[str], per_district: int, start_at: float, app: str
) -> tuple[float, float, float, float]:
    # Every process starts at the same wall-clock moment (or as soon as it has imported
    # everything, if later) and reports when it really began and finished.
    time.sleep(max(0.0, start_at - time.time()))
    return asyncio.run(_batched_writers(url, districts, per_district, app))


async def batched(url: str, total: int, processes: int, run: int) -> tuple[float, str]:
    """Entries/s of `processes` OS processes sharing 4 new district chains between them."""
    per_district = total // len(DISTRICTS)
    districts = [f"R{run}P{processes}{d}" for d in DISTRICTS]
    shares = [districts[i::processes] for i in range(processes)]
    start_at = time.time() + 8.0
    loop = asyncio.get_running_loop()
    with _spawned(processes) as pool:
        spans = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool, _batched_process, url, share, per_district, start_at, f"bench-b{run}-{i}"
                )
                for i, share in enumerate(shares)
            )
        )
    began, ended = min(s[0] for s in spans), max(s[1] for s in spans)
    note = cpu_note([s[2] for s in spans], sum(s[3] for s in spans))
    return per_district * len(DISTRICTS) / (ended - began), f"{note}, wall {ended - began:.2f} s"


# -- naive ORM ------------------------------------------------------------------------------


async def naive_orm(url: str, total: int, run: int) -> tuple[float, str]:
    """One entry per transaction through the ORM: lock head, read balance, insert, update."""
    app = f"bench-n{run}"
    async with open_store(with_query(url, maxsize=8, application_name=app)):

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

        cpu, began = own_cpu(), time.perf_counter()
        await asyncio.gather(*(writer(f"R{run}N{d}") for d in DISTRICTS))
        elapsed, cpu = time.perf_counter() - began, own_cpu() - cpu
        backends = await backends_cpu(url, app)
    return per_district * len(DISTRICTS) / elapsed, cpu_note([cpu], backends)


# -- acknowledged -----------------------------------------------------------------------------


async def _acknowledged_clients(
    url: str, districts: list[str], seconds: float, lanes: int, app: str
) -> tuple[list[float], float, float]:
    """`lanes` 0: one transaction per append; else through a GroupCommitter of that many."""
    latencies: list[float] = []
    grouped = lanes > 0
    async with open_store(with_query(url, maxsize=16, application_name=app)) as store:
        committer = GroupCommitter(store, lanes=max(lanes, 1))
        for district in districts:  # the chains exist before the clock starts
            await committer.append(deposit(district, f"{district}-first", 0))
        cpu = own_cpu()
        deadline = time.perf_counter() + seconds

        async def client(district: str, c: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                p = deposit(district, f"{district}-{c}-{n}", n)
                began = time.perf_counter()
                if grouped:
                    await committer.append(p)
                else:
                    await append(store, p)
                latencies.append(time.perf_counter() - began)
                n += 1

        await asyncio.gather(*(client(d, c) for d in districts for c in range(4)))
        await committer.close()
        cpu = own_cpu() - cpu
        return latencies, cpu, await backends_cpu(url, app)


def _acknowledged_process(
    url: str, districts: list[str], seconds: float, lanes: int, start_at: float, app: str
) -> tuple[list[float], float, float]:
    time.sleep(max(0.0, start_at - time.time()))
    return asyncio.run(_acknowledged_clients(url, districts, seconds, lanes, app))


async def acknowledged(
    url: str, seconds: float, lanes: int, processes: int, run: int
) -> tuple[float, str]:
    """Appends/s per chain for 4 clients per district, the 4 districts shared among
    `processes` OS processes (each with its own committer of `lanes` lanes, or one transaction
    per append with `lanes` 0); the note has median and p99."""
    tag = f"R{run}L{lanes}P{processes}"
    districts = [f"{tag}{d}" for d in DISTRICTS]
    shares = [districts[i::processes] for i in range(processes)]
    start_at = time.time() + 8.0
    loop = asyncio.get_running_loop()
    with _spawned(processes) as pool:
        results = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool,
                    _acknowledged_process,
                    url,
                    share,
                    seconds,
                    lanes,
                    start_at,
                    f"bench-{tag}-{i}",
                )
                for i, share in enumerate(shares)
            )
        )
    latencies = sorted(x for lat, _, _ in results for x in lat)
    per_chain = len(latencies) / seconds / len(DISTRICTS)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    median = statistics.median(latencies)
    note = cpu_note([cpu for _, cpu, _ in results], sum(b for _, _, b in results))
    return per_chain, f"median {median * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms; {note}"


# -- proofs ---------------------------------------------------------------------------------


async def grow(url: str, district: str, size: int) -> None:
    async with open_store(url) as store:
        done = (await store.head(district)).size
        for start in range(done, size, BATCH):
            ps = [deposit(district, f"p-{n}", n) for n in range(start, min(start + BATCH, size))]
            await append_batch(store, ps)


async def proofs(url: str, district: str, count: int, seed: int) -> tuple[float, str]:
    """Median ms of inclusion proofs for random entries (each verified); the note has p99."""
    rng = random.Random(seed)
    async with open_store(url) as store:
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
    p99 = took[int(len(took) * 0.99)] * 1000
    return statistics.median(took) * 1000, f"chain of {size:,}, p99 {p99:.2f} ms"


# -- main -----------------------------------------------------------------------------------


async def measure(runs: Runs, count: int, url: str, figure) -> None:  # type: ignore[no-untyped-def]
    print(runs.label, flush=True)
    for run in range(1, count + 1):
        commit = await commit_cost(url)
        before = load()
        value, note = await figure(run)
        runs.add(value, f"{note}; load {before:.1f} -> {load():.1f}; one commit {commit:.2f} ms")
    print(runs.summary(), flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/ledger_bench")
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--naive", type=int, default=4_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--proof-chain", type=int, default=0, help="grow chain P to this size for the proofs"
    )
    parser.add_argument(
        "--stages", default="batched,naive,acknowledged,proofs", help="comma-separated subset"
    )
    parser.add_argument("--keep", action="store_true", help="do not recreate the database")
    args = parser.parse_args()
    stages = set(args.stages.split(","))
    url, n = args.url, args.runs
    print(f"machine: {machine()}; load {load():.1f}", flush=True)
    if not args.keep:
        await recreate(url)
    summaries: list[Runs] = []
    if "batched" in stages:
        for processes in sorted({1, args.processes}):
            runs = Runs(f"batched append_batch, 4 chains, {BATCH}/tx, {processes} process(es)",
                        "entries/s")  # fmt: skip
            await measure(runs, n, url, lambda r, p=processes: batched(url, args.entries, p, r))
            summaries.append(runs)
    if "naive" in stages:
        runs = Runs("naive ORM append, 1 entry/tx, 4 chains", "entries/s")
        await measure(runs, n, url, lambda r: naive_orm(url, args.naive, r))
        summaries.append(runs)
    if "acknowledged" in stages:
        ways = [(0, 1), (0, args.processes), (1, 1), (2, 1), (1, args.processes)]
        for lanes, processes in dict.fromkeys(ways):
            how = f"GroupCommitter, {lanes} lane(s)" if lanes else "one tx per append"
            runs = Runs(
                f"acknowledged appends ({how}), 4 clients x 4 chains, {processes} process(es)",
                "/s per chain",
            )
            await measure(
                runs, n, url,
                lambda r, lanes=lanes, p=processes: acknowledged(url, args.seconds, lanes, p, r),
            )  # fmt: skip
            summaries.append(runs)
    if "proofs" in stages:
        district = "P" if args.proof_chain else "R1P1D1"
        if args.proof_chain:
            await grow(url, district, args.proof_chain)
        runs = Runs("inclusion proof from PostgreSQL", "ms median")
        await measure(runs, n, url, lambda r: proofs(url, district, 2000, r))
        summaries.append(runs)
    print(f"\nsummary ({machine()}; load {load():.1f}):")
    for runs in summaries:
        print(f"- {runs.summary()}")
    rates = {r.label: r.median for r in summaries}
    batched_best = max((v for k, v in rates.items() if k.startswith("batched")), default=0)
    naive = next((v for k, v in rates.items() if k.startswith("naive")), 0)
    if batched_best and naive:
        print(f"- ratio best batched / naive (medians): {batched_best / naive:,.0f}x")


if __name__ == "__main__":
    asyncio.run(main())
