"""What every ledger benchmark records beside its figures, on a machine shared with others.

A figure's wall time on a loaded 2-core machine mostly measures waiting for a core, so each
figure is printed with the load average when it ran, the CPU time of each process that did
the work (benchmark processes and, for PostgreSQL, the server backends serving them) and the
cost of one durable commit measured just before it. Figures are run several times; the median
is the figure, the runs are printed too.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

TICK = os.sysconf("SC_CLK_TCK")


def machine() -> str:
    model, cores = "unknown CPU", str(os.cpu_count())
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
            if line.startswith("CPU(s):"):
                cores = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return f"{cores} CPUs ({model}), Python {platform.python_version()}, {date}"


def load() -> float:
    return os.getloadavg()[0]


def own_cpu() -> float:
    """CPU seconds (user + system) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    """CPU seconds of this process's finished (waited-for) children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds of any process on this machine (a PostgreSQL backend), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


async def backends_cpu(url: str, application_name: str) -> float:
    """CPU seconds so far of the PostgreSQL backends serving connections that named
    themselves `application_name` (the server runs on this machine)."""
    connection = await asyncpg.connect(plain_url(url))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", application_name
        )
    finally:
        await connection.close()
    return sum(process_cpu(r["pid"]) for r in rows)


def plain_url(url: str) -> str:
    """The URL without its query (Tortoise pool options) for a plain asyncpg connection."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))


def with_query(url: str, **options: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{url.split('?', 1)[0]}?{query}"


async def commit_cost(url: str, count: int = 200) -> float:
    """Median ms of one durable commit (a one-row INSERT, fsync'd COMMIT, one client): the
    floor of any acknowledged append, and how busy the disk and the server are right now."""
    connection = await asyncpg.connect(plain_url(url))
    try:
        await connection.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (n int)")
        took = []
        for n in range(count):
            began = time.perf_counter()
            await connection.execute("INSERT INTO bench_commit_probe VALUES ($1)", n)
            took.append(time.perf_counter() - began)
        await connection.execute("DROP TABLE bench_commit_probe")
    finally:
        await connection.close()
    return statistics.median(took) * 1000


@dataclass
class Runs:
    """One figure measured several times, with what it cost and the conditions of each run."""

    label: str
    unit: str
    values: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, value: float, note: str) -> None:
        self.values.append(value)
        self.notes.append(note)
        print(f"  run {len(self.values)}: {value:,.2f} {self.unit}; {note}", flush=True)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def summary(self) -> str:
        runs = ", ".join(f"{v:,.2f}" for v in self.values)
        return f"{self.label}: median {self.median:,.2f} {self.unit} (runs: {runs})"


def cpu_note(client: Sequence[float], backends: float | None = None) -> str:
    parts = [f"client CPU {' + '.join(f'{c:.2f}' for c in client)} s"]
    if backends is not None:
        parts.append(f"server backends CPU {backends:.2f} s")
    return ", ".join(parts)
