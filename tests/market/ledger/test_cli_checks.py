"""`eldercare ledger verify` says what it checked: unsigned chains, pinned first keys, the
minutes ceiling; and the options that make it check more."""

from __future__ import annotations

import json
from pathlib import Path

from market.settings import Settings
from tests.market.ledger.conftest import LedgerCity, fund
from tests.market.ledger.test_cli import eldercare, history


def first_key(out: Path, district: str) -> str:
    return str(json.loads((out / f"{district}.keys.json").read_text())["keys"][0]["key_id"])


async def exported(lcity: LedgerCity, settings: Settings, out: Path, *, signed: bool) -> Path:
    if signed:
        await history(lcity)
    else:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 60)
    result = eldercare(settings, "export", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


class TestSignatureIsReported:
    async def test_export_without_checkpoint_says_not_signed(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        out = await exported(lcity, settings, tmp_path / "x", signed=False)
        assert not (out / "east.checkpoint.json").exists()
        checked = eldercare(settings, "verify", "--file", str(out), "--district", "east")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "east: ok, 1 entries, 0 checkpoints; NOT SIGNED: no checkpoint" in checked.stdout
        assert "no signature was checked" in checked.stdout

    async def test_require_signature_fails_an_unsigned_chain(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        out = await exported(lcity, settings, tmp_path / "x", signed=False)
        checked = eldercare(
            settings, "verify", "--file", str(out), "--district", "east", "--require-signature"
        )
        assert checked.returncode == 1
        assert "east: FAILED (unsigned, --require-signature)" in checked.stdout

    async def test_signed_chain_says_its_first_key_is_not_pinned(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        out = await exported(lcity, settings, tmp_path / "x", signed=True)
        checked = eldercare(settings, "verify", "--file", str(out), "--require-signature")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        key = first_key(out, "east")
        assert f"signed root at size 6 verified (key {key}; first key NOT pinned" in checked.stdout
        assert "stored balances match" in checked.stdout
        assert "minutes below 6000" in checked.stdout


class TestTrustKey:
    async def test_pinned_first_key_is_checked(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        out = await exported(lcity, settings, tmp_path / "x", signed=True)
        east, west = first_key(out, "east"), first_key(out, "west")
        pins = ["--trust-key", f"east={east}", "--trust-key", f"west={west}"]
        checked = eldercare(settings, "verify", "--file", str(out), *pins)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"first key pinned to {east}" in checked.stdout
        assert f"first key pinned to {west}" in checked.stdout

    async def test_another_first_key_fails(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        out = await exported(lcity, settings, tmp_path / "x", signed=True)
        wrong = first_key(out, "west")
        checked = eldercare(settings, "verify", "--file", str(out), "--trust-key", f"east={wrong}")
        assert checked.returncode == 1
        east = first_key(out, "east")
        expected = f"east: FAILED (chain): checkpoint of size 6: first key {east} is not the"
        assert f"{expected} trusted {wrong}" in checked.stdout

    async def test_pinned_key_is_checked_without_a_checkpoint(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        out = await exported(lcity, settings, tmp_path / "x", signed=False)
        wrong = "0" * 32
        checked = eldercare(
            settings, "verify", "--file", str(out), "--district", "east", "--trust-key", wrong
        )
        assert checked.returncode == 1
        assert f"is not the trusted {wrong}" in checked.stdout

    async def test_database_verify_takes_a_pinned_key(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        out = await exported(lcity, settings, tmp_path / "x", signed=True)
        key = first_key(out, "east")
        checked = eldercare(settings, "verify", "--district", "east", "--trust-key", key)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"first key pinned to {key}" in checked.stdout
        wrong = eldercare(settings, "verify", "--district", "east", "--trust-key", "f" * 32)
        assert wrong.returncode == 1 and "east: FAILED" in wrong.stdout

    async def test_bad_pins_are_refused(self, settings: Settings, tmp_path: Path) -> None:
        no_district = eldercare(
            settings, "verify", "--file", str(tmp_path), "--trust-key", "a" * 32
        )
        assert no_district.returncode == 1 and "name the district" in no_district.stderr
        not_a_key = eldercare(settings, "verify", "--trust-key", "east=nope")
        assert not_a_key.returncode == 1 and "is no key id" in not_a_key.stderr
        twice = ["--trust-key", "east=" + "a" * 32, "--trust-key", "east=" + "b" * 32]
        assert "two keys for east" in eldercare(settings, "verify", *twice).stderr


class TestMaxMinutes:
    async def test_files_are_checked_against_the_ceiling(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        out = await exported(lcity, settings, tmp_path / "x", signed=True)
        checked = eldercare(settings, "verify", "--file", str(out), "--max-minutes", "50")
        assert checked.returncode == 1
        assert "east: FAILED (first bad seq 0)" in checked.stdout
        assert "60 minutes is not below the ceiling 50" in checked.stdout

    async def test_database_is_checked_against_the_ceiling(
        self, lcity: LedgerCity, settings: Settings, tmp_path: Path
    ) -> None:
        await history(lcity)
        checked = eldercare(settings, "verify", "--district", "east", "--max-minutes", "45")
        assert checked.returncode == 1
        assert "east: FAILED (first bad seq 0)" in checked.stdout
        assert "minutes below 6000" in eldercare(settings, "verify").stdout

    async def test_ceiling_must_be_positive(self, settings: Settings) -> None:
        checked = eldercare(settings, "verify", "--max-minutes", "0")
        assert checked.returncode == 2 and "not a positive integer" in checked.stderr
