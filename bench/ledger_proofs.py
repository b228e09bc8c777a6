"""Benchmark: inclusion and consistency proofs on a 1,000,000-entry chain via MerkleIndex.

Builds the index once (what the append path maintains incrementally), then times proofs for
random entries and sizes, each checked with the RFC 9162 verifier, plus the "lazy" path a
database store uses: list the needed (level, index) nodes, fetch them, build the proof.

    python bench/ledger_proofs.py [--entries 1000000] [--proofs 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import statistics
import time
from pathlib import Path

from ledger.merkle import (
    MerkleIndex,
    inclusion_nodes,
    inclusion_proof_from,
    verify_consistency,
    verify_inclusion,
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
    load = os.getloadavg()[0]
    return f"{os.cpu_count()} CPUs, {model}, Python {platform.python_version()}, load {load:.2f}"


def summary(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{name}: median {statistics.median(ordered) * 1e3:.3f} ms, "
        f"p99 {p99 * 1e3:.3f} ms, max {ordered[-1] * 1e3:.3f} ms over {len(ordered):,}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=20_000)
    args = parser.parse_args()
    n, rnd = args.entries, random.Random(7)
    print(f"machine: {machine()}")
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    started = time.perf_counter()
    index = MerkleIndex.from_leaves(leaves)
    stored = sum(len(index.level_bytes(level)) for level in range(index.height))
    print(
        f"index of {n:,} leaves built in {time.perf_counter() - started:.2f} s "
        f"({stored / 1e6:.0f} MB of node hashes, {index.height} levels)"
    )
    root = index.root()
    timings = []
    for _ in range(args.proofs):
        i = rnd.randrange(n)
        t = time.perf_counter()
        proof = index.inclusion_proof(i)
        timings.append(time.perf_counter() - t)
        assert verify_inclusion(leaves[i], i, n, proof, root)
    print(summary("inclusion proof, latest size", timings))

    timings = []
    for _ in range(args.proofs):
        size = rnd.randrange(1, n + 1)
        i = rnd.randrange(size)
        t = time.perf_counter()
        index.inclusion_proof(i, size)
        timings.append(time.perf_counter() - t)
    print(summary("inclusion proof, random older size", timings))

    timings = []
    for _ in range(args.proofs):
        i = rnd.randrange(n)
        t = time.perf_counter()
        keys = inclusion_nodes(i, n)
        fetched = {key: index.node(*key) for key in keys}  # stands in for one SELECT ... IN
        inclusion_proof_from(fetched, i, n)
        timings.append(time.perf_counter() - t)
    print(summary("lazy inclusion proof (plan + node lookups, no database)", timings))

    timings = []
    for _ in range(args.proofs // 4):
        old = rnd.randrange(1, n)
        t = time.perf_counter()
        proof = index.consistency_proof(old)
        timings.append(time.perf_counter() - t)
        assert verify_consistency(old, n, index.root(old), root, proof)
    print(summary("consistency proof", timings))
    print(f"machine after: {machine()}")


if __name__ == "__main__":
    main()
