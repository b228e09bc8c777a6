"""Settings, read once from the environment into a frozen dataclass.

Every variable is documented in README.md; `tests/market/test_settings.py` fails if one is not.
Parsing is strict: a value the service cannot use (a misspelt boolean, a port out of range, a
database URL of an unsupported kind) raises `SettingsError` naming the variable, and
`eldercare` stops with that message instead of running on a guess.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://data/eldercare.sqlite3"
    data_dir: Path = Path("data")
    keys_dir: Path = Path("data/keys")
    ledger_key_passphrase: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    static_dir: Path = PROJECT_ROOT / "static"
    max_body_bytes: int = 64 * 1024
    token_ttl_seconds: int = 12 * 3600
    # Realtime (market.realtime): "" picks postgres on PostgreSQL and memory on SQLite.
    realtime_backend: str = ""
    redis_url: str = "redis://127.0.0.1:6379/0"
    realtime_queue_size: int = 1000
    realtime_heartbeat_seconds: int = 20
    realtime_idle_timeout_seconds: int = 60
    realtime_replay_limit: int = 1000
    realtime_retention_days: int = 30
    # The booking matching loop: one round every this many seconds; off for tests that drive it.
    matching_enabled: bool = True
    matching_interval_seconds: int = 5
    # Periodic duties run beside the matching loop (same switch): overdue visits announced on
    # the admin feeds, and recurring series booked up to this many days ahead.
    visit_overdue_interval_seconds: int = 300
    series_interval_seconds: int = 600
    series_horizon_days: int = 28
    # The fewest independent co-signatures a checkpoint needs, whatever a district's policy says:
    # the witnessed district edits its own policy, so it must not be able to vote its quorum to 0.
    witness_quorum_floor: int = 1
    # Emergency escalation (market.emergency): the outbound webhook of the last step, e.g. an
    # SMS gateway. No URL: that step is logged as skipped. The secret signs every request.
    emergency_webhook_url: str = ""
    emergency_webhook_secret: str = ""
    emergency_webhook_attempts: int = 5
    emergency_webhook_backoff_seconds: int = 2

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


ENVIRONMENT = {
    "DATABASE_URL": "database_url",
    "ELDERCARE_DATA_DIR": "data_dir",
    "ELDERCARE_KEYS_DIR": "keys_dir",
    "ELDERCARE_LEDGER_KEY_PASSPHRASE": "ledger_key_passphrase",
    "ELDERCARE_HOST": "host",
    "ELDERCARE_PORT": "port",
    "ELDERCARE_STATIC_DIR": "static_dir",
    "ELDERCARE_MAX_BODY_BYTES": "max_body_bytes",
    "ELDERCARE_TOKEN_TTL_SECONDS": "token_ttl_seconds",
    "ELDERCARE_REALTIME_BACKEND": "realtime_backend",
    "ELDERCARE_REDIS_URL": "redis_url",
    "ELDERCARE_REALTIME_QUEUE_SIZE": "realtime_queue_size",
    "ELDERCARE_REALTIME_HEARTBEAT_SECONDS": "realtime_heartbeat_seconds",
    "ELDERCARE_REALTIME_IDLE_TIMEOUT_SECONDS": "realtime_idle_timeout_seconds",
    "ELDERCARE_REALTIME_REPLAY_LIMIT": "realtime_replay_limit",
    "ELDERCARE_REALTIME_RETENTION_DAYS": "realtime_retention_days",
    "ELDERCARE_MATCHING_ENABLED": "matching_enabled",
    "ELDERCARE_MATCHING_INTERVAL_SECONDS": "matching_interval_seconds",
    "ELDERCARE_VISIT_OVERDUE_INTERVAL_SECONDS": "visit_overdue_interval_seconds",
    "ELDERCARE_SERIES_INTERVAL_SECONDS": "series_interval_seconds",
    "ELDERCARE_SERIES_HORIZON_DAYS": "series_horizon_days",
    "ELDERCARE_WITNESS_QUORUM_FLOOR": "witness_quorum_floor",
    "ELDERCARE_EMERGENCY_WEBHOOK_URL": "emergency_webhook_url",
    "ELDERCARE_EMERGENCY_WEBHOOK_SECRET": "emergency_webhook_secret",
    "ELDERCARE_EMERGENCY_WEBHOOK_ATTEMPTS": "emergency_webhook_attempts",
    "ELDERCARE_EMERGENCY_WEBHOOK_BACKOFF_SECONDS": "emergency_webhook_backoff_seconds",
}


# Booleans are spelled one of these ways; anything else (a typo like "ture") is refused rather
# than quietly read as false.
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# ASCII digits only: int() would also take "1_000", " 5" or full-width digits.
_DIGITS = re.compile(r"[0-9]{1,18}")
# The schemes each URL setting may use; other `*_url` settings are outbound webhooks.
_URL_SCHEMES: dict[str, tuple[str, ...]] = {
    "database_url": ("sqlite", "postgres", "postgresql"),
    "redis_url": ("redis", "rediss", "unix"),
}
_WEBHOOK_SCHEMES: tuple[str, ...] = ("http", "https")
_REALTIME_BACKENDS = ("", "memory", "postgres", "redis")
# Integers are positive; these have an upper bound too (inclusive ranges). The webhook's
# backoff doubles up to 60 s per wait, so a longer first wait means nothing.
_INTEGER_RANGES = {
    "port": (1, 65535),
    "emergency_webhook_attempts": (1, 20),
    "emergency_webhook_backoff_seconds": (1, 60),
    # A series is booked at most this far ahead (`market.services.series_horizon`): 92 days
    # of a daily series stay within the 100 bookings one request may create.
    "series_horizon_days": (1, 92),
}
# The HMAC key signing every emergency webhook request, in bytes (UTF-8).
MIN_WEBHOOK_SECRET_BYTES = 16


def _boolean(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise SettingsError(f"{name} must be one of {', '.join(sorted(_TRUE | _FALSE))}, got {raw!r}")


def _integer(name: str, raw: str, attribute: str) -> int:
    if _DIGITS.fullmatch(raw.strip()) is None:
        raise SettingsError(f"{name} must be a positive integer, got {raw!r}")
    value = int(raw.strip())
    low, high = _INTEGER_RANGES.get(attribute, (1, None))
    if value < low or (high is not None and value > high):
        span = f"{low}-{high}" if high is not None else "positive"
        raise SettingsError(f"{name} must be {span}, got {value}")
    return value


def _url(name: str, raw: str, attribute: str) -> str:
    schemes = _URL_SCHEMES.get(attribute)
    if schemes is None:
        if raw == "":
            return raw  # an optional webhook, off
        schemes = _WEBHOOK_SCHEMES
    scheme, separator, rest = raw.partition("://")
    if not separator or scheme not in schemes or not rest.strip():
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise SettingsError(f"{name} must start with one of {allowed}, got {raw!r}")
    return raw


def _convert(name: str, raw: str, current: object, attribute: str) -> object:
    if isinstance(current, bool):
        return _boolean(name, raw)
    if isinstance(current, int):
        return _integer(name, raw, attribute)
    if isinstance(current, Path):
        if not raw.strip():
            raise SettingsError(f"{name} must be a path, got an empty value")
        return Path(raw)
    if attribute.endswith("_url"):
        return _url(name, raw, attribute)
    if attribute == "realtime_backend" and raw not in _REALTIME_BACKENDS:
        allowed = ", ".join(b for b in _REALTIME_BACKENDS if b)
        raise SettingsError(f"{name} must be one of {allowed} (or empty), got {raw!r}")
    if attribute == "host" and not raw.strip():
        raise SettingsError(f"{name} must be a host name or address, got an empty value")
    return raw


def _check_emergency_webhook(settings: Settings) -> None:
    """A webhook URL must name a host the service can reach and come with its signing key;
    checked here so that `eldercare` stops before starting anything, naming the variable."""
    url = settings.emergency_webhook_url
    if not url:
        return
    name = "ELDERCARE_EMERGENCY_WEBHOOK_URL"
    problem = f"{name} must be http(s)://host[:port]/path, got {url!r}"
    if any(c.isspace() or not c.isprintable() for c in url):
        raise SettingsError(problem)
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number in 0-65535
    except ValueError:
        raise SettingsError(problem) from None
    if parts.scheme not in _WEBHOOK_SCHEMES or not parts.hostname or port == 0:
        raise SettingsError(problem)
    if len(settings.emergency_webhook_secret.encode()) < MIN_WEBHOOK_SECRET_BYTES:
        raise SettingsError(
            f"ELDERCARE_EMERGENCY_WEBHOOK_SECRET must be set, at least "
            f"{MIN_WEBHOOK_SECRET_BYTES} bytes, when {name} is (it signs every request)"
        )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (default: the process environment) over the defaults.

    The key directory and SQLite file follow `ELDERCARE_DATA_DIR` unless set on their own.
    """
    env = os.environ if environ is None else environ
    base = Settings()
    changes: dict[str, object] = {}
    if "ELDERCARE_DATA_DIR" in env:
        data_dir = _convert("ELDERCARE_DATA_DIR", env["ELDERCARE_DATA_DIR"], base.data_dir, "")
        assert isinstance(data_dir, Path)
        changes.update(
            data_dir=data_dir,
            keys_dir=data_dir / "keys",
            database_url=f"sqlite://{data_dir / 'eldercare.sqlite3'}",
        )
    for variable, attribute in ENVIRONMENT.items():
        if variable in env and variable != "ELDERCARE_DATA_DIR":
            changes[attribute] = _convert(
                variable, env[variable], getattr(base, attribute), attribute
            )
    settings = replace(base, **changes)  # type: ignore[arg-type]
    if settings.realtime_backend == "postgres" and not settings.database_url.startswith(
        ("postgres://", "postgresql://")
    ):
        raise SettingsError("ELDERCARE_REALTIME_BACKEND=postgres needs a PostgreSQL DATABASE_URL")
    _check_emergency_webhook(settings)
    return settings
