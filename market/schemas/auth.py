"""Registration and login commands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from market.schemas.common import (
    BirthYear,
    DistrictCode,
    Gender,
    Latitude,
    Longitude,
    Name,
    Password,
    Phone,
)


@dataclass(frozen=True)
class RegisterCommand:
    """Self-registration of an elder, a family member or a volunteer (volunteers await vetting)."""

    phone: Phone
    password: Password
    name: Name
    role: Literal["elder", "family", "volunteer"]
    district_code: DistrictCode
    gender: Gender | None = None
    birth_year: BirthYear | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None


@dataclass(frozen=True)
class LoginCommand:
    phone: Phone
    password: Password
