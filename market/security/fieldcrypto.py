"""Encryption of sensitive personal fields at rest (ID number, phone, address, health data).

A value is stored as ``v1:<key id>:<base64url(nonce || ciphertext+tag)>`` made with AES-256-GCM.
The field's purpose (e.g. ``"elder.phone"``) and the key id are bound as associated data, so a
ciphertext copied into another field or relabelled with another key id fails to decrypt.

Keys live in a directory (see `keyfiles`): ``<dir>/data`` holds the encryption keys, one of them
active; rotation adds a key and never deletes one, so old values stay readable until they are
re-encrypted. ``<dir>/index`` holds the separate key of the blind index, which lets the service
find a user by phone number without storing the number in clear text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import unicodedata
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from market.security import SecurityError, keyfiles
from market.security.keyfiles import KEY_ID_PATTERN, KeySet

VERSION = "v1"
NONCE_BYTES = 12
TAG_BYTES = 16
_INDEX_DOMAIN = b"eldercare.blind-index.v1\x00"


class DecryptionFailed(SecurityError):
    """The value cannot be decrypted: tampered, moved to another field, or under another key."""

    code = "crypto.decryption_failed"


class MalformedCiphertext(DecryptionFailed):
    """The stored value is not a ciphertext this module wrote."""

    code = "crypto.malformed"


class UnknownKey(DecryptionFailed):
    """The value names a key id that the keyring does not hold."""

    code = "crypto.unknown_key"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no encryption key {key_id!r} in the keyring")
        self.key_id = key_id


def _check_purpose(purpose: str) -> bytes:
    if not purpose or not purpose.isascii() or not purpose.isprintable():
        raise ValueError(f"purpose must be a non-empty printable ASCII name, got {purpose!r}")
    return purpose.encode("ascii")


def _associated_data(key_id: str, purpose: str) -> bytes:
    return b"\x00".join((VERSION.encode("ascii"), key_id.encode("ascii"), _check_purpose(purpose)))


def _parse(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise MalformedCiphertext("encrypted value must be a string")
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != VERSION:
        raise MalformedCiphertext("encrypted value is not in v1:<key id>:<data> form")
    key_id, data = parts[1], parts[2]
    if not KEY_ID_PATTERN.match(key_id):
        raise MalformedCiphertext("encrypted value has a malformed key id")
    try:
        if not data.isascii():
            raise ValueError("non-ASCII data")
        raw = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))
    except (ValueError, binascii.Error):
        raise MalformedCiphertext("encrypted value data is not base64url") from None
    if len(raw) < NONCE_BYTES + TAG_BYTES:
        raise MalformedCiphertext("encrypted value is too short")
    return key_id, raw


class Keyring:
    """The encryption keys (several, one active) and the blind-index key of one deployment."""

    def __init__(
        self, data_keys: KeySet, index_key: bytes, *, directory: Path | None = None
    ) -> None:
        if len(index_key) != 32:
            raise ValueError("the blind-index key must be 32 bytes")
        for key_id, key in data_keys.keys.items():
            if len(key) != 32:
                raise ValueError(f"encryption key {key_id} must be 32 bytes (AES-256)")
        self._data = data_keys
        self._index_key = index_key
        self._directory = directory
        # A running server follows `eldercare keys rotate`: new values go under the new key
        # within a second, so the rotation's re-encryption pass does not leave them behind.
        self._watch = keyfiles.ActiveWatch(directory / "data") if directory else None

    @classmethod
    def open(cls, directory: Path) -> Keyring:
        """Load the keyring in `directory`, creating it (mode 0700, key files 0600) on first use."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = keyfiles.load_or_create(directory / "data")
        index = keyfiles.load_or_create(directory / "index")
        return cls(data, index.active_key, directory=directory)

    @classmethod
    def ephemeral(cls) -> Keyring:
        """A keyring that lives only in memory: for tests and throw-away demo databases."""
        data = KeySet(keys={"k1": AESGCM.generate_key(bit_length=256)}, active_id="k1")
        return cls(data, secrets.token_bytes(32))

    @property
    def active_key_id(self) -> str:
        return self._data.active_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._data.keys, key=lambda kid: int(kid[1:])))

    def reload(self) -> None:
        """Pick up keys that another process added to the directory."""
        if self._directory is not None:
            self._data = keyfiles.load(self._directory / "data")

    def rotate_key(self) -> str:
        """Add a new active key and return its id; older keys stay for decryption."""
        if self._directory is None:
            new_id = f"k{max(int(kid[1:]) for kid in self._data.keys) + 1}"
            keys = {**self._data.keys, new_id: AESGCM.generate_key(bit_length=256)}
            self._data = KeySet(keys=keys, active_id=new_id)
        else:
            self._data = keyfiles.add_key(self._directory / "data")
        return self._data.active_id

    def encrypt(self, plaintext: str, *, purpose: str) -> str:
        """Encrypt `plaintext` for the field named `purpose` under the active key."""
        if self._watch is not None and self._watch.changed():
            self.reload()
        key_id = self._data.active_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(self._data.active_key).encrypt(
            nonce, plaintext.encode("utf-8"), _associated_data(key_id, purpose)
        )
        data = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{VERSION}:{key_id}:{data}"

    def _key(self, key_id: str) -> bytes:
        if key_id not in self._data.keys:
            # A key rotated in by another process after we loaded: look on disk once more.
            self.reload()
        try:
            return self._data.keys[key_id]
        except KeyError:
            raise UnknownKey(key_id) from None

    def decrypt(self, token: str, *, purpose: str) -> str:
        """Return the plaintext of `token`, which must have been encrypted for `purpose`."""
        key_id, raw = _parse(token)
        aad = _associated_data(key_id, purpose)
        key = self._key(key_id)
        try:
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionFailed(
                f"value for {purpose!r} failed authentication: altered, or from another field"
            ) from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise DecryptionFailed("decrypted value is not UTF-8 text") from None

    def needs_rotation(self, token: str) -> bool:
        """True if `token` is not under the active key (or not readable at all)."""
        try:
            key_id, _ = _parse(token)
        except MalformedCiphertext:
            return True
        return key_id != self._data.active_id

    def reencrypt(self, token: str, *, purpose: str) -> str:
        """Return `token` under the active key; unchanged if it already is."""
        if not self.needs_rotation(token):
            # Still authenticate it: a rotation run must not copy forward a tampered value.
            self.decrypt(token, purpose=purpose)
            return token
        return self.encrypt(self.decrypt(token, purpose=purpose), purpose=purpose)

    def blind_index(self, value: str, *, purpose: str) -> str:
        """A keyed, deterministic digest of `value` for equality look-ups (64 hex characters).

        The caller normalises the value first (e.g. a phone number to its digits); here only
        Unicode NFC and surrounding whitespace are normalised. Different purposes give
        unrelated digests, so one field's index cannot be joined against another's.
        """
        text = unicodedata.normalize("NFC", value.strip()).encode("utf-8")
        message = _INDEX_DOMAIN + _check_purpose(purpose) + b"\x00" + text
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()
