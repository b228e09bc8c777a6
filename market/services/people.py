"""Accounts created by centres, account status, and family links."""

from __future__ import annotations

from uuid import UUID

from tortoise.transactions import in_transaction

from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.models import (
    AuthToken,
    FamilyLink,
    HelperKind,
    HelperProfile,
    LinkStatus,
    Provider,
    Role,
    User,
    UserStatus,
    VettingStatus,
)
from market.schemas.people import ChangeStatus, CreateStaffAccount, RequestFamilyLink
from market.services.auth import create_account, now_utc, phone_index
from market.services.districts import get_district
from market.services.runtime import Runtime
from market.services.scope import Principal, require_admin_of


async def get_user(user_id: UUID) -> User:
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise NotFound("user_not_found", f"no user {user_id}")
    return user


async def create_staff_account(
    runtime: Runtime, principal: Principal, cmd: CreateStaffAccount
) -> User:
    district = await get_district(cmd.district_id)
    require_admin_of(principal, district.id, "create accounts in this district")
    role = Role(cmd.role)
    provider = None
    if role is Role.provider_staff:
        if cmd.provider_id is None:
            raise InvalidInput(
                "invalid_input",
                "provider_id is required for provider staff",
                [{"field": "provider_id", "problem": "is required for provider staff"}],
            )
        provider = await Provider.get_or_none(id=cmd.provider_id)
        if provider is None:
            raise NotFound("provider_not_found", f"no provider {cmd.provider_id}")
        require_admin_of(principal, provider.district_id, "add staff to this provider")  # type: ignore[attr-defined]
    async with in_transaction():
        user = await create_account(
            runtime,
            phone=cmd.phone,
            password=cmd.password,
            name=cmd.name,
            role=role,
            district=district,
            status=UserStatus.active,
            created_by=principal.user_id,
        )
        if provider is not None:
            await HelperProfile.create(
                user=user,
                kind=HelperKind.provider,
                provider=provider,
                vetting_status=VettingStatus.pending,
            )
    return user


async def change_status(principal: Principal, user_id: UUID, cmd: ChangeStatus) -> User:
    user = await get_user(user_id)
    require_admin_of(principal, user.district_id, "change this account's status")  # type: ignore[attr-defined]
    if user.id == principal.user_id:
        raise Conflict("own_status", "an admin cannot change their own status")
    async with in_transaction():
        user.status = UserStatus(cmd.status)
        await user.save(update_fields=["status"])
        if user.status is UserStatus.suspended:
            await AuthToken.filter(user_id=user.id, revoked_at=None).update(revoked_at=now_utc())
    return user


async def request_family_link(
    runtime: Runtime, principal: Principal, cmd: RequestFamilyLink
) -> FamilyLink:
    elder = await User.get_or_none(
        phone_index=phone_index(runtime, cmd.elder_phone), role=Role.elder
    )
    if elder is None:
        # Same answer whether the phone is unknown or not an elder's: no account enumeration.
        raise NotFound("elder_not_found", "no elder with this phone number")
    if await FamilyLink.filter(family_id=principal.user_id, elder_id=elder.id).exists():
        raise Conflict("link_exists", "a link to this elder already exists")
    return await FamilyLink.create(
        family_id=principal.user_id, elder=elder, relation=cmd.relation.value
    )


async def approve_family_link(principal: Principal, link_id: UUID) -> FamilyLink:
    link = await FamilyLink.get_or_none(id=link_id).select_related("elder")
    if link is None:
        raise NotFound("link_not_found", f"no family link {link_id}")
    elder: User = link.elder
    if principal.user_id != elder.id and not principal.administers(elder.district_id):  # type: ignore[attr-defined]
        raise Forbidden("link_forbidden", "only the elder or their centre may approve this link")
    if link.status is not LinkStatus.pending:
        raise Conflict("link_not_pending", f"the link is {link.status.value}")
    link.status = LinkStatus.approved
    link.approved_by_id = principal.user_id
    link.approved_at = now_utc()
    await link.save(update_fields=["status", "approved_by_id", "approved_at"])
    return link


async def revoke_family_link(principal: Principal, link_id: UUID) -> FamilyLink:
    """The elder, the family member or the elder's centre ends a link; access ends with it."""
    link = await FamilyLink.get_or_none(id=link_id).select_related("elder")
    if link is None:
        raise NotFound("link_not_found", f"no family link {link_id}")
    elder: User = link.elder
    allowed = principal.user_id in (elder.id, link.family_id) or principal.administers(  # type: ignore[attr-defined]
        elder.district_id  # type: ignore[attr-defined]
    )
    if not allowed:
        raise Forbidden(
            "link_forbidden", "only the elder, the family member or the centre may end this link"
        )
    if link.status is LinkStatus.revoked:
        raise Conflict("link_not_active", "the link is already revoked")
    link.status = LinkStatus.revoked
    await link.save(update_fields=["status"])
    return link


async def links_of(principal: Principal) -> list[FamilyLink]:
    if principal.role is Role.family:
        query = FamilyLink.filter(family_id=principal.user_id)
    else:
        query = FamilyLink.filter(elder_id=principal.user_id)
    return await query.order_by("created_at", "id")
