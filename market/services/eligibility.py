"""Who may serve a booking, decided by the district policy in force; refusals name the rule."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime
from uuid import UUID

from market import catalogue
from market.assessment import Level
from market.errors import Forbidden, NotFound
from market.models import Booking, Certificate, ElderProfile, HelperProfile, UserStatus
from market.policy import CertificateKind, HelperKind, PolicyForbids, ServiceCode
from market.services.districts import policy_in_force

# Certificate kinds as helpers record them (`AddCertificate`) -> the policy's kinds; a kind
# the policy does not name (e.g. "lifting") satisfies no certificate rule.
CERTIFICATE_NAMES = {
    **{kind.value: kind for kind in CertificateKind},
    "nursing": CertificateKind.NURSE,
    "care_worker": CertificateKind.CAREGIVER,
}


def forbids(exc: PolicyForbids) -> Forbidden:
    """The API form of a policy refusal: 403 with the rule and the policy version."""
    return Forbidden(
        "policy.forbids",
        str(exc),
        {"rule": exc.rule, "policy_version": exc.version},
    )


async def helper_facts(user_ids: Iterable[UUID]) -> dict[UUID, catalogue.HelperFacts]:
    """Kind and verified certificates of each approved, active helper among `user_ids`."""
    ids = sorted(set(user_ids))
    profiles = await HelperProfile.filter(
        user_id__in=ids, vetting_status="approved", user__status=UserStatus.active
    ).values_list("user_id", "kind")
    certificates: dict[UUID, dict[CertificateKind, date]] = defaultdict(dict)
    rows = await Certificate.filter(helper_id__in=ids, verified_at__isnull=False).values_list(
        "helper_id", "kind", "expires_on"
    )
    for helper_id, kind, expires in rows:
        cert = CERTIFICATE_NAMES.get(kind)
        if cert is not None:
            held = certificates[helper_id]
            held[cert] = max(expires, held.get(cert, expires))
    return {
        user_id: catalogue.HelperFacts(HelperKind(kind), dict(certificates[user_id]))
        for user_id, kind in profiles
    }


async def elder_level(elder_id: UUID) -> Level:
    profile = await ElderProfile.get_or_none(user_id=elder_id)
    if profile is None:
        raise NotFound("elder_not_found", f"no elder {elder_id}")
    return catalogue.level_of(profile.capability_level)


async def check_booking_helper(booking: Booking, helper_id: UUID, *, now: datetime) -> None:
    """403 `policy.forbids` unless this helper may serve this booking under today's policy."""
    facts = (await helper_facts([helper_id])).get(helper_id)
    if facts is None:
        raise Forbidden("helper_not_eligible", "only an approved, active helper may serve")
    version, policy = await policy_in_force(booking.district_id, now)
    try:
        catalogue.check_helper(
            facts,
            service=ServiceCode(booking.service),
            level=await elder_level(booking.elder_id),  # type: ignore[attr-defined]
            needs_lifting=booking.needs_lifting,
            on=booking.window_end.date(),
            version=version,
            policy=policy,
        )
    except PolicyForbids as exc:
        raise forbids(exc) from None
