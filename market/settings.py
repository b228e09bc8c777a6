"""Settings, read once from the environment into a frozen dataclass.

Every variable is documented in README.md; `tests/market/test_settings.py` fails if one is not.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

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
    # The fewest independent co-signatures a checkpoint needs, whatever a district's policy says:
    # the witnessed district edits its own policy, so it must not be able to vote its quorum to 0.
    witness_quorum_floor: int = 1

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
    "ELDERCARE_WITNESS_QUORUM_FLOOR": "witness_quorum_floor",
}


def _convert(name: str, raw: str, current: object) -> object:
    if isinstance(current, bool):
        return raw.lower() in {"1", "true", "yes"}
    if isinstance(current, int):
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
        if value <= 0:
            raise SettingsError(f"{name} must be positive, got {value}")
        return value
    if isinstance(current, Path):
        return Path(raw)
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (default: the process environment) over the defaults.

    The key directory and SQLite file follow `ELDERCARE_DATA_DIR` unless set on their own.
    """
    env = os.environ if environ is None else environ
    base = Settings()
    changes: dict[str, object] = {}
    if "ELDERCARE_DATA_DIR" in env:
        data_dir = Path(env["ELDERCARE_DATA_DIR"])
        changes.update(
            data_dir=data_dir,
            keys_dir=data_dir / "keys",
            database_url=f"sqlite://{data_dir / 'eldercare.sqlite3'}",
        )
    for variable, attribute in ENVIRONMENT.items():
        if variable in env and variable != "ELDERCARE_DATA_DIR":
            changes[attribute] = _convert(variable, env[variable], getattr(base, attribute))
    return replace(base, **changes)  # type: ignore[arg-type]
