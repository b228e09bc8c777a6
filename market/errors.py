"""The API's error family and the one handler that renders it.

Every error a client sees is JSON: `{"error": {"code": ..., "message": ..., "details": ...}}`.

    ApiError (400 bad_request)
    ├── InvalidInput (422)           a field is missing, mistyped, unknown or out of range
    ├── MalformedBody (400)          not JSON, not an object, duplicate keys
    ├── Unauthenticated (401)        no token, bad token, expired or revoked token
    ├── Forbidden (403)              role or district does not allow it
    ├── NotFound (404)               no such resource (or not visible to the caller)
    ├── Conflict (409)               the resource is in a state that forbids the action
    │                                (also: a database uniqueness race, as `conflict`)
    ├── PayloadTooLarge (413)
    ├── UnsupportedMediaType (415)
    └── TooManyRequests (429)        carries Retry-After

Services raise these; routes never catch them. Anything else is a bug: it is logged with its
traceback and the client gets a bare 500 `internal` error with no detail.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tortoise.exceptions import IntegrityError

log = logging.getLogger("eldercare")


class ApiError(Exception):
    status = 400
    default_code = "bad_request"

    def __init__(self, code: str | None = None, message: str = "", details: Any = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}

    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(ApiError):
    status = 422
    default_code = "invalid_input"


class MalformedBody(ApiError):
    status = 400
    default_code = "malformed_body"


class Unauthenticated(ApiError):
    status = 401
    default_code = "unauthenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status = 403
    default_code = "forbidden"


class NotFound(ApiError):
    status = 404
    default_code = "not_found"


class Conflict(ApiError):
    status = 409
    default_code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    default_code = "unsupported_media_type"


class TooManyRequests(ApiError):
    status = 429
    default_code = "too_many_requests"

    def __init__(self, code: str | None, message: str, *, retry_after: int) -> None:
        super().__init__(code, message, {"retry_after_seconds": retry_after})
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


HTTP_CODES = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthenticated", "Sign in first."),
    403: ("forbidden", "Not allowed."),
    404: ("not_found", "No such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
}


def api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers())


async def handle_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, message = HTTP_CODES.get(exc.status_code, ("http_error", "Request failed."))
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}."
    elif exc.status_code == 404:
        message = f"No route {request.url.path}."
    headers = dict(exc.headers or {})
    return JSONResponse(
        {"error": {"code": code, "message": message}},
        status_code=exc.status_code,
        headers=headers,
    )


async def handle_integrity_error(request: Request, exc: Exception) -> Response:
    # Services check uniqueness first; this answers the race where two requests pass that
    # check together and the database's constraint refuses the second (already rolled back).
    return api_error_response(
        Conflict("conflict", "the change conflicts with data that was just written; retry")
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": {"code": "internal", "message": "Internal error; it has been logged."}},
        status_code=500,
    )


EXCEPTION_HANDLERS = {
    ApiError: handle_api_error,
    IntegrityError: handle_integrity_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
