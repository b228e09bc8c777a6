"""Commands of the visits API, parsed strictly at the edge (`market.schemas.parse`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from uuid import UUID

from market.models import Payment
from market.policy import ServiceCode
from market.schemas.parse import Text
from market.visits.models import ChangeKind, VisitMethod

Finding = Annotated[str, Text(0, 2000, multiline=True)]
Note = Annotated[str, Text(0, 1000, multiline=True)]


@dataclass(frozen=True)
class Findings:
    """What the visitor found; every section is free text and may stay empty."""

    health: Finding = ""
    finances: Finding = ""
    home_safety: Finding = ""
    family_support: Finding = ""
    needs: Finding = ""
    special: Finding = ""


@dataclass(frozen=True)
class RecordVisit:
    method: VisitMethod
    visited_at: datetime
    record: Findings
    # A centre admin may name the helper who made the visit; a helper records their own.
    visitor_id: UUID | None = None


@dataclass(frozen=True)
class RecordMajorChange:
    kind: ChangeKind
    at: datetime
    note: Note = ""


@dataclass(frozen=True)
class Referral:
    """A need found on a visit, referred as a service request for the elder."""

    service: ServiceCode
    window_start: datetime
    window_end: datetime | None = None
    payment: Payment = Payment.public
    notes: Annotated[str, Text(0, 2000)] = ""
