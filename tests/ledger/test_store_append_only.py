"""The database itself refuses UPDATE and DELETE on the write-once ledger tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from tortoise.context import TortoiseContext
from tortoise.exceptions import OperationalError
from tortoise.migrations.autodetector import MigrationAutodetector

import ledger.migrations
from ledger.entries import Kind
from ledger.errors import InsufficientMinutes
from ledger.rules import Proposal
from ledger.service import append, append_batch
from ledger.storage.database import APP_LABEL, LEDGER_APP, open_store, tortoise_config
from ledger.storage.tortoise_store import TortoiseStore

DEPOSIT = Proposal("A", "d1", Kind.DEPOSIT, "issuance", "user:v", 60, "centre", 1, 1_000)
REDEEM = Proposal("A", "r1", Kind.REDEEM, "user:v", "issuance", 600, "centre", 1, 2_000)

REFUSED = (OperationalError, Exception)


async def _refused(store: TortoiseStore, sql: str) -> None:
    with pytest.raises(REFUSED) as err:
        await store.client.execute_query(sql)
    assert "append-only" in str(err.value)


class TestEntries:
    async def test_update_refused(self, db_store: TortoiseStore) -> None:
        await append(db_store, DEPOSIT)
        await _refused(db_store, "UPDATE ledger_entry SET minutes = 6000")
        (entry,) = await db_store.entries("A")
        assert entry.minutes == 60

    async def test_update_of_body_refused(self, db_store: TortoiseStore) -> None:
        await append(db_store, DEPOSIT)
        await _refused(db_store, "UPDATE ledger_entry SET body = hash")

    async def test_delete_refused(self, db_store: TortoiseStore) -> None:
        await append(db_store, DEPOSIT)
        await _refused(db_store, "DELETE FROM ledger_entry")
        assert (await db_store.head("A")).size == 1

    async def test_delete_refused_inside_a_transaction(self, db_store: TortoiseStore) -> None:
        await append(db_store, DEPOSIT)
        with pytest.raises(REFUSED):
            async with db_store.client._in_transaction() as conn:
                await conn.execute_query("DELETE FROM ledger_entry WHERE seq = 0")
        assert len(await db_store.entries("A")) == 1

    @pytest.mark.postgres
    async def test_truncate_refused_on_postgres(self, pg_url: str) -> None:
        async with open_store(pg_url) as store:
            await append(store, DEPOSIT)
            await _refused(store, "TRUNCATE ledger_entry")
            assert (await store.head("A")).size == 1


class TestFailedIds:
    async def test_update_refused(self, db_store: TortoiseStore) -> None:
        with pytest.raises(InsufficientMinutes):
            await append(db_store, REDEEM)
        await _refused(db_store, "UPDATE ledger_failed_id SET code = 'ok'")

    async def test_delete_refused(self, db_store: TortoiseStore) -> None:
        with pytest.raises(InsufficientMinutes):
            await append(db_store, REDEEM)
        await _refused(db_store, "DELETE FROM ledger_failed_id")
        assert await db_store.failure("A", "r1") is not None


class TestMerkleNodes:
    async def test_update_refused(self, db_store: TortoiseStore) -> None:
        # 16 entries complete the first stored node (level 4).
        ps = [
            Proposal("A", f"d{i}", Kind.DEPOSIT, "issuance", "user:w", 5, "c", 1, 2)
            for i in range(16)
        ]
        await append_batch(db_store, ps)
        await _refused(db_store, "UPDATE ledger_merkle_node SET hash = hash")


class TestMigrations:
    async def test_models_and_migrations_agree(self, sqlite_url: str) -> None:
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(sqlite_url))
            assert ctx.apps is not None
            detector = MigrationAutodetector(ctx.apps, {APP_LABEL: dict(LEDGER_APP)})
            assert await detector.changes() == []

    def test_migration_files(self) -> None:
        folder = Path(ledger.migrations.__file__).parent
        names = sorted(p.stem for p in folder.glob("0*.py"))
        assert names == [
            "0001_initial",
            "0002_append_only",
            "0003_append_if_current",
            "0004_entry_key",
            "0005_read_write_functions",
            "0006_category_index",
        ]
