"""Reports by service category: a chain's minutes per category, kind and period.

- `month_periods(first, last, tz=)`: the calendar months from `first`'s to `last`'s, cut in
  the time zone `tz` (a district's months start at its local midnight, not at UTC's).
- `category_report(store, district, periods, category=)`: for each period, the entries with
  start <= at_ms < end summed by (service category, kind); one query per period, served by the
  (district, at_ms, category) index (migration 0006).

Kinds are reported as stored, nothing netted: a reversal is its own line beside what it
compensates, a hold counts when placed and its post or void on their own lines. Entries
without a category form the `None` category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from ledger.storage.base import CategoryTotal, ChainStore

MAX_PERIODS = 36  # three years of months: a report stays a bounded number of queries


@dataclass(frozen=True)
class Period:
    label: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class PeriodTotals:
    period: Period
    totals: tuple[CategoryTotal, ...]


@dataclass(frozen=True)
class CategoryReport:
    district: str
    category: str | None  # the one category asked for, or None for all of them
    periods: tuple[PeriodTotals, ...]


def _month_start_ms(year: int, month: int, tz: tzinfo) -> int:
    return int(datetime(year, month, 1, tzinfo=tz).timestamp()) * 1000


def month_count(first: date, last: date) -> int:
    """How many calendar months `first`'s month to `last`'s month spans (0 if backwards)."""
    return max((last.year - first.year) * 12 + last.month - first.month + 1, 0)


def month_periods(first: date, last: date, *, tz: tzinfo) -> list[Period]:
    """The months from `first`'s to `last`'s (days are ignored), 1 to `MAX_PERIODS` of them."""
    count = month_count(first, last)
    if not 1 <= count <= MAX_PERIODS:
        raise ValueError(f"{count} months: a report covers 1 to {MAX_PERIODS}")
    periods = []
    year, month = first.year, first.month
    for _ in range(count):
        after_year, after_month = (year + 1, 1) if month == 12 else (year, month + 1)
        periods.append(
            Period(
                label=f"{year:04d}-{month:02d}",
                start_ms=_month_start_ms(year, month, tz),
                end_ms=_month_start_ms(after_year, after_month, tz),
            )
        )
        year, month = after_year, after_month
    return periods


async def category_report(
    store: ChainStore,
    district: str,
    periods: Sequence[Period],
    *,
    category: str | None = None,
) -> CategoryReport:
    """Minutes and entries per (category, kind) in each period; only `category`'s if given."""
    if len(periods) > MAX_PERIODS:
        raise ValueError(f"{len(periods)} periods: a report covers at most {MAX_PERIODS}")
    rows = []
    for period in periods:
        totals = await store.category_totals(
            district, start_ms=period.start_ms, end_ms=period.end_ms, category=category
        )
        rows.append(PeriodTotals(period, tuple(totals)))
    return CategoryReport(district, category, tuple(rows))
