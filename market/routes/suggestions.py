"""Suggestions for the web client: helpers to dispatch a booking to, relatives to gift to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.models import Role
from market.routes.spec import endpoint
from market.schemas.parse import Range, parse_query, path_uuid
from market.services import auth, suggestions
from market.services.auth import now_utc


@dataclass(frozen=True)
class SuggestionQuery:
    """How many helpers to suggest."""

    limit: Annotated[int, Range(1, suggestions.SUGGESTIONS_MAX)] = 3


@endpoint(
    summary="The matcher's best helpers for a booking the centre may dispatch",
    tag="bookings",
    roles=[Role.centre_admin],
    query=SuggestionQuery,
    description="For a requested or escalated booking of a district you administer: the "
    "helpers the matcher would choose for it now, best first, with name, kind, travel "
    "minutes, planned start and cost. The matching loop's refusals apply (the elder's blocked "
    "helpers, helpers offered it before, certificates the policy requires), so each can be "
    "passed to `POST /api/v1/bookings/{id}/dispatch`. `window_open` is false once the window "
    "can no longer hold the whole service; the list is then empty. 409 in other states.",
)
async def booking_suggestions(request: Request) -> Response:
    query = parse_query(request, SuggestionQuery)
    found = await suggestions.for_booking(
        auth.current(request), path_uuid(request), limit=query.limit, now=now_utc()
    )
    return JSONResponse(suggestions.suggestions_json(found))


@endpoint(
    summary="Your approved linked relatives and whether you may gift them hours",
    tag="ledger",
    roles=[Role.volunteer, Role.elder, Role.family],
    description="Everyone linked to you by an approved family link, either way round. "
    "`relation` is what the relative is to you; `gift_allowed` follows the "
    "`time_bank.gift_recipients` rule of the policy in force (`policy_version`); the gift "
    "itself checks every rule again.",
)
async def gift_recipients(request: Request) -> Response:
    return JSONResponse(await suggestions.gift_recipients(auth.current(request), now=now_utc()))


routes = [
    Route("/api/v1/bookings/{id}/suggestions", booking_suggestions, methods=["GET"]),
    Route("/api/v1/ledger/gift-recipients", gift_recipients, methods=["GET"]),
]
