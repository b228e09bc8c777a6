"""The websocket endpoint `/api/v1/ws`.

Protocol (JSON text frames; the client frames are listed in `market.realtime.frames`):

1. Authenticate: send `Authorization: Bearer <token>` with the upgrade request (non-browser
   clients), or else make the first frame `{"type": "auth", "token": "<token>"}` within 10 s
   (browsers cannot set headers). Tokens are never taken from the URL: URLs end up in logs.
   Failure closes the connection with 4401 and a reason `<code>: <words>`.
2. The server answers `{"type": "welcome", "streams": [...readable streams...], ...}`.
3. `{"type": "subscribe", "resume": {"user:<id>": 41}}` subscribes to every readable stream
   (or to `streams` if given; unreadable ones are refused with an `error` frame
   `forbidden_streams` naming them, the others are subscribed). The server answers
   `{"type": "subscribed", "streams": {stream: position}}`, replays each resumed stream after the
   given seq, then sends live `{"type": "event", "id", "stream", "seq", "kind", "payload",
   "at"}` frames. A resume position that cannot be replayed (more than the replay limit behind,
   purged by retention, or ahead of the log) gets `{"type": "reset", "stream", "seq",
   "reason"}`: reload that stream's state over HTTP, then continue from `seq`.
4. Rights are re-read every 3 heartbeats: a signed-out token or suspended account closes with
   4401; a stream no longer readable (a revoked family link) is dropped with an `error` frame
   `streams_revoked` naming it.
5. The server sends `{"type": "ping"}` after `heartbeat_seconds` without traffic; any client
   frame (`{"type": "pong"}` is the usual) counts as life. Close codes: 4400 too many malformed
   frames, 4401 unauthenticated or token expired, 4408 slow consumer (queue overflow), 4410
   idle timeout, 1011 server error. After any of them, reconnect and resume from the last seqs.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from market.realtime.session import Session
from market.services.runtime import runtime_of


async def realtime_socket(websocket: WebSocket) -> None:
    runtime = runtime_of(websocket)
    if runtime.realtime is None:  # an app built without its lifespan
        await websocket.close(1011, "internal: realtime is not running")
        return
    await Session(websocket, runtime, runtime.realtime).run()


routes: list[BaseRoute] = [WebSocketRoute("/api/v1/ws", realtime_socket)]
