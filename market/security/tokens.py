"""Signed, expiring bearer tokens.

Wire form: ``v1.<key id>.<payload>.<signature>``, where payload is the unpadded base64url of
compact JSON ``{"exp", "iat", "jti", "role", "sub"}`` (integer Unix seconds) and signature is
HMAC-SHA256 under the named key over a domain prefix and the first three parts. The version
fixes the algorithm: nothing in the token can choose it, so there is no algorithm confusion.

Revocation is not decided here. `verify` proves that the service issued the token and that it
has not expired; the caller must then look up `claims.jti` in its revocation table (logout,
suspended user, password change) and refuse a revoked token.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from market.security import SecurityError, keyfiles
from market.security.keyfiles import KEY_ID_PATTERN, KeySet

VERSION = "v1"
_DOMAIN = b"eldercare.token.v1\x00"
# Large enough for any token we issue; refuses absurd inputs before any parsing work.
MAX_TOKEN_LENGTH = 512
MAX_TTL = timedelta(days=30)
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_ROLE = re.compile(r"^[a-z][a-z_]{0,31}$")
_SUBJECT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CLAIM_KEYS = frozenset({"exp", "iat", "jti", "role", "sub"})
# Key ids come from untrusted tokens; re-reading the key directory for an unknown id is
# allowed at most this often, so a flood of forged ids cannot turn into a flood of disk reads.
RELOAD_INTERVAL_SECONDS = 5.0


class TokenFault(enum.Enum):
    """Why a token was refused, for logs; clients only ever see the error code."""

    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"


class TokenInvalid(SecurityError):
    """The token was not issued by this service, was altered, or cannot be read."""

    code = "token.invalid"

    def __init__(self, fault: TokenFault, message: str) -> None:
        super().__init__(message)
        self.fault = fault


class TokenExpired(TokenInvalid):
    """A genuine token whose lifetime is over; the client should log in again."""

    code = "token.expired"

    def __init__(self, expired_at: datetime) -> None:
        super().__init__(TokenFault.EXPIRED, f"token expired at {expired_at.isoformat()}")
        self.expired_at = expired_at


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    role: str
    jti: str
    issued_at: datetime
    expires_at: datetime
    key_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.match(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return int(moment.timestamp())


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class TokenSigner:
    """Issues and verifies tokens with the keys of one `KeySet`, signing with the active key."""

    def __init__(self, keys: KeySet, *, directory: Path | None = None) -> None:
        self._keys = keys
        self._directory = directory
        self._last_reload = float("-inf")
        # New tokens are signed with a key another process rotated in, without a restart.
        self._watch = keyfiles.ActiveWatch(directory) if directory else None

    @classmethod
    def from_directory(cls, directory: Path) -> TokenSigner:
        """Load the signing secrets of `directory`, creating a first one on first use."""
        return cls(keyfiles.load_or_create(directory), directory=directory)

    @property
    def active_key_id(self) -> str:
        return self._keys.active_id

    def rotate_key(self) -> str:
        """Sign from now on with a new secret; tokens signed with older ones stay valid."""
        if self._directory is None:
            raise keyfiles.KeyFileError("this signer has no key directory to rotate in")
        self._keys = keyfiles.add_key(self._directory)
        return self._keys.active_id

    def _signature(self, key: bytes, signed_part: str) -> bytes:
        return hmac.new(key, _DOMAIN + signed_part.encode("ascii"), hashlib.sha256).digest()

    def issue(
        self, user_id: str | int | uuid.UUID, role: str, *, now: datetime, ttl: timedelta
    ) -> tuple[str, TokenClaims]:
        """Return a new token for `user_id` acting as `role`, valid from `now` for `ttl`.

        The user id comes back as a string in the claims, whatever type it was issued with.
        """
        user_id = str(user_id)
        if not _SUBJECT.match(user_id):
            raise ValueError(f"user id {user_id!r} must be 1-64 characters of [A-Za-z0-9_-]")
        if not _ROLE.match(role):
            raise ValueError(f"role {role!r} must be lower-case letters and underscores")
        if not timedelta(seconds=1) <= ttl <= MAX_TTL:
            raise ValueError(f"ttl must be between 1 second and {MAX_TTL}")
        iat = _unix(now)
        exp = iat + int(ttl.total_seconds())
        jti = secrets.token_urlsafe(16)
        if self._watch is not None and self._watch.changed():
            assert self._directory is not None
            self._keys = keyfiles.load(self._directory)
        payload = {"exp": exp, "iat": iat, "jti": jti, "role": role, "sub": user_id}
        body = _b64(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("ascii"))
        kid = self._keys.active_id
        signed_part = f"{VERSION}.{kid}.{body}"
        token = f"{signed_part}.{_b64(self._signature(self._keys.active_key, signed_part))}"
        claims = TokenClaims(
            user_id=user_id,
            role=role,
            jti=jti,
            issued_at=_from_unix(iat),
            expires_at=_from_unix(exp),
            key_id=kid,
        )
        return token, claims

    def _key(self, kid: str) -> bytes:
        if kid not in self._keys.keys and self._directory is not None:
            # Another process may have rotated since we loaded; look once more on disk.
            moment = time.monotonic()
            if moment - self._last_reload >= RELOAD_INTERVAL_SECONDS:
                self._last_reload = moment
                self._keys = keyfiles.load(self._directory)
        try:
            return self._keys.keys[kid]
        except KeyError:
            raise TokenInvalid(TokenFault.UNKNOWN_KEY, "token signed with an unknown key") from None

    def verify(self, token: str, *, now: datetime, leeway: timedelta = timedelta(0)) -> TokenClaims:
        """Return the claims of a genuine, unexpired token; else raise TokenInvalid/TokenExpired.

        `leeway` tolerates clock differences between processes for the issued-at check only.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid(TokenFault.MALFORMED, "token is empty or too long")
        if not token.isascii():
            raise TokenInvalid(TokenFault.MALFORMED, "token contains non-ASCII characters")
        parts = token.split(".")
        if len(parts) != 4:
            raise TokenInvalid(TokenFault.MALFORMED, "token does not have four parts")
        version, kid, body, signature_text = parts
        if version != VERSION:
            raise TokenInvalid(TokenFault.UNSUPPORTED_VERSION, "token version is not supported")
        if not KEY_ID_PATTERN.match(kid):
            raise TokenInvalid(TokenFault.MALFORMED, "token key id is malformed")
        try:
            signature = _unb64(signature_text)
        except (ValueError, binascii.Error):
            raise TokenInvalid(TokenFault.MALFORMED, "token signature is not base64url") from None
        expected = self._signature(self._key(kid), f"{version}.{kid}.{body}")
        # Constant time: the comparison must not reveal how many leading bytes were right.
        if not hmac.compare_digest(signature, expected):
            raise TokenInvalid(TokenFault.BAD_SIGNATURE, "token signature does not match")
        claims = self._parse_claims(body, kid)
        current = _unix(now)
        if _unix(claims.issued_at) > current + int(leeway.total_seconds()):
            raise TokenInvalid(TokenFault.NOT_YET_VALID, "token is issued in the future")
        if current >= _unix(claims.expires_at):
            raise TokenExpired(claims.expires_at)
        return claims

    @staticmethod
    def _parse_claims(body: str, kid: str) -> TokenClaims:
        # Only reached with a valid signature, so a failure here means our own bug or a leaked
        # key; still refuse cleanly instead of trusting the content.
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            raise TokenInvalid(TokenFault.MALFORMED, "token payload is unreadable") from None
        if not isinstance(payload, dict) or set(payload) != _CLAIM_KEYS:
            raise TokenInvalid(TokenFault.MALFORMED, "token payload has the wrong fields")
        iat, exp = payload["iat"], payload["exp"]
        sub, role, jti = payload["sub"], payload["role"], payload["jti"]
        ints_ok = all(type(v) is int for v in (iat, exp)) and iat < exp
        strs_ok = all(isinstance(v, str) for v in (sub, role, jti))
        if not ints_ok or not strs_ok or not _SUBJECT.match(sub) or not _ROLE.match(role):
            raise TokenInvalid(TokenFault.MALFORMED, "token payload has invalid values")
        return TokenClaims(
            user_id=sub,
            role=role,
            jti=jti,
            issued_at=_from_unix(iat),
            expires_at=_from_unix(exp),
            key_id=kid,
        )
