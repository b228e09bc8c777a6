"""CI fails a pass whose PostgreSQL or Redis tests were skipped (REQUIRE_POSTGRES/_REDIS)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import unmet_requirements

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = {"postgres": ["tests/a.py::test_pg"], "redis": ["tests/b.py::test_bell"]}

A_REDIS_TEST_THAT_SKIPS = """
import pytest

@pytest.mark.redis
def test_needs_redis() -> None:
    pytest.skip("no Redis here")
"""


def test_a_required_mark_with_skipped_tests_is_reported() -> None:
    assert unmet_requirements(SKIPPED, {"REQUIRE_REDIS": "1"}) == [
        "REQUIRE_REDIS=1 but 1 tests marked redis were skipped, first: tests/b.py::test_bell"
    ]


def test_both_requirements_are_reported() -> None:
    problems = unmet_requirements(SKIPPED, {"REQUIRE_POSTGRES": "1", "REQUIRE_REDIS": "1"})
    assert [line.split("=")[0] for line in problems] == ["REQUIRE_POSTGRES", "REQUIRE_REDIS"]


def test_skips_are_fine_when_nothing_is_required() -> None:
    assert unmet_requirements(SKIPPED, {}) == []
    assert unmet_requirements(SKIPPED, {"REQUIRE_REDIS": "0"}) == []


def test_a_requirement_whose_tests_all_ran_is_met() -> None:
    assert unmet_requirements({"postgres": [], "redis": []}, {"REQUIRE_REDIS": "1"}) == []


def test_a_pytest_run_with_a_skipped_redis_test_fails_when_redis_is_required(
    tmp_path: Path,
) -> None:
    (tmp_path / "test_needs.py").write_text(A_REDIS_TEST_THAT_SKIPS, encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "tests.conftest",  # the hooks under test, loaded for a test outside tests/
        "-p",
        "no:cacheprovider",
        "-c",
        os.devnull,
        "--rootdir",
        str(tmp_path),
        "-o",
        "markers=redis: needs Redis",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-q",
        str(tmp_path / "test_needs.py"),
    ]
    env = {**os.environ, "REQUIRE_REDIS": "1", "ELDERCARE_TEST_SCOPE": "all"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REQUIRE_REDIS=1 but 1 tests marked redis were skipped" in result.stdout
