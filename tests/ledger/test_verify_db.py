"""Verifying a chain straight from its database: COPY streaming (PostgreSQL) or pages
(SQLite) into the export's passes, in one process or two, with the same report."""

from __future__ import annotations

import random

import pytest

import ledger.verify_db
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.entries import Kind
from ledger.keys import Signer
from ledger.rules import Proposal
from ledger.service import append_batch, tree_root
from ledger.storage.tortoise_store import TortoiseStore
from ledger.verify import verify_chain
from ledger.verify_db import CopyRows, verify_stored

SIGNER = Signer.generate()


def history(count: int, seed: int = 1) -> list[Proposal]:
    """Deposits, gifts and redemptions between six users, never overdrawn."""
    rnd = random.Random(seed)
    users = [f"user:u{i}" for i in range(6)]
    held = dict.fromkeys(users, 0)
    ps = []
    for n in range(count):
        user, other = rnd.sample(users, 2)
        if held[user] >= 20 and rnd.random() < 0.4:
            to = other if rnd.random() < 0.5 else "issuance"
            kind = Kind.GIFT if to == other else Kind.REDEEM
            held[user] -= 20
            if to == other:
                held[other] += 20
            ps.append(Proposal("A", f"e{n}", kind, user, to, 20, "c", 1, n))
        else:
            held[user] += 30
            ps.append(Proposal("A", f"e{n}", Kind.DEPOSIT, "issuance", user, 30, "c", 1, n))
    return ps


async def filled(store: TortoiseStore, count: int) -> Checkpoint:
    ps = history(count)
    for start in range(0, count, 500):
        await append_batch(store, ps[start : start + 500])
    size = count - 3
    return sign_checkpoint(
        district="A", size=size, root=await tree_root(store, "A", size), at_ms=1, signer=SIGNER
    )


async def tamper(store: TortoiseStore, seq: int) -> None:
    """Change one stored body behind the append-only triggers' back (test only)."""
    where = f"WHERE district = 'A' AND seq = {seq}"
    if store.postgres:
        async with store.client._in_transaction() as conn:
            await conn.execute_script("SET LOCAL session_replication_role = replica")
            await conn.execute_script(
                "UPDATE ledger_entry SET body = convert_to(replace(convert_from(body, 'UTF8'), "
                f"'\"minutes\":', '\"minutes\":1'), 'UTF8') {where}"
            )
        return
    await store.client.execute_script("DROP TRIGGER ledger_entry_no_update")
    await store.client.execute_script(
        "UPDATE ledger_entry SET body = CAST(replace(CAST(body AS TEXT), '\"minutes\":', "
        f"'\"minutes\":1') AS BLOB) {where}"
    )


@pytest.fixture
def two_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split even a small chain between two processes (PostgreSQL)."""
    monkeypatch.setattr(ledger.verify_db, "PARALLEL_FROM", 10)
    monkeypatch.setattr(ledger.verify_db, "BATCH", 37)


class TestVerifyStored:
    async def test_chain_verifies_with_checkpoint_and_balances(
        self, db_store: TortoiseStore
    ) -> None:
        checkpoint = await filled(db_store, 600)
        report = await verify_stored(
            db_store, "A", checkpoints=[checkpoint], public_keys={SIGNER.key_id: SIGNER.public}
        )
        assert report.ok, report.reason
        assert (report.entries, report.checkpoints_verified) == (600, 1)
        assert report.balances == await db_store.balances("A")
        bodies = [b for _, b in await db_store.raw_bodies("A")]
        reference = verify_chain(
            bodies,
            district="A",
            checkpoints=[checkpoint],
            public_keys={SIGNER.key_id: SIGNER.public},
            stored_balances=await db_store.balances("A"),
        )
        assert report == reference

    async def test_two_processes_give_the_same_report(
        self, db_store: TortoiseStore, two_parts: None
    ) -> None:
        checkpoint = await filled(db_store, 300)
        keys = {SIGNER.key_id: SIGNER.public}
        one = await verify_stored(
            db_store, "A", checkpoints=[checkpoint], public_keys=keys, workers=1
        )
        two = await verify_stored(db_store, "A", checkpoints=[checkpoint], public_keys=keys)
        assert one.ok and one == two

    @pytest.mark.parametrize("seq", [0, 157, 250])
    async def test_altered_body_is_named(
        self, db_store: TortoiseStore, two_parts: None, seq: int
    ) -> None:
        await filled(db_store, 300)
        await tamper(db_store, seq)
        one = await verify_stored(db_store, "A", workers=1)
        two = await verify_stored(db_store, "A")
        assert one.first_bad_seq == seq, one.reason
        assert one == two

    async def test_altered_last_body_shows_in_the_balances(
        self, db_store: TortoiseStore, two_parts: None
    ) -> None:
        await filled(db_store, 300)
        await tamper(db_store, 299)  # nothing links to it and no checkpoint covers it
        report = await verify_stored(db_store, "A")
        assert not report.ok and report.first_bad_seq is None
        assert "stored balance of" in report.reason

    async def test_stored_balance_that_differs_is_reported(self, db_store: TortoiseStore) -> None:
        await filled(db_store, 50)
        await db_store.client.execute_script(
            "UPDATE ledger_balance SET minutes = minutes + 1 WHERE account = 'user:u0'"
        )
        report = await verify_stored(db_store, "A")
        assert any("stored balance of user:u0 is" in p.reason for p in report.problems)
        assert (await verify_stored(db_store, "A", compare_balances=False)).ok

    async def test_empty_and_unknown_chains(self, db_store: TortoiseStore) -> None:
        report = await verify_stored(db_store, "nowhere")
        assert report.ok and report.entries == 0


class TestCopyRows:
    def stream(self, bodies: list[bytes], extension: bytes = b"") -> bytes:
        out = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + len(extension).to_bytes(4, "big")
        out += extension
        for body in bodies:
            out += (1).to_bytes(2, "big") + len(body).to_bytes(4, "big") + body
        return out + (-1).to_bytes(2, "big", signed=True)

    @pytest.mark.parametrize("piece", [1, 5, 19, 64, 10_000])
    def test_rows_come_out_whatever_the_chunks(self, piece: int) -> None:
        bodies = [b'{"a":%d}' % n * (n % 7 + 1) for n in range(40)] + [b""]
        data = self.stream(bodies, extension=b"xyz")
        rows, out = CopyRows(), []
        for at in range(0, len(data), piece):
            out += rows.feed(data[at : at + piece])
        assert out == bodies and rows.ended

    def test_not_a_binary_copy_stream(self) -> None:
        with pytest.raises(Exception, match="no binary COPY"):
            CopyRows().feed(b"x" * 40)
