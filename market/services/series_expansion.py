"""Booking a recurring series' occurrences: which days, and the bookings they become.

Shared by the request that creates a series (`market.services.requests`) and by the rolling
horizon that books further occurrences later (`market.services.series_horizon`), so both make
the same bookings: same window, place, payment and series link (the matching loop keeps the
series' helper from one occurrence to the next through that link).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from market import lifecycle
from market.lifecycle import ActorRef
from market.models import Booking, Payment, RecurringSeries
from market.policy import ServiceCode
from market.services.booking_tx import BookingTransaction
from market.services.bookings import CODE_PURPOSE, streams_for
from market.services.payments import Terms
from market.services.runtime import Runtime

Occurrence = tuple[date | None, datetime]


@dataclass(frozen=True)
class BookingTemplate:
    """What every booking of one request (or series) is made of, apart from its start."""

    district_id: UUID
    elder_id: UUID
    created_by_id: UUID
    service: ServiceCode
    window_seconds: int
    duration_minutes: int
    latitude: float
    longitude: float
    notes: str
    needs_lifting: bool
    payment: Payment
    payer_id: UUID | None

    def to_json(self, first_start: datetime) -> dict[str, Any]:
        """The series row's `template`, with the first window's start the days count from."""
        raw = asdict(self)
        for key in ("district_id", "elder_id", "created_by_id", "payer_id"):
            raw[key] = str(raw[key]) if raw[key] is not None else None
        return {
            **raw,
            "service": self.service.value,
            "payment": self.payment.value,
            "first_start": first_start.isoformat(),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> tuple[BookingTemplate, datetime]:
        payer = raw["payer_id"]
        template = cls(
            district_id=UUID(raw["district_id"]),
            elder_id=UUID(raw["elder_id"]),
            created_by_id=UUID(raw["created_by_id"]),
            service=ServiceCode(raw["service"]),
            window_seconds=int(raw["window_seconds"]),
            duration_minutes=int(raw["duration_minutes"]),
            latitude=float(raw["latitude"]),
            longitude=float(raw["longitude"]),
            notes=str(raw["notes"]),
            needs_lifting=bool(raw["needs_lifting"]),
            payment=Payment(raw["payment"]),
            payer_id=UUID(payer) if payer is not None else None,
        )
        return template, datetime.fromisoformat(raw["first_start"])


def horizon_end(first_start: datetime, now: datetime, horizon_days: int) -> date:
    """The last day the rolling horizon reaches at `now`; days are counted in the first
    window's UTC offset, as the series' occurrence days are."""
    return now.astimezone(first_start.tzinfo).date() + timedelta(days=horizon_days)


def on_pattern(day: date, *, first: date, weekdays: Collection[int], until: date | None) -> bool:
    """Whether the series has an occurrence on `day` (before any skip or move)."""
    return first <= day and (until is None or day <= until) and day.weekday() in weekdays


def occurrences(
    first_start: datetime,
    *,
    weekdays: Collection[int],
    days: tuple[date, date],
    skips: Collection[date],
    moves: Mapping[date, datetime],
) -> list[tuple[date, datetime]]:
    """(occurrence day, start) of the series' bookings from `days[0]` to `days[1]` inclusive:
    the first window's time of day on each of `weekdays`, less skips, moved where moved."""
    first = first_start.date()
    out: list[tuple[date, datetime]] = []
    day = max(days[0], first)
    while day <= days[1]:
        if day.weekday() in weekdays and day not in skips:
            moved = moves.get(day)
            at = moved if moved is not None else first_start + timedelta(days=(day - first).days)
            out.append((day, at))
        day += timedelta(days=1)
    return out


async def create_bookings(
    tx: BookingTransaction,
    runtime: Runtime,
    template: BookingTemplate,
    starts: Sequence[Occurrence],
    terms: Sequence[Terms],
    *,
    series: RecurringSeries | None,
    policy_version: int,
    actor: ActorRef,
    now: datetime,
) -> list[UUID]:
    """One `requested` booking per (occurrence, start), with its payment terms, logged and
    published in `tx`."""
    window = timedelta(seconds=template.window_seconds)
    ids = []
    for (occurrence, at), term in zip(starts, terms, strict=True):
        booking = await Booking.create(
            district_id=template.district_id,
            elder_id=template.elder_id,
            created_by_id=template.created_by_id,
            service=template.service.value,
            emergency=template.service is ServiceCode.EMERGENCY,
            window_start=at,
            window_end=at + window,
            duration_minutes=template.duration_minutes,
            latitude=template.latitude,
            longitude=template.longitude,
            notes=template.notes,
            needs_lifting=template.needs_lifting,
            payment=template.payment,
            payer_id=template.payer_id,
            policy_version=policy_version,
            series=series,
            occurrence=occurrence,
            confirm_code_enc=runtime.crypto.encrypt(
                f"{secrets.randbelow(10**6):06d}", purpose=CODE_PURPOSE
            ),
            **term.columns(),
            using_db=tx.connection,
        )
        await lifecycle.record_creation(tx, booking, actor, now=now, streams=streams_for(booking))
        ids.append(booking.id)
    return ids
