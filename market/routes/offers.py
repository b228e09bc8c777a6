"""Offers to helpers and the district's service catalogue."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market import catalogue
from market.models import Role
from market.routes.spec import ALL_ROLES, endpoint
from market.schemas.bookings import DeclineOffer
from market.schemas.parse import parse_body, path_uuid
from market.services import auth, bookings, offers
from market.services.auth import now_utc
from market.services.districts import get_district, policy_in_force
from market.services.runtime import runtime_of

HELPERS = [Role.volunteer, Role.provider_staff]


@endpoint(summary="Your open offers, soonest deadline first", tag="offers", roles=HELPERS)
async def list_offers(request: Request) -> Response:
    return JSONResponse({"offers": await offers.open_offers(auth.current(request))})


@endpoint(
    summary="Accept an offer; the first accept wins",
    tag="offers",
    roles=HELPERS,
    description="409 `offer.taken` when another helper accepted first or the booking moved on. "
    "The rules the centre's dispatch applies are checked again, so a change since the offer "
    "counts: 403 naming the rule (`details.rule`) when the elder has blocked the helper "
    "(`eligibility.blocked_by_elder`), the helper's provider was black-listed "
    "(`eligibility.blacklisted`), the payment's rules (`payment.*`) or the policy's service "
    "rules (`policy.forbids`, e.g. `services.bathing.intimate` for the elder's gender "
    "preference) no longer let them serve.",
)
async def accept(request: Request) -> Response:
    booking = await offers.accept(auth.current(request), path_uuid(request))
    view = await bookings.view(runtime_of(request), auth.current(request), booking.id)
    return JSONResponse({"booking": view})


@endpoint(summary="Decline an offer", tag="offers", roles=HELPERS, body=DeclineOffer)
async def decline(request: Request) -> Response:
    cmd = await parse_body(request, DeclineOffer)
    offer = await offers.decline(auth.current(request), path_uuid(request), cmd)
    return JSONResponse({"offer": offers.offer_json(offer)})


@endpoint(
    summary="The services a district offers under its policy in force",
    tag="bookings",
    roles=ALL_ROLES,
)
async def service_catalogue(request: Request) -> Response:
    district = await get_district(path_uuid(request))
    version, policy = await policy_in_force(district.id, now_utc())
    return JSONResponse(
        {"district_id": str(district.id), **catalogue.catalogue_json(version, policy)}
    )


routes = [
    Route("/api/v1/offers", list_offers, methods=["GET"]),
    Route("/api/v1/offers/{id}/accept", accept, methods=["POST"]),
    Route("/api/v1/offers/{id}/decline", decline, methods=["POST"]),
    Route("/api/v1/districts/{id}/catalogue", service_catalogue, methods=["GET"]),
]
