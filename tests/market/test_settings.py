"""Settings come from the environment, bad values are refused, and every one is documented."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from market.settings import ENVIRONMENT, PROJECT_ROOT, Settings, SettingsError, load_settings


def test_defaults_use_embedded_sqlite_under_data() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite://data/eldercare.sqlite3"
    assert settings.keys_dir == Path("data/keys")


def test_data_dir_moves_database_and_keys() -> None:
    settings = load_settings({"ELDERCARE_DATA_DIR": "/srv/ec"})
    assert settings.database_url == "sqlite:///srv/ec/eldercare.sqlite3"
    assert settings.keys_dir == Path("/srv/ec/keys")


def test_explicit_database_url_wins() -> None:
    url = "postgres://u@h/db"
    assert load_settings({"ELDERCARE_DATA_DIR": "/x", "DATABASE_URL": url}).database_url == url


@pytest.mark.parametrize("value", ["abc", "0", "-5", "70000", "65536", "80.0", "1_000", "８０", ""])
def test_bad_port_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="ELDERCARE_PORT"):
        load_settings({"ELDERCARE_PORT": value})


@pytest.mark.parametrize("value", ["1", "65535", "8000"])
def test_ports_in_range_are_taken(value: str) -> None:
    assert load_settings({"ELDERCARE_PORT": value}).port == int(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[("1", True), ("true", True), ("Yes", True), ("on", True)],
        *[("0", False), ("false", False), ("NO", False), ("off", False)],
    ],
)
def test_booleans_take_the_usual_spellings(value: str, expected: bool) -> None:
    assert load_settings({"ELDERCARE_MATCHING_ENABLED": value}).matching_enabled is expected


@pytest.mark.parametrize("value", ["ture", "", "2", "enabled", "y e s"])
def test_a_misspelt_boolean_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="ELDERCARE_MATCHING_ENABLED"):
        load_settings({"ELDERCARE_MATCHING_ENABLED": value})


@pytest.mark.parametrize(
    "variable",
    sorted(v for v, a in ENVIRONMENT.items() if type(getattr(Settings(), a)) is int),
)
@pytest.mark.parametrize("value", ["0", "-1", "1.5", "ten", " "])
def test_every_count_and_interval_must_be_a_positive_integer(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: value})


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u@h/db",
        "sqlite:/relative.db",
        "postgres://",
        "data/eldercare.sqlite3",
        "",
        "http://h/db",
    ],
)
def test_an_unsupported_database_url_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings({"DATABASE_URL": url})


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://data/x.sqlite3",
        "sqlite://:memory:",
        "postgres://u:p@h:5432/db",
        "postgresql://h/db",
    ],
)
def test_supported_database_urls_are_taken(url: str) -> None:
    assert load_settings({"DATABASE_URL": url}).database_url == url


def test_redis_url_and_realtime_backend_are_checked() -> None:
    with pytest.raises(SettingsError, match="ELDERCARE_REDIS_URL"):
        load_settings({"ELDERCARE_REDIS_URL": "http://cache:6379"})
    with pytest.raises(SettingsError, match="ELDERCARE_REALTIME_BACKEND"):
        load_settings({"ELDERCARE_REALTIME_BACKEND": "kafka"})
    with pytest.raises(SettingsError, match="ELDERCARE_REALTIME_BACKEND=postgres"):
        load_settings({"ELDERCARE_REALTIME_BACKEND": "postgres"})
    assert load_settings({"ELDERCARE_REALTIME_BACKEND": "redis"}).realtime_backend == "redis"


@pytest.mark.parametrize("variable", ["ELDERCARE_DATA_DIR", "ELDERCARE_KEYS_DIR", "ELDERCARE_HOST"])
def test_an_empty_path_or_host_is_refused(variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings({variable: ""})


def test_the_service_stops_with_the_message(tmp_path: Path) -> None:
    env = {**os.environ, "ELDERCARE_DATA_DIR": str(tmp_path), "ELDERCARE_MATCHING_ENABLED": "ture"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "market.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ELDERCARE_MATCHING_ENABLED" in result.stderr and "'ture'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
def test_every_setting_is_documented_in_readme(variable: str) -> None:
    assert f"`{variable}`" in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


WEBHOOK_SECRET = "0123456789abcdef"


def webhook_env(**overrides: str) -> dict[str, str]:
    env = {
        "ELDERCARE_EMERGENCY_WEBHOOK_URL": "https://sms.example/hook",
        "ELDERCARE_EMERGENCY_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    env.update(overrides)
    return env


@pytest.mark.parametrize(
    "url",
    [
        "http://:80",
        "https:///sms",
        "http://",
        "https://user@/sms",
        "https://gateway:99999/sms",
        "https://gateway:port/sms",
        "https://gateway:0/sms",
        "https://[::1/sms",
        "https://gate way/sms",
        "https://gateway/sms\n",
        "ftp://gateway/sms",
        "gateway/sms",
    ],
)
def test_a_webhook_url_without_a_usable_host_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="ELDERCARE_EMERGENCY_WEBHOOK_URL"):
        load_settings(webhook_env(ELDERCARE_EMERGENCY_WEBHOOK_URL=url))


@pytest.mark.parametrize(
    "url",
    ["https://sms.example/hook", "http://127.0.0.1:8080/sms?to=duty", "https://[::1]:8443/x"],
)
def test_a_webhook_url_with_a_host_is_taken(url: str) -> None:
    settings = load_settings(webhook_env(ELDERCARE_EMERGENCY_WEBHOOK_URL=url))
    assert settings.emergency_webhook_url == url
    assert settings.emergency_webhook_secret == WEBHOOK_SECRET


# The last is five characters of three bytes each: 15 bytes.
@pytest.mark.parametrize("secret", [None, "", "fifteen-bytes!!", "短密钥短密"])
def test_a_webhook_url_needs_a_secret_of_sixteen_bytes(secret: str | None) -> None:
    env = webhook_env()
    if secret is None:
        del env["ELDERCARE_EMERGENCY_WEBHOOK_SECRET"]
    else:
        env["ELDERCARE_EMERGENCY_WEBHOOK_SECRET"] = secret
    with pytest.raises(SettingsError, match="ELDERCARE_EMERGENCY_WEBHOOK_SECRET"):
        load_settings(env)


def test_sixteen_bytes_of_utf8_are_enough_and_no_url_needs_no_secret() -> None:
    secret = "密钥密钥密钥ab"  # 6 characters of 3 bytes and 2 of one: 20 bytes
    assert load_settings(webhook_env(ELDERCARE_EMERGENCY_WEBHOOK_SECRET=secret))
    assert load_settings({"ELDERCARE_EMERGENCY_WEBHOOK_SECRET": ""}).emergency_webhook_url == ""
    assert load_settings({}).emergency_webhook_secret == ""


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ELDERCARE_EMERGENCY_WEBHOOK_ATTEMPTS", "21"),
        ("ELDERCARE_EMERGENCY_WEBHOOK_ATTEMPTS", "25"),
        ("ELDERCARE_EMERGENCY_WEBHOOK_BACKOFF_SECONDS", "61"),
    ],
)
def test_webhook_counts_out_of_range_are_refused(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(webhook_env(**{variable: value}))


def test_webhook_counts_at_their_bounds_are_taken() -> None:
    settings = load_settings(
        webhook_env(
            ELDERCARE_EMERGENCY_WEBHOOK_ATTEMPTS="20",
            ELDERCARE_EMERGENCY_WEBHOOK_BACKOFF_SECONDS="60",
        )
    )
    assert (settings.emergency_webhook_attempts, settings.emergency_webhook_backoff_seconds) == (
        20,
        60,
    )


def test_a_bad_webhook_stops_the_service_before_it_starts(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ELDERCARE_DATA_DIR": str(tmp_path),
        "ELDERCARE_EMERGENCY_WEBHOOK_URL": "http://:80",
        "ELDERCARE_EMERGENCY_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "market.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ELDERCARE_EMERGENCY_WEBHOOK_URL" in result.stderr and "Traceback" not in result.stderr
    # Nothing was opened: no database file, no keys.
    assert list(tmp_path.iterdir()) == []


def test_a_series_horizon_beyond_92_days_is_refused() -> None:
    # 92 days of a daily series stay within the 100 bookings one request may create.
    with pytest.raises(SettingsError, match="ELDERCARE_SERIES_HORIZON_DAYS must be 1-92"):
        load_settings({"ELDERCARE_SERIES_HORIZON_DAYS": "93"})
    assert load_settings({"ELDERCARE_SERIES_HORIZON_DAYS": "92"}).series_horizon_days == 92
