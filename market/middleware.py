"""A request body limit that answers in the API's JSON error shape."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from market.errors import MalformedBody, PayloadTooLarge, api_error_response

_DIGITS = re.compile(rb"[0-9]+")


class BodyLimit:
    """Refuse bodies over `max_bytes`: upfront by Content-Length, else while streaming.

    The streaming case raises inside the handler's `await request.body()`, so the error handler
    renders it and no handler ever sees a truncated body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            "payload_too_large", f"the request body is larger than {self.max_bytes} bytes"
        )

    def _check_declared(self, declared: list[bytes]) -> MalformedBody | PayloadTooLarge | None:
        """A Content-Length that is not one plain number is a malformed request (400), not a
        large one; several differing ones could make two parsers read different bodies."""
        if not declared:
            return None
        if len(set(declared)) > 1 or not _DIGITS.fullmatch(declared[0]):
            return MalformedBody(
                "bad_content_length", "Content-Length must be a single non-negative integer"
            )
        # Compared by length first: int() of thousands of digits is refused by Python itself.
        if len(declared[0]) > 18 or int(declared[0]) > self.max_bytes:
            return self._error()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [value for key, value in scope["headers"] if key == b"content-length"]
        refusal = self._check_declared(declared)
        if refusal is not None:
            await api_error_response(refusal)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._error()
            return message

        await self.app(scope, limited_receive, send)
