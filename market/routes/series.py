"""Recurring series: read one or an elder's, skip or move an occurrence, end the series."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.models import Role
from market.routes.spec import endpoint
from market.schemas.parse import parse_body, parse_query, path_uuid
from market.schemas.series import EndSeries, MoveOccurrence, SeriesQuery, SkipOccurrence
from market.services import auth, series

BOOKERS = [Role.elder, Role.family, Role.centre_admin]


@endpoint(
    summary="An elder's recurring series",
    tag="bookings",
    roles=BOOKERS,
    query=SeriesQuery,
    description="Every series booked for the elder, each with its occurrences and their states.",
)
async def list_series(request: Request) -> Response:
    query = parse_query(request, SeriesQuery)
    found = await series.list_for_elder(auth.current(request), query.elder_id)
    return JSONResponse({"series": found})


@endpoint(
    summary="A recurring series and its occurrences",
    tag="bookings",
    roles=BOOKERS,
    description="`until` is null for an open-ended series; `booked_through` is the last day "
    "its occurrences are booked up to (the service books further days as its horizon moves "
    "on); `exceptions` holds the skips, moves and, under `unbooked`, the days the horizon could "
    "not book when their turn came (elder no longer active, paying relative no longer linked, "
    "a payment or policy refusal): day -> refusal code.",
)
async def get_series(request: Request) -> Response:
    view = await series.view(auth.current(request), path_uuid(request))
    return JSONResponse({"series": view})


@endpoint(
    summary="Skip one occurrence",
    tag="bookings",
    roles=BOOKERS,
    body=SkipOccurrence,
    description="Cancels that occurrence's booking as any cancellation would (free or late by "
    "the service's cancellation window) and records the exception on the series. A day on the "
    "pattern the horizon has not booked yet (after `booked_through`) is only recorded: it is "
    "never booked. 404 for a day that is no occurrence.",
)
async def skip(request: Request) -> Response:
    cmd = await parse_body(request, SkipOccurrence)
    view = await series.skip(auth.current(request), path_uuid(request), cmd)
    return JSONResponse({"series": view})


@endpoint(
    summary="Move one occurrence",
    tag="bookings",
    roles=BOOKERS,
    body=MoveOccurrence,
    description="Only while no helper has taken it (requested, offered or escalated; an open "
    "offer is withdrawn and the booking is matched again); within 7 days of its time. Otherwise "
    "409 with the booking's state: cancel it and book anew. A day the horizon has not booked "
    "yet is recorded on the series and booked at the new time when its turn comes.",
)
async def move(request: Request) -> Response:
    cmd = await parse_body(request, MoveOccurrence)
    view = await series.move(auth.current(request), path_uuid(request), cmd)
    return JSONResponse({"series": view})


@endpoint(
    summary="End a recurring series",
    tag="bookings",
    roles=BOOKERS,
    body=EndSeries,
    description="Cancels every occurrence not yet served and ends the series today.",
)
async def end(request: Request) -> Response:
    cmd = await parse_body(request, EndSeries)
    view = await series.end(auth.current(request), path_uuid(request), cmd)
    return JSONResponse({"series": view})


routes = [
    Route("/api/v1/series", list_series, methods=["GET"]),
    Route("/api/v1/series/{id}", get_series, methods=["GET"]),
    Route("/api/v1/series/{id}/skip", skip, methods=["POST"]),
    Route("/api/v1/series/{id}/move", move, methods=["POST"]),
    Route("/api/v1/series/{id}/end", end, methods=["POST"]),
]
