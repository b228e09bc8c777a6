"""Matching at city scale: 10,000 open requests x 20,000 helpers, every hard rule on.

End to end means from plain dataclasses to a MatchResult: the helper pool (arrays, k-d trees,
blocks), candidates and rules, the exact solve, and the reasons for every unmatched request.
Wall time depends on what else runs on the machine, so CPU time is printed too, with the load
average in the machine line. Peak memory is measured in a separate run under tracemalloc (it
slows Python down), and the process's maximum resident set size is reported as well.

    python bench/matching_scale.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import collections
import platform
import resource
import statistics
import time
import tracemalloc

from matching_machine import machine_line
from workload import plentiful

from matching import HelperPool, match


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    city = plentiful()
    times, cpu_times, warm_times = [], [], []
    result = None
    for _ in range(args.repeat):
        started, cpu_started = time.perf_counter(), time.process_time()
        result = match(city.requests, city.helpers, policy=city.policy, now=city.now)
        times.append(time.perf_counter() - started)
        cpu_times.append(time.process_time() - cpu_started)
    assert result is not None
    # The market can keep the helper pool between runs; this is the cost without its build.
    pool = HelperPool.build(city.helpers, policy=city.policy)
    for _ in range(args.repeat):
        started = time.perf_counter()
        match(city.requests, pool, policy=city.policy, now=city.now)
        warm_times.append(time.perf_counter() - started)
    tracemalloc.start()
    match(city.requests, city.helpers, policy=city.policy, now=city.now)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reasons = collections.Counter(u.code.value for u in result.unmatched)
    priority_ids = {r.id for r in city.requests if r.priority_groups}
    matched = {a.request_id for a in result.assignments}
    print(machine_line())
    print(f"python {platform.python_version()}")
    print(
        f"scale: {len(city.requests)} requests x {len(city.helpers)} helpers, "
        f"{result.stats.candidate_edges} candidate edges, {result.stats.components} components "
        f"(largest {result.stats.largest_component} requests)"
    )
    print(
        f"scale: end to end median {statistics.median(times):.3f} s, "
        f"min {min(times):.3f} s, max {max(times):.3f} s over {len(times)} runs; "
        f"CPU time median {statistics.median(cpu_times):.3f} s (all threads)"
    )
    print(f"scale: with a prebuilt helper pool, median {statistics.median(warm_times):.3f} s")
    print(
        f"scale: matched {len(matched)} of {len(city.requests)} "
        f"(priority {len(matched & priority_ids)} of {len(priority_ids)}); "
        f"unmatched reasons {dict(reasons.most_common())}"
    )
    print(
        f"scale: peak traced memory {peak / 2**20:.0f} MiB, "
        f"max RSS {rss_kib / 1024:.0f} MiB (process, incl. interpreter and workload)"
    )


if __name__ == "__main__":
    main()
