"""Emergency tests drive the timers by hand (`Escalator.run_round(now=...)`), so the process's
own background loops are off here (`ELDERCARE_MATCHING_ENABLED` switches both)."""

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
