"""Realtime fan-out: many websocket connections, commit-to-delivery delay, memory per connection.

    python bench/realtime_fanout.py                       # 5,000 connections, 1 and 2 processes
    python bench/realtime_fanout.py --connections 500 --subscribers 100 --events 20   # quick

Needs PostgreSQL (`--database-url`, default postgres://postgres@127.0.0.1:5432/postgres as the
admin connection); a fresh database `eldercare_bench_rt_<hex>` is created and dropped per run.

Each run starts uvicorn process(es) serving the app, opens `--connections` clients from this
process (`market.realtime.client.RealtimeClient`, a quarter-thousand connecting at a time), of
which `--subscribers` are centre admins of one district, all subscribed to its admin feed; the
rest are volunteers watching their own (quiet) streams. This process then commits `--events`
events to the admin feed, one transaction every `--interval` seconds, and every subscriber notes
when its client hands it each event (after decoding and de-duplication, as an application would
see it). The delay is that moment minus the moment the commit returned, both read from this
process's clock; the path is commit -> NOTIFY -> the server's LISTEN connection -> one log read
-> fan-out -> websocket -> client. With two processes the connections are split evenly and both
servers listen. A client that is disconnected resumes from its last seq (counted as
`reconnects`; its missed events then arrive late, and count with their delay). A first
connection that gets no `subscribed` within 60 s is closed and tried again, at most twice more
(counted as `connect_retries`).

Memory per connection: the server processes' resident memory (VmRSS) after all connections are
subscribed, minus before any, divided by the connections. CPU per event: the servers' and this
process's CPU time (user + system) from the first commit until every event was delivered,
divided by the events; on a shared machine it says what the fan-out costs when the delays
mostly say how busy the machine was. Before the first commit, `--idle-seconds` of rest give
the CPU share that merely holding the connections takes (heartbeat frames and their answers,
the rights re-read every 3 heartbeats); `server_cpu_ms_per_event_above_idle` subtracts that
share over the fan-out's duration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from tortoise import Tortoise

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market import db  # noqa: E402
from market.migrate import apply_migrations  # noqa: E402
from market.models import AuthToken, District, DistrictLevel, Role, User, UserStatus  # noqa: E402
from market.realtime.client import RealtimeClient  # noqa: E402
from market.realtime.events import Event, admin_stream, event_transaction  # noqa: E402
from market.security.tokens import TokenSigner  # noqa: E402

CONNECT_AT_ONCE = 250
CONNECT_ATTEMPTS = 3


@dataclass
class Reader:
    """One client: notes when each event of the watched stream reaches the caller."""

    client: RealtimeClient
    stream: str
    connect_retries: int
    connects_when_ready: int
    arrivals: dict[int, float] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async for item in self.client:
            if isinstance(item, Event) and item.stream == self.stream:
                self.arrivals[item.seq] = time.time()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def idle_cpu(servers: list[subprocess.Popen[bytes]], seconds: float) -> tuple[float, float]:
    """CPU share (of one core) of the servers and of this process while nothing is published:
    the cost of holding the connections (heartbeats, rights re-reads)."""
    started = time.monotonic()
    server, client = sum(cpu_seconds(p.pid) for p in servers), client_cpu_seconds()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - started
    server = sum(cpu_seconds(p.pid) for p in servers) - server
    return server / elapsed, (client_cpu_seconds() - client) / elapsed


def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def seed(connections: int, subscribers: int, keys_dir: Path) -> tuple[str, list[str]]:
    """One district; `subscribers` centre admins, the rest volunteers; a token each."""
    district = await District.create(code="bench", name="Bench", level=DistrictLevel.district)
    users = [
        User(
            id=uuid.uuid4(),
            role=Role.centre_admin if n < subscribers else Role.volunteer,
            status=UserStatus.active,
            name=f"user {n}",
            district=district,
        )
        for n in range(connections)
    ]
    await User.bulk_create(users, batch_size=1000)
    signer = TokenSigner.from_directory(keys_dir / "tokens")
    now = datetime.now(UTC)
    tokens: list[str] = []
    rows: list[AuthToken] = []
    for user in users:
        token, claims = signer.issue(user.id, user.role.value, now=now, ttl=timedelta(hours=2))
        tokens.append(token)
        rows.append(
            AuthToken(
                jti=claims.jti,
                user_id=user.id,
                issued_at=claims.issued_at,
                expires_at=claims.expires_at,
            )
        )
    await AuthToken.bulk_create(rows, batch_size=1000)
    return admin_stream(district.id), tokens


def start_server(
    database_url: str, data_dir: Path, heartbeat_seconds: int
) -> tuple[subprocess.Popen[bytes], int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "ELDERCARE_DATA_DIR": str(data_dir),
        "ELDERCARE_REALTIME_HEARTBEAT_SECONDS": str(heartbeat_seconds),
        "ELDERCARE_REALTIME_IDLE_TIMEOUT_SECONDS": "600",
        "ELDERCARE_MATCHING_ENABLED": "0",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "market.app:create_app",
            "--fd",
            str(sock.fileno()),
            "--ws",
            "websockets-sansio",
            "--log-level",
            "warning",
            "--backlog",
            "4096",
            # The app's own ping frames keep connections honest; uvicorn's protocol pings
            # would time out on the loaded benchmark client while it opens 5,000 sockets.
            "--ws-ping-interval",
            "0",
        ],
        cwd=ROOT,
        env=env,
        pass_fds=[sock.fileno()],
    )
    sock.close()
    return proc, port


async def wait_healthy(port: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        async with asyncio.timeout(60):
            while True:
                try:
                    if (await http.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)


async def open_reader(port: int, token: str, stream: str, gate: asyncio.Semaphore) -> Reader:
    client = RealtimeClient(
        f"ws://127.0.0.1:{port}/api/v1/ws",
        token,
        open_timeout=60,
        # The server's heartbeat frames keep the connections honest; protocol pings from 5,000
        # clients would add load and time out on this busy client while it opens the rest.
        ping_interval=None,
    )
    retries = 0
    async with gate:
        while True:
            try:
                await client.connect()
                break
            except (TimeoutError, OSError):
                # A loaded machine can hold a subscription past the timeout; counted, retried.
                retries += 1
                if retries == CONNECT_ATTEMPTS:
                    raise
    reader = Reader(client, stream, retries, client.connects)
    reader.task = asyncio.create_task(reader.run())
    return reader


async def close_readers(readers: list[Reader]) -> list[BaseException]:
    """Close every client; returns what ended a reader early (a refused token, say)."""
    await asyncio.gather(*(r.client.close() for r in readers), return_exceptions=True)
    tasks = [r.task for r in readers if r.task is not None]
    ended = await asyncio.gather(*tasks, return_exceptions=True)
    return [outcome for outcome in ended if isinstance(outcome, BaseException)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_once(args: argparse.Namespace, processes: int) -> dict[str, object]:
    name = f"eldercare_bench_rt_{uuid.uuid4().hex[:8]}"
    load_at_start = os.getloadavg()[0]
    admin = await asyncpg.connect(args.database_url.replace("postgres://", "postgresql://", 1))
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(args.database_url, name)
    servers: list[subprocess.Popen[bytes]] = []
    readers: list[Reader] = []
    try:
        await apply_migrations(url)
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp)
            await Tortoise.init(config=db.tortoise_config(url))
            stream, tokens = await seed(args.connections, args.subscribers, data_dir / "keys")
            ports = []
            # One after the other: the first start creates the key files the others read.
            for _ in range(processes):
                proc, port = start_server(url, data_dir, args.heartbeat_seconds)
                servers.append(proc)
                ports.append(port)
                await wait_healthy(port)
            await asyncio.sleep(1.0)
            before = sum(rss_kib(p.pid) for p in servers)
            gate = asyncio.Semaphore(CONNECT_AT_ONCE)
            started = time.monotonic()
            # Subscribers and quiet connections alternate between the processes.
            readers = await asyncio.gather(
                *(
                    open_reader(ports[n % processes], token, stream, gate)
                    for n, token in enumerate(tokens)
                )
            )
            connect_seconds = time.monotonic() - started
            await asyncio.sleep(2.0)
            after = sum(rss_kib(p.pid) for p in servers)
            idle_server, idle_client = await idle_cpu(servers, args.idle_seconds)
            committed: dict[int, float] = {}
            subscribers = readers[: args.subscribers]
            cpu_before = (client_cpu_seconds(), sum(cpu_seconds(p.pid) for p in servers))
            fanout_started = time.monotonic()
            for n in range(args.events):
                async with event_transaction() as tx:
                    (event,) = await tx.publish([stream], "bench.tick", {"n": n})
                committed[event.seq] = time.time()
                await asyncio.sleep(args.interval)
            # Wait for the stragglers (bounded): every subscriber should get every event.
            deadline = time.monotonic() + args.drain_seconds
            while time.monotonic() < deadline and any(  # noqa: ASYNC110 (polling counters)
                len(r.arrivals) < len(committed) for r in subscribers
            ):
                await asyncio.sleep(0.1)
            client_cpu = client_cpu_seconds() - cpu_before[0]
            server_cpu = sum(cpu_seconds(p.pid) for p in servers) - cpu_before[1]
            # What holding the connections would have cost over the same time anyway.
            at_rest = idle_server * (time.monotonic() - fanout_started)
            # Per event: when its last subscriber had it (the whole fan-out's duration).
            by_event = [
                (n, (max(r.arrivals[seq] for r in subscribers) - at) * 1000)
                for n, (seq, at) in enumerate(committed.items())
                if all(seq in r.arrivals for r in subscribers)
            ]
            whole = [ms for _, ms in by_event]
            delays = [
                (reader.arrivals[seq] - at) * 1000
                for reader in subscribers
                for seq, at in committed.items()
                if seq in reader.arrivals
            ]
            expected = len(subscribers) * len(committed)
            load_at_end = os.getloadavg()[0]  # before the teardown's own work
            reconnects = sum(r.client.connects - r.connects_when_ready for r in readers)
            duplicates = sum(r.client.duplicates for r in readers)
            await Tortoise.close_connections()
    finally:
        failures = await close_readers(readers)
        for proc in servers:
            proc.terminate()
        for proc in servers:
            proc.wait(timeout=30)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {
        "processes": processes,
        "load_1min_start_end": [round(load_at_start, 1), round(load_at_end, 1)],
        "heartbeat_s": args.heartbeat_seconds,
        "connections": args.connections,
        "subscribers": args.subscribers,
        "events": args.events,
        "connect_s": round(connect_seconds, 1),
        "rss_before_mib": round(before / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / args.connections, 1),
        # CPU time spent while the events were committed and delivered, per event: what the
        # fan-out costs whatever else the machine runs (the delays depend on that).
        "server_idle_cpu_pct": round(idle_server * 100, 1),
        "client_idle_cpu_pct": round(idle_client * 100, 1),
        "server_cpu_ms_per_event": round(server_cpu / args.events * 1000, 1),
        "server_cpu_ms_per_event_above_idle": round((server_cpu - at_rest) / args.events * 1000, 1),
        "client_cpu_ms_per_event": round(client_cpu / args.events * 1000, 1),
        "delivered": len(delays),
        "expected": expected,
        "connect_retries": sum(r.connect_retries for r in readers),
        "reconnects": reconnects,
        "duplicates_dropped": duplicates,
        "readers_failed": len(failures),
        "last_subscriber_p50_ms": round(statistics.median(whole), 1) if whole else float("nan"),
        # A few late events or a backlog that grew over the run: the p99 alone cannot tell.
        "last_subscriber_max_ms": round(max(whole), 1) if whole else float("nan"),
        # [n, ms] of each event (n: 0 for the first committed) whose last subscriber had it
        # over 1 s after the commit.
        "late_events": [[n, round(ms)] for n, ms in by_event if ms > 1000],
        "p50_ms": round(statistics.median(delays), 1) if delays else float("nan"),
        "p99_ms": round(percentile(delays, 0.99), 1) if delays else float("nan"),
        "max_ms": round(max(delays), 1) if delays else float("nan"),
    }


def machine() -> str:
    model = "unknown"
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    load = os.getloadavg()[0]
    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load:.1f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between commits")
    parser.add_argument("--drain-seconds", type=float, default=60.0)
    parser.add_argument(
        "--idle-seconds", type=float, default=20.0, help="CPU at rest measured this long"
    )
    parser.add_argument(
        "--heartbeat-seconds",
        type=int,
        default=20,
        help="the servers' ELDERCARE_REALTIME_HEARTBEAT_SECONDS (each session also re-reads its "
        "rights every 3 heartbeats); 20 is the service's default",
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    if not 0 < args.subscribers <= args.connections:
        parser.error("need 0 < --subscribers <= --connections")
    # Each connection is a socket here and one in a server (children inherit the limit).
    raise_file_limit(args.connections * 2 + 1024)
    print(machine())
    for processes in args.processes:
        result = await run_once(args, processes)
        print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
