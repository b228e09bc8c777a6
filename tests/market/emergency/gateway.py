"""An SMS gateway stand-in: a real aiohttp server on loopback that records every request and
answers the n-th one as the test says."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Behaviour = Callable[[int], Awaitable[web.StreamResponse]]


async def accepted(_n: int) -> web.StreamResponse:
    return web.json_response({"queued": True})


def failing(status: int = 503, *, until: int | None = None) -> Behaviour:
    """Answer `status` to every request (or to those before the `until`-th)."""

    async def behaviour(n: int) -> web.StreamResponse:
        if until is not None and n >= until:
            return web.json_response({"queued": True})
        return web.Response(status=status, text="gateway busy")

    return behaviour


@dataclass
class Gateway:
    url: str = ""
    received: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    behaviour: Behaviour = accepted

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.received]


@asynccontextmanager
async def gateway_server() -> AsyncIterator[Gateway]:
    state = Gateway()

    async def handle(request: web.Request) -> web.StreamResponse:
        state.received.append((await request.read(), dict(request.headers)))
        return await state.behaviour(len(state.received))

    app = web.Application()
    app.router.add_post("/sms", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}/sms"
    try:
        yield state
    finally:
        await runner.cleanup()
