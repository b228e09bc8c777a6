"""Helper profiles, certificates, vetting and provider organisations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.models import Role
from market.routes.spec import endpoint
from market.schemas.parse import parse_body, parse_query, path_uuid
from market.schemas.people import (
    AddCertificate,
    CreateProvider,
    HelperListQuery,
    ProviderListing,
    ProviderListQuery,
    SetCrew,
    UpdateHelperProfile,
    VettingDecision,
)
from market.services import auth, helpers
from market.services.runtime import runtime_of

HELPERS = [Role.volunteer, Role.provider_staff]


@endpoint(
    summary="Helpers of a district you administer (e.g. awaiting vetting, certificates expiring)",
    tag="helpers",
    roles=[Role.centre_admin],
    query=HelperListQuery,
)
async def list_helpers(request: Request) -> Response:
    query = parse_query(request, HelperListQuery)
    return JSONResponse({"helpers": await helpers.list_helpers(auth.current(request), query)})


@endpoint(
    summary="Change your helper profile", tag="helpers", roles=HELPERS, body=UpdateHelperProfile
)
async def update_profile(request: Request) -> Response:
    cmd = await parse_body(request, UpdateHelperProfile)
    helper = await helpers.update_own_profile(auth.current(request), cmd)
    return JSONResponse(
        {"helper": await helpers.helper_json(helper, viewer_may_see_certificates=True)}
    )


@endpoint(
    summary="A helper's profile (the helper or their centre)",
    tag="helpers",
    roles=[*HELPERS, Role.centre_admin],
)
async def get_helper(request: Request) -> Response:
    helper = await helpers.get_helper(path_uuid(request))
    helpers.require_visible_helper(auth.current(request), helper)
    return JSONResponse(
        {"helper": await helpers.helper_json(helper, viewer_may_see_certificates=True)}
    )


@endpoint(
    summary="Add one of your certificates",
    tag="helpers",
    roles=HELPERS,
    body=AddCertificate,
    status=201,
)
async def add_certificate(request: Request) -> Response:
    cmd = await parse_body(request, AddCertificate)
    certificate = await helpers.add_certificate(runtime_of(request), auth.current(request), cmd)
    return JSONResponse(
        {"certificate": {"id": str(certificate.id), "verified": False}}, status_code=201
    )


@endpoint(
    summary="A certificate with its number (the helper, or their centre to check it)",
    tag="helpers",
    roles=[*HELPERS, Role.centre_admin],
    description="The number is decrypted for this read; a centre admin's read is written to the "
    "access log. verified_by is the admin who checked it.",
)
async def get_certificate(request: Request) -> Response:
    view = await helpers.read_certificate(
        runtime_of(request), auth.current(request), path_uuid(request)
    )
    return JSONResponse({"certificate": view})


@endpoint(
    summary="Mark a certificate as checked by the centre", tag="helpers", roles=[Role.centre_admin]
)
async def verify_certificate(request: Request) -> Response:
    certificate = await helpers.verify_certificate(auth.current(request), path_uuid(request))
    return JSONResponse({"certificate": helpers.certificate_json(certificate)})


@endpoint(
    summary="Set how many staff are sent under a provider staff account",
    tag="helpers",
    roles=[Role.centre_admin],
    body=SetCrew,
    description="A crew of provider staff dispatched together (certified bathing needs the "
    "district policy's minimum, two by default). Volunteers serve alone: only 1 is accepted.",
)
async def set_crew(request: Request) -> Response:
    cmd = await parse_body(request, SetCrew)
    helper = await helpers.set_crew(auth.current(request), path_uuid(request), cmd)
    return JSONResponse(
        {"helper": await helpers.helper_json(helper, viewer_may_see_certificates=True)}
    )


@endpoint(
    summary="Approve or reject a helper after vetting",
    tag="helpers",
    roles=[Role.centre_admin],
    body=VettingDecision,
)
async def vet_helper(request: Request) -> Response:
    cmd = await parse_body(request, VettingDecision)
    helper = await helpers.decide_vetting(auth.current(request), path_uuid(request), cmd)
    return JSONResponse(
        {"helper": await helpers.helper_json(helper, viewer_may_see_certificates=True)}
    )


@endpoint(
    summary="Register a provider organisation",
    tag="providers",
    roles=[Role.centre_admin],
    body=CreateProvider,
    status=201,
)
async def create_provider(request: Request) -> Response:
    cmd = await parse_body(request, CreateProvider)
    provider = await helpers.create_provider(auth.current(request), cmd)
    return JSONResponse({"provider": helpers.provider_json(provider)}, status_code=201)


@endpoint(
    summary="Providers of a district you administer (by list status or service), with ratings",
    tag="providers",
    roles=[Role.centre_admin],
    query=ProviderListQuery,
    description="Each provider carries two grades: `star_grade`, the official grade (1-5) the "
    "centre sets by assessment, and `rating`, what elders gave its staff after their services: "
    "`average` stars (two decimals, null before the first rating) over `count` ratings.",
)
async def list_providers(request: Request) -> Response:
    query = parse_query(request, ProviderListQuery)
    rows = await helpers.list_providers(auth.current(request), query)
    ratings = await helpers.provider_ratings([p.id for p in rows])
    views = [helpers.provider_json(p, ratings.get(p.id)) for p in rows]
    return JSONResponse({"providers": views})


@endpoint(
    summary="Put a provider on the normal, red or black list",
    tag="providers",
    roles=[Role.centre_admin],
    body=ProviderListing,
)
async def list_provider(request: Request) -> Response:
    cmd = await parse_body(request, ProviderListing)
    provider = await helpers.set_listing(auth.current(request), path_uuid(request), cmd)
    return JSONResponse({"provider": helpers.provider_json(provider)})


routes = [
    Route("/api/v1/helpers", list_helpers, methods=["GET"]),
    Route("/api/v1/helpers/me", update_profile, methods=["POST"]),
    Route("/api/v1/helpers/{id}", get_helper, methods=["GET"]),
    Route("/api/v1/helpers/{id}/vetting", vet_helper, methods=["POST"]),
    Route("/api/v1/helpers/{id}/crew", set_crew, methods=["POST"]),
    Route("/api/v1/certificates", add_certificate, methods=["POST"]),
    Route("/api/v1/certificates/{id}", get_certificate, methods=["GET"]),
    Route("/api/v1/certificates/{id}/verify", verify_certificate, methods=["POST"]),
    Route("/api/v1/providers", create_provider, methods=["POST"]),
    Route("/api/v1/providers", list_providers, methods=["GET"]),
    Route("/api/v1/providers/{id}/listing", list_provider, methods=["POST"]),
]
