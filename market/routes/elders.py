"""Elder records and capability assessments."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.models import Role
from market.routes.spec import endpoint
from market.schemas.parse import parse_body, parse_query, path_uuid
from market.schemas.people import (
    ElderListQuery,
    RecordAssessment,
    RegisterElder,
    UpdateElderProfile,
)
from market.services import auth, elders
from market.services.runtime import runtime_of

READERS = [Role.elder, Role.family, Role.centre_admin]


@endpoint(
    summary="Register an elder (centre admin, e.g. for a hotline caller)",
    tag="elders",
    roles=[Role.centre_admin],
    body=RegisterElder,
    status=201,
    description="ID number, phone, address and health notes are encrypted at rest.",
)
async def register_elder(request: Request) -> Response:
    cmd = await parse_body(request, RegisterElder)
    user = await elders.register_elder(runtime_of(request), auth.current(request), cmd)
    view = await elders.elder_view(runtime_of(request), auth.current(request), user.id)
    return JSONResponse({"elder": view}, status_code=201)


@endpoint(
    summary="Elders of a district you administer (no sensitive fields)",
    tag="elders",
    roles=[Role.centre_admin],
    query=ElderListQuery,
)
async def list_elders(request: Request) -> Response:
    query = parse_query(request, ElderListQuery)
    return JSONResponse({"elders": await elders.list_elders(auth.current(request), query)})


@endpoint(
    summary="An elder's record",
    tag="elders",
    roles=READERS,
    description="Sensitive fields appear only for the elder, linked family (phone, address) and "
    "the elder's centre; every read by someone else is written to the access log.",
)
async def get_elder(request: Request) -> Response:
    view = await elders.elder_view(runtime_of(request), auth.current(request), path_uuid(request))
    return JSONResponse({"elder": view})


@endpoint(
    summary="Change an elder's profile (the elder or their centre)",
    tag="elders",
    roles=[Role.elder, Role.centre_admin],
    body=UpdateElderProfile,
)
async def update_elder(request: Request) -> Response:
    cmd = await parse_body(request, UpdateElderProfile)
    elder_id = path_uuid(request)
    await elders.update_profile(runtime_of(request), auth.current(request), elder_id, cmd)
    view = await elders.elder_view(runtime_of(request), auth.current(request), elder_id)
    return JSONResponse({"elder": view})


@endpoint(
    summary="Record a GB/T 42195-2022 assessment; the server computes the level",
    tag="elders",
    roles=[Role.centre_admin],
    body=RecordAssessment,
    status=201,
)
async def record_assessment(request: Request) -> Response:
    cmd = await parse_body(request, RecordAssessment)
    view = await elders.record_assessment(
        runtime_of(request), auth.current(request), path_uuid(request), cmd
    )
    return JSONResponse({"assessment": view}, status_code=201)


@endpoint(
    summary="An elder's assessment history, newest first (the elder or their centre)",
    tag="elders",
    roles=[Role.elder, Role.centre_admin],
    description="Assessments are health data: family members see the capability level on the "
    "elder's record, not the assessments; reads by the centre are logged.",
)
async def list_assessments(request: Request) -> Response:
    views = await elders.assessment_history(
        runtime_of(request), auth.current(request), path_uuid(request)
    )
    return JSONResponse({"assessments": views})


routes = [
    Route("/api/v1/elders", register_elder, methods=["POST"]),
    Route("/api/v1/elders", list_elders, methods=["GET"]),
    Route("/api/v1/elders/{id}", get_elder, methods=["GET"]),
    Route("/api/v1/elders/{id}/profile", update_elder, methods=["POST"]),
    Route("/api/v1/elders/{id}/assessments", record_assessment, methods=["POST"]),
    Route("/api/v1/elders/{id}/assessments", list_assessments, methods=["GET"]),
]
