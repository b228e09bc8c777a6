"""Suite-wide configuration.

`DATABASE_URL` picks the store for storage and market tests (SQLite by default). Tests marked
`postgres` run only when it points at PostgreSQL; with `REQUIRE_POSTGRES=1` (set by .ci/run)
a skipped PostgreSQL test fails the run instead of passing quietly.

`ELDERCARE_TEST_SCOPE=database` (set by .ci/run for its PostgreSQL pass) keeps only the tests
that reach the store `DATABASE_URL` names: those marked `postgres` and those using the market's
`db_factory` fixture. The rest (pure ledger and matching code, the browser tests on their own
SQLite server) do not depend on it and ran in the SQLite pass already.
"""

from __future__ import annotations

import os

import pytest

DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://", "asyncpg://"))


SCOPES = ("all", "database")
SCOPE = os.environ.get("ELDERCARE_TEST_SCOPE", "all")


def uses_database(item: pytest.Item) -> bool:
    return "postgres" in item.keywords or "db_factory" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SCOPE not in SCOPES:
        raise pytest.UsageError(f"ELDERCARE_TEST_SCOPE must be one of {', '.join(SCOPES)}")
    if SCOPE == "database":
        kept = [item for item in items if uses_database(item)]
        config.hook.pytest_deselected(items=[item for item in items if not uses_database(item)])
        items[:] = kept
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


_skipped_postgres: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "postgres" in report.keywords:
        _skipped_postgres.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("REQUIRE_POSTGRES") == "1" and _skipped_postgres:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"REQUIRE_POSTGRES=1 but {len(_skipped_postgres)} PostgreSQL tests were skipped, "
                f"first: {_skipped_postgres[0]}",
                red=True,
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
