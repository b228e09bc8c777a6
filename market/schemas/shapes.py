"""Response bodies: what a resource looks like on the wire."""

from __future__ import annotations

from typing import Any

from market.models import District, User


def user_json(user: User) -> dict[str, Any]:
    """The non-sensitive view of an account, safe for anyone allowed to see the account."""
    return {
        "id": str(user.id),
        "name": user.name,
        "role": user.role.value,
        "status": user.status.value,
        "district_id": str(user.district_id),  # type: ignore[attr-defined]
    }


def district_json(district: District) -> dict[str, Any]:
    return {
        "id": str(district.id),
        "code": district.code,
        "name": district.name,
        "level": district.level.value,
        "parent_id": str(district.parent_id) if district.parent_id else None,  # type: ignore[attr-defined]
    }
