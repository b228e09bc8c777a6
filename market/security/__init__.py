"""Pure security building blocks: field encryption, password hashing, bearer tokens, throttling.

Nothing here imports the ORM or the web framework; the service wraps these in models and routes.
Every error raised here derives from `SecurityError` and carries a stable machine `code`, so the
service can map it to its JSON error body without string matching::

    SecurityError
    ├── KeyFileError                 crypto.key_file         (keyfiles)
    ├── DecryptionFailed             crypto.decryption_failed (fieldcrypto)
    │   ├── MalformedCiphertext      crypto.malformed
    │   └── UnknownKey               crypto.unknown_key
    ├── WeakPassword                 password.weak           (passwords)
    ├── PasswordHashMalformed        password.hash_malformed
    ├── TokenInvalid                 token.invalid           (tokens)
    │   └── TokenExpired             token.expired
    └── TooManyAttempts              auth.too_many_attempts  (throttle)
"""

from __future__ import annotations


class SecurityError(Exception):
    """Base of every error in `market.security`; `code` is stable, the message is for people."""

    code = "security.error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
