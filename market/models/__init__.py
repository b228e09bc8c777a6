"""Tortoise models of the market app (label `market`), by area."""

from market.models.districts import District, DistrictLevel, DistrictPolicy
from market.models.helpers import (
    Certificate,
    HelperKind,
    HelperProfile,
    ListStatus,
    Provider,
    VettingStatus,
)
from market.models.people import (
    AccessLog,
    Assessment,
    AuthToken,
    ElderProfile,
    FamilyLink,
    LinkStatus,
    Role,
    User,
    UserStatus,
)

__all__ = [
    "AccessLog",
    "Assessment",
    "AuthToken",
    "Certificate",
    "District",
    "DistrictLevel",
    "DistrictPolicy",
    "ElderProfile",
    "FamilyLink",
    "HelperKind",
    "HelperProfile",
    "LinkStatus",
    "ListStatus",
    "Provider",
    "Role",
    "User",
    "UserStatus",
    "VettingStatus",
]
