"""Commands on a recurring series after it was created."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from market.schemas.bookings import Reason


@dataclass(frozen=True)
class SeriesQuery:
    elder_id: UUID


@dataclass(frozen=True)
class SkipOccurrence:
    occurrence: date
    reason: Reason


@dataclass(frozen=True)
class MoveOccurrence:
    """Move one occurrence to start at `to`; the window keeps its length."""

    occurrence: date
    to: datetime
    reason: Reason


@dataclass(frozen=True)
class EndSeries:
    reason: Reason
