"""Small builders for matching tests: a request or helper near a fixed point, tweakable."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from matching import (
    Certificate,
    CertificateKind,
    Helper,
    HelperKind,
    Location,
    Request,
    Service,
    TimeWindow,
)

NOW = 29_000_000  # minutes since the epoch, late 2025
HOME = Location(30.2741, 120.1551)


def near(north_m: float = 0.0, east_m: float = 0.0) -> Location:
    """A point offset from HOME by metres (good enough at city scale)."""
    return Location(HOME.lat + north_m / 111_195.0, HOME.lon + east_m / 96_000.0)


def request(**changes: Any) -> Request:
    base = Request(
        id="r1",
        elder_id="elder1",
        service=Service.MEAL,
        location=HOME,
        window=TimeWindow(NOW + 60, NOW + 240),
        duration=60,
    )
    return replace(base, **changes)


def helper(**changes: Any) -> Helper:
    base = Helper(
        id="h1",
        kind=HelperKind.VOLUNTEER,
        location=near(north_m=500),
        skills=frozenset(Service),
        availability=(TimeWindow(NOW, NOW + 600),),
    )
    return replace(base, **changes)


def certified_bather(**changes: Any) -> Helper:
    """Provider crew of two with a bathing certificate valid for a year."""
    defaults: dict[str, Any] = {
        "kind": HelperKind.PROVIDER,
        "crew_size": 2,
        "provider_id": "care-co",
        "certificates": (Certificate(CertificateKind.BATHING, NOW + 525_600),),
    }
    return helper(**{**defaults, **changes})
