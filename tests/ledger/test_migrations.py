"""The ledger's migrations move a database that already holds chains: 0004 re-keys
ledger_entry on (district, seq) and keeps every entry, index and append-only trigger, both
ways (down to 0003 and up again), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise.context import TortoiseContext
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

from ledger.entries import Kind
from ledger.rules import Proposal
from ledger.service import append, append_batch
from ledger.storage.database import APP_LABEL, LEDGER_APP, open_store, tortoise_config
from ledger.storage.tortoise_store import TortoiseStore
from tests.ledger.chain_checks import check_store
from tests.ledger.conftest import _admin, database_url, run_in_thread

BEFORE = "0003_append_if_current"
LATEST = "0006_category_index"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'ledger.sqlite3'}"
        return
    name = f"ledger_mig_{os.getpid()}"
    statements = [f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"]
    run_in_thread(_admin([*statements, f"CREATE DATABASE {name}"]))
    yield database_url(name)
    run_in_thread(_admin(statements))


async def migrate_to(url: str, name: str) -> None:
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        executor = MigrationExecutor(ctx.db(), {APP_LABEL: dict(LEDGER_APP)})
        await executor.migrate([MigrationTarget(APP_LABEL, name)])


def p(
    district: str, pid: str, kind: Kind, debit: str, credit: str, minutes: int, **kw: object
) -> Proposal:
    return Proposal(district, pid, kind, debit, credit, minutes, "c", 1, 1, **kw)  # type: ignore[arg-type]


async def history(store: TortoiseStore, tag: str) -> None:
    await append_batch(
        store,
        [
            p(d, f"{tag}d{i}", Kind.DEPOSIT, "issuance", f"user:u{i % 3}", 30)
            for i in range(70)
            for d in "AB"
        ],
    )
    await append(
        store, p("A", f"{tag}rev", Kind.REVERSE, "user:u0", "issuance", 30, ref=f"{tag}d0")
    )


async def key_columns(store: TortoiseStore) -> list[str]:
    if store.postgres:
        rows = await store.client.execute_query_dict(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'ledger_entry'::regclass "
            "AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)"
        )
        return [r["attname"] for r in rows]
    rows = await store.client.execute_query_dict("PRAGMA table_info(ledger_entry)")
    return [r["name"] for r in sorted(rows, key=lambda r: r["pk"]) if r["pk"]]


async def refuses_changes(store: TortoiseStore) -> bool:
    for statement in ("UPDATE ledger_entry SET minutes = 1", "DELETE FROM ledger_entry"):
        try:
            await store.client.execute_query(statement)
        except Exception as error:  # the trigger's refusal, whatever the driver calls it
            assert "append-only" in str(error)
        else:
            return False
    return True


async def stored_bodies(store: TortoiseStore) -> list[tuple[str, int, bytes]]:
    rows = await store.client.execute_query_dict(
        "SELECT district, seq, body FROM ledger_entry ORDER BY district, seq"
    )
    return [(r["district"], int(r["seq"]), bytes(r["body"])) for r in rows]


async def test_rekey_keeps_chains_indexes_and_triggers(empty_url: str) -> None:
    await migrate_to(empty_url, LATEST)
    async with open_store(empty_url) as store:
        await history(store, "old")
        before = await check_store(store)  # links, hashes, roots from stored nodes, balances
        bodies = await stored_bodies(store)
        assert await key_columns(store) == ["district", "seq"]
    await migrate_to(empty_url, BEFORE)  # down: the row key comes back
    async with open_store(empty_url) as store:
        assert await key_columns(store) == ["row"]
        assert await stored_bodies(store) == bodies
        assert await refuses_changes(store)
    await migrate_to(empty_url, LATEST)  # and up again
    async with open_store(empty_url) as store:
        assert await key_columns(store) == ["district", "seq"]
        assert await check_store(store) == before
        assert await refuses_changes(store)
        await history(store, "new")  # appends, the settles index, statements still work
        chains = await check_store(store)
        assert {d: len(c) for d, c in chains.items()} == {"A": 142, "B": 140}
        assert [e.id for e in await store.statement("A", "user:u0", limit=2)] == ["oldd0", "oldd3"]
        with pytest.raises(Exception, match="ledger_entry"):  # (district, seq) is the key
            await store.client.execute_query(
                "INSERT INTO ledger_entry (district, seq, entry_id, kind, debit, credit, minutes, "
                "actor, policy, at_ms, hash, body) SELECT district, seq, 'x', kind, debit, credit, "
                "minutes, actor, policy, at_ms, hash, body FROM ledger_entry WHERE seq = 0"
            )
