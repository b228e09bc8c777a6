"""Key material and peers on disk: the generated passphrase and peers.json."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ledger.errors import KeyStoreError
from market.services.ledger import ledger_passphrase
from market.services.ledger_federation import PeersInvalid, load_peers
from market.settings import Settings


def settings_in(tmp_path: Path, passphrase: str = "") -> Settings:
    return Settings(keys_dir=tmp_path / "keys", ledger_key_passphrase=passphrase)


class TestPassphrase:
    def test_configured_passphrase_is_used_and_nothing_written(self, tmp_path: Path) -> None:
        assert ledger_passphrase(settings_in(tmp_path, "from the environment")) == (
            "from the environment"
        )
        assert not (tmp_path / "keys").exists()

    def test_generated_once_private_and_reused(self, tmp_path: Path) -> None:
        settings = settings_in(tmp_path)
        first = ledger_passphrase(settings)
        path = tmp_path / "keys" / "ledger" / "passphrase"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(first) >= 40
        assert ledger_passphrase(settings) == first

    def test_readable_by_others_is_refused(self, tmp_path: Path) -> None:
        settings = settings_in(tmp_path)
        ledger_passphrase(settings)
        (tmp_path / "keys" / "ledger" / "passphrase").chmod(0o644)
        with pytest.raises(KeyStoreError, match="chmod 600"):
            ledger_passphrase(settings)


class TestPeers:
    def write(self, tmp_path: Path, data: object) -> Settings:
        directory = tmp_path / "keys" / "ledger"
        directory.mkdir(parents=True)
        (directory / "peers.json").write_text(json.dumps(data))
        return settings_in(tmp_path)

    def test_no_file_means_no_peers(self, tmp_path: Path) -> None:
        assert load_peers(settings_in(tmp_path)) == {}

    def test_peers_are_read(self, tmp_path: Path) -> None:
        settings = self.write(
            tmp_path,
            {"districts": {"330110": {"url": "http://x/api/v1", "keys": {"a" * 32: "00" * 32}}}},
        )
        peer = load_peers(settings)["330110"]
        assert peer.url == "http://x/api/v1" and peer.keys == {"a" * 32: bytes(32)}

    @pytest.mark.parametrize(
        "data",
        [
            {},
            {"districts": {"bad code!": {"url": "http://x", "keys": {}}}},
            {"districts": {"d": {"url": "ftp://x", "keys": {}}}},
            {"districts": {"d": {"url": "http://x", "keys": {"short": "00"}}}},
            {"districts": {"d": {"url": "http://x", "keys": {"a" * 32: "zz"}}}},
            {"districts": []},
        ],
    )
    def test_malformed_peers_are_refused(self, tmp_path: Path, data: object) -> None:
        with pytest.raises(PeersInvalid):
            load_peers(self.write(tmp_path, data))
