"""Who may serve a booking, decided by the district policy in force, by the elder and by how
the booking is paid; refusals name the rule.

`check_booking_helper` runs when the centre dispatches a booking and when a helper accepts an
offer. It applies every hard rule of the matcher (`matching/constraints.py`) that one
(booking, helper) pair decides, each a 403 naming it (`details.rule`):
- an approved, active helper (`helper_not_eligible`);
- never the elder themself, never a helper the elder blocked (`eligibility.self`,
  `eligibility.blocked_by_elder`: the matcher's `not_excluded_by_elder`);
- never staff of a black-listed provider (`eligibility.blacklisted`: `not_blacklisted`);
- the payment rules below;
- the policy's service rules (`policy.forbids` with the policy path and version): who may
  serve, certified staff, crew and certificates from the elder's level, the lifting rule,
  and the elder's gender preference for intimate care (`kind_permitted`, `crew_sufficient`,
  `certificates_valid`, `gender_respected`).
Reach, skills, availability and capacity are left out: they are the helper's own logistics,
which the centre weighs when it picks someone by hand and the helper answers by accepting.

Payment rules (`payment_rule`), checked when a helper accepts or is dispatched and handed to
the matcher as blocked pairs:
- `self` and `subsidy` buy a provider's priced service: provider staff only, of a provider
  that prices the service and is not black-listed (`payment.provider_only`, `payment.unpriced`);
- `hours` and `pool` pay volunteers first: provider staff only once the district guaranteed
  the booking, an emergency at once (`payment.volunteers_first`, see services/payments.py);
- `pool` hours stay in their district's chain: the volunteer must keep hours there
  (`payment.pool_other_district`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from ledger.entries import check_district
from ledger.errors import InvalidEntry
from market import catalogue
from market.errors import Forbidden, NotFound
from market.models import (
    Booking,
    Certificate,
    District,
    ElderHelperList,
    ElderProfile,
    HelperListKind,
    HelperProfile,
    ListStatus,
    Payment,
    Provider,
    User,
    UserStatus,
)
from market.policy import CertificateKind, HelperKind, PolicyForbids, ServiceCode
from market.services.districts import policy_in_force

PRICED = (Payment.self_paid, Payment.subsidy)
TIME_BANK = (Payment.hours, Payment.pool)

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
    """Kind, crew, gender and verified certificates of each approved, active helper among
    `user_ids`."""
    ids = sorted(set(user_ids))
    profiles = await HelperProfile.filter(
        user_id__in=ids, vetting_status="approved", user__status=UserStatus.active
    ).values_list("user_id", "kind", "crew_size", "user__gender")
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
        user_id: catalogue.HelperFacts(
            HelperKind(kind), dict(certificates[user_id]), crew, gender=gender
        )
        for user_id, kind, crew, gender in profiles
    }


async def elder_profile(elder_id: UUID) -> ElderProfile:
    profile = await ElderProfile.get_or_none(user_id=elder_id)
    if profile is None:
        raise NotFound("elder_not_found", f"no elder {elder_id}")
    return profile


async def check_booking_helper(booking: Booking, helper_id: UUID, *, now: datetime) -> None:
    """403 naming the rule unless this helper may serve this booking (module docstring)."""
    facts = (await helper_facts([helper_id])).get(helper_id)
    if facts is None:
        raise Forbidden("helper_not_eligible", "only an approved, active helper may serve")
    elder_id: UUID = booking.elder_id  # type: ignore[attr-defined]
    await check_elder_allows(elder_id, helper_id)
    await check_not_blacklisted(helper_id)
    if booking.payment is not Payment.public:
        staff = (await staffing([helper_id], booking.service))[helper_id]
        refusal = payment_rule(booking, staff)
        if refusal is not None:
            code, message = refusal
            raise Forbidden(code, message, {"payment": booking.payment.value})
    version, policy = await policy_in_force(booking.district_id, now)
    elder = await elder_profile(elder_id)
    try:
        catalogue.check_helper(
            facts,
            service=ServiceCode(booking.service),
            level=catalogue.level_of(elder.capability_level),
            needs_lifting=booking.needs_lifting,
            preferred_gender=(elder.preferences or {}).get("helper_gender_for_intimate_care"),
            on=booking.window_end.date(),
            version=version,
            policy=policy,
        )
    except PolicyForbids as exc:
        raise forbids(exc) from None


async def check_elder_allows(elder_id: UUID, helper_id: UUID) -> None:
    """A helper never serves themself nor an elder who blocked them (`not_excluded_by_elder`)."""
    rule = {"rule": "not_excluded_by_elder"}
    if helper_id == elder_id:
        raise Forbidden("eligibility.self", "a helper never serves their own booking", rule)
    blocked = ElderHelperList.filter(
        elder_id=elder_id, helper_id=helper_id, kind=HelperListKind.blocked
    )
    if await blocked.exists():
        raise Forbidden("eligibility.blocked_by_elder", "the elder blocked this helper", rule)


async def check_not_blacklisted(helper_id: UUID) -> None:
    """Staff of a provider on the district's black list get no work (`not_blacklisted`)."""
    staff = HelperProfile.filter(user_id=helper_id, provider__list_status=ListStatus.black)
    if await staff.exists():
        raise Forbidden(
            "eligibility.blacklisted",
            "this helper's provider is on the black list and gets no work",
            {"rule": "not_blacklisted"},
        )


# ---- payment rules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Staffing:
    """What the payment rules need to know about a helper for one service."""

    kind: HelperKind
    provider_id: UUID | None
    # The provider's price of the service (fen): None when unpriced or black-listed.
    price: int | None
    # The ledger chain the helper keeps hours in (None if their district names none).
    chain: str | None


def payment_rule(booking: Booking, staff: Staffing) -> tuple[str, str] | None:
    """(code, message) of the payment rule that keeps this helper off this booking, if any."""
    payment = booking.payment
    if payment in PRICED:
        if staff.kind is not HelperKind.PROVIDER:
            return (
                "payment.provider_only",
                "a self-paid or subsidised booking buys a provider's priced service",
            )
        if staff.price is None:
            return ("payment.unpriced", "the helper's provider has no price for this service")
    # An emergency cannot wait for volunteers: the district guarantees it from the start.
    waiting = booking.guaranteed_at is None and not booking.emergency
    if payment in TIME_BANK and staff.kind is HelperKind.PROVIDER and waiting:
        return (
            "payment.volunteers_first",
            "hours pay volunteers first; provider staff serve once the district guarantees it",
        )
    pool_volunteer = payment is Payment.pool and staff.kind is HelperKind.VOLUNTEER
    if pool_volunteer and staff.chain != booking.hold_chain:
        return (
            "payment.pool_other_district",
            "pool hours stay in their district; this volunteer keeps hours in another",
        )
    return None


async def chains_by_district() -> dict[UUID, str | None]:
    """Every district's ledger chain: the code of its top-level district (None if unusable)."""
    rows = await District.all().values_list("id", "parent_id", "code")
    parent = {d: p for d, p, _ in rows}
    code = {d: c for d, _, c in rows}
    out: dict[UUID, str | None] = {}
    for district in parent:
        root = district
        while parent[root] is not None:
            root = parent[root]
        try:
            out[district] = check_district(code[root])
        except InvalidEntry:
            out[district] = None
    return out


async def staffing(helper_ids: Sequence[UUID], service: str) -> dict[UUID, Staffing]:
    """`Staffing` of each helper among `helper_ids` (helpers without a profile are left out)."""
    ids = sorted(set(helper_ids))
    profiles = await HelperProfile.filter(user_id__in=ids).values_list(
        "user_id", "kind", "provider_id"
    )
    provider_ids = sorted({p for _, _, p in profiles if p is not None})
    prices: dict[UUID, int] = {}
    for provider_id, priced, status in await Provider.filter(id__in=provider_ids).values_list(
        "id", "prices", "list_status"
    ):
        price = priced.get(service) if isinstance(priced, dict) else None
        if isinstance(price, int) and status != ListStatus.black:
            prices[provider_id] = price
    chains = await chains_by_district()
    homes = dict(await User.filter(id__in=ids).values_list("id", "district_id"))
    return {
        user_id: Staffing(
            kind=HelperKind(kind),
            provider_id=provider_id,
            price=prices.get(provider_id) if provider_id is not None else None,
            chain=chains.get(homes.get(user_id)),  # type: ignore[arg-type]
        )
        for user_id, kind, provider_id in profiles
    }


async def payment_refusals(
    bookings: Sequence[Booking], helper_ids: Iterable[UUID]
) -> dict[UUID, frozenset[str]]:
    """Per booking, the helpers (as strings, the matcher's ids) its payment keeps off it."""
    helpers = sorted(set(helper_ids))
    by_service: dict[str, dict[UUID, Staffing]] = {}
    out: dict[UUID, frozenset[str]] = {}
    for booking in bookings:
        if booking.payment is Payment.public:
            out[booking.id] = frozenset()
            continue
        if booking.service not in by_service:
            by_service[booking.service] = await staffing(helpers, booking.service)
        staff = by_service[booking.service]
        out[booking.id] = frozenset(
            str(h) for h, s in staff.items() if payment_rule(booking, s) is not None
        )
    return out
