"""Fixtures for service tests: a migrated per-test database and the app running on it."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from market.app import create_app
from market.models import AuthToken, District, DistrictLevel, Role, User, UserStatus
from market.security import passwords
from market.services import auth
from market.services.runtime import Runtime
from market.settings import Settings
from tests.market.harness import DatabaseFactory, RunningService, running

PASSWORD = "correct horse 42"


@pytest.fixture(scope="session")
def db_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(
        os.environ.get("DATABASE_URL", "sqlite://:memory:"), tmp_path_factory.mktemp("db")
    )
    asyncio.run(factory.create_template())
    yield factory
    asyncio.run(factory.drop_template())


@pytest_asyncio.fixture
async def database_url(db_factory: DatabaseFactory) -> AsyncIterator[str]:
    url = await db_factory.clone()
    yield url
    await db_factory.drop(url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path, keys_dir=tmp_path / "keys")


@pytest_asyncio.fixture
async def service(settings: Settings) -> AsyncIterator[RunningService]:
    async with running(create_app(settings)) as started:
        yield started


@pytest.fixture
def client(service: RunningService) -> httpx.AsyncClient:
    return service.http


@pytest.fixture
def runtime(service: RunningService) -> Runtime:
    return service.state["runtime"]  # type: ignore[no-any-return]


@dataclass
class Actor:
    """A seeded account and the headers that act as it."""

    user: User
    phone: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class City:
    """Two districts with a street and a community each, and one account per role in `east`."""

    east: District
    east_street: District
    east_community: District
    west: District
    actors: dict[str, Actor]
    west_admin: Actor

    def __getitem__(self, role: str) -> Actor:
        return self.actors[role]


_phone_counter = iter(range(10_000_000))


def next_phone() -> str:
    return f"139{next(_phone_counter):08d}"


@functools.cache
def password_hash() -> str:
    """One scrypt hash per session: the fixtures' accounts share it, so seeding stays fast."""
    return passwords.hash_password(PASSWORD)


async def sign_in(runtime: Runtime, user: User) -> str:
    """A real token for `user`, as `POST /api/v1/auth/login` would issue (tested there)."""
    now = datetime.now(UTC)
    token, claims = runtime.tokens.issue(user.id, user.role.value, now=now, ttl=timedelta(hours=1))
    await AuthToken.create(jti=claims.jti, user=user, issued_at=now, expires_at=claims.expires_at)
    return token


async def make_actor(
    client: httpx.AsyncClient, runtime: Runtime, role: Role, district: District, **extra: Any
) -> Actor:
    from market.models import ElderProfile, HelperKind, HelperProfile, VettingStatus

    phone = next_phone()
    user = await auth.create_account(
        runtime,
        phone=phone,
        password=None,
        name=extra.pop("name", f"{role.value} {phone[-4:]}"),
        role=role,
        district=district,
        status=UserStatus.active,
    )
    user.password_hash = password_hash()
    await user.save(update_fields=["password_hash"])
    if role is Role.elder:
        await ElderProfile.create(
            user=user, birth_year=1940, gender="female", latitude=30.0, longitude=120.0
        )
    if role in (Role.volunteer, Role.provider_staff):
        kind = HelperKind.volunteer if role is Role.volunteer else HelperKind.provider
        await HelperProfile.create(user=user, kind=kind, vetting_status=VettingStatus.approved)
    return Actor(user=user, phone=phone, token=await sign_in(runtime, user))


async def build_city(client: httpx.AsyncClient, runtime: Runtime) -> City:
    east = await District.create(code="east", name="East District", level=DistrictLevel.district)
    street = await District.create(
        code="east-s1", name="First Street", level=DistrictLevel.street, parent=east
    )
    community = await District.create(
        code="east-s1-c1", name="Garden Community", level=DistrictLevel.community, parent=street
    )
    west = await District.create(code="west", name="West District", level=DistrictLevel.district)
    actors = {role.value: await make_actor(client, runtime, role, community) for role in Role}
    actors["centre_admin"] = await make_actor(client, runtime, Role.centre_admin, east)
    west_admin = await make_actor(client, runtime, Role.centre_admin, west)
    return City(east, street, community, west, actors, west_admin)


@pytest_asyncio.fixture
async def city(client: httpx.AsyncClient, runtime: Runtime) -> City:
    return await build_city(client, runtime)
