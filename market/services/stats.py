"""Figures for the centre's dashboard, per local day of service, from the bookings and their
transition log (`booking_event`).

A booking counts on the local day its window starts. Per day:
- `bookings`: bookings of the day; `emergencies` among them;
- `withdrawn`: cancelled before any helper accepted (the elder's side changed its mind; not a
  matching failure, so left out of the match rate);
- `matched`: bookings a helper accepted at some point (the first `accepted` transition);
- `match_rate_bp`: matched / (bookings - withdrawn) in basis points, null without bookings;
- time to match: minutes from the request to the first acceptance, median and 90th
  percentile (nearest rank) over the day's matched bookings;
- `served_minutes`: minutes served by the day's bookings (checked out).
The computation over rows (`day_figures`) is pure; `district_stats` reads the rows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from market.models import Booking, BookingEvent, BookingState
from market.services.districts import get_district
from market.services.scope import Principal, district_subtree, require_admin_of

# The days the matching loop plans in; the dashboard speaks the same calendar.
LOCAL_TIME = ZoneInfo("Asia/Shanghai")
DAYS_MAX = 92
# Booking ids per query, well under SQLite's and PostgreSQL's bound-parameter limits.
CHUNK = 500


@dataclass(frozen=True)
class BookingRow:
    id: UUID
    day: date
    state: BookingState
    emergency: bool
    served_minutes: int


@dataclass(frozen=True)
class DayFigures:
    day: date
    bookings: int
    emergencies: int
    withdrawn: int
    matched: int
    served_minutes: int
    match_minutes: tuple[int, ...]  # sorted minutes from request to first acceptance

    @property
    def match_rate_bp(self) -> int | None:
        asked = self.bookings - self.withdrawn
        return None if asked <= 0 else self.matched * 10_000 // asked

    @property
    def median_minutes(self) -> int | None:
        return nearest_rank(self.match_minutes, 50)

    @property
    def p90_minutes(self) -> int | None:
        return nearest_rank(self.match_minutes, 90)


def nearest_rank(sorted_values: Sequence[int], percent: int) -> int | None:
    """The nearest-rank percentile of sorted values (an observed value, never interpolated)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(percent * len(sorted_values) / 100))
    return sorted_values[rank - 1]


def day_figures(
    days: Sequence[date],
    rows: Iterable[BookingRow],
    requested_at: dict[UUID, datetime],
    accepted_at: dict[UUID, datetime],
) -> list[DayFigures]:
    """Figures per day, for every day asked (days without bookings show zeros)."""
    by_day: dict[date, list[BookingRow]] = defaultdict(list)
    for row in rows:
        by_day[row.day].append(row)
    out = []
    for day in days:
        rows_of_day = by_day[day]
        matched = [r for r in rows_of_day if r.id in accepted_at]
        waits = sorted(
            max(0, int((accepted_at[r.id] - requested_at[r.id]).total_seconds() // 60))
            for r in matched
            if r.id in requested_at
        )
        out.append(
            DayFigures(
                day=day,
                bookings=len(rows_of_day),
                emergencies=sum(1 for r in rows_of_day if r.emergency),
                withdrawn=sum(
                    1
                    for r in rows_of_day
                    if r.state is BookingState.cancelled and r.id not in accepted_at
                ),
                matched=len(matched),
                served_minutes=sum(r.served_minutes for r in rows_of_day),
                match_minutes=tuple(waits),
            )
        )
    return out


def total(days: Sequence[DayFigures]) -> DayFigures:
    return DayFigures(
        day=days[-1].day,
        bookings=sum(d.bookings for d in days),
        emergencies=sum(d.emergencies for d in days),
        withdrawn=sum(d.withdrawn for d in days),
        matched=sum(d.matched for d in days),
        served_minutes=sum(d.served_minutes for d in days),
        match_minutes=tuple(sorted(m for d in days for m in d.match_minutes)),
    )


def local_start(day: date) -> datetime:
    return datetime.combine(day, time.min, LOCAL_TIME)


def local_today(now: datetime) -> date:
    return now.astimezone(LOCAL_TIME).date()


async def _rows(districts: frozenset[UUID], first: date, last: date) -> list[BookingRow]:
    found = await Booking.filter(
        district_id__in=sorted(districts),
        window_start__gte=local_start(first),
        window_start__lt=local_start(last + timedelta(days=1)),
    ).values_list("id", "window_start", "state", "emergency", "served_minutes")
    return [
        BookingRow(
            id=booking_id,
            day=start.astimezone(LOCAL_TIME).date(),
            state=BookingState(state),
            emergency=bool(emergency),
            served_minutes=served or 0,
        )
        for booking_id, start, state, emergency, served in found
    ]


async def _transitions(
    ids: list[UUID],
) -> tuple[dict[UUID, datetime], dict[UUID, datetime]]:
    """When each booking was requested, and when a helper first accepted it."""
    requested: dict[UUID, datetime] = {}
    accepted: dict[UUID, datetime] = {}
    for i in range(0, len(ids), CHUNK):
        events = await BookingEvent.filter(
            booking_id__in=ids[i : i + CHUNK], to_state__in=["requested", "accepted"]
        ).values_list("booking_id", "action", "to_state", "at")
        for booking_id, action, to_state, at in events:
            if action == "request":
                requested[booking_id] = min(at, requested.get(booking_id, at))
            elif to_state == "accepted":
                accepted[booking_id] = min(at, accepted.get(booking_id, at))
    return requested, accepted


async def district_stats(
    principal: Principal, district_id: UUID, *, days: int, until: date | None, now: datetime
) -> list[DayFigures]:
    """Figures for the `days` local days ending with `until` (default today), oldest first,
    over the district and every district below it."""
    district = await get_district(district_id)
    require_admin_of(principal, district.id, "see this district's figures")
    last = until or local_today(now)
    first = last - timedelta(days=days - 1)
    rows = await _rows(await district_subtree(district.id), first, last)
    requested, accepted = await _transitions(sorted(r.id for r in rows))
    calendar = [first + timedelta(days=i) for i in range(days)]
    return day_figures(calendar, rows, requested, accepted)


def figures_json(figures: DayFigures) -> dict[str, Any]:
    return {
        "bookings": figures.bookings,
        "emergencies": figures.emergencies,
        "withdrawn": figures.withdrawn,
        "matched": figures.matched,
        "match_rate_bp": figures.match_rate_bp,
        "time_to_match": {
            "matched": len(figures.match_minutes),
            "median_minutes": figures.median_minutes,
            "p90_minutes": figures.p90_minutes,
        },
        "served_minutes": figures.served_minutes,
    }


def stats_json(district_id: UUID, days: list[DayFigures]) -> dict[str, Any]:
    return {
        "district_id": str(district_id),
        "time_zone": LOCAL_TIME.key,
        "from": days[0].day.isoformat(),
        "until": days[-1].day.isoformat(),
        "days": [{"date": d.day.isoformat(), **figures_json(d)} for d in days],
        "totals": figures_json(total(days)),
    }
