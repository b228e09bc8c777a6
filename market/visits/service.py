"""Recording check-in visits and major changes, reading an elder's visits, and referrals.

Who may record a visit: a centre admin administering the elder's district, or a helper
(volunteer or provider staff) whose vetting was approved, whose account is active and whose
home district is the elder's district or one above it (a street's volunteers visit its
communities). A helper records only their own visits; a centre admin may record a visit made by
such a helper on their behalf (e.g. reported by phone). Major changes, visit history and
referrals belong to the centre alone: the record holds health and money data.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from market.errors import Forbidden, InvalidInput, NotFound
from market.models import District, HelperProfile, Role, User, UserStatus, VettingStatus
from market.realtime.events import admin_stream, event_transaction
from market.schemas.bookings import CreateRequest
from market.services import access, requests
from market.services.auth import now_utc
from market.services.elders import get_elder
from market.services.requests import Created
from market.services.runtime import Runtime
from market.services.scope import Principal, require_admin_of
from market.visits import schedule
from market.visits.models import CHANGE_PURPOSE, RECORD_PURPOSE, MajorChange, VisitRecord
from market.visits.schemas import Findings, RecordMajorChange, RecordVisit, Referral

HELPER_ROLES = frozenset({Role.volunteer, Role.provider_staff})
# Phones and servers disagree by a few minutes; a visit is never recorded ahead of its time.
CLOCK_SKEW = timedelta(minutes=5)
# Paper records from villages reach the centre late, but not after a quarter.
LATE_ENTRY = timedelta(days=92)
HISTORY_LIMIT = 100


def _problem(field: str, problem: str, code: str = "invalid_input") -> InvalidInput:
    return InvalidInput(code, f"{field} {problem}", [{"field": field, "problem": problem}])


def _check_time(field: str, at: datetime, now: datetime) -> None:
    if at > now + CLOCK_SKEW:
        raise _problem(field, "must not be in the future")
    if at < now - LATE_ENTRY:
        raise _problem(field, "must be within the last 92 days")


async def _district_and_ancestors(district_id: UUID) -> frozenset[UUID]:
    chain: set[UUID] = set()
    current: UUID | None = district_id
    while current is not None and current not in chain:
        chain.add(current)
        district = await District.get_or_none(id=current)
        current = district.parent_id if district is not None else None  # type: ignore[attr-defined]
    return frozenset(chain)


async def _eligible_helper(helper_id: UUID, elder: User) -> bool:
    helper = await User.get_or_none(id=helper_id)
    if helper is None or helper.role not in HELPER_ROLES or helper.status is not UserStatus.active:
        return False
    vetted = await HelperProfile.filter(
        user_id=helper.id, vetting_status=VettingStatus.approved
    ).exists()
    area = await _district_and_ancestors(elder.district_id)  # type: ignore[attr-defined]
    return vetted and helper.district_id in area  # type: ignore[attr-defined]


async def _visitor(principal: Principal, elder: User, named: UUID | None) -> UUID:
    """The visitor to record, after the rule in the module docstring; raises Forbidden."""
    if principal.administers(elder.district_id):  # type: ignore[attr-defined]
        if named is None or named == principal.user_id:
            return principal.user_id
        if await _eligible_helper(named, elder):
            return named
        raise Forbidden(
            "visitor_not_eligible",
            "the named visitor is not a vetted, active helper of the elder's district",
        )
    if principal.role in HELPER_ROLES:
        if named is not None and named != principal.user_id:
            raise Forbidden("visit_forbidden", "a helper records only their own visits")
        if await _eligible_helper(principal.user_id, elder):
            return principal.user_id
    raise Forbidden(
        "visit_forbidden",
        "only the elder's centre or a vetted helper of the elder's district may record a visit",
    )


def _encrypt_findings(runtime: Runtime, findings: Findings) -> str:
    # One blob: which sections were filled in says something too, so none shows in clear.
    blob = json.dumps(asdict(findings), ensure_ascii=False, sort_keys=True)
    return runtime.crypto.encrypt(blob, purpose=RECORD_PURPOSE)


async def record_visit(
    runtime: Runtime, principal: Principal, elder_id: UUID, cmd: RecordVisit
) -> VisitRecord:
    elder, _ = await get_elder(elder_id)
    visitor = await _visitor(principal, elder, cmd.visitor_id)
    now = now_utc()
    _check_time("visited_at", cmd.visited_at, now)
    if not any(value.strip() for value in asdict(cmd.record).values()):
        raise _problem("record", "must hold at least one finding")
    district_id: UUID = elder.district_id  # type: ignore[attr-defined]
    async with event_transaction() as tx:
        visit = await VisitRecord.create(
            elder_id=elder.id,
            district_id=district_id,
            visitor_id=visitor,
            method=cmd.method,
            visited_at=cmd.visited_at,
            record_enc=_encrypt_findings(runtime, cmd.record),
            referral_booking_ids=[],
            created_by_id=principal.user_id,
            using_db=tx.connection,
        )
        due = await schedule.elder_due(elder.id, now=now, connection=tx.connection)
        await tx.publish(
            [admin_stream(district_id)],
            "visit.recorded",
            {
                "visit": str(visit.id),
                "elder": str(elder.id),
                "method": cmd.method.value,
                "visited_at": cmd.visited_at.isoformat(),
                **schedule.due_payload(due),
            },
        )
    return visit


async def record_major_change(
    runtime: Runtime, principal: Principal, elder_id: UUID, cmd: RecordMajorChange
) -> tuple[MajorChange, schedule.ElderDue | None]:
    elder, _ = await get_elder(elder_id)
    district_id: UUID = elder.district_id  # type: ignore[attr-defined]
    require_admin_of(principal, district_id, "record major changes for this elder")
    now = now_utc()
    _check_time("at", cmd.at, now)
    note = cmd.note.strip()
    async with event_transaction() as tx:
        change = await MajorChange.create(
            elder_id=elder.id,
            kind=cmd.kind,
            at=cmd.at,
            note_enc=runtime.crypto.encrypt(note, purpose=CHANGE_PURPOSE) if note else None,
            recorded_by_id=principal.user_id,
            using_db=tx.connection,
        )
        due = await schedule.elder_due(elder.id, now=now, connection=tx.connection)
        # The centre's feed learns at once that the elder is due sooner (high risk: 24 h).
        await tx.publish(
            [admin_stream(district_id)],
            "visit.due_changed",
            {
                "elder": str(elder.id),
                "major_change": str(change.id),
                "kind": cmd.kind.value,
                **schedule.due_payload(due),
            },
        )
    return change, due


def visit_json(runtime: Runtime, visit: VisitRecord) -> dict[str, Any]:
    findings = json.loads(runtime.crypto.decrypt(visit.record_enc, purpose=RECORD_PURPOSE))
    return {
        "id": str(visit.id),
        "elder_id": str(visit.elder_id),
        "district_id": str(visit.district_id),
        "visitor_id": str(visit.visitor_id),
        "method": visit.method.value,
        "visited_at": visit.visited_at.isoformat(),
        "record": findings,
        "referral_booking_ids": list(visit.referral_booking_ids),
        "recorded_by": str(visit.created_by_id),
    }


def major_change_json(runtime: Runtime, change: MajorChange) -> dict[str, Any]:
    note = (
        runtime.crypto.decrypt(change.note_enc, purpose=CHANGE_PURPOSE) if change.note_enc else ""
    )
    return {
        "id": str(change.id),
        "elder_id": str(change.elder_id),
        "kind": change.kind.value,
        "at": change.at.isoformat(),
        "note": note,
        "recorded_by": str(change.recorded_by_id),
    }


async def visit_history(
    principal: Principal, elder_id: UUID
) -> tuple[list[VisitRecord], list[MajorChange], schedule.ElderDue | None]:
    """The elder's latest visits and major changes, newest first, for the elder's centre."""
    elder, _ = await get_elder(elder_id)
    require_admin_of(principal, elder.district_id, "read this elder's visits")  # type: ignore[attr-defined]
    await access.log_access(principal, elder.id, ("visit_records",), "visit_history")
    visits = (
        await VisitRecord.filter(elder_id=elder.id)
        .order_by("-visited_at", "-created_at")
        .limit(HISTORY_LIMIT)
    )
    changes = await MajorChange.filter(elder_id=elder.id).order_by("-at").limit(HISTORY_LIMIT)
    return visits, changes, await schedule.elder_due(elder.id, now=now_utc())


async def get_visit(visit_id: UUID) -> VisitRecord:
    visit = await VisitRecord.get_or_none(id=visit_id)
    if visit is None:
        raise NotFound("visit_not_found", f"no visit {visit_id}")
    return visit


def referral_key(visit_id: UUID, body_sha256: str) -> str:
    # The same referral sent twice for one visit is one booking: a retry after a lost answer
    # (or after a failure before the visit was linked) replays it instead of booking again.
    return f"visit-referral:{visit_id}:{body_sha256[:32]}"


async def refer(
    runtime: Runtime, principal: Principal, visit_id: UUID, cmd: Referral, *, body_sha256: str
) -> Created:
    """Book the need as a request for the elder, as the centre would on the hotline."""
    visit = await get_visit(visit_id)
    elder, _ = await get_elder(visit.elder_id)
    require_admin_of(principal, elder.district_id, "refer this elder's needs")  # type: ignore[attr-defined]
    request = CreateRequest(
        service=cmd.service,
        window_start=cmd.window_start,
        payment=cmd.payment,
        elder_id=elder.id,
        window_end=cmd.window_end,
        notes=cmd.notes,
    )
    created = await requests.create_request(
        runtime,
        principal,
        request,
        idempotency_key=referral_key(visit.id, body_sha256),
        body_sha256=body_sha256,
    )
    await _link_referral(visit.id, created.booking_ids, district_id=elder.district_id)  # type: ignore[attr-defined]
    return created


async def _link_referral(
    visit_id: UUID, booking_ids: tuple[UUID, ...], *, district_id: UUID
) -> None:
    async with event_transaction() as tx:
        visit = await VisitRecord.select_for_update().using_db(tx.connection).get(id=visit_id)
        known = list(visit.referral_booking_ids)
        added = [str(b) for b in booking_ids if str(b) not in known]
        if not added:
            return
        visit.referral_booking_ids = known + added
        await visit.save(update_fields=["referral_booking_ids"], using_db=tx.connection)
        await tx.publish(
            [admin_stream(district_id)],
            "visit.referred",
            {"visit": str(visit_id), "elder": str(visit.elder_id), "bookings": added},
        )
