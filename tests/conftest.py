"""Suite-wide configuration.

`DATABASE_URL` picks the store for storage and market tests (SQLite by default). Tests marked
`postgres` run only when it points at PostgreSQL; tests marked `redis` skip when no Redis
answers. With `REQUIRE_POSTGRES=1` or `REQUIRE_REDIS=1` (set by .ci/run) a skipped test of that
mark fails the run instead of passing quietly.

`ELDERCARE_TEST_SCOPE=database` (set by .ci/run for its PostgreSQL pass) keeps only the tests
that reach the store `DATABASE_URL` names: those marked `postgres` and those using the market's
`db_factory` fixture. The rest (pure ledger and matching code, the browser tests on their own
SQLite server) do not depend on it and ran in the SQLite pass already.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

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


# A skipped test with one of these marks fails the run when its variable is 1.
REQUIRING_VARIABLES = {"postgres": "REQUIRE_POSTGRES", "redis": "REQUIRE_REDIS"}
_skipped: dict[str, list[str]] = {mark: [] for mark in REQUIRING_VARIABLES}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        for mark, nodeids in _skipped.items():
            if mark in report.keywords:
                nodeids.append(report.nodeid)


def unmet_requirements(skipped: dict[str, list[str]], environ: Mapping[str, str]) -> list[str]:
    """One line per required mark whose tests were skipped; empty when nothing is missing."""
    return [
        f"{variable}=1 but {len(skipped[mark])} tests marked {mark} were skipped, "
        f"first: {skipped[mark][0]}"
        for mark, variable in REQUIRING_VARIABLES.items()
        if environ.get(variable) == "1" and skipped.get(mark)
    ]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    problems = unmet_requirements(_skipped, os.environ)
    if not problems:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in problems:
            reporter.write_line(line, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
