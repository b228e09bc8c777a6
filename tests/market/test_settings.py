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
