import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.security import SecurityError, keyfiles, passwords, throttle, tokens
from market.security.fieldcrypto import (
    DecryptionFailed,
    Keyring,
    MalformedCiphertext,
    UnknownKey,
)
from market.security.keyfiles import KeyFileError

PHONE = "elder.phone"
ID_NUMBER = "elder.id_number"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class TestKeyringOpen:
    def test_creates_private_directory_and_key_files(self, tmp_path: Path) -> None:
        ring = Keyring.open(tmp_path / "keys")
        assert ring.active_key_id == "k1"
        assert mode(tmp_path / "keys") == 0o700
        assert mode(tmp_path / "keys" / "data" / "k1.key") == 0o600
        assert mode(tmp_path / "keys" / "index" / "k1.key") == 0o600

    def test_reopening_reads_the_same_keys(self, tmp_path: Path) -> None:
        token = Keyring.open(tmp_path / "keys").encrypt("13812345678", purpose=PHONE)
        assert Keyring.open(tmp_path / "keys").decrypt(token, purpose=PHONE) == "13812345678"

    def test_group_readable_key_file_refused(self, tmp_path: Path) -> None:
        Keyring.open(tmp_path / "keys")
        os.chmod(tmp_path / "keys" / "data" / "k1.key", 0o644)
        with pytest.raises(KeyFileError, match="chmod 600"):
            Keyring.open(tmp_path / "keys")

    def test_corrupt_key_file_refused(self, tmp_path: Path) -> None:
        Keyring.open(tmp_path / "keys")
        (tmp_path / "keys" / "data" / "k1.key").write_text("not base64!")
        with pytest.raises(KeyFileError) as info:
            Keyring.open(tmp_path / "keys")
        assert info.value.code == "crypto.key_file"

    def test_short_key_refused(self, tmp_path: Path) -> None:
        Keyring.open(tmp_path / "keys")
        (tmp_path / "keys" / "data" / "k1.key").write_text("c2hvcnQ=")
        with pytest.raises(KeyFileError, match="expected 32"):
            Keyring.open(tmp_path / "keys")

    def test_missing_active_file_refused(self, tmp_path: Path) -> None:
        Keyring.open(tmp_path / "keys")
        (tmp_path / "keys" / "data" / "ACTIVE").unlink()
        with pytest.raises(KeyFileError, match="ACTIVE"):
            Keyring.open(tmp_path / "keys")


class TestEncryptDecrypt:
    def test_round_trip(self) -> None:
        ring = Keyring.ephemeral()
        token = ring.encrypt("110101195001011234", purpose=ID_NUMBER)
        assert token.startswith("v1:k1:")
        assert "110101195001011234" not in token
        assert ring.decrypt(token, purpose=ID_NUMBER) == "110101195001011234"

    @given(plaintext=st.text(max_size=300), purpose=st.sampled_from([PHONE, ID_NUMBER, "x.y"]))
    def test_round_trip_property(self, plaintext: str, purpose: str) -> None:
        ring = Keyring.ephemeral()
        assert ring.decrypt(ring.encrypt(plaintext, purpose=purpose), purpose=purpose) == plaintext

    def test_same_value_encrypts_differently_each_time(self) -> None:
        ring = Keyring.ephemeral()
        assert ring.encrypt("13812345678", purpose=PHONE) != ring.encrypt(
            "13812345678", purpose=PHONE
        )

    def test_moved_to_another_field_fails(self) -> None:
        ring = Keyring.ephemeral()
        token = ring.encrypt("13812345678", purpose=PHONE)
        with pytest.raises(DecryptionFailed) as info:
            ring.decrypt(token, purpose=ID_NUMBER)
        assert info.value.code == "crypto.decryption_failed"

    def test_tampered_ciphertext_fails(self) -> None:
        ring = Keyring.ephemeral()
        token = ring.encrypt("13812345678", purpose=PHONE)
        head, data = token.rsplit(":", 1)
        flipped = data[:-3] + ("A" if data[-3] != "A" else "B") + data[-2:]
        with pytest.raises(DecryptionFailed):
            ring.decrypt(f"{head}:{flipped}", purpose=PHONE)

    def test_key_id_relabelled_fails(self) -> None:
        ring = Keyring.ephemeral()
        old = ring.encrypt("13812345678", purpose=PHONE)
        ring.rotate_key()
        relabelled = old.replace("v1:k1:", "v1:k2:", 1)
        with pytest.raises(DecryptionFailed):
            ring.decrypt(relabelled, purpose=PHONE)

    def test_other_keyring_cannot_read(self) -> None:
        token = Keyring.ephemeral().encrypt("13812345678", purpose=PHONE)
        with pytest.raises(DecryptionFailed):
            Keyring.ephemeral().decrypt(token, purpose=PHONE)

    def test_unknown_key_id(self) -> None:
        ring = Keyring.ephemeral()
        token = ring.encrypt("13812345678", purpose=PHONE).replace("v1:k1:", "v1:k7:", 1)
        with pytest.raises(UnknownKey) as info:
            ring.decrypt(token, purpose=PHONE)
        assert info.value.code == "crypto.unknown_key" and info.value.key_id == "k7"

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "13812345678",
            "v1:k1",
            "v2:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "v1:key1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "v1:k1:AAAA",
            "v1:k1:!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
            "v1:k1:\u00e9AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "v1:k1:AAAA:AAAA",
        ],
    )
    def test_malformed_values(self, token: str) -> None:
        with pytest.raises(MalformedCiphertext) as info:
            Keyring.ephemeral().decrypt(token, purpose=PHONE)
        assert info.value.code == "crypto.malformed"

    @pytest.mark.parametrize("purpose", ["", "电话", "elder.\nphone"])
    def test_bad_purpose_refused(self, purpose: str) -> None:
        with pytest.raises(ValueError):
            Keyring.ephemeral().encrypt("x", purpose=purpose)


class TestRotation:
    def test_rotation_keeps_every_value_readable(self, tmp_path: Path) -> None:
        ring = Keyring.open(tmp_path / "keys")
        values = {
            f"1380000{i:04d}": ring.encrypt(f"1380000{i:04d}", purpose=PHONE) for i in range(5)
        }
        assert ring.rotate_key() == "k2"
        values["13900000000"] = ring.encrypt("13900000000", purpose=PHONE)
        assert ring.rotate_key() == "k3"
        reopened = Keyring.open(tmp_path / "keys")
        assert reopened.key_ids == ("k1", "k2", "k3") and reopened.active_key_id == "k3"
        for plain, token in values.items():
            assert reopened.decrypt(token, purpose=PHONE) == plain

    def test_needs_rotation_and_reencrypt(self) -> None:
        ring = Keyring.ephemeral()
        old = ring.encrypt("13812345678", purpose=PHONE)
        assert not ring.needs_rotation(old)
        ring.rotate_key()
        assert ring.needs_rotation(old)
        new = ring.reencrypt(old, purpose=PHONE)
        assert new.startswith("v1:k2:") and not ring.needs_rotation(new)
        assert ring.decrypt(new, purpose=PHONE) == "13812345678"

    def test_reencrypt_of_current_value_is_unchanged(self) -> None:
        ring = Keyring.ephemeral()
        token = ring.encrypt("13812345678", purpose=PHONE)
        assert ring.reencrypt(token, purpose=PHONE) == token

    def test_reencrypt_refuses_tampered_current_value(self) -> None:
        ring = Keyring.ephemeral()
        token = ring.encrypt("13812345678", purpose=PHONE)
        with pytest.raises(DecryptionFailed):
            ring.reencrypt(token, purpose=ID_NUMBER)

    def test_reencrypt_refuses_value_of_another_field(self) -> None:
        ring = Keyring.ephemeral()
        token = ring.encrypt("13812345678", purpose=PHONE)
        ring.rotate_key()
        with pytest.raises(DecryptionFailed):
            ring.reencrypt(token, purpose=ID_NUMBER)

    def test_malformed_value_needs_rotation(self) -> None:
        assert Keyring.ephemeral().needs_rotation("13812345678")

    def test_other_process_reads_values_under_a_key_it_has_not_loaded(self, tmp_path: Path) -> None:
        first = Keyring.open(tmp_path / "keys")
        second = Keyring.open(tmp_path / "keys")
        second.rotate_key()
        token = second.encrypt("13812345678", purpose=PHONE)
        assert first.decrypt(token, purpose=PHONE) == "13812345678"


class Clock:
    """Stands in for time.monotonic in the key-file watch, so a test moves time by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestRunningServerFollowsRotation:
    """`eldercare keys rotate` in another process: a running keyring encrypts new values under
    the new key within WATCH_INTERVAL_SECONDS, without a restart."""

    def test_new_values_go_under_the_key_another_process_made_active(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = Clock()
        monkeypatch.setattr(keyfiles.time, "monotonic", clock)
        server = Keyring.open(tmp_path / "keys")
        assert server.encrypt("a", purpose=PHONE).startswith("v1:k1:")
        Keyring.open(tmp_path / "keys").rotate_key()  # the CLI, elsewhere
        # Within the interval the server has not looked yet: still k1 (and still readable).
        assert server.encrypt("b", purpose=PHONE).startswith("v1:k1:")
        clock.now += keyfiles.WATCH_INTERVAL_SECONDS
        token = server.encrypt("c", purpose=PHONE)
        assert token.startswith("v1:k2:") and server.active_key_id == "k2"
        assert not server.needs_rotation(token)

    def test_the_watch_stats_at_most_once_per_interval(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = Clock()
        monkeypatch.setattr(keyfiles.time, "monotonic", clock)
        Keyring.open(tmp_path / "keys")
        watch = keyfiles.ActiveWatch(tmp_path / "keys" / "data")
        looks = []
        real_stamp = watch._stamp
        monkeypatch.setattr(watch, "_stamp", lambda: looks.append(1) or real_stamp())
        for _ in range(100):
            assert not watch.changed()
        assert looks == []
        clock.now += keyfiles.WATCH_INTERVAL_SECONDS
        assert not watch.changed() and looks == [1]

    def test_token_signer_signs_with_a_key_rotated_elsewhere(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from datetime import UTC, datetime, timedelta

        clock = Clock()
        monkeypatch.setattr(keyfiles.time, "monotonic", clock)
        server = tokens.TokenSigner.from_directory(tmp_path / "tokens")
        tokens.TokenSigner.from_directory(tmp_path / "tokens").rotate_key()
        clock.now += keyfiles.WATCH_INTERVAL_SECONDS
        token, claims = server.issue("42", "elder", now=datetime.now(UTC), ttl=timedelta(hours=1))
        assert claims.key_id == "k2" and token.startswith("v1.k2.")


class TestBlindIndex:
    def test_deterministic_for_one_keyring(self, tmp_path: Path) -> None:
        ring = Keyring.open(tmp_path / "keys")
        digest = ring.blind_index("13812345678", purpose=PHONE)
        assert len(digest) == 64 and "13812345678" not in digest
        assert Keyring.open(tmp_path / "keys").blind_index("13812345678", purpose=PHONE) == digest

    def test_survives_encryption_key_rotation(self) -> None:
        ring = Keyring.ephemeral()
        before = ring.blind_index("13812345678", purpose=PHONE)
        ring.rotate_key()
        assert ring.blind_index("13812345678", purpose=PHONE) == before

    def test_surrounding_whitespace_ignored(self) -> None:
        ring = Keyring.ephemeral()
        assert ring.blind_index(" 13812345678\n", purpose=PHONE) == ring.blind_index(
            "13812345678", purpose=PHONE
        )

    def test_differs_by_value_purpose_and_key(self) -> None:
        ring = Keyring.ephemeral()
        digest = ring.blind_index("13812345678", purpose=PHONE)
        assert ring.blind_index("13812345679", purpose=PHONE) != digest
        assert ring.blind_index("13812345678", purpose=ID_NUMBER) != digest
        assert Keyring.ephemeral().blind_index("13812345678", purpose=PHONE) != digest


class TestErrorFamily:
    def test_every_security_error_has_its_own_code(self) -> None:
        errors: list[type[SecurityError]] = [
            KeyFileError,
            DecryptionFailed,
            MalformedCiphertext,
            UnknownKey,
            passwords.WeakPassword,
            passwords.PasswordHashMalformed,
            tokens.TokenInvalid,
            tokens.TokenExpired,
            throttle.TooManyAttempts,
        ]
        assert all(issubclass(error, SecurityError) for error in errors)
        assert len({error.code for error in errors}) == len(errors)
