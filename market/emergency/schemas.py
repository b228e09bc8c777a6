"""Commands and queries of the emergency API, parsed strictly at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from market.emergency.models import CallState
from market.schemas.parse import Range


@dataclass(frozen=True)
class Acknowledge:
    """A centre admin acknowledges an emergency: the escalation stops. `handling`: the centre
    responds itself ("I'm handling it", e.g. staff sent or an ambulance called), not only
    that it has seen the call; the booking's helper offers stay open either way."""

    handling: bool = False


@dataclass(frozen=True)
class EmergencyListQuery:
    """Calls of a district and the districts below it, newest first."""

    state: CallState | None = None
    limit: Annotated[int, Range(1, 200)] = 50
    offset: Annotated[int, Range(0, 1_000_000)] = 0
