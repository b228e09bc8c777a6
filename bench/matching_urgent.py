"""One urgent request against 20,000 helpers: the best k to notify at once.

The market keeps a `HelperPool` (arrays and k-d trees) and rebuilds it when helpers change;
each urgent call then only checks the helpers in the request's circle. Reported: the median
and 95th percentile over 500 requests with a warm pool, and the one-off pool build.

    python bench/matching_urgent.py
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace

from matching_machine import machine_line
from workload import plentiful

from matching import HelperPool, Urgency, urgent

K = 5
CALLS = 500


def main() -> None:
    city = plentiful()
    started = time.perf_counter()
    pool = HelperPool.build(city.helpers, policy=city.policy, one_job=True)
    build_s = time.perf_counter() - started
    requests = [replace(r, urgency=Urgency.EMERGENCY) for r in city.requests[:CALLS]]
    times = []
    found = 0
    for request in requests:
        started = time.perf_counter()
        best = urgent(request, pool, k=K, policy=city.policy, now=city.now)
        times.append((time.perf_counter() - started) * 1000)
        found += bool(best)
    times.sort()
    print(machine_line())
    print(
        f"urgent: k={K} over {len(city.helpers)} helpers, {CALLS} requests: median "
        f"{statistics.median(times):.2f} ms, p95 {times[int(0.95 * len(times))]:.2f} ms, "
        f"max {times[-1]:.2f} ms; {found} found someone"
    )
    print(f"urgent: helper pool build (once per refresh) {build_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
