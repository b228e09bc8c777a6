"""Booking tests drive the matching loop by hand (`run_round(now=...)`), so it is off here."""

from __future__ import annotations

from pathlib import Path

import pytest

from market.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        keys_dir=tmp_path / "keys",
        matching_enabled=False,
    )
