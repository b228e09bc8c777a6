"""Benchmark: verify a 1,000,000-entry district chain from an export file and from PostgreSQL.

Generates a realistic valid history (deposits, redemptions, gifts, donations, pool deposits,
expiries, reversals, cross-district holds posted or voided) straight into an export directory,
signs a checkpoint over it, then times `verify_export` with two processes and with one. With
`--pg URL` it also loads the same chain into that PostgreSQL database (its rows, balances,
Merkle nodes, head and checkpoint, as the append path stores them; kept for later runs) and
times `ledger.verify_db.verify_stored`, which streams the bodies with COPY into the same
passes, with two processes and with one.

    python bench/ledger_verify.py [--entries 1000000] [--runs 3] [--dir DIR] [--pg URL]

Each run prints the load average and the CPU time of the processes that did the work
(`ledger_common`).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import sys
import tempfile
import time
from binascii import hexlify
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncpg
from ledger_common import (
    Runs,
    backends_cpu,
    children_cpu,
    load,
    machine,
    own_cpu,
    plain_url,
    with_query,
)

from ledger.canonical import encode
from ledger.checkpoint import Checkpoint, KeyHistory, sign_checkpoint
from ledger.entries import VERSION_TAG, Kind, build_entry, entry_from_bytes
from ledger.export import read_export, verify_export, write_export
from ledger.keys import PublicKey, Signer
from ledger.merkle import MerkleIndex
from ledger.rules import CLOSING
from ledger.storage.base import StoredCheckpoint
from ledger.storage.database import open_store
from ledger.storage.nodes import STORED_FROM
from ledger.storage.rows import ENTRY_COLUMNS
from ledger.verify_db import verify_stored

DISTRICT = "xuhui"
TEMPLATE = (
    b'{"actor":"%s","at":%d,"category":%s,"credit":"%s","debit":"%s","district":"'
    + DISTRICT.encode()
    + b'","id":"%s","kind":"%s","meta":{},"minutes":%d,"policy":3,"prev":"%s","ref":%s,'
    b'"seq":%d,"v":1}'
)
CATEGORIES = [b'"meal"', b'"bathing"', b'"cleaning"', b'"escort"', b'"visit"', b"null"]
LEAF = b"\x00" + VERSION_TAG


def generate(count: int, seed: int = 1) -> list[bytes]:
    """A valid history; plain entries are formatted directly (checked by the verifier)."""
    rnd = random.Random(seed)
    users = [f"user:p{i:05d}".encode() for i in range(20_000)]
    balances: dict[bytes, int] = {}
    deposits: list[tuple[bytes, bytes, int]] = []  # (id, user, minutes) not yet reversed
    open_holds: list = []
    bodies: list[bytes] = []
    prev = bytes(32)
    at = 1_700_000_000_000
    for seq in range(count):
        at += rnd.randrange(1, 4000)
        pick = rnd.random()
        user = users[rnd.randrange(len(users))]
        funded = balances.get(user, 0)
        special = None
        if pick < 0.02 and funded >= 30:
            transfer = f"tr-{seq}"
            special = build_entry(
                district=DISTRICT,
                seq=seq,
                prev=prev,
                id=f"{transfer}:hold",
                kind=Kind.HOLD_PENDING,
                debit=user.decode(),
                credit="clearing:minhang",
                minutes=30,
                category="meal",
                ref=transfer,
                actor="system",
                policy=3,
                at_ms=at,
                meta={"transfer": transfer, "counterpart": "minhang"},
            )
            open_holds.append(special)
        elif pick < 0.04 and open_holds:
            hold = open_holds.pop(0)
            post = rnd.random() < 0.9
            special = build_entry(
                district=DISTRICT,
                seq=seq,
                prev=prev,
                id=f"{hold.ref}:{'post' if post else 'void'}",
                kind=Kind.HOLD_POST if post else Kind.HOLD_VOID,
                debit=hold.debit if post else hold.credit,
                credit=hold.credit if post else hold.debit,
                minutes=hold.minutes,
                category="meal",
                ref=hold.id,
                actor="system",
                policy=3,
                at_ms=at,
                meta={"transfer": hold.ref},
            )
        if special is not None:
            body = special.body
            if special.kind != Kind.HOLD_POST:
                balances[special.debit.encode()] = (
                    balances.get(special.debit.encode(), 0) - special.minutes
                )
                balances[special.credit.encode()] = (
                    balances.get(special.credit.encode(), 0) + special.minutes
                )
        else:
            body = plain_entry(rnd, seq, at, prev, user, funded, users, balances, deposits)
        prev = hashlib.sha256(LEAF + body).digest()
        bodies.append(body)
    return bodies


def plain_entry(rnd, seq, at, prev, user, funded, users, balances, deposits) -> bytes:
    pick = rnd.random()
    category = CATEGORIES[rnd.randrange(len(CATEGORIES))]
    ref = b'"b-%d"' % seq
    entry_id = b"e-%d" % seq
    if pick < 0.01 and deposits:
        target_id, target_user, minutes = deposits.pop(rnd.randrange(len(deposits)))
        if balances.get(target_user, 0) >= minutes:
            kind, debit, credit, ref = b"reverse", target_user, b"issuance", b'"%s"' % target_id
        else:
            kind, debit, credit, minutes = b"deposit", b"issuance", user, 60
    elif pick < 0.30 and funded >= 15:
        kind, debit, credit, minutes = b"redeem", user, b"issuance", rnd.randrange(15, funded + 1)
    elif pick < 0.40 and funded >= 10:
        other = users[rnd.randrange(len(users))]
        kind, debit, credit, minutes = (
            (b"gift", user, other, 10) if other != user else (b"donate", user, b"pool", 10)
        )
    elif pick < 0.45 and funded >= 5:
        kind, debit, credit, minutes = b"donate", user, b"pool", 5
    elif pick < 0.48 and balances.get(b"pool", 0) >= 30:
        kind, debit, credit, minutes = b"deposit", b"pool", user, 30
    elif pick < 0.49 and funded >= 1:
        kind, debit, credit, minutes, category = b"expire", user, b"expired", 1, b"null"
    else:
        kind, debit, credit, minutes = (
            b"deposit",
            b"issuance",
            user,
            rnd.choice((30, 45, 60, 90, 120)),
        )
        deposits.append((entry_id, user, minutes))
        if len(deposits) > 500:
            deposits.pop(0)
    balances[debit] = balances.get(debit, 0) - minutes
    balances[credit] = balances.get(credit, 0) + minutes
    return TEMPLATE % (
        b"centre:xuhui",
        at,
        category,
        credit,
        debit,
        entry_id,
        kind,
        minutes,
        hexlify(prev),
        ref,
        seq,
    )


def prepare(directory: Path, count: int) -> Path:
    """Write the export (or reuse one this script wrote before with the same count)."""
    path = directory / f"{DISTRICT}.jsonl"
    marker = directory / "entries.txt"
    if path.exists() and marker.exists() and marker.read_text() == str(count):
        print(f"reusing {path}")
        return path
    started = time.perf_counter()
    bodies = generate(count)
    for body in bodies[:: max(1, len(bodies) // 50)]:
        entry_from_bytes(body)  # spot check: the formatted entries are canonical
    signer = Signer.generate()
    leaves = [hashlib.sha256(LEAF + body).digest() for body in bodies]
    checkpoint = sign_checkpoint(
        district=DISTRICT,
        size=len(bodies),
        root=MerkleIndex.from_leaves(leaves).root(),
        at_ms=1_800_000_000_000,
        signer=signer,
    )
    keys = KeyHistory(DISTRICT, (PublicKey(signer.key_id, signer.public, 0),))
    print(f"generated {len(bodies):,} entries in {time.perf_counter() - started:.1f} s")
    path = write_export(directory, DISTRICT, bodies, checkpoint, keys)
    marker.write_text(str(count))
    return path


def run_file(path: Path, runs: int) -> list[Runs]:
    size_mb = path.stat().st_size / 1e6
    count = int((path.parent / "entries.txt").read_text())
    print(f"export file: {size_mb:.0f} MB, {size_mb * 1e6 / count:.0f} bytes/entry", flush=True)
    results = []
    for workers in (2, 1):
        figure = Runs(f"verify_export, {count:,} entries, {workers} process(es)", "s wall")
        print(figure.label, flush=True)
        for _ in range(runs):
            before, parent, helper = load(), own_cpu(), children_cpu()
            began = time.perf_counter()
            report = verify_export(path, workers=workers)
            wall = time.perf_counter() - began
            parent, helper = own_cpu() - parent, children_cpu() - helper
            assert report.ok, report.reason
            cpu = f"CPU parent {parent:.2f} s" + (
                f" + helper {helper:.2f} s" if workers > 1 else ""
            )
            figure.add(wall, f"{cpu}; load {before:.1f} -> {load():.1f}")
        print(figure.summary(), flush=True)
        results.append(figure)
    return results


# -- PostgreSQL ---------------------------------------------------------------------------


def stored_rows(bodies: list[bytes]) -> tuple[list[tuple], dict[str, int], list[bytes]]:
    """The ledger_entry rows of these bodies (as `rows.entry_row` gives them), the balances
    they leave and their hashes."""
    rows, balances, hashes = [], {}, []
    for body in bodies:
        b = json.loads(body)
        kind = b["kind"]
        digest = hashlib.sha256(LEAF + body).digest()
        settles = b["ref"] if kind in CLOSING else None
        rows.append((
            b["district"], b["seq"], b["id"], kind, b["debit"], b["credit"], b["minutes"],
            b["category"], b["ref"], b["actor"], b["policy"], b["at"], settles, digest, body,
        ))  # fmt: skip
        hashes.append(digest)
        if kind != Kind.HOLD_POST:
            balances[b["debit"]] = balances.get(b["debit"], 0) - b["minutes"]
            balances[b["credit"]] = balances.get(b["credit"], 0) + b["minutes"]
    return rows, balances, hashes


async def ensure_database(url: str) -> None:
    name = url.split("?", 1)[0].rsplit("/", 1)[1]
    admin = await asyncpg.connect(plain_url(url).rsplit("/", 1)[0] + "/postgres")
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def load_into(url: str, path: Path) -> Checkpoint:
    """Store the export's chain in `url` as the append path would (once; reused later)."""
    await ensure_database(url)
    chain = read_export(path)
    assert chain.checkpoint is not None
    async with open_store(url, migrate=True) as store:
        if (await store.head(DISTRICT)).size == chain.count:
            print(f"reusing the chain of {chain.count:,} entries in the database", flush=True)
            return chain.checkpoint
    started = time.perf_counter()
    rows, balances, hashes = stored_rows(chain.bodies)
    index = MerkleIndex.from_leaves(hashes)
    nodes = [
        (DISTRICT, level, i, index.node(level, i))
        for level in range(STORED_FROM, len(hashes).bit_length())
        for i in range(len(hashes) >> level)
    ]
    connection = await asyncpg.connect(plain_url(url))
    try:
        async with connection.transaction():
            for start in range(0, len(rows), 100_000):
                await connection.copy_records_to_table(
                    "ledger_entry", records=rows[start : start + 100_000], columns=ENTRY_COLUMNS
                )
            await connection.copy_records_to_table(
                "ledger_merkle_node", records=nodes, columns=["district", "level", "idx", "hash"]
            )
            await connection.copy_records_to_table(
                "ledger_balance",
                records=[(DISTRICT, a, v) for a, v in sorted(balances.items())],
                columns=["district", "account", "minutes"],
            )
            await connection.execute(
                "INSERT INTO ledger_chain (district, size, head) VALUES ($1, $2, $3)",
                DISTRICT, len(hashes), hashes[-1],
            )  # fmt: skip
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
    cp = chain.checkpoint
    async with open_store(url) as store:
        await store.add_checkpoint(
            StoredCheckpoint(DISTRICT, cp.size, cp.root, cp.at_ms, encode(cp.to_json()))
        )
    print(f"loaded {len(rows):,} entries into PostgreSQL in {time.perf_counter() - started:.1f} s")
    return cp


async def verify_pg_once(url: str, workers: int, cp: Checkpoint, keys: KeyHistory) -> str:
    app = "bench-verify"
    async with open_store(with_query(url, maxsize=2, application_name=app)) as store:
        await store.head(DISTRICT)  # the pool's connection exists before the clock starts
        backends, parent, helper = await backends_cpu(url, app), own_cpu(), children_cpu()
        began = time.perf_counter()
        report = await verify_stored(
            store, DISTRICT, checkpoints=[cp], public_keys=keys, workers=workers
        )
        wall = time.perf_counter() - began
        parent, helper = own_cpu() - parent, children_cpu() - helper
        backends = await backends_cpu(url, app) - backends
    assert report.ok and report.checkpoints_verified == 1, report.reason
    cpu = f"CPU parent {parent:.2f} s" + (f" + helper {helper:.2f} s" if workers > 1 else "")
    return f"{wall:.3f}|{cpu}, parent's server backend {backends:.2f} s"


def run_pg(url: str, path: Path, runs: int) -> list[Runs]:
    cp = asyncio.run(load_into(url, path))
    keys = read_export(path).keys
    assert keys is not None
    results = []
    for workers in (2, 1):
        figure = Runs(f"verify_stored from PostgreSQL, {cp.size:,} entries, {workers} process(es)",
                      "s wall")  # fmt: skip
        print(figure.label, flush=True)
        for _ in range(runs):
            before = load()
            wall, note = asyncio.run(verify_pg_once(url, workers, cp, keys)).split("|")
            figure.add(float(wall), f"{note}; load {before:.1f} -> {load():.1f}")
        print(figure.summary(), flush=True)
        results.append(figure)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="keep the export here and reuse it next time")
    parser.add_argument("--pg", help="also load the chain into this PostgreSQL database")
    parser.add_argument("--only-pg", action="store_true", help="skip the export-file figures")
    args = parser.parse_args()
    print(f"machine: {machine()}; load {load():.1f}", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        directory = args.dir or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        path = prepare(directory, args.entries)
        results = [] if args.only_pg else run_file(path, args.runs)
        if args.pg:
            results += run_pg(args.pg, path, args.runs)
    print(f"\nsummary ({machine()}; load {load():.1f}):")
    for figure in results:
        print(f"- {figure.summary()}")


if __name__ == "__main__":
    main()
