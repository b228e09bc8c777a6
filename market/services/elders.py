"""Elders: registration by a centre, profiles with encrypted fields, assessments."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from uuid import UUID

from tortoise.transactions import in_transaction

from market import assessment as gbt
from market.errors import Conflict, Forbidden, InvalidInput, NotFound
from market.models import Assessment, ElderProfile, Role, User, UserStatus
from market.schemas.common import normalise_phone
from market.schemas.people import (
    Consent,
    ElderListQuery,
    RecordAssessment,
    RegisterElder,
    UpdateElderProfile,
)
from market.services import access
from market.services.auth import PHONE_PURPOSE, create_account, now_utc, phone_index
from market.services.districts import get_district, policy_in_force
from market.services.runtime import Runtime
from market.services.scope import Principal, district_subtree, require_admin_of

ENCRYPTED = {
    "id_number": "elder.id_number",
    "address": "elder.address",
    "health_notes": "elder.health",
}


def _consents(consents: list[Consent]) -> list[dict[str, Any]]:
    stamp = now_utc().isoformat()
    return [{**dataclasses.asdict(c), "at": stamp} for c in consents]


async def get_elder(elder_id: UUID) -> tuple[User, ElderProfile]:
    user = await User.get_or_none(id=elder_id, role=Role.elder)
    profile = await ElderProfile.get_or_none(user_id=elder_id)
    if user is None or profile is None:
        raise NotFound("elder_not_found", f"no elder {elder_id}")
    return user, profile


async def register_elder(runtime: Runtime, principal: Principal, cmd: RegisterElder) -> User:
    district = await get_district(cmd.district_id)
    require_admin_of(principal, district.id, "register elders in this district")
    async with in_transaction():
        if cmd.phone is not None:
            user = await create_account(
                runtime,
                phone=cmd.phone,
                password=cmd.password,
                name=cmd.name,
                role=Role.elder,
                district=district,
                status=UserStatus.active,
                created_by=principal.user_id,
                gender=cmd.gender,
                birth_year=cmd.birth_year,
            )
        else:
            user = await User.create(
                role=Role.elder,
                name=cmd.name,
                district=district,
                created_by_id=principal.user_id,
                gender=cmd.gender,
                birth_year=cmd.birth_year,
            )
        profile = ElderProfile(
            user=user,
            birth_year=cmd.birth_year,
            gender=cmd.gender,
            flags=sorted({flag.value for flag in cmd.flags}),
            latitude=cmd.latitude,
            longitude=cmd.longitude,
            preferences=dataclasses.asdict(cmd.preferences) if cmd.preferences else {},
            consents=_consents(cmd.consents),
        )
        for name, purpose in ENCRYPTED.items():
            value = getattr(cmd, name)
            if value is not None:
                setattr(
                    profile,
                    f"{name.removesuffix('_notes')}_enc",
                    runtime.crypto.encrypt(value, purpose=purpose),
                )
        await profile.save()
    return user


def _decrypt(runtime: Runtime, user: User, profile: ElderProfile, name: str) -> str | None:
    if name == "phone":
        return (
            runtime.crypto.decrypt(user.phone_enc, purpose=PHONE_PURPOSE)
            if user.phone_enc
            else None
        )
    token = getattr(profile, f"{name.removesuffix('_notes')}_enc")
    return runtime.crypto.decrypt(token, purpose=ENCRYPTED[name]) if token else None


async def elder_view(runtime: Runtime, principal: Principal, elder_id: UUID) -> dict[str, Any]:
    user, profile = await get_elder(elder_id)
    if not await access.can_see_elder(principal, user):
        raise Forbidden("elder_forbidden", "you may not see this elder's record")
    fields = await access.readable_sensitive_fields(principal, user)
    await access.log_access(principal, user.id, fields, "elder_record")
    view: dict[str, Any] = {
        "id": str(user.id),
        "name": user.name,
        "district_id": str(user.district_id),  # type: ignore[attr-defined]
        "birth_year": profile.birth_year,
        "gender": profile.gender,
        "flags": profile.flags,
        "location": {"latitude": profile.latitude, "longitude": profile.longitude},
        "preferences": profile.preferences,
        "consents": profile.consents,
        "capability_level": profile.capability_level,
    }
    view["sensitive"] = {name: _decrypt(runtime, user, profile, name) for name in fields}
    return view


async def update_profile(
    runtime: Runtime, principal: Principal, elder_id: UUID, cmd: UpdateElderProfile
) -> None:
    user, profile = await get_elder(elder_id)
    is_admin = principal.administers(user.district_id)  # type: ignore[attr-defined]
    if principal.user_id != user.id and not is_admin:
        raise Forbidden("elder_forbidden", "only the elder or their centre may change this profile")
    if cmd.flags is not None and not is_admin:
        # Flags decide priority and redemption eligibility: the centre records them.
        raise Forbidden("flags_forbidden", "only the elder's centre may change priority flags")
    if cmd.phone is not None:
        taken = await User.filter(phone_index=phone_index(runtime, cmd.phone)).exclude(id=user.id)
        if taken:
            raise Conflict("phone_taken", "an account with this phone number already exists")
    async with in_transaction():
        for name in ("latitude", "longitude"):
            if (value := getattr(cmd, name)) is not None:
                setattr(profile, name, value)
        if cmd.flags is not None:
            profile.flags = sorted({flag.value for flag in cmd.flags})
        if cmd.preferences is not None:
            profile.preferences = dataclasses.asdict(cmd.preferences)
        if cmd.consents is not None:
            profile.consents = _consents(cmd.consents)
        for name, purpose in ENCRYPTED.items():
            if (value := getattr(cmd, name)) is not None:
                setattr(
                    profile,
                    f"{name.removesuffix('_notes')}_enc",
                    runtime.crypto.encrypt(value, purpose=purpose),
                )
        await profile.save()
        if cmd.phone is not None:
            user.phone_index = phone_index(runtime, cmd.phone)
            user.phone_enc = runtime.crypto.encrypt(
                normalise_phone(cmd.phone), purpose=PHONE_PURPOSE
            )
            await user.save(update_fields=["phone_index", "phone_enc"])


ASSESSMENT_PURPOSE = "assessment.detail"


def assessment_row(
    runtime: Runtime,
    *,
    elder_id: UUID,
    result: gbt.AssessmentResult,
    scores: Mapping[str, int],
    coma: bool,
    dementia_or_mental_disorder: bool,
    risk_events_30d: int,
    assessors: tuple[str, str],
    informant: str,
    assessed_on: date,
    recorded_by: UUID,
) -> Assessment:
    """An unsaved assessment row: the level in clear (care decisions need it), the scores,
    diagnoses and reasons (which name the diagnoses) encrypted as health data."""
    detail = {
        "item_scores": dict(sorted(scores.items())),
        "coma": coma,
        "dementia_or_mental_disorder": dementia_or_mental_disorder,
        "risk_events_30d": risk_events_30d,
        "reasons": list(result.reasons),
    }
    return Assessment(
        elder_id=elder_id,
        standard=result.standard,
        detail_enc=runtime.crypto.encrypt(json.dumps(detail), purpose=ASSESSMENT_PURPOSE),
        total=result.total,
        preliminary_level=result.preliminary_level.value,
        final_level=result.final_level.value,
        assessor_1=assessors[0],
        assessor_2=assessors[1],
        informant=informant,
        assessed_on=assessed_on,
        recorded_by_id=recorded_by,
    )


async def record_assessment(
    runtime: Runtime, principal: Principal, elder_id: UUID, cmd: RecordAssessment
) -> dict[str, Any]:
    user, profile = await get_elder(elder_id)
    require_admin_of(principal, user.district_id, "assess elders of this district")  # type: ignore[attr-defined]
    if cmd.assessed_on > now_utc().date():
        raise InvalidInput(
            "invalid_input",
            "an assessment cannot be dated in the future",
            [{"field": "assessed_on", "problem": "must not be in the future"}],
        )
    try:
        result = gbt.compute_level(
            cmd.item_scores,
            coma=cmd.coma,
            dementia_or_mental_disorder=cmd.dementia_or_mental_disorder,
            risk_events_30d=cmd.risk_events_30d,
        )
    except gbt.AssessmentInvalid as exc:
        details = [{"field": "item_scores", "problem": p} for p in exc.problems]
        raise InvalidInput("assessment_invalid", str(exc), details) from None
    async with in_transaction():
        record = assessment_row(
            runtime,
            elder_id=user.id,
            result=result,
            scores=cmd.item_scores,
            coma=cmd.coma,
            dementia_or_mental_disorder=cmd.dementia_or_mental_disorder,
            risk_events_30d=cmd.risk_events_30d,
            assessors=(cmd.assessor_1, cmd.assessor_2),
            informant=cmd.informant,
            assessed_on=cmd.assessed_on,
            recorded_by=principal.user_id,
        )
        await record.save()
        profile.capability_level = result.final_level.value
        await profile.save(update_fields=["capability_level", "updated_at"])
    (view,) = await assessment_views(runtime, user.district_id, [record])  # type: ignore[attr-defined]
    return view


async def assessment_history(
    runtime: Runtime, principal: Principal, elder_id: UUID
) -> list[dict[str, Any]]:
    """The elder's own assessments, or any elder's for their centre (logged): health data."""
    user, _ = await get_elder(elder_id)
    own = principal.user_id == user.id
    if not own and not principal.administers(user.district_id):  # type: ignore[attr-defined]
        raise Forbidden("elder_forbidden", "only the elder and their centre see assessments")
    await access.log_access(principal, user.id, ("assessments",), "assessment_history")
    records = await Assessment.filter(elder_id=user.id).order_by("-assessed_on", "-created_at")
    return await assessment_views(runtime, user.district_id, records)  # type: ignore[attr-defined]


REASSESSMENT_RULE = "assessment.reassessment_months"


async def reassessment_schedule(district_id: UUID, assessed_on: date) -> tuple[int, int]:
    """(policy version, months) of the re-assessment period in force for the elder's district
    on the assessment's date (from 00:00 UTC that day): the event decides the rule."""
    at = datetime.combine(assessed_on, time.min, tzinfo=UTC)
    version, rules = await policy_in_force(district_id, at)
    return version, rules.assessment.reassessment_months


def assessment_json(
    runtime: Runtime, record: Assessment, *, schedule: tuple[int, int]
) -> dict[str, Any]:
    detail = json.loads(runtime.crypto.decrypt(record.detail_enc, purpose=ASSESSMENT_PURPOSE))
    version, months = schedule
    return {
        "id": str(record.id),
        "standard": record.standard,
        "total": record.total,
        "preliminary_level": record.preliminary_level,
        "final_level": record.final_level,
        "reasons": detail.get("reasons", []),
        "assessors": [record.assessor_1, record.assessor_2],
        "informant": record.informant,
        "assessed_on": record.assessed_on.isoformat(),
        "reassessment_due": gbt.reassessment_due(record.assessed_on, months=months).isoformat(),
        "reassessment_rule": {
            "rule": REASSESSMENT_RULE,
            "months": months,
            "policy_version": version,
        },
    }


async def assessment_views(
    runtime: Runtime, elder_district_id: UUID, records: list[Assessment]
) -> list[dict[str, Any]]:
    """Assessments as JSON, each with its re-assessment date under the policy of its day."""
    schedules: dict[date, tuple[int, int]] = {}
    views = []
    for record in records:
        if record.assessed_on not in schedules:
            schedules[record.assessed_on] = await reassessment_schedule(
                elder_district_id, record.assessed_on
            )
        views.append(assessment_json(runtime, record, schedule=schedules[record.assessed_on]))
    return views


async def list_elders(principal: Principal, query: ElderListQuery) -> list[dict[str, Any]]:
    """Elders under a district the caller administers; no sensitive fields, so no access log."""
    district_id = query.district_id or principal.district_id
    require_admin_of(principal, district_id, "list this district's elders")
    districts = await district_subtree(district_id)
    rows = User.filter(role=Role.elder, district_id__in=list(districts))
    if query.q:
        rows = rows.filter(name__icontains=query.q)
    users = await rows.order_by("name", "id").offset(query.offset).limit(query.limit)
    profiles = {
        p.user_id: p  # type: ignore[attr-defined]
        for p in await ElderProfile.filter(user_id__in=[u.id for u in users])
    }
    return [
        {
            "id": str(user.id),
            "name": user.name,
            "district_id": str(user.district_id),  # type: ignore[attr-defined]
            "birth_year": profiles[user.id].birth_year,
            "flags": profiles[user.id].flags,
            "capability_level": profiles[user.id].capability_level,
        }
        for user in users
        if user.id in profiles
    ]
