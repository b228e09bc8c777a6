"""Endpoint metadata: who may call it and what it accepts.

`@endpoint(...)` wraps a handler so authentication and the role check happen before the
handler runs, and records an `EndpointSpec` on it. The OpenAPI document and the role x endpoint
authorisation matrix test both read these specs, so documentation, enforcement and tests cannot
drift apart. District and ownership scope are checked inside the services, where the resource
is known.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from market.errors import Forbidden, InvalidInput
from market.models import Role
from market.schemas.parse import json_body

Handler = Callable[[Request], Awaitable[Response]]
ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class EndpointSpec:
    summary: str
    tag: str
    roles: frozenset[Role] | None
    body: type | None = None
    query: type | None = None
    status: int = 200
    description: str = ""
    # The handler reads a body the spec does not describe (a signed federation envelope).
    raw_body: bool = False

    @property
    def public(self) -> bool:
        return self.roles is None


def endpoint(
    *,
    summary: str,
    tag: str,
    roles: Iterable[Role] | None,
    body: type | None = None,
    query: type | None = None,
    status: int = 200,
    description: str = "",
    raw_body: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare a handler; `roles=None` makes it public, otherwise a bearer token is required.

    A POST without a `body` takes no input: it accepts no body or an empty JSON object, and
    refuses anything else like any other body (400, 415, or 422 naming the unknown fields),
    so a client that sends fields to the wrong endpoint learns it. `raw_body=True` opts out.
    """
    allowed = None if roles is None else frozenset(roles)
    spec = EndpointSpec(summary, tag, allowed, body, query, status, description, raw_body)

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: Request) -> Response:
            if allowed is not None:
                from market.services.auth import authenticate

                principal = await authenticate(request)
                if principal.role not in allowed:
                    raise Forbidden(
                        "role_forbidden",
                        f"a {principal.role.value} may not {summary[0].lower()}{summary[1:]}",
                    )
            if body is None and not raw_body and request.method == "POST":
                await _require_no_input(request)
            return await handler(request)

        guarded.spec = spec  # type: ignore[attr-defined]
        return guarded

    return wrap


async def _require_no_input(request: Request) -> None:
    if not (await request.body()).strip():
        return
    data = await json_body(request)
    if data:
        raise InvalidInput(
            "invalid_input",
            f"{sorted(data)[0]} is not a known field: this endpoint takes no input",
            [{"field": key, "problem": "is not a known field"} for key in sorted(data)],
        )


def spec_of(handler: Any) -> EndpointSpec | None:
    return getattr(handler, "spec", None)
