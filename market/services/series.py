"""Recurring series after creation: read them, skip or move one occurrence, end the series.

The bookings are the truth: skipping cancels the occurrence's booking through the ordinary
cancellation (same window rules, same effects, its own transaction), moving reschedules a
booking nobody has taken yet, ending cancels every occurrence still ahead. An occurrence the
rolling horizon has not booked yet is skipped or moved by noting it on the series (under the
row lock the horizon books under), and the horizon books it accordingly. The series row keeps
the exceptions as a record for people reading it later: a move notes itself in the booking's
transaction; a skip right after its cancellation commits; ending sets the last day first and
then cancels occurrence by occurrence, so a failure half-way is finished by calling it again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from market import lifecycle
from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.lifecycle import Action, Change, Party
from market.models import Booking, RecurringSeries, Role, User
from market.schemas.bookings import CancelBooking
from market.schemas.series import EndSeries, MoveOccurrence, SkipOccurrence
from market.services import bookings
from market.services.access import can_see_elder
from market.services.auth import now_utc
from market.services.booking_tx import BookingTransaction, booking_transaction
from market.services.matching_loop import LOCAL_TIME
from market.services.requests import MAX_AHEAD, PAST_TOLERANCE
from market.services.scope import Principal
from market.services.series_expansion import BookingTemplate, occurrences, on_pattern

# An occurrence moves within a week either way, so it stays that week's occurrence.
MAX_MOVE = timedelta(days=7)


async def _series(principal: Principal, series_id: UUID) -> RecurringSeries:
    series = await RecurringSeries.get_or_none(id=series_id)
    if series is None:
        raise NotFound("series_not_found", f"no recurring series {series_id}")
    elder = await User.get(id=series.elder_id)  # type: ignore[attr-defined]
    if not await can_see_elder(principal, elder):
        raise Forbidden("series_forbidden", "only the elder, linked family or the centre")
    return series


def _party(principal: Principal, series: RecurringSeries) -> Party:
    if principal.administers(series.district_id):
        return Party.centre
    return Party.elder_side


async def _occurrence(series: RecurringSeries, occurrence: date) -> Booking:
    booking = await Booking.get_or_none(series_id=series.id, occurrence=occurrence)
    if booking is None:
        raise NotFound(
            "occurrence_not_found", f"series {series.id} has no occurrence on {occurrence}"
        )
    return booking


def _booked_through(series: RecurringSeries) -> str | None:
    # Series made before the rolling horizon were booked whole at creation, up to `until`.
    through = series.expanded_through or series.until
    return through.isoformat() if through else None


def series_json(series: RecurringSeries, rows: list[Booking]) -> dict[str, Any]:
    return {
        "id": str(series.id),
        "elder_id": str(series.elder_id),  # type: ignore[attr-defined]
        "district_id": str(series.district_id),
        "service": series.service,
        "weekdays": series.weekdays,
        "start_time": series.start_time,
        # None: open-ended; `booked_through`: how far ahead its occurrences are booked now.
        "until": series.until.isoformat() if series.until else None,
        "booked_through": _booked_through(series),
        "exceptions": series.exceptions,
        "occurrences": [
            {
                "booking_id": str(b.id),
                "occurrence": b.occurrence.isoformat() if b.occurrence else None,
                "window_start": b.window_start.isoformat(),
                "window_end": b.window_end.isoformat(),
                "state": b.state.value,
            }
            for b in rows
        ],
    }


async def _view(series: RecurringSeries) -> dict[str, Any]:
    rows = await Booking.filter(series_id=series.id).order_by("occurrence", "id")
    return series_json(series, rows)


async def view(principal: Principal, series_id: UUID) -> dict[str, Any]:
    return await _view(await _series(principal, series_id))


async def list_for_elder(principal: Principal, elder_id: UUID) -> list[dict[str, Any]]:
    elder = await User.get_or_none(id=elder_id, role=Role.elder)
    if elder is None:
        raise NotFound("elder_not_found", f"no elder {elder_id}")
    if not await can_see_elder(principal, elder):
        raise Forbidden("series_forbidden", "only the elder, linked family or the centre")
    rows = await RecurringSeries.filter(elder_id=elder_id).order_by("created_at", "id")
    return [await _view(s) for s in rows]


async def _note_in(
    tx: BookingTransaction, series_id: UUID, kind: str, occurrence: date, value: str | None
) -> None:
    """Record an exception on the series row, under its lock so concurrent notes all stay."""
    row = (
        await RecurringSeries.filter(id=series_id).using_db(tx.connection).select_for_update().get()
    )
    exceptions = {"skip": [], "move": {}, **row.exceptions}
    if kind == "skip":
        exceptions["skip"] = sorted({*exceptions["skip"], occurrence.isoformat()})
    else:
        exceptions["move"] = {**exceptions["move"], occurrence.isoformat(): value}
    await RecurringSeries.filter(id=series_id).using_db(tx.connection).update(exceptions=exceptions)


def _planned_start(series: RecurringSeries, occurrence: date) -> datetime | None:
    """When `occurrence` would start if the horizon has not booked it yet (on the pattern,
    after `expanded_through`, not skipped); None otherwise."""
    if series.template is None or series.expanded_through is None:
        return None  # booked whole at creation
    if occurrence <= series.expanded_through:
        return None
    _, first_start = BookingTemplate.from_json(series.template)
    weekdays = set(series.weekdays)  # type: ignore[arg-type]
    if not on_pattern(occurrence, first=first_start.date(), weekdays=weekdays, until=series.until):
        return None
    skips = {date.fromisoformat(d) for d in (series.exceptions or {}).get("skip", [])}
    starts = occurrences(
        first_start, weekdays=weekdays, days=(occurrence, occurrence), skips=skips, moves={}
    )
    return starts[0][1] if starts else None


async def _note_ahead(
    series_id: UUID,
    occurrence: date,
    kind: str,
    value: str | None,
    check: Callable[[datetime], None] | None = None,
) -> bool:
    """Record a skip or move of an occurrence the horizon has not booked yet, under the series
    row's lock (the horizon books under the same lock); False if it was booked meanwhile."""
    async with booking_transaction() as tx:
        row = (
            await RecurringSeries.filter(id=series_id)
            .using_db(tx.connection)
            .select_for_update()
            .get()
        )
        planned = _planned_start(row, occurrence)
        if planned is None:
            return False
        if check is not None:
            check(planned)
        await _note_in(tx, series_id, kind, occurrence, value)
    return True


async def skip(principal: Principal, series_id: UUID, cmd: SkipOccurrence) -> dict[str, Any]:
    series = await _series(principal, series_id)
    # Not booked yet (beyond the rolling horizon): noted on the series, the horizon skips it.
    ahead = _planned_start(series, cmd.occurrence) is not None
    if ahead and await _note_ahead(series.id, cmd.occurrence, "skip", None):
        return await _view(await RecurringSeries.get(id=series.id))
    booking = await _occurrence(series, cmd.occurrence)
    await bookings.cancel(principal, booking.id, CancelBooking(reason=cmd.reason))
    async with booking_transaction() as tx:
        await _note_in(tx, series.id, "skip", cmd.occurrence, None)
    return await _view(await RecurringSeries.get(id=series.id))


def _check_move(planned: datetime, to: datetime, now: datetime) -> None:
    def problem(text: str) -> InvalidInput:
        return InvalidInput("invalid_input", f"to {text}", [{"field": "to", "problem": text}])

    if to < now - PAST_TOLERANCE:
        raise problem("must not be in the past")
    if to > now + MAX_AHEAD:
        raise problem("must be within a year")
    if abs(to - planned) > MAX_MOVE:
        raise problem("must be within 7 days of the occurrence's time")


async def move(principal: Principal, series_id: UUID, cmd: MoveOccurrence) -> dict[str, Any]:
    series = await _series(principal, series_id)
    if _planned_start(series, cmd.occurrence) is not None:
        now = now_utc()
        moved = await _note_ahead(
            series.id,
            cmd.occurrence,
            "move",
            cmd.to.isoformat(),
            lambda planned: _check_move(planned, cmd.to, now),
        )
        if moved:
            return await _view(await RecurringSeries.get(id=series.id))
    booking = await _occurrence(series, cmd.occurrence)
    party = _party(principal, series)
    now = now_utc()
    # Once a helper has taken it, an occurrence is cancelled and booked anew, not moved.
    lifecycle.check(Action.reschedule, party, booking.id, booking.state)
    _check_move(booking.window_start, cmd.to, now)
    length = booking.window_end - booking.window_start
    change = Change(
        Action.reschedule,
        cmd.reason,
        detail={"from": booking.window_start.isoformat(), "to": cmd.to.isoformat()},
        columns={"window_start": cmd.to, "window_end": cmd.to + length},
    )
    async with booking_transaction() as tx:
        await lifecycle.apply(
            tx,
            booking,
            change,
            bookings.actor(principal, party),
            now=now,
            streams=bookings.streams_for(booking),
        )
        await bookings.withdraw_open_offers(tx, booking, now)
        await _note_in(tx, series.id, "move", cmd.occurrence, cmd.to.isoformat())
    return await _view(await RecurringSeries.get(id=series.id))


async def end(principal: Principal, series_id: UUID, cmd: EndSeries) -> dict[str, Any]:
    """End the series today (the elder's local day) and cancel every occurrence not yet
    served; calling it again finishes what a failure left."""
    series = await _series(principal, series_id)
    today = datetime.now(LOCAL_TIME).date()
    if series.until is None or series.until > today:
        await RecurringSeries.filter(id=series.id).update(until=today)
        series.until = today
    ahead = await Booking.filter(
        series_id=series.id, state__in=sorted(lifecycle.LIVE_BEFORE_SERVICE)
    ).order_by("occurrence", "id")
    for booking in ahead:
        try:
            await bookings.cancel(principal, booking.id, CancelBooking(reason=cmd.reason))
        except Conflict:
            # Taken or finished meanwhile: it is no longer ahead.
            continue
    return await _view(series)
