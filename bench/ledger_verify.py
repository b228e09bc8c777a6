"""Benchmark: verify a 1,000,000-entry district chain from an export file.

Generates a realistic valid history (deposits, redemptions, gifts, donations, pool deposits,
expiries, reversals, cross-district holds posted or voided) straight into an export directory
in a temporary folder, signs a checkpoint over it, then times `verify_export` with two
processes and with one.

    python bench/ledger_verify.py [--entries 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import resource
import statistics
import tempfile
import time
from binascii import hexlify
from pathlib import Path

from ledger.checkpoint import KeyHistory, sign_checkpoint
from ledger.entries import VERSION_TAG, Kind, build_entry, entry_from_bytes
from ledger.export import verify_export, write_export
from ledger.keys import PublicKey, Signer
from ledger.merkle import MerkleIndex

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


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPUs, {model}, Python {platform.python_version()}, load {load:.2f}"


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process and of its finished children (the helper process)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


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


def run(path: Path, runs: int) -> None:
    size_mb = path.stat().st_size / 1e6
    count = int((path.parent / "entries.txt").read_text())
    print(f"export file: {size_mb:.0f} MB, {size_mb * 1e6 / count:.0f} bytes/entry")
    for workers in (2, 1):
        times, parent_cpu, helper_cpu = [], [], []
        for _ in range(runs):
            wall = time.perf_counter()
            parent, helper = cpu_seconds()
            report = verify_export(path, workers=workers)
            times.append(time.perf_counter() - wall)
            parent_after, helper_after = cpu_seconds()
            parent_cpu.append(parent_after - parent)
            helper_cpu.append(helper_after - helper)
            assert report.ok, report.reason
        # On a loaded machine the wall time mostly measures waiting for a core; the CPU time
        # of the busier process is what the wall time would be with a core to itself.
        busiest = statistics.median(max(p, h) for p, h in zip(parent_cpu, helper_cpu, strict=True))
        print(
            f"verify_export, {workers} process(es): wall median {statistics.median(times):.2f} s, "
            f"best {min(times):.2f} s over {runs} runs; CPU parent "
            f"{statistics.median(parent_cpu):.2f} s + helper {statistics.median(helper_cpu):.2f} s"
            f" (busiest process {busiest:.2f} s); {report.chains[0].entries:,} entries: links, "
            "hashes, canonical form, rules, balances, checkpoint root and signature"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="keep the export here and reuse it next time")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        run(prepare(args.dir, args.entries), args.runs)
    else:
        with tempfile.TemporaryDirectory() as directory:
            run(prepare(Path(directory), args.entries), args.runs)
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
