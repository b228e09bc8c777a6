"""A directory of secret keys on disk: `<id>.key` files plus an `ACTIVE` file naming one of them.

Used for the field-encryption keys, the blind-index key and the token-signing secrets. Keys are
never rewritten or deleted: rotation adds a file and moves `ACTIVE`, so every value encrypted or
signed under an older key stays readable.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from market.security import SecurityError

KEY_ID_PATTERN = re.compile(r"^k[0-9]{1,9}$")
ACTIVE_FILE = "ACTIVE"
KEY_SUFFIX = ".key"
# How often a running process looks at `ACTIVE` for a key another process made active (a stat,
# at most once per interval, only when it is about to use the active key).
WATCH_INTERVAL_SECONDS = 1.0


class KeyFileError(SecurityError):
    """A key directory is unreadable, corrupt or readable by other users."""

    code = "crypto.key_file"


@dataclass(frozen=True)
class KeySet:
    """Every key of one directory, by id, and the id that new values use."""

    keys: Mapping[str, bytes]
    active_id: str

    def __post_init__(self) -> None:
        if self.active_id not in self.keys:
            raise KeyFileError(f"active key {self.active_id!r} is not among the keys")
        # A read-only view so a shared KeySet cannot be altered behind its owner's back.
        object.__setattr__(self, "keys", MappingProxyType(dict(self.keys)))

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active_id]


def _key_number(key_id: str) -> int:
    return int(key_id[1:])


def _check_private(path: Path) -> None:
    # Secrets that other local users can read are not secret; refuse rather than warn.
    mode = path.stat().st_mode
    if stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(
            f"{path} is accessible by other users (mode {oct(stat.S_IMODE(mode))}); "
            "run chmod 600 on key files and 700 on their directory"
        )


def _write_new_file(path: Path, data: bytes) -> None:
    # O_EXCL: two processes rotating at once can never overwrite each other's key.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_active(directory: Path, key_id: str) -> None:
    tmp = directory / f".{ACTIVE_FILE}.{secrets.token_hex(4)}.tmp"
    _write_new_file(tmp, key_id.encode("ascii") + b"\n")
    # Atomic replace: readers see the old or the new active id, never a half-written file.
    os.replace(tmp, directory / ACTIVE_FILE)


def _read_key(path: Path, key_bytes: int) -> bytes:
    _check_private(path)
    try:
        raw = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyFileError(f"{path} is not a base64 key") from exc
    if len(raw) != key_bytes:
        raise KeyFileError(f"{path} holds {len(raw)} bytes, expected {key_bytes}")
    return raw


def load(directory: Path, *, key_bytes: int = 32) -> KeySet:
    """Read every key of `directory`; raise `KeyFileError` if it holds none or is unsafe."""
    if not directory.is_dir():
        raise KeyFileError(f"key directory {directory} does not exist")
    _check_private(directory)
    keys: dict[str, bytes] = {}
    for path in sorted(directory.glob(f"*{KEY_SUFFIX}")):
        key_id = path.name.removesuffix(KEY_SUFFIX)
        if not KEY_ID_PATTERN.match(key_id):
            raise KeyFileError(f"{path} does not have a key id name like k1.key")
        keys[key_id] = _read_key(path, key_bytes)
    if not keys:
        raise KeyFileError(f"key directory {directory} holds no keys")
    active_path = directory / ACTIVE_FILE
    if not active_path.exists():
        raise KeyFileError(f"{active_path} is missing")
    active_id = active_path.read_text(encoding="ascii").strip()
    return KeySet(keys=keys, active_id=active_id)


def add_key(directory: Path, *, key_bytes: int = 32) -> KeySet:
    """Create a fresh random key in `directory`, make it active, and return the new key set."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _check_private(directory)
    existing = [
        _key_number(p.name.removesuffix(KEY_SUFFIX))
        for p in directory.glob(f"*{KEY_SUFFIX}")
        if KEY_ID_PATTERN.match(p.name.removesuffix(KEY_SUFFIX))
    ]
    number = max(existing, default=0) + 1
    while True:
        key_id = f"k{number}"
        encoded = base64.b64encode(secrets.token_bytes(key_bytes)) + b"\n"
        try:
            _write_new_file(directory / f"{key_id}{KEY_SUFFIX}", encoded)
            break
        except FileExistsError:
            # Another process took this id in the meantime; take the next one.
            number += 1
    _write_active(directory, key_id)
    return load(directory, key_bytes=key_bytes)


def load_or_create(directory: Path, *, key_bytes: int = 32) -> KeySet:
    """Load the keys of `directory`, creating the directory and a first key on first use."""
    if not directory.exists() or not any(directory.glob(f"*{KEY_SUFFIX}")):
        return add_key(directory, key_bytes=key_bytes)
    return load(directory, key_bytes=key_bytes)


class ActiveWatch:
    """Notices that another process (`eldercare keys rotate`) made a new key active.

    `add_key` replaces `ACTIVE` atomically, so its inode and mtime change; `changed()` stats the
    file at most once per `interval` seconds and says whether it differs from the last look.
    """

    def __init__(self, directory: Path, *, interval: float = WATCH_INTERVAL_SECONDS) -> None:
        self._path = directory / ACTIVE_FILE
        self._interval = interval
        self._next_look = time.monotonic() + interval
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            info = self._path.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns

    def changed(self) -> bool:
        now = time.monotonic()
        if now < self._next_look:
            return False
        self._next_look = now + self._interval
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        return True
