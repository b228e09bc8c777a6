"""Ledger storage fixtures: one store per test, the same tests on every backend.

`store` runs each test on the in-memory twin and on a migrated SQLite file; when
`DATABASE_URL` points at PostgreSQL also on PostgreSQL: one database per session, created
and migrated once, emptied before each test and dropped at the end. `pg_url` gives it to tests
that start their own processes.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from ledger.storage.base import ChainStore
from ledger.storage.database import open_store
from ledger.storage.memory import MemoryStore

DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://", "asyncpg://"))
_counter = itertools.count()


def database_url(name: str) -> str:
    """DATABASE_URL with its database name replaced (same server and credentials)."""
    parts = urlsplit(DATABASE_URL)
    scheme = "postgres" if parts.scheme in ("postgresql", "asyncpg") else parts.scheme
    return urlunsplit((scheme, parts.netloc, "/" + name, "", ""))


async def _admin(statements: list[str]) -> None:
    parts = urlsplit(DATABASE_URL)
    conn = await asyncpg.connect(
        urlunsplit(("postgresql", parts.netloc, parts.path or "/postgres", "", ""))
    )
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    async with open_store(url, migrate=True):
        pass


def run_in_thread(coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion on its own loop, even from inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


LEDGER_TABLES = (
    "ledger_entry",
    "ledger_failed_id",
    "ledger_merkle_node",
    "ledger_checkpoint",
    "ledger_balance",
    "ledger_chain",
)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the session, dropped at the end."""
    name = f"ledger_t_{os.getpid()}"
    run_in_thread(
        _admin([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"])
    )
    run_in_thread(_migrate(database_url(name)))
    yield name
    run_in_thread(_admin([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"]))


# The append-only triggers refuse DELETE; the replica role skips triggers, which only a
# superuser may do: test cleanup, never the application. DELETE beats TRUNCATE on tiny tables.
EMPTY_SQL = "SET LOCAL session_replication_role = replica; " + " ".join(
    f"DELETE FROM {table};" for table in LEDGER_TABLES
)


async def _empty(name: str) -> None:
    parts = urlsplit(database_url(name))
    conn = await asyncpg.connect(urlunsplit(("postgresql", parts.netloc, parts.path, "", "")))
    try:
        async with conn.transaction():
            await conn.execute(EMPTY_SQL)
    finally:
        await conn.close()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test (much faster than a new one)."""
    run_in_thread(_empty(pg_database))
    return database_url(pg_database)


@asynccontextmanager
async def _empty_pg_store(pg_database: str) -> AsyncIterator[ChainStore]:
    async with open_store(database_url(pg_database)) as store:
        async with store.client._in_transaction() as conn:
            await conn.execute_script(EMPTY_SQL)
        yield store


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ledger_tpl") / "ledger.sqlite3"
    run_in_thread(_migrate(f"sqlite://{path}"))
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite file of this test's own."""
    path = tmp_path / "ledger.sqlite3"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite://{path}"


BACKENDS = [
    pytest.param("memory"),
    pytest.param("sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ChainStore]:
    backend = request.param
    if backend == "memory":
        yield MemoryStore()
        return
    if backend == "postgres":
        async with _empty_pg_store(request.getfixturevalue("pg_database")) as pg_store:
            yield pg_store
        return
    async with open_store(request.getfixturevalue("sqlite_url")) as tortoise_store:
        yield tortoise_store


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def db_store(request: pytest.FixtureRequest) -> AsyncIterator[ChainStore]:
    """A Tortoise store only (for tests of the database itself)."""
    if request.param == "postgres":
        async with _empty_pg_store(request.getfixturevalue("pg_database")) as pg_store:
            yield pg_store
        return
    async with open_store(request.getfixturevalue("sqlite_url")) as tortoise_store:
        yield tortoise_store
