"""Settings come from the environment, bad values are refused, and every one is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.settings import ENVIRONMENT, PROJECT_ROOT, SettingsError, load_settings


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


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_bad_port_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="ELDERCARE_PORT"):
        load_settings({"ELDERCARE_PORT": value})


@pytest.mark.parametrize("variable", sorted(ENVIRONMENT))
def test_every_setting_is_documented_in_readme(variable: str) -> None:
    assert f"`{variable}`" in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
