"""Accounts: register, sign in, sign out, who am I."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.routes.spec import ALL_ROLES, endpoint
from market.schemas.auth import LoginCommand, RegisterCommand
from market.schemas.parse import parse_body
from market.schemas.shapes import user_json
from market.services import auth
from market.services.runtime import runtime_of


@endpoint(
    summary="Register as an elder, family member or volunteer",
    tag="auth",
    roles=None,
    body=RegisterCommand,
    status=201,
    description="Volunteers start as pending until their centre vets them.",
)
async def register(request: Request) -> Response:
    cmd = await parse_body(request, RegisterCommand)
    client_ip = request.client.host if request.client else "unknown"
    user = await auth.register(runtime_of(request), cmd, client_ip=client_ip)
    return JSONResponse({"user": user_json(user)}, status_code=201)


@endpoint(
    summary="Sign in with phone and password",
    tag="auth",
    roles=None,
    body=LoginCommand,
    description="Repeated failures lock the account and the client address for a while (429).",
)
async def login(request: Request) -> Response:
    cmd = await parse_body(request, LoginCommand)
    client_ip = request.client.host if request.client else "unknown"
    session = await auth.login(runtime_of(request), cmd, client_ip=client_ip)
    return JSONResponse(
        {
            "token": session.token,
            "token_type": "bearer",
            "expires_at": session.expires_at.isoformat(),
            "user": user_json(session.user),
        }
    )


@endpoint(summary="Sign out and revoke this token", tag="auth", roles=ALL_ROLES)
async def logout(request: Request) -> Response:
    await auth.logout(auth.current(request))
    return Response(status_code=204)


@endpoint(summary="The signed-in account", tag="auth", roles=ALL_ROLES)
async def me(request: Request) -> Response:
    from market.models import User

    user = await User.get(id=auth.current(request).user_id)
    return JSONResponse({"user": user_json(user)})


routes = [
    Route("/api/v1/auth/register", register, methods=["POST"]),
    Route("/api/v1/auth/login", login, methods=["POST"]),
    Route("/api/v1/auth/logout", logout, methods=["POST"]),
    Route("/api/v1/auth/me", me, methods=["GET"]),
]
