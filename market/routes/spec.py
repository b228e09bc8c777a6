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

from market.errors import Forbidden
from market.models import Role

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
) -> Callable[[Handler], Handler]:
    """Declare a handler; `roles=None` makes it public, otherwise a bearer token is required."""
    allowed = None if roles is None else frozenset(roles)
    spec = EndpointSpec(summary, tag, allowed, body, query, status, description)

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
            return await handler(request)

        guarded.spec = spec  # type: ignore[attr-defined]
        return guarded

    return wrap


def spec_of(handler: Any) -> EndpointSpec | None:
    return getattr(handler, "spec", None)
