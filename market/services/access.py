"""Reading sensitive fields: who may, and the access log every such read leaves behind."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from uuid import UUID

from tortoise.expressions import Subquery

from market.models import AccessLog, FamilyLink, LinkStatus, Role, User
from market.services.districts import policy_in_force
from market.services.scope import Principal

log = logging.getLogger("eldercare")
RETENTION_RULE = "retention.access_log_years"
# The policy schema's least retention is one year, so younger rows are never looked at.
MIN_RETENTION_YEARS = 1
RETENTION_CHECK_SECONDS = 3600

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


def years_before(moment: datetime, years: int) -> datetime:
    """`moment` that many calendar years earlier (29 February becomes the 28th)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


async def purge_access_log(*, now: datetime) -> int:
    """Delete access-log rows older than `retention.access_log_years` of the policy in force
    now for the subject's district (whose data was read); returns how many were deleted."""

    horizon = years_before(now, MIN_RETENTION_YEARS)
    # Subqueries, not id lists: a city's subjects would overflow a statement's parameters.
    old_subjects = Subquery(AccessLog.filter(at__lt=horizon).values("subject_id"))
    districts = (
        await User.filter(id__in=old_subjects).distinct().values_list("district_id", flat=True)
    )
    removed = 0
    for district_id in sorted(districts):
        try:
            removed += await _purge_district(district_id, now=now)
        except Exception:  # one district's failure must not keep the others' rows forever
            log.exception("access-log retention failed for district %s", district_id)
    return removed


async def _purge_district(district_id: UUID, *, now: datetime) -> int:
    version, rules = await policy_in_force(district_id, now)
    cutoff = years_before(now, rules.retention.access_log_years)
    residents = Subquery(User.filter(district_id=district_id).values("id"))
    count = await AccessLog.filter(subject_id__in=residents, at__lt=cutoff).delete()
    if count:
        log.info(
            "deleted %d access-log rows past %s (policy version %d, district %s)",
            count,
            RETENTION_RULE,
            version,
            district_id,
        )
    return count


async def purge_access_log_forever(interval_seconds: float = RETENTION_CHECK_SECONDS) -> None:
    """The lifespan's task: apply the access-log retention once an hour."""
    while True:
        try:
            await purge_access_log(now=datetime.now(UTC))
        except Exception:  # a bad hour must not end the task; the next one tries again
            log.exception("access-log retention failed; retrying in %s s", interval_seconds)
        await asyncio.sleep(interval_seconds)
