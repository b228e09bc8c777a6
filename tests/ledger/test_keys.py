"""Encrypted district key files: create, load, rotate, refuse."""

import json
from pathlib import Path

import pytest

from ledger.errors import KeyExists, KeyNotFound, KeyStoreError, WrongPassphrase
from ledger.keys import KeyStore, Signer, key_id_of, verify_signature

FAST = 2**10  # scrypt work factor small enough for tests


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys", "correct horse", work_factor=FAST)


class TestCreate:
    def test_returns_the_key_id_of_the_public_key(self, store: KeyStore) -> None:
        key_id = store.create("xuhui")
        [public] = store.public_keys("xuhui")
        assert public.key_id == key_id == key_id_of(public.public)
        assert public.valid_from_size == 0
        assert len(key_id) == 32

    def test_signer_signs_with_the_listed_key(self, store: KeyStore) -> None:
        store.create("xuhui")
        signer = store.signer("xuhui")
        assert verify_signature(store.public_keys("xuhui")[0].public, signer.sign(b"m"), b"m")

    def test_private_key_file_does_not_contain_the_seed_in_clear(
        self, store: KeyStore, tmp_path: Path
    ) -> None:
        key_id = store.create("xuhui")
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            NoEncryption,
            PrivateFormat,
        )

        seed = store.signer("xuhui").private.private_bytes(
            Encoding.Raw, PrivateFormat.Raw, NoEncryption()
        )
        text = (tmp_path / "keys" / "xuhui" / f"{key_id}.key").read_text()
        assert seed.hex() not in text
        assert json.loads(text)["kdf"]["name"] == "scrypt"

    def test_key_file_is_private(self, store: KeyStore, tmp_path: Path) -> None:
        key_id = store.create("xuhui")
        assert (tmp_path / "keys" / "xuhui" / f"{key_id}.key").stat().st_mode & 0o077 == 0

    def test_refuses_a_second_first_key(self, store: KeyStore) -> None:
        store.create("xuhui")
        with pytest.raises(KeyExists):
            store.create("xuhui")

    def test_lists_districts(self, store: KeyStore) -> None:
        store.create("b")
        store.create("a")
        assert store.districts() == ["a", "b"]

    def test_refuses_empty_passphrase(self, tmp_path: Path) -> None:
        with pytest.raises(KeyStoreError, match="passphrase"):
            KeyStore(tmp_path, "")


class TestLoad:
    def test_another_store_instance_decrypts_the_same_key(
        self, store: KeyStore, tmp_path: Path
    ) -> None:
        key_id = store.create("xuhui")
        again = KeyStore(tmp_path / "keys", "correct horse", work_factor=FAST)
        assert again.signer("xuhui").key_id == key_id

    def test_wrong_passphrase(self, store: KeyStore, tmp_path: Path) -> None:
        store.create("xuhui")
        with pytest.raises(WrongPassphrase):
            KeyStore(tmp_path / "keys", "wrong", work_factor=FAST).signer("xuhui")

    def test_key_file_moved_to_another_district_is_refused(
        self, store: KeyStore, tmp_path: Path
    ) -> None:
        a = store.create("a")
        b = store.create("b")
        root = tmp_path / "keys"
        (root / "b" / f"{a}.key").write_bytes((root / "a" / f"{a}.key").read_bytes())
        manifest = json.loads((root / "b" / "keys.json").read_text())
        manifest["active"] = a
        manifest["keys"][0]["key_id"] = a
        (root / "b" / "keys.json").write_text(json.dumps(manifest))
        assert b != a
        with pytest.raises(WrongPassphrase):
            KeyStore(root, "correct horse", work_factor=FAST).signer("b")

    def test_unknown_district(self, store: KeyStore) -> None:
        with pytest.raises(KeyNotFound):
            store.signer("nowhere")

    def test_unknown_key(self, store: KeyStore) -> None:
        store.create("xuhui")
        with pytest.raises(KeyNotFound):
            store.signer("xuhui", "0" * 32)

    def test_corrupt_manifest(self, store: KeyStore, tmp_path: Path) -> None:
        store.create("xuhui")
        (tmp_path / "keys" / "xuhui" / "keys.json").write_text("{")
        with pytest.raises(KeyStoreError, match="cannot read"):
            store.public_keys("xuhui")


class TestRotation:
    def test_prepared_key_is_not_active_yet(self, store: KeyStore) -> None:
        first = store.create("xuhui")
        prepared = store.prepare_rotation("xuhui")
        assert store.active_key_id("xuhui") == first
        assert [k.key_id for k in store.public_keys("xuhui")] == [first]
        assert store.prepare_rotation("xuhui").key_id == prepared.key_id

    def test_activate_needs_a_rotation_naming_the_key(self, store: KeyStore) -> None:
        store.create("xuhui")
        prepared = store.prepare_rotation("xuhui")
        with pytest.raises(KeyStoreError, match="does not name"):
            store.activate(
                "xuhui", prepared.key_id, rotation={"district": "xuhui", "next_key_id": "x"}
            )

    def test_activate_only_the_prepared_key(self, store: KeyStore) -> None:
        store.create("xuhui")
        with pytest.raises(KeyNotFound):
            store.activate("xuhui", Signer.generate().key_id, rotation={})
