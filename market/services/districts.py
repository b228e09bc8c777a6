"""Districts and their versioned policies."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from tortoise.transactions import in_transaction

from market import policy as policy_rules
from market.errors import Conflict, InvalidInput, NotFound
from market.models import District, DistrictLevel, DistrictPolicy
from market.schemas.people import CreateDistrict, CreatePolicyVersion
from market.services.auth import now_utc
from market.services.scope import Principal, require_admin_of

CHILD_LEVEL = {
    DistrictLevel.district: DistrictLevel.street,
    DistrictLevel.street: DistrictLevel.community,
}


async def get_district(district_id: UUID) -> District:
    district = await District.get_or_none(id=district_id)
    if district is None:
        raise NotFound("district_not_found", f"no district {district_id}")
    return district


async def create_district(principal: Principal, cmd: CreateDistrict) -> District:
    parent = await get_district(cmd.parent_id)
    require_admin_of(principal, parent.id, "add districts under this one")
    level = CHILD_LEVEL.get(parent.level)
    if level is None:
        raise Conflict("district_too_deep", "a community cannot have sub-districts")
    if await District.filter(code=cmd.code).exists():
        raise Conflict("district_code_taken", f"district code {cmd.code!r} is already used")
    return await District.create(code=cmd.code, name=cmd.name, level=level, parent=parent)


async def _lineage(district: District) -> list[District]:
    """The district and its ancestors, nearest first: communities inherit their district's rules."""
    chain = [district]
    while chain[-1].parent_id is not None:  # type: ignore[attr-defined]
        chain.append(await District.get(id=chain[-1].parent_id))  # type: ignore[attr-defined]
    return chain


async def policy_in_force(
    district_id: UUID, at: datetime
) -> tuple[int, policy_rules.DistrictPolicy]:
    """(version, policy) in force for the district at `at`; version 0 is the built-in default."""
    for district in await _lineage(await get_district(district_id)):
        row = (
            await DistrictPolicy.filter(district_id=district.id, effective_from__lte=at)
            .order_by("-effective_from", "-version")
            .first()
        )
        if row is not None:
            return row.version, policy_rules.policy_from_json(row.content)
    return 0, policy_rules.DEFAULT_POLICY


async def add_policy_version(
    principal: Principal, district_id: UUID, cmd: CreatePolicyVersion
) -> DistrictPolicy:
    district = await get_district(district_id)
    require_admin_of(principal, district.id, "change this district's policy")
    # A new version never reaches back in time: decisions already taken keep the rules they had.
    if cmd.effective_from <= now_utc():
        raise InvalidInput(
            "policy_backdated",
            "a policy version must take effect in the future",
            [{"field": "effective_from", "problem": "must be in the future"}],
        )
    try:
        content = policy_rules.policy_from_json(cmd.content)
    except policy_rules.PolicyInvalid as exc:
        details = [
            {"field": f"content.{path}", "problem": problem} for path, problem in exc.problems
        ]
        raise InvalidInput("policy_invalid", str(exc), details) from None
    async with in_transaction():
        latest = await DistrictPolicy.filter(district=district).order_by("-version").first()
        return await DistrictPolicy.create(
            district=district,
            version=(latest.version if latest else 0) + 1,
            effective_from=cmd.effective_from,
            content=policy_rules.policy_to_json(content),
            created_by_id=principal.user_id,
        )
