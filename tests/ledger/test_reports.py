"""Reports by service category: month periods in a district's time zone, and the minutes per
category and kind in each, on every store; the index that serves them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from ledger.entries import Kind
from ledger.reports import MAX_PERIODS, Period, category_report, month_periods
from ledger.rules import Proposal
from ledger.service import append, append_batch
from ledger.storage.base import CategoryTotal, ChainStore
from ledger.storage.tortoise_store import TortoiseStore

SHANGHAI = ZoneInfo("Asia/Shanghai")


def ms(*parts: int) -> int:
    """Unix milliseconds of a Shanghai wall-clock time."""
    return int(datetime(*parts, tzinfo=SHANGHAI).timestamp()) * 1000  # type: ignore[misc]


JAN, FEB, MAR = (ms(2026, m, 1) for m in (1, 2, 3))


def entry(
    pid: str,
    kind: Kind,
    minutes: int,
    at_ms: int,
    *,
    user: str = "user:v",
    category: str | None = "meal",
    district: str = "A",
    ref: str | None = None,
) -> Proposal:
    debit, credit = ("issuance", user) if kind is Kind.DEPOSIT else (user, "issuance")
    return Proposal(
        district, pid, kind, debit, credit, minutes, "centre", 1, at_ms, category=category, ref=ref
    )


class TestMonthPeriods:
    def test_months_start_at_local_midnight(self) -> None:
        (jan,) = month_periods(date(2026, 1, 1), date(2026, 1, 1), tz=SHANGHAI)
        assert jan == Period("2026-01", JAN, FEB)
        assert datetime.fromtimestamp(jan.start_ms / 1000, UTC) == datetime(
            2025, 12, 31, 16, tzinfo=UTC
        )

    def test_across_a_year_end_days_ignored(self) -> None:
        periods = month_periods(date(2025, 11, 30), date(2026, 2, 1), tz=SHANGHAI)
        assert [p.label for p in periods] == ["2025-11", "2025-12", "2026-01", "2026-02"]
        assert all(a.end_ms == b.start_ms for a, b in pairwise(periods))
        assert periods[-1].end_ms == MAR

    def test_backwards_is_refused(self) -> None:
        with pytest.raises(ValueError, match="0 months"):
            month_periods(date(2026, 2, 1), date(2026, 1, 1), tz=SHANGHAI)

    def test_more_than_the_maximum_is_refused(self) -> None:
        with pytest.raises(ValueError, match=f"1 to {MAX_PERIODS}"):
            month_periods(date(2023, 1, 1), date(2026, 1, 1), tz=SHANGHAI)

    def test_the_maximum_is_allowed(self) -> None:
        periods = month_periods(date(2023, 2, 1), date(2026, 1, 1), tz=SHANGHAI)
        assert len(periods) == MAX_PERIODS


async def history(store: ChainStore) -> None:
    await append_batch(
        store,
        [
            entry("d1", Kind.DEPOSIT, 60, JAN),  # the first millisecond of January
            entry("d2", Kind.DEPOSIT, 30, FEB - 1),  # the last of January
            entry("d3", Kind.DEPOSIT, 45, FEB, category="bathing"),
            entry("d4", Kind.DEPOSIT, 20, FEB + 5, category=None),
            entry("r1", Kind.REDEEM, 25, FEB + 9),
            entry("x1", Kind.REVERSE, 30, FEB + 10, ref="d2"),
            entry("o1", Kind.DEPOSIT, 99, FEB + 1, district="B"),  # another chain
            entry("m1", Kind.DEPOSIT, 15, MAR),  # after the report
        ],
    )


def three_months() -> list[Period]:
    return month_periods(date(2025, 12, 1), date(2026, 2, 1), tz=SHANGHAI)


class TestCategoryReport:
    async def test_minutes_per_category_kind_and_month(self, store: ChainStore) -> None:
        await history(store)
        report = await category_report(store, "A", three_months())
        assert report.district == "A" and report.category is None
        by_label = {row.period.label: row.totals for row in report.periods}
        assert list(by_label) == ["2025-12", "2026-01", "2026-02"]
        assert by_label["2025-12"] == ()
        assert by_label["2026-01"] == (CategoryTotal("meal", "deposit", 2, 90),)
        assert by_label["2026-02"] == (
            CategoryTotal(None, "deposit", 1, 20),  # uncategorised first
            CategoryTotal("bathing", "deposit", 1, 45),
            CategoryTotal("meal", "redeem", 1, 25),
            CategoryTotal("meal", "reverse", 1, 30),  # its own line, not netted
        )

    async def test_one_category_only(self, store: ChainStore) -> None:
        await history(store)
        report = await category_report(store, "A", three_months(), category="meal")
        assert report.category == "meal"
        assert [row.totals for row in report.periods] == [
            (),
            (CategoryTotal("meal", "deposit", 2, 90),),
            (CategoryTotal("meal", "redeem", 1, 25), CategoryTotal("meal", "reverse", 1, 30)),
        ]

    async def test_an_unknown_category_or_chain_reports_nothing(self, store: ChainStore) -> None:
        await history(store)
        nothing = await category_report(store, "A", three_months(), category="gardening")
        assert all(row.totals == () for row in nothing.periods)
        empty_chain = await category_report(store, "Z", three_months())
        assert all(row.totals == () for row in empty_chain.periods)

    async def test_totals_follow_new_entries(self, store: ChainStore) -> None:
        await history(store)
        await append(store, entry("d5", Kind.DEPOSIT, 10, JAN + 7))
        (jan,) = (await category_report(store, "A", month_periods(
            date(2026, 1, 1), date(2026, 1, 1), tz=SHANGHAI
        ))).periods  # fmt: skip
        assert jan.totals == (CategoryTotal("meal", "deposit", 3, 100),)

    async def test_too_many_periods_are_refused(self, store: ChainStore) -> None:
        periods = [Period(f"p{i}", i, i + 1) for i in range(MAX_PERIODS + 1)]
        with pytest.raises(ValueError, match=f"at most {MAX_PERIODS}"):
            await category_report(store, "A", periods)


async def index_columns(store: TortoiseStore, name_part: str) -> list[list[str]]:
    """Columns of each ledger_entry index whose name holds `name_part`, in key order."""
    if store.postgres:
        rows = await store.client.execute_query_dict(
            "SELECT i.indexrelid::regclass::text AS name, array_agg(a.attname::text "
            "ORDER BY array_position(i.indkey, a.attnum)) AS cols FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = 'ledger_entry'::regclass GROUP BY i.indexrelid"
        )
        return sorted(list(r["cols"]) for r in rows if name_part in r["name"])
    found = []
    for index in await store.client.execute_query_dict("PRAGMA index_list(ledger_entry)"):
        if name_part in index["name"]:
            info = await store.client.execute_query_dict(f"PRAGMA index_info('{index['name']}')")
            found.append([r["name"] for r in sorted(info, key=lambda r: r["seqno"])])
    return sorted(found)


async def test_the_category_index_exists(db_store: ChainStore) -> None:
    assert isinstance(db_store, TortoiseStore)
    assert ["district", "at_ms", "category"] in await index_columns(db_store, "ledger_entr")
