"""Reading sensitive fields: who may, and the access log every such read leaves behind."""

from __future__ import annotations

from uuid import UUID

from market.models import AccessLog, FamilyLink, LinkStatus, Role, User
from market.services.scope import Principal

SENSITIVE_FIELDS = ("phone", "id_number", "address", "health_notes")
# Family members need to reach and find their elder; health and ID stay with the centre.
FAMILY_FIELDS = ("phone", "address")


async def is_linked_family(principal: Principal, elder_id: UUID) -> bool:
    if principal.role is not Role.family:
        return False
    return await FamilyLink.filter(
        family_id=principal.user_id, elder_id=elder_id, status=LinkStatus.approved
    ).exists()


async def readable_sensitive_fields(principal: Principal, elder: User) -> tuple[str, ...]:
    """The sensitive fields of `elder` this caller has a reason to read."""
    if principal.user_id == elder.id:
        return SENSITIVE_FIELDS
    if principal.administers(elder.district_id):  # type: ignore[attr-defined]
        return SENSITIVE_FIELDS
    if await is_linked_family(principal, elder.id):
        return FAMILY_FIELDS
    return ()


async def can_see_elder(principal: Principal, elder: User) -> bool:
    return (
        principal.user_id == elder.id
        or principal.administers(elder.district_id)  # type: ignore[attr-defined]
        or await is_linked_family(principal, elder.id)
    )


async def log_access(
    principal: Principal, subject_id: UUID, fields: tuple[str, ...], purpose: str
) -> None:
    """Record a read of someone else's sensitive data (own reads are not logged)."""
    if fields and principal.user_id != subject_id:
        await AccessLog.create(
            actor_id=principal.user_id,
            subject_id=subject_id,
            fields_read=list(fields),
            purpose=purpose,
        )
