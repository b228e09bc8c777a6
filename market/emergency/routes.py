"""Emergency calls: the record with every step, the centre's acknowledgement, the duty list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.emergency import service
from market.emergency.schemas import Acknowledge, EmergencyListQuery
from market.models import Role
from market.routes.spec import endpoint
from market.schemas.parse import parse_body, parse_query, path_uuid
from market.services import auth

READERS = [Role.elder, Role.family, Role.centre_admin]
CENTRE = [Role.centre_admin]
RECORD = (
    "The call's state, acknowledgement and escalation, and every step in order: created, "
    "offered (to how many helpers), no helper in reach, duty feed alerted, each webhook "
    "attempt and its outcome, acknowledged (by whom, how), reopened (the booking went back to be "
    "staffed: its helper dropped out), closed. The elder and linked family see the steps "
    "without helper and staff ids or the webhook's errors."
)


@endpoint(
    summary="An emergency call's record (the elder, linked family, the centre)",
    tag="emergencies",
    roles=READERS,
    description=RECORD,
)
async def get_call(request: Request) -> Response:
    view = await service.read(auth.current(request), path_uuid(request))
    return JSONResponse({"emergency": service.view_json(view)})


@endpoint(
    summary="The emergency call of a booking (the elder, linked family, the centre)",
    tag="emergencies",
    roles=READERS,
    description=RECORD + " 404 when the booking is not an emergency.",
)
async def get_booking_call(request: Request) -> Response:
    view = await service.read_for_booking(auth.current(request), path_uuid(request))
    return JSONResponse({"emergency": service.view_json(view)})


@endpoint(
    summary="Acknowledge an emergency call (the centre of its district)",
    tag="emergencies",
    roles=CENTRE,
    body=Acknowledge,
    status=201,
    description="Stops the escalation (duty feed, then the webhook to the SMS gateway); a "
    "helper accepting the offer acknowledges it too. Exactly one acknowledgement counts: 201 "
    "for the request that made it, 200 with the standing acknowledgement for any later one, "
    "409 `emergency.closed` if the call closed unacknowledged. `handling: true` records that "
    "the centre responds itself; the booking's helper offers stay open.",
)
async def acknowledge(request: Request) -> Response:
    cmd = await parse_body(request, Acknowledge)
    view, done_now = await service.acknowledge(auth.current(request), path_uuid(request), cmd)
    return JSONResponse(
        {"emergency": service.view_json(view), "acknowledged_now": done_now},
        status_code=201 if done_now else 200,
    )


@endpoint(
    summary="Emergency calls of a district you administer, newest first",
    tag="emergencies",
    roles=CENTRE,
    query=EmergencyListQuery,
    description="The district and the districts below it; `state=open` lists the calls "
    "nobody has acknowledged yet.",
)
async def list_calls(request: Request) -> Response:
    query = parse_query(request, EmergencyListQuery)
    total, rows = await service.list_for_district(auth.current(request), path_uuid(request), query)
    return JSONResponse(
        {
            "total": total,
            "limit": query.limit,
            "offset": query.offset,
            "emergencies": [service.call_json(c) for c in rows],
        }
    )


routes = [
    Route("/api/v1/emergencies/{id}", get_call, methods=["GET"]),
    Route("/api/v1/emergencies/{id}/acknowledgement", acknowledge, methods=["POST"]),
    Route("/api/v1/bookings/{id}/emergency", get_booking_call, methods=["GET"]),
    Route("/api/v1/districts/{id}/emergencies", list_calls, methods=["GET"]),
]
