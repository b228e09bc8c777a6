"""Realtime fixtures: the app served by a real uvicorn on a free loopback port.

`client` and `runtime` are overridden so that the market fixtures seed through the live server;
`city` is rebuilt with tokens issued directly (no password hashing), the same districts and
roles in a fraction of the time. Websocket tests connect to `live.ws_url`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio
import uvicorn

from market.app import create_app
from market.models import (
    AuthToken,
    District,
    DistrictLevel,
    ElderProfile,
    HelperKind,
    HelperProfile,
    Role,
    UserStatus,
    VettingStatus,
)
from market.services import auth
from market.services.runtime import Runtime
from market.settings import Settings
from tests.market.conftest import Actor, City, next_phone

START_TIMEOUT = 20.0


@dataclass
class Live:
    http: httpx.AsyncClient
    runtime: Runtime
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws"


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def realtime_overrides() -> dict[str, object]:
    """Per-test realtime settings; override this fixture in a test class to change them."""
    return {}


@pytest.fixture
def settings(settings: Settings, realtime_overrides: dict[str, object]) -> Settings:
    chosen: dict[str, object] = {
        "realtime_heartbeat_seconds": 1,
        "realtime_idle_timeout_seconds": 5,
        "realtime_queue_size": 256,
        "realtime_replay_limit": 200,
    }
    return settings.with_overrides(**(chosen | realtime_overrides))


@pytest_asyncio.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    sock = free_socket()
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(START_TIMEOUT):
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped during startup")
            await asyncio.sleep(0.01)
    port = sock.getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            yield Live(http, server.lifespan.state["runtime"], port)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
def client(live: Live) -> httpx.AsyncClient:
    return live.http


@pytest.fixture
def runtime(live: Live) -> Runtime:
    return live.runtime


async def quick_actor(runtime: Runtime, role: Role, district: District) -> Actor:
    phone = next_phone()
    user = await auth.create_account(
        runtime,
        phone=phone,
        password=None,
        name=f"{role.value} {phone[-4:]}",
        role=role,
        district=district,
        status=UserStatus.active,
    )
    if role is Role.elder:
        await ElderProfile.create(
            user=user, birth_year=1940, gender="female", latitude=30.0, longitude=120.0
        )
    if role in (Role.volunteer, Role.provider_staff):
        kind = HelperKind.volunteer if role is Role.volunteer else HelperKind.provider
        await HelperProfile.create(user=user, kind=kind, vetting_status=VettingStatus.approved)
    token, claims = runtime.tokens.issue(
        user.id, role.value, now=datetime.now(UTC), ttl=timedelta(hours=1)
    )
    await AuthToken.create(
        jti=claims.jti, user=user, issued_at=claims.issued_at, expires_at=claims.expires_at
    )
    return Actor(user=user, phone=phone, token=token)


@pytest_asyncio.fixture
async def city(runtime: Runtime) -> City:
    east = await District.create(code="east", name="East District", level=DistrictLevel.district)
    street = await District.create(
        code="east-s1", name="First Street", level=DistrictLevel.street, parent=east
    )
    community = await District.create(
        code="east-s1-c1", name="Garden Community", level=DistrictLevel.community, parent=street
    )
    west = await District.create(code="west", name="West District", level=DistrictLevel.district)
    actors = {role.value: await quick_actor(runtime, role, community) for role in Role}
    actors["centre_admin"] = await quick_actor(runtime, Role.centre_admin, east)
    west_admin = await quick_actor(runtime, Role.centre_admin, west)
    return City(east, street, community, west, actors, west_admin)
