"""Booking throughput over HTTP against a real uvicorn server.

    python bench/booking_http.py --database sqlite
    python bench/booking_http.py --database postgres   # needs PostgreSQL at 127.0.0.1:5432

1. Creation: `--clients` aiohttp clients (one elder account each) post `--requests` requests
   in all to `POST /api/v1/requests` (each with its own Idempotency-Key) with matching off;
   prints requests/s and the p50/p99 latency of one request.
2. Lifecycle: the server restarts with the matching loop on (one round a second); `--clients`
   elders each book, wait for their helper, then confirm, while `--helpers` volunteers poll
   their offers and accept, set off, check in and check out. Prints bookings settled per second
   (each settlement appends one ledger deposit) and the p50/p99 time from request to settled.

Each part gets a fresh database (SQLite files in a temporary directory, or the PostgreSQL
databases `booking_bench_create` and `booking_bench_life`, dropped and recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from tortoise import Tortoise

from market import db
from market.migrate import apply_migrations
from market.models import (
    District,
    DistrictLevel,
    ElderProfile,
    HelperKind,
    HelperProfile,
    Role,
    UserStatus,
    VettingStatus,
)
from market.security.fieldcrypto import Keyring
from market.services import auth

PASSWORD = "bench horse 42 battery"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_BASE = "postgres://postgres@127.0.0.1:5432"
HOME = (30.0, 120.0)


@dataclass(frozen=True)
class Holder:
    """What `auth.create_account` needs of the runtime: the field keyring."""

    crypto: Keyring


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fresh_database(kind: str, workdir: Path, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite://{workdir / f'{name}.sqlite3'}"
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return f"{PG_BASE}/{name}"


async def seed(url: str, keys: Path, *, elders: int, helpers: int) -> tuple[list[str], list[str]]:
    """Accounts (phones) of `elders` elders and `helpers` volunteers around one spot."""
    await apply_migrations(url)
    await Tortoise.init(config=db.tortoise_config(url))
    try:
        holder = Holder(Keyring.open(keys / "fields"))
        east = await District.create(code="east", name="East", level=DistrictLevel.district)
        elder_phones, helper_phones = [], []
        for i in range(elders):
            phone = f"137{i:08d}"
            user = await auth.create_account(
                holder,  # type: ignore[arg-type]
                phone=phone,
                password=PASSWORD,
                name=f"elder {i}",
                role=Role.elder,
                district=east,
                status=UserStatus.active,
            )
            await ElderProfile.create(
                user=user,
                birth_year=1940,
                gender="female",
                latitude=HOME[0] + (i % 10) * 0.0005,
                longitude=HOME[1] + (i // 10) * 0.0005,
            )
            elder_phones.append(phone)
        for i in range(helpers):
            phone = f"136{i:08d}"
            user = await auth.create_account(
                holder,  # type: ignore[arg-type]
                phone=phone,
                password=PASSWORD,
                name=f"volunteer {i}",
                role=Role.volunteer,
                district=east,
                status=UserStatus.active,
            )
            await HelperProfile.create(
                user=user,
                kind=HelperKind.volunteer,
                vetting_status=VettingStatus.approved,
                skills=["cleaning"],
                latitude=HOME[0] + (i % 10) * 0.0005,
                longitude=HOME[1] + (i // 10) * 0.0005,
                capacity_per_day=1000,
            )
            helper_phones.append(phone)
        return elder_phones, helper_phones
    finally:
        await Tortoise.close_connections()


class Server:
    def __init__(self, url: str, data_dir: Path, *, matching: bool) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "ELDERCARE_DATA_DIR": str(data_dir),
            "ELDERCARE_MATCHING_ENABLED": "1" if matching else "0",
            "ELDERCARE_MATCHING_INTERVAL_SECONDS": "1",
        }
        # ELDERCARE_DATA_DIR also names the SQLite file; DATABASE_URL set after it wins.
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "market.app:create_app",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
        )

    async def ready(self, session: aiohttp.ClientSession) -> None:
        for _ in range(300):
            try:
                async with session.get(f"{self.base}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def login(session: aiohttp.ClientSession, base: str, phone: str) -> dict[str, str]:
    body = {"phone": phone, "password": PASSWORD}
    async with session.post(f"{base}/api/v1/auth/login", json=body) as response:
        data = await response.json()
        if response.status != 200:
            raise RuntimeError(f"login failed: {response.status} {data}")
    return {"Authorization": f"Bearer {data['token']}"}


def request_body() -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(minutes=2)
    return {
        "service": "cleaning",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(minutes=40)).isoformat(),
        "duration_minutes": 5,
        "payment": "public",
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def creation(base: str, headers: list[dict[str, str]], total: int) -> dict[str, float]:
    latencies: list[float] = []
    remaining = total
    errors = 0

    async def client(session: aiohttp.ClientSession, auth_headers: dict[str, str]) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            key = {"Idempotency-Key": uuid.uuid4().hex}
            began = time.perf_counter()
            async with session.post(
                f"{base}/api/v1/requests", json=request_body(), headers={**auth_headers, **key}
            ) as response:
                await response.read()
                if response.status != 201:
                    errors += 1
            latencies.append(time.perf_counter() - began)

    connector = aiohttp.TCPConnector(limit=len(headers))
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(session, h) for h in headers))
        wall = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "errors": errors,
        "per_second": len(latencies) / wall,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


async def lifecycle(
    base: str,
    elders: list[dict[str, str]],
    helpers: list[dict[str, str]],
    rounds: int,
    poll: float,
) -> dict[str, float]:
    """Each elder books `rounds` times in a row; helpers serve whatever they are offered."""
    done: list[float] = []
    failed: list[str] = []
    errors: list[str] = []
    stop = asyncio.Event()

    async def elder(session: aiohttp.ClientSession, h: dict[str, str]) -> None:
        for _ in range(rounds):
            began = time.perf_counter()
            async with session.post(
                f"{base}/api/v1/requests", json=request_body(), headers=h
            ) as response:
                booking_id = (await response.json())["bookings"][0]["id"]
            state = "requested"
            while state != "completed":
                await asyncio.sleep(poll)
                async with session.get(f"{base}/api/v1/bookings/{booking_id}", headers=h) as r:
                    body = await r.json()
                if r.status != 200:
                    errors.append(f"GET booking {r.status} {body}")
                    continue
                state = body["booking"]["state"]
                if state in ("escalated", "expired", "cancelled", "no_show"):
                    failed.append(state)
                    break
            if state != "completed":
                continue
            async with session.post(
                f"{base}/api/v1/bookings/{booking_id}/confirm", json={}, headers=h
            ) as response:
                body = await response.json()
            if response.status != 200 or body["booking"]["state"] != "settled":
                errors.append(f"confirm {response.status} {body}")
                continue
            done.append(time.perf_counter() - began)

    async def helper(session: aiohttp.ClientSession, h: dict[str, str]) -> None:
        while not stop.is_set():
            async with session.get(f"{base}/api/v1/offers", headers=h) as response:
                offers = (await response.json())["offers"]
            for offer in offers:
                async with session.post(
                    f"{base}/api/v1/offers/{offer['id']}/accept", json={}, headers=h
                ) as response:
                    if response.status != 200:
                        continue
                path = f"{base}/api/v1/bookings/{offer['booking_id']}"
                # At the elder's door: inside the district's check-in tolerance.
                position = offer["booking"]["location"]
                for step, body in (("start", {}), ("check-in", position), ("check-out", position)):
                    async with session.post(f"{path}/{step}", json=body, headers=h) as response:
                        if response.status != 200:
                            errors.append(f"{step} {response.status} {await response.text()}")
                            break
            await asyncio.sleep(poll)

    connector = aiohttp.TCPConnector(limit=len(elders) + len(helpers))
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        workers = [asyncio.create_task(helper(session, h)) for h in helpers]
        await asyncio.gather(*(elder(session, h) for h in elders))
        wall = time.perf_counter() - began
        stop.set()
        await asyncio.gather(*workers)
    for error in sorted(set(errors))[:10]:
        print("  error:", error[:300])
    return {
        "errors": len(errors),
        "settled": len(done),
        "unserved": len(failed),
        "per_second": len(done) / wall,
        "p50_s": statistics.median(done),
        "p99_s": percentile(done, 0.99),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--helpers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="bookings per elder, lifecycle")
    # Clients poll in place of the websocket; 150 clients polling faster than once a second
    # measure the polling, not the bookings.
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    parser.add_argument("--only", choices=["creation", "lifecycle"], default=None)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        if args.only != "lifecycle":
            await run_creation(args, data_dir)
        if args.only != "creation":
            await run_lifecycle(args, data_dir)


async def run_creation(args: argparse.Namespace, data_dir: Path) -> None:
    url = await fresh_database(args.database, data_dir, "booking_bench_create")
    elder_phones, _ = await seed(url, data_dir / "keys", elders=args.clients, helpers=args.helpers)
    server = Server(url, data_dir, matching=False)
    try:
        async with aiohttp.ClientSession() as session:
            await server.ready(session)
            elders = [await login(session, server.base, p) for p in elder_phones]
        result = await creation(server.base, elders, args.requests)
        print(
            f"[{args.database}] creation, {args.clients} clients: "
            f"{result['requests']:.0f} requests ({result['errors']:.0f} errors), "
            f"{result['per_second']:.0f}/s, p50 {result['p50_ms']:.1f} ms, "
            f"p99 {result['p99_ms']:.1f} ms"
        )
    finally:
        server.stop()


async def run_lifecycle(args: argparse.Namespace, data_dir: Path) -> None:
    # A fresh database: the creation run's open requests would compete for the helpers.
    url = await fresh_database(args.database, data_dir, "booking_bench_life")
    elder_phones, helper_phones = await seed(
        url, data_dir / "keys", elders=args.clients, helpers=args.helpers
    )
    server = Server(url, data_dir, matching=True)
    try:
        async with aiohttp.ClientSession() as session:
            await server.ready(session)
            elders = [await login(session, server.base, p) for p in elder_phones]
            helpers = [await login(session, server.base, p) for p in helper_phones]
        result = await lifecycle(server.base, elders, helpers, args.rounds, args.poll)
        print(
            f"[{args.database}] lifecycle, {args.clients} elders, {args.helpers} helpers, "
            f"matching every 1 s, polling every {args.poll:g} s: "
            f"{result['settled']:.0f} settled "
            f"({result['unserved']:.0f} unserved), "
            f"{result['per_second']:.1f} settled/s, request to settled p50 "
            f"{result['p50_s']:.1f} s, p99 {result['p99_s']:.1f} s"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
