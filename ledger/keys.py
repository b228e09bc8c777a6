"""District signing keys: Ed25519, in encrypted files outside the database.

Whoever controls the database alone can rewrite rows and recompute every hash, so the key that
signs checkpoints lives elsewhere. Layout under the key directory:

    <district>/keys.json        manifest: every key's id, public key, valid_from_size, the
                                active key id and the rotation checkpoints (plain JSON, public)
    <district>/<key_id>.key     one private key: scrypt(passphrase) -> AES-256-GCM over the raw
                                32-byte Ed25519 seed, the district and key id bound as AAD

`key_id` = the first 32 hex digits of SHA-256(raw public key), so a signed `next_key_id` commits
to the next public key. Rotation is `ledger.checkpoint.rotate_key`: a new key is prepared, the
old key signs a checkpoint naming it, then the new key is activated from that size on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger.entries import check_district
from ledger.errors import KeyExists, KeyNotFound, KeyStoreError, WrongPassphrase

KEY_ID_HEX = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
DEFAULT_WORK_FACTOR = 2**15
MANIFEST = "keys.json"
_KEY_ID_RE = re.compile(r"[0-9a-f]{32}")


class PublicKey(NamedTuple):
    key_id: str
    public: bytes
    valid_from_size: int


def key_id_of(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:KEY_ID_HEX]


def is_key_id(value: object) -> bool:
    return isinstance(value, str) and _KEY_ID_RE.fullmatch(value) is not None


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify_signature(public: bytes, signature: bytes, message: bytes) -> bool:
    """Ed25519 verification that answers False for malformed keys or signatures too."""
    if len(public) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Signer:
    key_id: str
    public: bytes
    private: Ed25519PrivateKey

    @classmethod
    def from_private(cls, private: Ed25519PrivateKey) -> Signer:
        public = raw_public(private)
        return cls(key_id_of(public), public, private)

    @classmethod
    def generate(cls) -> Signer:
        return cls.from_private(Ed25519PrivateKey.generate())

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class KeyStore:
    """Encrypted Ed25519 keys per district in `directory`; decrypted keys are cached in memory."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        passphrase: str | bytes,
        *,
        work_factor: int = DEFAULT_WORK_FACTOR,
    ) -> None:
        if not passphrase:
            raise KeyStoreError("the key passphrase must not be empty")
        self.directory = Path(directory)
        self._passphrase = passphrase.encode() if isinstance(passphrase, str) else passphrase
        self._work_factor = work_factor
        self._signers: dict[tuple[str, str], Signer] = {}

    # -- manifest -------------------------------------------------------------------------

    def _district_dir(self, district: str) -> Path:
        return self.directory / check_district(district)

    def _manifest(self, district: str) -> dict[str, Any]:
        path = self._district_dir(district) / MANIFEST
        if not path.exists():
            raise KeyNotFound(f"no keys for district {district!r} in {self.directory}")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"cannot read {path}: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("district") != district:
            raise KeyStoreError(f"{path} is not the key manifest of {district!r}")
        return manifest

    def _save_manifest(self, district: str, manifest: dict[str, Any]) -> None:
        data = json.dumps(manifest, sort_keys=True, indent=1, ensure_ascii=False).encode()
        _write_atomically(self._district_dir(district) / MANIFEST, data, 0o644)

    def districts(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(p.parent.name for p in self.directory.glob(f"*/{MANIFEST}"))

    # -- private key files ----------------------------------------------------------------

    def _kdf(self, salt: bytes) -> bytes:
        return Scrypt(salt=salt, length=32, n=self._work_factor, r=8, p=1).derive(self._passphrase)

    def _new_key(self, district: str) -> Signer:
        signer = Signer.generate()
        seed = signer.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
        aad = f"{district}/{signer.key_id}".encode()
        sealed = AESGCM(self._kdf(salt)).encrypt(nonce, seed, aad)
        record = {
            "v": 1,
            "district": district,
            "key_id": signer.key_id,
            "public": signer.public.hex(),
            "kdf": {"name": "scrypt", "n": self._work_factor, "r": 8, "p": 1, "salt": salt.hex()},
            "nonce": nonce.hex(),
            "sealed": sealed.hex(),
        }
        directory = self._district_dir(district)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(record, sort_keys=True).encode()
        _write_atomically(directory / f"{signer.key_id}.key", data, 0o600)
        self._signers[(district, signer.key_id)] = signer
        return signer

    def _load(self, district: str, key_id: str) -> Signer:
        cached = self._signers.get((district, key_id))
        if cached is not None:
            return cached
        path = self._district_dir(district) / f"{key_id}.key"
        if not is_key_id(key_id) or not path.exists():
            raise KeyNotFound(f"no private key {key_id} for district {district!r}")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            kdf = record["kdf"]
            salt, nonce = bytes.fromhex(kdf["salt"]), bytes.fromhex(record["nonce"])
            sealed = bytes.fromhex(record["sealed"])
            derived = Scrypt(salt=salt, length=32, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(
                self._passphrase
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"cannot read key file {path}: {exc}") from exc
        try:
            seed = AESGCM(derived).decrypt(nonce, sealed, f"{district}/{key_id}".encode())
        except InvalidTag:
            raise WrongPassphrase(
                f"cannot decrypt {path}: wrong passphrase or a tampered key file"
            ) from None
        signer = Signer.from_private(Ed25519PrivateKey.from_private_bytes(seed))
        if signer.key_id != key_id:
            raise KeyStoreError(f"{path} holds key {signer.key_id}, not {key_id}")
        self._signers[(district, key_id)] = signer
        return signer

    # -- public API -----------------------------------------------------------------------

    def create(self, district: str) -> str:
        """Create the district's first key, valid from size 0; refuses if it has keys."""
        if (self._district_dir(district) / MANIFEST).exists():
            raise KeyExists(f"district {district!r} already has signing keys")
        signer = self._new_key(district)
        manifest = {
            "district": district,
            "active": signer.key_id,
            "pending": None,
            "keys": [{"key_id": signer.key_id, "public": signer.public.hex(), "valid_from": 0}],
            "rotations": [],
        }
        self._save_manifest(district, manifest)
        return signer.key_id

    def active_key_id(self, district: str) -> str:
        return str(self._manifest(district)["active"])

    def signer(self, district: str, key_id: str | None = None) -> Signer:
        """The active signer of the district, or a named one (also a pending one)."""
        manifest = self._manifest(district)
        wanted = key_id or manifest["active"]
        known = {k["key_id"] for k in manifest["keys"]} | {manifest.get("pending")}
        if wanted not in known:
            raise KeyNotFound(f"key {wanted} is not a key of district {district!r}")
        return self._load(district, wanted)

    def public_keys(self, district: str) -> list[PublicKey]:
        """Every activated key in order of validity: (key_id, raw public key, valid_from_size)."""
        return [
            PublicKey(k["key_id"], bytes.fromhex(k["public"]), int(k["valid_from"]))
            for k in self._manifest(district)["keys"]
        ]

    def prepare_rotation(self, district: str) -> Signer:
        """Create (or return the already prepared) next key; it signs nothing until activated."""
        manifest = self._manifest(district)
        if manifest.get("pending"):
            return self._load(district, manifest["pending"])
        signer = self._new_key(district)
        manifest["pending"] = signer.key_id
        self._save_manifest(district, manifest)
        return signer

    def activate(self, district: str, key_id: str, *, rotation: dict[str, Any]) -> None:
        """Make the prepared key active; `rotation` is the JSON of the checkpoint, signed by
        the old key, that names it (kept so verifiers can follow the chain of keys)."""
        manifest = self._manifest(district)
        if manifest.get("pending") != key_id:
            raise KeyNotFound(f"key {key_id} is not the prepared next key of {district!r}")
        if rotation.get("next_key_id") != key_id or rotation.get("district") != district:
            raise KeyStoreError("the rotation checkpoint does not name this key and district")
        signer = self._load(district, key_id)
        manifest["keys"].append(
            {"key_id": key_id, "public": signer.public.hex(), "valid_from": rotation["size"]}
        )
        manifest["active"], manifest["pending"] = key_id, None
        manifest["rotations"].append(rotation)
        self._save_manifest(district, manifest)

    def rotations(self, district: str) -> list[dict[str, Any]]:
        """The JSON of every rotation checkpoint, oldest first."""
        return list(self._manifest(district)["rotations"])
