"""Districts and district policies."""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market import policy as policy_rules
from market.errors import InvalidInput
from market.models import District, DistrictPolicy, Role
from market.routes.spec import endpoint
from market.schemas.parse import parse_body, path_uuid
from market.schemas.people import CreateDistrict, CreatePolicyVersion
from market.schemas.shapes import district_json
from market.services import auth, districts


@endpoint(summary="List all districts, streets and communities", tag="districts", roles=None)
async def list_districts(request: Request) -> Response:
    rows = await District.all().order_by("code")
    return JSONResponse({"districts": [district_json(d) for d in rows]})


@endpoint(
    summary="Add a street or community under a district you administer",
    tag="districts",
    roles=[Role.centre_admin],
    body=CreateDistrict,
    status=201,
)
async def create_district(request: Request) -> Response:
    cmd = await parse_body(request, CreateDistrict)
    district = await districts.create_district(auth.current(request), cmd)
    return JSONResponse({"district": district_json(district)}, status_code=201)


def _at(request: Request) -> datetime:
    raw = request.query_params.get("at")
    if raw is None:
        return auth.now_utc()
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise InvalidInput(
            "invalid_input",
            "at must be an ISO 8601 date-time with a time zone",
            [{"field": "at", "problem": "must be an ISO 8601 date-time with a time zone"}],
        )
    return at


@endpoint(
    summary="The policy in force for a district (now, or ?at=)",
    tag="districts",
    roles=None,
    description="Communities and streets inherit their district's policy; version 0 is the "
    "built-in default of docs/architecture.md.",
)
async def policy_in_force(request: Request) -> Response:
    version, content = await districts.policy_in_force(path_uuid(request), _at(request))
    return JSONResponse({"version": version, "policy": policy_rules.policy_to_json(content)})


@endpoint(
    summary="Add a policy version taking effect at a future time",
    tag="districts",
    roles=[Role.centre_admin],
    body=CreatePolicyVersion,
    status=201,
)
async def add_policy(request: Request) -> Response:
    cmd = await parse_body(request, CreatePolicyVersion)
    row = await districts.add_policy_version(auth.current(request), path_uuid(request), cmd)
    return JSONResponse(
        {"version": row.version, "effective_from": row.effective_from.isoformat()}, status_code=201
    )


@endpoint(summary="Every policy version of a district", tag="districts", roles=None)
async def policy_history(request: Request) -> Response:
    district = await districts.get_district(path_uuid(request))
    rows = await DistrictPolicy.filter(district=district).order_by("version")
    return JSONResponse(
        {
            "versions": [
                {
                    "version": r.version,
                    "effective_from": r.effective_from.isoformat(),
                    "policy": r.content,
                }
                for r in rows
            ]
        }
    )


routes = [
    Route("/api/v1/districts", list_districts, methods=["GET"]),
    Route("/api/v1/districts", create_district, methods=["POST"]),
    Route("/api/v1/districts/{id}/policy", policy_in_force, methods=["GET"]),
    Route("/api/v1/districts/{id}/policies", policy_history, methods=["GET"]),
    Route("/api/v1/districts/{id}/policies", add_policy, methods=["POST"]),
]
