"""The CI's PostgreSQL pass keeps exactly the tests that reach the database."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tests.conftest import uses_database


def item(keywords: set[str], fixtures: list[str]) -> Any:
    return SimpleNamespace(keywords=keywords, fixturenames=fixtures)


def test_a_postgres_marked_test_is_kept() -> None:
    assert uses_database(item({"postgres"}, []))


def test_a_test_on_the_market_database_is_kept() -> None:
    assert uses_database(item(set(), ["client", "database_url", "db_factory"]))


def test_pure_tests_are_left_to_the_sqlite_pass() -> None:
    assert not uses_database(item({"asyncio"}, ["tmp_path"]))
