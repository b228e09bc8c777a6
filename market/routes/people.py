"""Accounts created by centres, account status, family links."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.models import FamilyLink, Role
from market.routes.spec import endpoint
from market.schemas.parse import parse_body, path_uuid
from market.schemas.people import ChangeStatus, CreateStaffAccount, RequestFamilyLink
from market.schemas.shapes import user_json
from market.services import auth, people
from market.services.runtime import runtime_of


def link_json(link: FamilyLink) -> dict[str, Any]:
    return {
        "id": str(link.id),
        "family_id": str(link.family_id),  # type: ignore[attr-defined]
        "elder_id": str(link.elder_id),  # type: ignore[attr-defined]
        "relation": link.relation,
        "status": link.status.value,
    }


@endpoint(
    summary="Create a centre admin, auditor or provider staff account",
    tag="people",
    roles=[Role.centre_admin],
    body=CreateStaffAccount,
    status=201,
    description="Admins and auditors exist only through this endpoint or `eldercare admin create`.",
)
async def create_staff(request: Request) -> Response:
    cmd = await parse_body(request, CreateStaffAccount)
    user = await people.create_staff_account(runtime_of(request), auth.current(request), cmd)
    return JSONResponse({"user": user_json(user)}, status_code=201)


@endpoint(
    summary="Activate or suspend an account of your district",
    tag="people",
    roles=[Role.centre_admin],
    body=ChangeStatus,
)
async def change_status(request: Request) -> Response:
    cmd = await parse_body(request, ChangeStatus)
    user = await people.change_status(auth.current(request), path_uuid(request), cmd)
    return JSONResponse({"user": user_json(user)})


@endpoint(
    summary="Ask to be linked to an elder as a family member",
    tag="people",
    roles=[Role.family],
    body=RequestFamilyLink,
    status=201,
)
async def request_link(request: Request) -> Response:
    cmd = await parse_body(request, RequestFamilyLink)
    link = await people.request_family_link(runtime_of(request), auth.current(request), cmd)
    return JSONResponse({"link": link_json(link)}, status_code=201)


@endpoint(
    summary="Approve a family link (the elder or their centre)",
    tag="people",
    roles=[Role.elder, Role.centre_admin],
)
async def approve_link(request: Request) -> Response:
    link = await people.approve_family_link(auth.current(request), path_uuid(request))
    return JSONResponse({"link": link_json(link)})


@endpoint(
    summary="End a family link (the elder, the family member or the centre)",
    tag="people",
    roles=[Role.elder, Role.family, Role.centre_admin],
)
async def revoke_link(request: Request) -> Response:
    link = await people.revoke_family_link(auth.current(request), path_uuid(request))
    return JSONResponse({"link": link_json(link)})


@endpoint(summary="Your family links", tag="people", roles=[Role.elder, Role.family])
async def list_links(request: Request) -> Response:
    links = await people.links_of(auth.current(request))
    return JSONResponse({"links": [link_json(link) for link in links]})


routes = [
    Route("/api/v1/staff", create_staff, methods=["POST"]),
    Route("/api/v1/users/{id}/status", change_status, methods=["POST"]),
    Route("/api/v1/family-links", request_link, methods=["POST"]),
    Route("/api/v1/family-links", list_links, methods=["GET"]),
    Route("/api/v1/family-links/{id}/approve", approve_link, methods=["POST"]),
    Route("/api/v1/family-links/{id}/revoke", revoke_link, methods=["POST"]),
]
