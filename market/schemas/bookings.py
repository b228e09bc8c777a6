"""Commands of the booking lifecycle: requests, offers, check-in/out, confirmation, disputes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from market.lifecycle import NoShowSide
from market.models import BookingState, HelperListKind, Payment
from market.policy import ServiceCode
from market.schemas.common import Latitude, Longitude
from market.schemas.parse import Items, Range, Text

Reason = Annotated[str, Text(1, 500)]
Notes = Annotated[str, Text(0, 2000)]
Code = Annotated[str, Text(4, 12, r"[0-9]+")]
Weekday = Annotated[int, Range(0, 6)]


@dataclass(frozen=True)
class Place:
    latitude: Latitude
    longitude: Longitude


@dataclass(frozen=True)
class MovedOccurrence:
    occurrence: date
    to: datetime


@dataclass(frozen=True)
class Recurrence:
    """Repeat on these weekdays (0 = Monday) at the first window's time of day until `until`
    (within a year), or without end when `until` is absent: the service books the occurrences
    some weeks ahead and keeps booking as time goes on."""

    weekdays: Annotated[list[Weekday], Items(1, 7)]
    until: date | None = None
    skip: Annotated[list[date], Items(0, 100)] = field(default_factory=list)
    move: Annotated[list[MovedOccurrence], Items(0, 100)] = field(default_factory=list)


@dataclass(frozen=True)
class CreateRequest:
    service: ServiceCode
    window_start: datetime
    payment: Payment
    # Absent for an elder booking for themself.
    elder_id: UUID | None = None
    # Defaults: the window is as long as the service's default duration.
    window_end: datetime | None = None
    duration_minutes: Annotated[int, Range(5, 720)] | None = None
    # Defaults to the elder's home.
    place: Place | None = None
    notes: Notes = ""
    needs_lifting: bool = False
    recurrence: Recurrence | None = None


@dataclass(frozen=True)
class StateReason:
    reason: Reason


@dataclass(frozen=True)
class CancelBooking:
    reason: Reason


@dataclass(frozen=True)
class DeclineOffer:
    reason: Annotated[str, Text(0, 500)] = ""


@dataclass(frozen=True)
class Position:
    latitude: Latitude
    longitude: Longitude
    # Required when the position or time is outside the district's tolerance.
    reason: Reason | None = None


@dataclass(frozen=True)
class CheckOut:
    latitude: Latitude
    longitude: Longitude
    reason: Reason | None = None
    # The elder side's one-time code, read out to the helper: checks out and confirms at once.
    code: Code | None = None


@dataclass(frozen=True)
class ConfirmBooking:
    # Needed only when a helper confirms on the elder's behalf.
    code: Code | None = None


@dataclass(frozen=True)
class DisputeBooking:
    reason: Reason


@dataclass(frozen=True)
class DecideDispute:
    decision: Literal["upheld", "rejected"]
    note: Reason


@dataclass(frozen=True)
class ReviewFlags:
    # What the centre found or did (called the family, spoke to the helper...).
    note: Reason


@dataclass(frozen=True)
class ReportNoShow:
    side: NoShowSide
    reason: Reason


@dataclass(frozen=True)
class DispatchBooking:
    helper_id: UUID
    reason: Reason


@dataclass(frozen=True)
class RateBooking:
    stars: Annotated[int, Range(1, 5)]
    comment: Annotated[str, Text(0, 1000)] = ""
    # A complaint for the centre whatever the stars (a low rating is one anyway).
    complaint: bool = False


@dataclass(frozen=True)
class HelperListEntry:
    helper_id: UUID
    # null removes the helper from the elder's lists.
    kind: HelperListKind | None


@dataclass(frozen=True)
class BookingListQuery:
    """`GET /api/v1/bookings`: newest window first (or soonest first), a page at a time."""

    state: BookingState | None = None
    service: ServiceCode | None = None
    # true: only bookings flagged for the centre (check-in/out outside tolerance, complaints).
    flagged: bool | None = None
    # soonest: the earliest window first, for work lists (the centre's queue); latest: history.
    order: Literal["latest", "soonest"] = "latest"
    limit: Annotated[int, Range(1, 500)] = 100
    offset: Annotated[int, Range(0, 1_000_000)] = 0


@dataclass(frozen=True)
class VoucherQuery:
    """`GET /api/v1/elders/{id}/vouchers`: one local month (default: the current one)."""

    month: Annotated[str, Text(7, 7, r"20[0-9]{2}-(0[1-9]|1[0-2])")] | None = None
