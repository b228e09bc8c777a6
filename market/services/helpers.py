"""Volunteers and provider staff: profiles, certificates, vetting; provider organisations."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

from tortoise.expressions import Subquery
from tortoise.functions import Sum
from tortoise.transactions import in_transaction

from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.models import (
    Certificate,
    HelperKind,
    HelperProfile,
    ListStatus,
    Provider,
    User,
    UserStatus,
    VettingStatus,
)
from market.policy import PolicyForbids
from market.schemas.people import (
    AddCertificate,
    CreateProvider,
    HelperListQuery,
    ProviderListing,
    ProviderListQuery,
    SetCrew,
    UpdateHelperProfile,
    VettingDecision,
)
from market.services import access
from market.services.auth import now_utc
from market.services.districts import get_district, policy_in_force
from market.services.eligibility import forbids
from market.services.runtime import Runtime
from market.services.scope import Principal, district_subtree, require_admin_of

CERTIFICATE_PURPOSE = "certificate.number"
DEPOSIT_AGE_RULE = "time_bank.deposit_min_age"


def certain_age(birth_year: int, at: datetime) -> int:
    """The age a person born in `birth_year` has certainly reached at `at`.

    Only the year of birth is known, so this is the lower bound: someone born in 2008 counts
    as 18 from 1 January 2027, never as an adult while they might still be 17.
    """
    return at.year - birth_year - 1


async def require_depositor_age(
    district_id: UUID, birth_year: int | None, *, at: datetime, field: str = "birth_year"
) -> None:
    """A volunteer earns time-bank hours only from the policy's deposit age.

    Raises 422 without a birth year and 403 `policy.forbids` (rule `time_bank.deposit_min_age`
    and the policy version in force for `district_id` at `at`) below the age. Minors are
    refused even where `minors_with_guardian` allows them: a guardian's consent for a
    volunteer cannot be recorded yet, and it must be on record before a minor earns hours.
    """
    if birth_year is None:
        raise InvalidInput(
            "birth_year_required",
            "a volunteer's year of birth is needed to check the time bank's deposit age",
            [{"field": field, "problem": "is required for a volunteer"}],
        )
    version, rules = await policy_in_force(district_id, at)
    minimum = rules.time_bank.deposit_min_age
    age = certain_age(birth_year, at)
    if age < minimum:
        guardian = (
            "; minors may join with a guardian's consent, which the centre must record first"
            if rules.time_bank.minors_with_guardian
            else ""
        )
        raise forbids(
            PolicyForbids(
                DEPOSIT_AGE_RULE,
                version,
                f"volunteers earn hours from age {minimum}; born in {birth_year} counts as "
                f"{age} at {at.date().isoformat()}{guardian}",
            )
        )


async def get_helper(user_id: UUID) -> HelperProfile:
    helper = await HelperProfile.get_or_none(user_id=user_id).select_related("user")
    if helper is None:
        raise NotFound("helper_not_found", f"no helper {user_id}")
    return helper


async def update_own_profile(principal: Principal, cmd: UpdateHelperProfile) -> HelperProfile:
    helper = await get_helper(principal.user_id)
    changes = {k: v for k, v in dataclasses.asdict(cmd).items() if v is not None}
    gender = changes.pop("gender", None)
    birth_year = changes.pop("birth_year", None)
    if birth_year is not None:
        await _check_new_birth_year(helper, birth_year)
    for slot in changes.get("availability", []):
        if slot["end"] <= slot["start"]:
            raise InvalidInput(
                "invalid_input",
                "availability slots must end after they start",
                [
                    {
                        "field": "availability",
                        "problem": f"{slot['start']}-{slot['end']} ends before it starts",
                    }
                ],
            )
    async with in_transaction():
        for name, value in changes.items():
            setattr(helper, name, value)
        await helper.save()
        if gender is not None:
            await User.filter(id=principal.user_id).update(gender=gender)
        if birth_year is not None:
            await User.filter(id=principal.user_id).update(birth_year=birth_year)
    return helper


async def _check_new_birth_year(helper: HelperProfile, birth_year: int) -> None:
    """A helper may give their year of birth while vetting is pending; after that it is what
    the centre checked (the deposit age was decided on it)."""
    if helper.vetting_status is not VettingStatus.pending:
        raise Conflict(
            "birth_year_vetted",
            "the year of birth was checked at vetting; ask your centre to correct it",
        )
    if birth_year > now_utc().year:
        raise InvalidInput(
            "invalid_input",
            "the year of birth is in the future",
            [{"field": "birth_year", "problem": "must not be in the future"}],
        )


async def add_certificate(
    runtime: Runtime, principal: Principal, cmd: AddCertificate
) -> Certificate:
    helper = await get_helper(principal.user_id)
    if cmd.expires_on <= now_utc().date():
        raise InvalidInput(
            "certificate_expired",
            "the certificate has already expired",
            [{"field": "expires_on", "problem": "must be in the future"}],
        )
    return await Certificate.create(
        helper_id=helper.user_id,  # type: ignore[attr-defined]
        kind=cmd.kind.value,
        number_enc=runtime.crypto.encrypt(cmd.number, purpose=CERTIFICATE_PURPOSE),
        expires_on=cmd.expires_on,
    )


async def verify_certificate(principal: Principal, certificate_id: UUID) -> Certificate:
    certificate = await Certificate.get_or_none(id=certificate_id).select_related("helper")
    if certificate is None:
        raise NotFound("certificate_not_found", f"no certificate {certificate_id}")
    user: User = certificate.helper
    require_admin_of(principal, user.district_id, "verify certificates of this district")  # type: ignore[attr-defined]
    if certificate.verified_at is not None:
        raise Conflict("certificate_verified", "this certificate is already verified")
    certificate.verified_by_id = principal.user_id
    certificate.verified_at = now_utc()
    await certificate.save(update_fields=["verified_by_id", "verified_at"])
    return certificate


async def decide_vetting(
    principal: Principal, user_id: UUID, cmd: VettingDecision
) -> HelperProfile:
    helper = await get_helper(user_id)
    user: User = helper.user
    require_admin_of(principal, user.district_id, "vet helpers of this district")  # type: ignore[attr-defined]
    if helper.vetting_status is not VettingStatus.pending:
        raise Conflict("vetting_decided", f"vetting is already {helper.vetting_status.value}")
    if cmd.decision == "approved" and helper.kind is HelperKind.volunteer:
        # Approval is where a volunteer becomes able to earn hours.
        await require_depositor_age(
            user.district_id,  # type: ignore[attr-defined]
            user.birth_year,
            at=now_utc(),
        )
    async with in_transaction():
        helper.vetting_status = VettingStatus(cmd.decision)
        helper.vetted_by_id = principal.user_id
        await helper.save(update_fields=["vetting_status", "vetted_by_id", "updated_at"])
        if helper.vetting_status is VettingStatus.approved and user.status is UserStatus.pending:
            user.status = UserStatus.active
            await user.save(update_fields=["status"])
    return helper


async def set_crew(principal: Principal, user_id: UUID, cmd: SetCrew) -> HelperProfile:
    """How many certified staff the provider sends under this account; the centre vouches
    for it, as it does for certificates (certified bathing needs a crew of two)."""
    helper = await get_helper(user_id)
    user: User = helper.user
    require_admin_of(principal, user.district_id, "set crews of this district's helpers")  # type: ignore[attr-defined]
    if helper.kind is not HelperKind.provider and cmd.crew_size != 1:
        raise Conflict("crew_volunteer", "a volunteer serves alone: crew_size must be 1")
    await HelperProfile.filter(user_id=user_id).update(crew_size=cmd.crew_size)
    helper.crew_size = cmd.crew_size
    return helper


async def helper_json(
    helper: HelperProfile, *, viewer_may_see_certificates: bool
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(helper.user_id),  # type: ignore[attr-defined]
        "kind": helper.kind.value,
        "provider_id": str(helper.provider_id) if helper.provider_id else None,  # type: ignore[attr-defined]
        "skills": helper.skills,
        "availability": helper.availability,
        "radius_minutes": helper.radius_minutes,
        "capacity_per_day": helper.capacity_per_day,
        "crew_size": helper.crew_size,
        "vetting_status": helper.vetting_status.value,
        "rating": round(helper.rating_sum / helper.rating_count, 2)
        if helper.rating_count
        else None,
    }
    if viewer_may_see_certificates:
        certificates = await Certificate.filter(helper_id=helper.user_id).order_by("kind", "id")  # type: ignore[attr-defined]
        view["certificates"] = [certificate_json(c) for c in certificates]
    return view


def certificate_json(certificate: Certificate) -> dict[str, Any]:
    """A certificate without its number (that is read one at a time, and logged)."""
    verified_by = certificate.verified_by_id
    return {
        "id": str(certificate.id),
        "kind": certificate.kind,
        "expires_on": certificate.expires_on.isoformat(),
        "verified": certificate.verified_at is not None,
        "verified_by": str(verified_by) if verified_by else None,
        "verified_at": certificate.verified_at.isoformat() if certificate.verified_at else None,
    }


async def read_certificate(
    runtime: Runtime, principal: Principal, certificate_id: UUID
) -> dict[str, Any]:
    """One certificate with its number, for the helper or the centre that checks it.

    The number is personal data of the helper: a centre admin's read is access-logged.
    """
    certificate = await Certificate.get_or_none(id=certificate_id).select_related("helper")
    if certificate is None:
        raise NotFound("certificate_not_found", f"no certificate {certificate_id}")
    holder: User = certificate.helper
    own = principal.user_id == holder.id
    if not own and not principal.administers(holder.district_id):  # type: ignore[attr-defined]
        raise Forbidden(
            "certificate_forbidden", "only the helper and their centre may read this certificate"
        )
    await access.log_access(principal, holder.id, ("certificate_number",), "certificate_check")
    view = certificate_json(certificate)
    view["helper_id"] = str(holder.id)
    view["number"] = runtime.crypto.decrypt(certificate.number_enc, purpose=CERTIFICATE_PURPOSE)
    return view


async def create_provider(principal: Principal, cmd: CreateProvider) -> Provider:
    district = await get_district(cmd.district_id)
    require_admin_of(principal, district.id, "register providers in this district")
    unknown = sorted(set(cmd.prices_fen) - set(cmd.services))
    if unknown:
        raise InvalidInput(
            "invalid_input",
            f"prices given for services not offered: {', '.join(unknown)}",
            [{"field": f"prices_fen.{code}", "problem": "service not offered"} for code in unknown],
        )
    return await Provider.create(
        district=district,
        name=cmd.name,
        services=sorted(set(cmd.services)),
        prices=dict(sorted(cmd.prices_fen.items())),
        capacity_per_day=cmd.capacity_per_day,
        star_grade=cmd.star_grade,
    )


async def set_listing(principal: Principal, provider_id: UUID, cmd: ProviderListing) -> Provider:
    provider = await Provider.get_or_none(id=provider_id)
    if provider is None:
        raise NotFound("provider_not_found", f"no provider {provider_id}")
    require_admin_of(principal, provider.district_id, "list providers of this district")  # type: ignore[attr-defined]
    provider.list_status = ListStatus(cmd.list_status)
    await provider.save(update_fields=["list_status"])
    return provider


@dataclasses.dataclass(frozen=True)
class ProviderRating:
    """The elders' stars for the provider's staff: what the official star grade is read beside."""

    stars: int
    count: int

    def to_json(self) -> dict[str, Any]:
        average = round(self.stars / self.count, 2) if self.count else None
        return {"average": average, "count": self.count}


async def provider_ratings(provider_ids: list[UUID]) -> dict[UUID, ProviderRating]:
    rows = (
        await HelperProfile.filter(provider_id__in=provider_ids)
        .group_by("provider_id")
        .annotate(stars=Sum("rating_sum"), count=Sum("rating_count"))
        .values_list("provider_id", "stars", "count")
    )
    return {p: ProviderRating(int(s or 0), int(c or 0)) for p, s, c in rows}  # type: ignore[misc]


def provider_json(provider: Provider, rating: ProviderRating | None = None) -> dict[str, Any]:
    return {
        "rating": (rating or ProviderRating(0, 0)).to_json(),
        "id": str(provider.id),
        "name": provider.name,
        "district_id": str(provider.district_id),  # type: ignore[attr-defined]
        "services": provider.services,
        "prices_fen": provider.prices,
        "capacity_per_day": provider.capacity_per_day,
        "star_grade": provider.star_grade,
        "list_status": provider.list_status.value,
    }


async def list_providers(principal: Principal, query: ProviderListQuery) -> list[Provider]:
    """Providers registered under a district the caller administers."""
    district_id = query.district_id or principal.district_id
    require_admin_of(principal, district_id, "list this district's providers")
    rows = Provider.filter(district_id__in=list(await district_subtree(district_id)))
    if query.list_status:
        rows = rows.filter(list_status=ListStatus(query.list_status))
    providers = await rows.order_by("name", "id")
    if query.service:
        # `services` is a JSON list; filtered here so SQLite and PostgreSQL behave the same.
        providers = [p for p in providers if query.service in p.services]
    return providers[query.offset : query.offset + query.limit]


def may_see_certificates(principal: Principal, helper: HelperProfile) -> bool:
    user: User = helper.user
    return principal.user_id == user.id or principal.administers(user.district_id)  # type: ignore[attr-defined]


def require_visible_helper(principal: Principal, helper: HelperProfile) -> None:
    if not may_see_certificates(principal, helper):
        raise Forbidden("helper_forbidden", "only the helper and their centre may see this profile")


async def list_helpers(principal: Principal, query: HelperListQuery) -> list[dict[str, Any]]:
    """Helpers under a district the caller administers, for vetting and certificate checks."""
    district_id = query.district_id or principal.district_id
    require_admin_of(principal, district_id, "list this district's helpers")
    users = User.filter(district_id__in=list(await district_subtree(district_id)))
    helpers = HelperProfile.filter(user_id__in=Subquery(users.values("id")))
    if query.vetting_status:
        helpers = helpers.filter(vetting_status=VettingStatus(query.vetting_status))
    if query.certificates_expiring_before:
        expiring = Certificate.filter(expires_on__lt=query.certificates_expiring_before)
        helpers = helpers.filter(user_id__in=Subquery(expiring.values("helper_id")))
    page = (
        await helpers.select_related("user")
        .order_by("user__name", "id")
        .offset(query.offset)
        .limit(query.limit)
    )
    result = []
    for helper in page:
        view = await helper_json(helper, viewer_may_see_certificates=True)
        view["name"] = helper.user.name
        result.append(view)
    return result
