"""Check-in visits: record, major changes, history, referrals, the overdue queue, coverage."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.errors import InvalidInput
from market.models import Role
from market.routes.spec import endpoint
from market.schemas.parse import json_body, parse, parse_body, path_uuid
from market.services import auth, bookings
from market.services.auth import now_utc
from market.services.runtime import runtime_of
from market.visits import schedule, service
from market.visits.schemas import RecordMajorChange, RecordVisit, Referral

CENTRE = [Role.centre_admin]
VISITORS = [Role.centre_admin, Role.volunteer, Role.provider_staff]
MONTH = re.compile(r"(\d{4})-(\d{2})")


def _query_problem(name: str, problem: str) -> InvalidInput:
    return InvalidInput("invalid_query", f"{name} {problem}", [{"field": name, "problem": problem}])


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not low <= int(raw) <= high:
        raise _query_problem(name, f"must be a whole number from {low} to {high}")
    return int(raw)


def _bool_param(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "false")
    if raw not in ("true", "false"):
        raise _query_problem(name, "must be true or false")
    return raw == "true"


def _month_param(request: Request) -> date:
    raw = request.query_params.get("month")
    match = MONTH.fullmatch(raw or "")
    if raw is None or match is None or not 1 <= int(match[2]) <= 12:
        raise _query_problem("month", "must be a month as YYYY-MM, e.g. 2026-11")
    year = int(match[1])
    if not 2000 <= year <= 2200:
        raise _query_problem("month", "must be between the years 2000 and 2200")
    return date(year, int(match[2]), 1)


@endpoint(
    summary="Record a check-in visit to an elder",
    tag="visits",
    roles=VISITORS,
    body=RecordVisit,
    status=201,
    description="By the elder's centre, or a vetted, active helper of the elder's district (or "
    "of a district above it) for their own visit. The findings (health, finances, home safety, "
    "family support, needs, anything special) are encrypted at rest as one record.",
)
async def record_visit(request: Request) -> Response:
    cmd = await parse_body(request, RecordVisit)
    runtime = runtime_of(request)
    visit = await service.record_visit(runtime, auth.current(request), path_uuid(request), cmd)
    return JSONResponse({"visit": service.visit_json(runtime, visit)}, status_code=201)


@endpoint(
    summary="An elder's visits, major changes and next due visit (the elder's centre)",
    tag="visits",
    roles=CENTRE,
    description="The latest 100 of each, newest first. Visit records hold health data: every "
    "read is written to the access log.",
)
async def list_visits(request: Request) -> Response:
    runtime = runtime_of(request)
    visits, changes, due = await service.visit_history(auth.current(request), path_uuid(request))
    return JSONResponse(
        {
            "schedule": schedule.due_json(due) if due else None,
            "visits": [service.visit_json(runtime, v) for v in visits],
            "major_changes": [service.major_change_json(runtime, c) for c in changes],
        }
    )


@endpoint(
    summary="Record a major change in an elder's life (the elder's centre)",
    tag="visits",
    roles=CENTRE,
    body=RecordMajorChange,
    status=201,
    description="A hospital discharge, bereavement, fall and the like. A high-risk elder is then "
    "due a visit within the policy's hours (24 by default); the note is encrypted.",
)
async def record_major_change(request: Request) -> Response:
    cmd = await parse_body(request, RecordMajorChange)
    runtime = runtime_of(request)
    change, due = await service.record_major_change(
        runtime, auth.current(request), path_uuid(request), cmd
    )
    return JSONResponse(
        {
            "major_change": service.major_change_json(runtime, change),
            "schedule": schedule.due_json(due) if due else None,
        },
        status_code=201,
    )


@endpoint(
    summary="Refer a need found on a visit as a service request (the elder's centre)",
    tag="visits",
    roles=CENTRE,
    body=Referral,
    status=201,
    description="Books the service for the elder as the centre would for a hotline caller, and "
    "lists the booking on the visit. Sending the same referral again for the same visit answers "
    "with the same booking (`Idempotent-Replayed: true`).",
)
async def refer(request: Request) -> Response:
    data = await json_body(request)
    cmd = parse(Referral, data)
    digest = hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    principal = auth.current(request)
    runtime = runtime_of(request)
    created = await service.refer(runtime, principal, path_uuid(request), cmd, body_sha256=digest)
    views = [await bookings.view(runtime, principal, b) for b in created.booking_ids]
    headers = {"Idempotent-Replayed": "true"} if created.replayed else {}
    return JSONResponse({"bookings": views}, status_code=created.status, headers=headers)


@endpoint(
    summary="The district's visit queue, the longest overdue first (centre admin)",
    tag="visits",
    roles=CENTRE,
    description="Every elder on a visiting schedule in the district and the districts below it, "
    "with tier, last visit, due time and minutes overdue. `?limit=` (1-200, default 50), "
    "`?offset=`, `?overdue_only=true`. The centre need not poll it: an elder becoming overdue "
    "is announced as `visit.overdue` on the admin stream of the elder's district, once per "
    "overdue period (again each further tier interval without a visit).",
)
async def visit_queue(request: Request) -> Response:
    limit = _int_param(request, "limit", 50, 1, schedule.QUEUE_MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 1_000_000)
    overdue_only = _bool_param(request, "overdue_only")
    page = await schedule.overdue_queue(
        auth.current(request),
        path_uuid(request),
        now=now_utc(),
        limit=limit,
        offset=offset,
        overdue_only=overdue_only,
    )
    return JSONResponse(
        {
            "total": page.total,
            "limit": limit,
            "offset": offset,
            "elders": [schedule.due_json(d) for d in page.items],
        }
    )


@endpoint(
    summary="Visit coverage of a month against the monthly target (centre admin)",
    tag="visits",
    roles=CENTRE,
    description="`?month=YYYY-MM` (UTC). Per tier: elders, those visited, those with every "
    "visit their tier needs that month; the monthly rate counts tiers visited at least monthly "
    "against the policy's target (100% by default).",
)
async def visit_coverage(request: Request) -> Response:
    month = _month_param(request)
    cover = await schedule.coverage(auth.current(request), path_uuid(request), month)
    return JSONResponse({"coverage": schedule.coverage_json(cover)})


routes = [
    Route("/api/v1/elders/{id}/visits", record_visit, methods=["POST"]),
    Route("/api/v1/elders/{id}/visits", list_visits, methods=["GET"]),
    Route("/api/v1/elders/{id}/major-changes", record_major_change, methods=["POST"]),
    Route("/api/v1/visits/{id}/referrals", refer, methods=["POST"]),
    Route("/api/v1/districts/{id}/visit-queue", visit_queue, methods=["GET"]),
    Route("/api/v1/districts/{id}/visit-coverage", visit_coverage, methods=["GET"]),
]
