"""Password hashing with scrypt (memory-hard) and the password policy.

Stored form: ``scrypt$<n>$<r>$<p>$<salt>$<hash>`` (salt and hash in unpadded base64url). The
parameters travel with each hash, so they can be raised later: `needs_rehash` tells the login
code to re-hash with the current parameters after a successful verification.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hmac
import secrets
import unicodedata
from dataclasses import dataclass

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from market.security import SecurityError

SCHEME = "scrypt"
SALT_BYTES = 16
HASH_BYTES = 32
MIN_LENGTH = 8
# Far above any human password; bounds the work a single login request can cause.
MAX_LENGTH = 256


@dataclass(frozen=True, order=True)
class ScryptParams:
    """Cost parameters: n (CPU/memory cost, a power of two), r (block size), p (parallelism)."""

    n: int
    r: int
    p: int

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1):
            raise ValueError(f"scrypt n must be a power of two, got {self.n}")
        # Upper bounds keep a stored (possibly tampered) hash from demanding gigabytes of memory.
        if not (2**10 <= self.n <= 2**20 and 1 <= self.r <= 32 and 1 <= self.p <= 16):
            raise ValueError(f"scrypt parameters out of range: n={self.n} r={self.r} p={self.p}")

    def at_least(self, other: ScryptParams) -> bool:
        return self.n >= other.n and self.r >= other.r and self.p >= other.p


# Measured on the development machine (2 cores): n=2**14 ~50 ms per hash, n=2**15 ~110 ms.
# 2**14 keeps a login under the 100 ms budget while needing 16 MiB of memory per guess.
DEFAULT_PARAMS = ScryptParams(n=2**14, r=8, p=1)


class PasswordHashMalformed(SecurityError):
    """A stored password hash cannot be parsed: a server-side data problem, not a wrong password."""

    code = "password.hash_malformed"


class PasswordProblem(enum.Enum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    ALL_DIGITS = "all_digits"
    ONE_CHARACTER = "one_character"
    CONTAINS_PHONE = "contains_phone"
    COMMON = "common"


_PROBLEM_TEXT = {
    PasswordProblem.TOO_SHORT: f"use at least {MIN_LENGTH} characters",
    PasswordProblem.TOO_LONG: f"use at most {MAX_LENGTH} characters",
    PasswordProblem.ALL_DIGITS: "do not use digits only; add letters or symbols",
    PasswordProblem.ONE_CHARACTER: "do not repeat a single character",
    PasswordProblem.CONTAINS_PHONE: "do not use your phone number in the password",
    PasswordProblem.COMMON: "this password is among the most commonly used; choose another",
}

# The passwords guessed first in any attack; digits-only ones are already refused by ALL_DIGITS.
_COMMON = frozenset(
    {
        "password",
        "password1",
        "password123",
        "passw0rd",
        "qwertyui",
        "qwertyuiop",
        "qwerty123",
        "abcd1234",
        "abc12345",
        "abcdefgh",
        "1qaz2wsx",
        "iloveyou",
        "woaini1314",
        "admin123",
        "a1234567",
        "aa123456",
        "letmein1",
        "welcome1",
        "zxcvbnm1",
    }
)


class WeakPassword(SecurityError):
    """The password breaks the password policy; `problems` lists every rule it breaks."""

    code = "password.weak"

    def __init__(self, problems: tuple[PasswordProblem, ...]) -> None:
        self.problems = problems
        super().__init__("; ".join(_PROBLEM_TEXT[p] for p in problems))


def _normalise(password: str) -> bytes:
    # NFC so the same password typed on two keyboards (composed vs decomposed) hashes the same.
    return unicodedata.normalize("NFC", password).encode("utf-8")


def check_password_strength(password: str, *, phone: str | None = None) -> None:
    """Raise `WeakPassword` naming every policy rule `password` breaks; return if it is fine."""
    problems: list[PasswordProblem] = []
    text = unicodedata.normalize("NFC", password)
    if len(text) < MIN_LENGTH:
        problems.append(PasswordProblem.TOO_SHORT)
    if len(text) > MAX_LENGTH:
        problems.append(PasswordProblem.TOO_LONG)
    if text.isdigit():
        problems.append(PasswordProblem.ALL_DIGITS)
    if text and len(set(text)) == 1:
        problems.append(PasswordProblem.ONE_CHARACTER)
    phone_digits = "".join(ch for ch in phone or "" if ch.isdigit())
    # Only meaningful phone numbers: a 3-digit fragment would forbid half of all passwords.
    if len(phone_digits) >= 7 and phone_digits[-7:] in text:
        problems.append(PasswordProblem.CONTAINS_PHONE)
    if text.casefold() in _COMMON:
        problems.append(PasswordProblem.COMMON)
    if problems:
        raise WeakPassword(tuple(problems))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _derive(password: bytes, salt: bytes, params: ScryptParams, length: int) -> bytes:
    kdf = Scrypt(salt=salt, length=length, n=params.n, r=params.r, p=params.p)
    return kdf.derive(password)


def hash_password(password: str, *, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """Hash with a fresh random salt; the result is safe to store and embeds its parameters."""
    if len(password) > MAX_LENGTH:
        raise WeakPassword((PasswordProblem.TOO_LONG,))
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _derive(_normalise(password), salt, params, HASH_BYTES)
    return f"{SCHEME}${params.n}${params.r}${params.p}${_b64(salt)}${_b64(digest)}"


@dataclass(frozen=True)
class _Parsed:
    params: ScryptParams
    salt: bytes
    digest: bytes


def _parse(encoded: str) -> _Parsed:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        raise PasswordHashMalformed("stored password hash is not in scrypt$n$r$p$salt$hash form")
    try:
        if not all(part.isascii() and part.isdigit() for part in parts[1:4]):
            raise ValueError("parameters must be decimal integers")
        params = ScryptParams(n=int(parts[1]), r=int(parts[2]), p=int(parts[3]))
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error) as exc:
        raise PasswordHashMalformed(f"stored password hash is unreadable: {exc}") from exc
    if len(salt) < 8 or len(digest) < 16:
        raise PasswordHashMalformed("stored password hash has a too short salt or hash")
    return _Parsed(params=params, salt=salt, digest=digest)


def verify_password(password: str, encoded: str) -> bool:
    """True if `password` matches `encoded`; the comparison runs in constant time.

    Raises `PasswordHashMalformed` if `encoded` is not a hash this module wrote.
    """
    parsed = _parse(encoded)
    if len(password) > MAX_LENGTH:
        # Still pay the KDF so an over-long guess is not answered faster than a wrong one.
        _derive(b"", parsed.salt, parsed.params, len(parsed.digest))
        return False
    candidate = _derive(_normalise(password), parsed.salt, parsed.params, len(parsed.digest))
    return hmac.compare_digest(candidate, parsed.digest)


def needs_rehash(encoded: str, *, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """True if `encoded` was made with weaker parameters (or another size) than `params`."""
    try:
        parsed = _parse(encoded)
    except PasswordHashMalformed:
        return True
    return (
        not parsed.params.at_least(params)
        or len(parsed.salt) < SALT_BYTES
        or len(parsed.digest) != HASH_BYTES
    )


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def dummy_verify(password: str = "") -> bool:
    """Spend the same time as `verify_password` and return False.

    Call it when the login phone number matches no user, so response time does not reveal
    which phone numbers have accounts.
    """
    verify_password(password[:MAX_LENGTH], _dummy_hash())
    return False
