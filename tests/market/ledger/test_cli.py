"""`eldercare ledger export` and `eldercare ledger verify`, run as the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from market.settings import Settings
from tests.market.ledger.conftest import LedgerCity, fund, sign


def eldercare(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ELDERCARE_KEYS_DIR": str(settings.keys_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "market.cli", "ledger", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def history(lcity: LedgerCity) -> None:
    gw = lcity.gateway
    volunteer, west = lcity["volunteer"].user, lcity.west_volunteer.user
    for minutes in (60, 45, 30):
        await fund(gw, volunteer.id, minutes)
    await fund(gw, west.id, 20)
    await gw.donate(donor_id=volunteer.id, minutes=15, entry_id="don-1", actor="t")
    await gw.transfer(
        payer_id=volunteer.id, payee_id=west.id, minutes=40, transfer_id="x1", actor="t"
    )
    await sign(gw)


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


class TestExportAndVerify:
    async def test_round_trip(self, lcity: LedgerCity, settings: Settings, tmp_path: Path) -> None:
        await history(lcity)
        out = tmp_path / "export"
        exported = eldercare(settings, "export", "--out", str(out))
        assert exported.returncode == 0, exported.stderr
        assert sorted(p.name for p in out.iterdir()) == [
            "east.balances.json",
            "east.checkpoint.json",
            "east.jsonl",
            "east.keys.json",
            "west.balances.json",
            "west.checkpoint.json",
            "west.jsonl",
            "west.keys.json",
        ]
        assert len(lines(out / "east.jsonl")) == 6  # 3 deposits, donation, hold, post
        checked = eldercare(settings, "verify", "--file", str(out))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "east: ok, 6 entries" in checked.stdout
        assert "mirrors: ok" in checked.stdout
        one = eldercare(settings, "verify", "--file", str(out / "west.jsonl"))
        assert one.returncode == 0, one.stdout

    async def test_tampered_entry_is_named(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        await history(lcity)
        out = tmp_path / "export"
        assert eldercare(settings, "export", "--out", str(out)).returncode == 0
        path = out / "east.jsonl"
        rows = lines(path)
        rows[1] = rows[1].replace(b'"minutes":45', b'"minutes":95')
        path.write_bytes(b"\n".join(rows) + b"\n")
        checked = eldercare(settings, "verify", "--file", str(out))
        assert checked.returncode == 1
        assert "east: FAILED (first bad seq 1)" in checked.stdout

    async def test_truncated_below_checkpoint_is_detected(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        await history(lcity)
        out = tmp_path / "export"
        assert eldercare(settings, "export", "--out", str(out)).returncode == 0
        path = out / "east.jsonl"
        path.write_bytes(b"\n".join(lines(path)[:-2]) + b"\n")
        checked = eldercare(settings, "verify", "--file", str(out), "--district", "east")
        assert checked.returncode == 1
        assert "east: FAILED" in checked.stdout

    async def test_missing_export_fails(self, settings: Settings, tmp_path: Path) -> None:
        checked = eldercare(settings, "verify", "--file", str(tmp_path / "none"))
        assert checked.returncode == 1
        assert "does not exist" in checked.stdout


class TestVerifyDatabase:
    async def test_database_verifies(self, lcity: LedgerCity, settings: Settings) -> None:
        await history(lcity)
        checked = eldercare(settings, "verify")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "east: ok, 6 entries, 1 checkpoints" in checked.stdout
        assert "mirrors: ok" in checked.stdout
        one = eldercare(settings, "verify", "--district", "west")
        assert one.returncode == 0 and "west: ok" in one.stdout

    async def test_unknown_district_fails(self, lcity: LedgerCity, settings: Settings) -> None:
        checked = eldercare(settings, "verify", "--district", "nowhere")
        assert checked.returncode == 1

    async def test_trusted_checkpoint(
        self,
        client: httpx.AsyncClient,
        lcity: LedgerCity,
        settings: Settings,
        tmp_path: Path,
    ) -> None:
        await history(lcity)
        saved = (await client.get("/api/v1/ledger/districts/east/checkpoint")).json()
        good = tmp_path / "cp.json"
        good.write_text(json.dumps(saved))
        checked = eldercare(settings, "verify", "--district", "east", "--checkpoint", str(good))
        assert checked.returncode == 0, checked.stdout
        assert "2 checkpoints" in checked.stdout
        forged = dict(saved["checkpoint"], root="00" * 32)
        bad = tmp_path / "forged.json"
        bad.write_text(json.dumps(forged))
        checked = eldercare(settings, "verify", "--district", "east", "--checkpoint", str(bad))
        assert checked.returncode == 1
        assert "east: FAILED" in checked.stdout

    async def test_unreadable_checkpoint_file(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        bad = tmp_path / "cp.json"
        bad.write_text("{not json")
        checked = eldercare(settings, "verify", "--checkpoint", str(bad))
        assert checked.returncode != 0
        assert "cannot read" in checked.stderr
