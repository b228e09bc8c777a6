"""Request bodies of the ledger endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from market.schemas.parse import Range, Text
from market.schemas.people import ServiceCode

RequestId = Annotated[str, Text(1, 64, r"[A-Za-z0-9][A-Za-z0-9_.-]*")]
# The ledger refuses 100 hours or more in one entry (ledger.rules.Limits).
Minutes = Annotated[int, Range(1, 100 * 60 - 1)]
Hex32 = Annotated[str, Text(64, 64, r"[0-9a-f]{64}")]
Hex64 = Annotated[str, Text(128, 128, r"[0-9a-f]{128}")]


@dataclass(frozen=True)
class GiftHours:
    """Gift minutes to an approved linked relative; `request_id` makes a retry safe."""

    recipient_id: UUID
    minutes: Minutes
    request_id: RequestId


@dataclass(frozen=True)
class DonateHours:
    """Donate minutes to the district pool (公益池); `request_id` makes a retry safe."""

    minutes: Minutes
    request_id: RequestId


@dataclass(frozen=True)
class Cosign:
    """An auditor's Ed25519 signature of `ledger.witness.cosignature_message` for a checkpoint,
    made at `at_ms` (unix milliseconds, part of the signed message)."""

    public_key: Hex32
    signature: Hex64
    at_ms: Annotated[int, Range(0, 2**53 - 1)]


@dataclass(frozen=True)
class RegisterWitnessKey:
    """The Ed25519 public key an auditor co-signs checkpoints with; pinned once, for good."""

    public_key: Hex32


Month = Annotated[str, Text(7, 7, r"20[0-9]{2}-(0[1-9]|1[0-2])")]


@dataclass(frozen=True)
class CategoryReportQuery:
    """`GET /api/v1/ledger/districts/{district}/categories`: local months `first` to `last`
    (YYYY-MM, inclusive; `last` defaults to `first`), every service category or one."""

    first: Month
    last: Month | None = None
    category: ServiceCode | None = None
