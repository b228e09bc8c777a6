"""Commands about districts, accounts, elders, families, helpers and providers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from market.policy import CertificateKind, PriorityFlag, RelationKind
from market.schemas.common import (
    BirthYear,
    DistrictCode,
    Gender,
    Latitude,
    Longitude,
    LongText,
    Name,
    Password,
    Phone,
    ShortText,
)
from market.schemas.parse import Items, Range, Text

ServiceCode = Literal["meal", "bathing", "cleaning", "escort", "medical", "emergency", "visit"]


@dataclass(frozen=True)
class CreateDistrict:
    code: DistrictCode
    name: Name
    parent_id: UUID


@dataclass(frozen=True)
class CreatePolicyVersion:
    """A new policy version; `content` is validated strictly against the policy schema."""

    effective_from: datetime
    content: dict[str, Any]


@dataclass(frozen=True)
class CreateStaffAccount:
    """An account only a centre admin can create: another admin, an auditor, or provider staff."""

    phone: Phone
    password: Password
    name: Name
    role: Literal["centre_admin", "auditor", "provider_staff"]
    district_id: UUID
    provider_id: UUID | None = None


@dataclass(frozen=True)
class ChangeStatus:
    status: Literal["active", "suspended"]
    reason: ShortText


@dataclass(frozen=True)
class Consent:
    purpose: Annotated[str, Text(1, 64)]
    given_by: Literal["elder", "guardian"]
    guardian_name: Name | None = None


@dataclass(frozen=True)
class ElderPreferences:
    helper_gender_for_intimate_care: Literal["female", "male", "any"] = "any"
    language: Annotated[str, Text(2, 16)] = "zh"


@dataclass(frozen=True)
class RegisterElder:
    """A centre admin registers an elder (hotline or walk-in); the elder may have no phone."""

    name: Name
    district_id: UUID
    birth_year: BirthYear
    gender: Gender
    latitude: Latitude
    longitude: Longitude
    flags: Annotated[list[PriorityFlag], Items(0, len(PriorityFlag))] = field(default_factory=list)
    phone: Phone | None = None
    password: Password | None = None
    id_number: Annotated[str, Text(6, 32, r"[0-9A-Za-z]+")] | None = None
    address: Annotated[str, Text(1, 300)] | None = None
    health_notes: LongText | None = None
    preferences: ElderPreferences | None = None
    consents: Annotated[list[Consent], Items(0, 20)] = field(default_factory=list)


@dataclass(frozen=True)
class UpdateElderProfile:
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    flags: Annotated[list[PriorityFlag], Items(0, len(PriorityFlag))] | None = None
    phone: Phone | None = None
    id_number: Annotated[str, Text(6, 32, r"[0-9A-Za-z]+")] | None = None
    address: Annotated[str, Text(1, 300)] | None = None
    health_notes: LongText | None = None
    preferences: ElderPreferences | None = None
    consents: Annotated[list[Consent], Items(0, 20)] | None = None


@dataclass(frozen=True)
class RecordAssessment:
    """Raw item scores of GB/T 42195-2022; the server computes the levels."""

    item_scores: Annotated[dict[str, Annotated[int, Range(0, 10)]], Items(1, 40)]
    assessor_1: Name
    assessor_2: Name
    informant: Name
    assessed_on: date
    coma: bool = False
    dementia_or_mental_disorder: bool = False
    risk_events_30d: Annotated[int, Range(0, 100)] = 0


@dataclass(frozen=True)
class RequestFamilyLink:
    """A family member asks to be linked to an elder, found by the elder's phone number."""

    elder_phone: Phone
    relation: RelationKind


@dataclass(frozen=True)
class AvailabilitySlot:
    weekday: Annotated[int, Range(0, 6)]
    start: Annotated[str, Text(5, 5, r"([01][0-9]|2[0-3]):[0-5][0-9]")]
    end: Annotated[str, Text(5, 5, r"([01][0-9]|2[0-4]):[0-5][0-9]")]


@dataclass(frozen=True)
class UpdateHelperProfile:
    skills: Annotated[list[ServiceCode], Items(0, 7)] | None = None
    availability: Annotated[list[AvailabilitySlot], Items(0, 50)] | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    radius_minutes: Annotated[int, Range(5, 60)] | None = None
    capacity_per_day: Annotated[int, Range(1, 12)] | None = None
    gender: Gender | None = None
    # Only while vetting is pending (the time bank's deposit age is checked on it).
    birth_year: BirthYear | None = None


@dataclass(frozen=True)
class AddCertificate:
    kind: CertificateKind
    number: Annotated[str, Text(3, 64)]
    expires_on: date


@dataclass(frozen=True)
class SetCrew:
    crew_size: Annotated[int, Range(1, 10)]


@dataclass(frozen=True)
class VettingDecision:
    decision: Literal["approved", "rejected"]
    reason: ShortText


@dataclass(frozen=True)
class CreateProvider:
    name: Name
    district_id: UUID
    services: Annotated[list[ServiceCode], Items(1, 7)]
    prices_fen: dict[str, Annotated[int, Range(0, 10_000_000)]]
    capacity_per_day: Annotated[int, Range(1, 10_000)]
    star_grade: Annotated[int, Range(1, 5)] = 3


@dataclass(frozen=True)
class ProviderListing:
    list_status: Literal["normal", "red", "black"]
    reason: ShortText


@dataclass(frozen=True)
class ElderListQuery:
    """Elders of a district the caller administers (default: the caller's own)."""

    district_id: UUID | None = None
    q: Annotated[str, Text(1, 50)] | None = None
    limit: Annotated[int, Range(1, 200)] = 50
    offset: Annotated[int, Range(0, 1_000_000)] = 0


@dataclass(frozen=True)
class HelperListQuery:
    """Helpers of a district the caller administers, e.g. those awaiting vetting."""

    district_id: UUID | None = None
    vetting_status: Literal["pending", "approved", "rejected"] | None = None
    certificates_expiring_before: date | None = None
    limit: Annotated[int, Range(1, 200)] = 50
    offset: Annotated[int, Range(0, 1_000_000)] = 0


@dataclass(frozen=True)
class ProviderListQuery:
    """Providers of a district the caller administers (default: the caller's own)."""

    district_id: UUID | None = None
    list_status: Literal["normal", "red", "black"] | None = None
    service: ServiceCode | None = None
    limit: Annotated[int, Range(1, 200)] = 50
    offset: Annotated[int, Range(0, 1_000_000)] = 0
