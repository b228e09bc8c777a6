"""The rolling horizon of recurring series: book each active series' occurrences ahead.

A request books a series' occurrences up to the horizon (`ELDERCARE_SERIES_HORIZON_DAYS`); this
periodic duty (started in the lifespan, `extend_all`) books the days the horizon reaches since,
up to the series' last day if it has one, so an open-ended weekly bath keeps being booked. It
makes the same bookings as the request (`series_expansion.create_bookings`), honours the skips
and moves recorded on the series, and takes the payment holds of the new bookings then.

Each series is extended in one transaction that locks its row, reads how far it is booked
(`expanded_through`), books the next days and moves the mark: several server processes running
the duty at once extend a series once. Before booking, the request's checks run again
(`requests.recheck_series_payment`): the elder still active, a relative paying hours still an
approved link the policy in force lets pay, the payment's policy rules. Occurrences refused
(by those, or hours or vouchers used up) are not booked: the series records them under
`exceptions.unbooked` with the refusal's code, the elder's and the centre's feeds get
`series.unbooked`, and the horizon moves on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.expressions import F, Q

from market import lifecycle
from market.errors import ApiError
from market.models import ElderProfile, RecurringSeries, User
from market.realtime.events import admin_stream, elder_stream
from market.services import payments
from market.services.booking_tx import BookingTransaction, booking_transaction
from market.services.districts import policy_in_force
from market.services.requests import recheck_series_payment
from market.services.runtime import Runtime
from market.services.series_expansion import (
    BookingTemplate,
    create_bookings,
    horizon_end,
    occurrences,
)

log = logging.getLogger("eldercare.series")

UNBOOKED_EVENT = "series.unbooked"


@dataclass(frozen=True)
class Plan:
    """The next days of one series to book: `days` (inclusive) and the starts in them."""

    template: BookingTemplate
    days: tuple[date, date]
    starts: list[tuple[date, datetime]]


def plan(series: RecurringSeries, *, now: datetime, horizon_days: int) -> Plan | None:
    """What extending `series` to the horizon books (pure); None when nothing is left to do."""
    if series.template is None or series.expanded_through is None:
        return None  # booked whole at creation, before the rolling horizon existed
    template, first_start = BookingTemplate.from_json(series.template)
    last = horizon_end(first_start, now, horizon_days)
    if series.until is not None:
        last = min(last, series.until)
    first = series.expanded_through + timedelta(days=1)
    if first > last:
        return None
    exceptions = series.exceptions or {}
    starts = occurrences(
        first_start,
        weekdays=set(series.weekdays),  # type: ignore[arg-type]
        days=(first, last),
        skips={date.fromisoformat(d) for d in exceptions.get("skip", [])},
        moves={
            date.fromisoformat(d): datetime.fromisoformat(to)
            for d, to in exceptions.get("move", {}).items()
        },
    )
    # Days the duty missed (the service was down) are not booked after their time.
    return Plan(template, (first, last), [(d, at) for d, at in starts if at > now])


async def _locked(tx: BookingTransaction, series_id: UUID) -> RecurringSeries:
    query = RecurringSeries.filter(id=series_id).using_db(tx.connection)
    return await query.select_for_update().get()


async def _book(
    tx: BookingTransaction, runtime: Runtime, series: RecurringSeries, todo: Plan, now: datetime
) -> int:
    template = todo.template
    elder = await User.get(id=template.elder_id).using_db(tx.connection)
    profile = await ElderProfile.get(user_id=elder.id).using_db(tx.connection)
    version, policy = await policy_in_force(template.district_id, now)
    await recheck_series_payment(
        template,
        elder,
        profile,
        version=version,
        policy=policy,
        today=now.date(),
        connection=tx.connection,
    )
    held = payments.Request(
        payment=template.payment,
        elder=elder,
        profile=profile,
        payer_id=template.payer_id,
        service=template.service,
        duration=template.duration_minutes,
        starts=[at for _, at in todo.starts],
        version=version,
        policy=policy,
    )
    # Refusals (hours or vouchers used up, policy) raise and roll the transaction back.
    terms = await payments.hold_terms(runtime.ledger, held, tx.connection)
    booked = await create_bookings(
        tx,
        runtime,
        template,
        list(todo.starts),
        terms,
        series=series,
        policy_version=version,
        actor=lifecycle.SYSTEM,
        now=now,
    )
    return len(booked)


async def _mark(tx: BookingTransaction, series_id: UUID, through: date, **changes: Any) -> None:
    await (
        RecurringSeries.filter(id=series_id)
        .using_db(tx.connection)
        .update(expanded_through=through, **changes)
    )


async def _note_unbooked(
    series_id: UUID, refused: ApiError, *, now: datetime, horizon: int
) -> None:
    """Record the occurrences a refusal left unbooked and move the horizon past them."""
    async with booking_transaction() as tx:
        series = await _locked(tx, series_id)
        todo = plan(series, now=now, horizon_days=horizon)
        if todo is None:
            return  # another process dealt with these days meanwhile
        exceptions = {"skip": [], "move": {}, **(series.exceptions or {})}
        days = [d.isoformat() for d, _ in todo.starts]
        exceptions["unbooked"] = {
            **exceptions.get("unbooked", {}),
            **dict.fromkeys(days, refused.code),
        }
        await _mark(tx, series_id, todo.days[1], exceptions=exceptions)
        if days:
            await tx.publish(
                [elder_stream(todo.template.elder_id), admin_stream(todo.template.district_id)],
                UNBOOKED_EVENT,
                {
                    "series": str(series_id),
                    "occurrences": days,
                    "code": refused.code,
                    "message": refused.message,
                },
            )


async def extend(runtime: Runtime, series_id: UUID, *, now: datetime) -> int:
    """Book one series up to the horizon; returns how many bookings were made."""
    horizon = runtime.settings.series_horizon_days
    try:
        async with booking_transaction() as tx:
            series = await _locked(tx, series_id)
            todo = plan(series, now=now, horizon_days=horizon)
            if todo is None:
                return 0
            made = await _book(tx, runtime, series, todo, now) if todo.starts else 0
            await _mark(tx, series_id, todo.days[1])
            return made
    except ApiError as refused:
        log.info("series %s: occurrences left unbooked: %s", series_id, refused.code)
        await _note_unbooked(series_id, refused, now=now, horizon=horizon)
        return 0


async def extend_all(runtime: Runtime, now: datetime) -> int:
    """One tick of the duty: extend every series the horizon has moved past."""
    horizon = runtime.settings.series_horizon_days
    # Only series booked short of the horizon (a day's slack for the series' own UTC offset,
    # which `plan` applies exactly), so a tick does not parse every series in the city.
    short_of = now.date() + timedelta(days=horizon + 1)
    active = RecurringSeries.filter(template__isnull=False, expanded_through__lt=short_of).filter(
        Q(until__isnull=True) | Q(until__gt=F("expanded_through"))
    )
    made = 0
    for series in await active.order_by("id"):
        # Checked without a lock first: most ticks find most series already booked far enough.
        if plan(series, now=now, horizon_days=horizon) is None:
            continue
        try:
            made += await extend(runtime, series.id, now=now)
        except Exception:
            # One series that cannot be booked (a row gone, a bug) must not stall the others.
            log.exception("series %s: the horizon could not book it", series.id)
    if made:
        log.info("series horizon: %d bookings made", made)
    return made
