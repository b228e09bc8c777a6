"""One websocket connection: authentication, subscriptions, replay, live events, flow control.

Two tasks per connection. The reader parses client frames and queues commands; the writer is
the only task that sends, taking commands and live events from one bounded FIFO queue. A
subscription is carried out by the writer: it joins the hub first (live events of the stream
now queue up behind the command), then reads the log up to the head and replays it; the live
events queued meanwhile are dropped up to the last replayed seq. So the seam has no gap and no
reordering. A live event further ahead than the next seq (a jump) is filled from the log.

A subscriber whose queue is full is closed with 4408: waiting on it would hold up nobody else,
but its memory must stay bounded. It reconnects and resumes from its last seqs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from market.errors import Unauthenticated
from market.realtime.events import Event, first_seqs, read_stream, stream_heads
from market.realtime.frames import (
    Auth,
    FrameError,
    Ping,
    Pong,
    Subscribe,
    Unsubscribe,
    parse_frame,
)
from market.realtime.service import RealtimeService
from market.realtime.topics import may_read, readable_streams
from market.security.tokens import TokenExpired, TokenInvalid
from market.services.auth import principal_for_token
from market.services.runtime import Runtime
from market.services.scope import Principal

log = logging.getLogger("eldercare.realtime")

MAX_SUBSCRIPTIONS = 1024
# Rights (token revocation, family links) are re-read every this many heartbeats.
RIGHTS_CHECK_HEARTBEATS = 3
REPLAY_PAGE = 500
CLOSE_TIMEOUT = 5.0


class CloseCode(IntEnum):
    """Application close codes (4000-4999) sent with a reason `<code>: <words>`."""

    going_away = 1001
    internal = 1011
    malformed = 4400  # too many malformed frames
    unauthenticated = 4401  # no, bad, expired or revoked token; also sent when a token expires
    slow_consumer = 4408  # the per-connection queue overflowed: resume from the last seqs
    idle_timeout = 4410  # no frame from the client within the idle timeout


@dataclass(frozen=True)
class _Command:
    frame: Subscribe | Unsubscribe


class Session:
    def __init__(self, websocket: WebSocket, runtime: Runtime, realtime: RealtimeService) -> None:
        self.ws = websocket
        self.runtime = runtime
        self.realtime = realtime
        self.config = realtime.config
        self.principal: Principal | None = None
        self._token = ""
        self._expires_at: datetime | None = None
        self._queue: asyncio.Queue[Event | _Command | dict[str, Any]] = asyncio.Queue(
            self.config.queue_size
        )
        self._positions: dict[str, int] = {}
        self._closing: tuple[int, str] | None = None
        self._stop = asyncio.Event()
        self._malformed = 0

    # -- the hub's side ------------------------------------------------------------------------
    def deliver(self, event: Event) -> None:
        if self._closing is not None:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.finish(
                CloseCode.slow_consumer,
                f"slow_consumer: over {self.config.queue_size} events waiting; resume",
            )

    def finish(self, code: int, reason: str) -> None:
        if self._closing is None:
            self._closing = (code, reason)
        self._stop.set()

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        await self.ws.accept()
        try:
            if await self._authenticate():
                await self._serve()
        except WebSocketDisconnect:
            pass  # the client left while we were still greeting it
        finally:
            for stream in self._positions:
                self.realtime.hub.unsubscribe(stream, self)
            self._positions.clear()
            await self._close()

    async def _close(self) -> None:
        if self._closing is None or self.ws.client_state is not WebSocketState.CONNECTED:
            return
        code, reason = self._closing
        # Close reasons are limited to 123 bytes.
        reason_bytes = reason.encode()[:123]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.ws.close(code, reason_bytes.decode(errors="ignore")), CLOSE_TIMEOUT
            )

    async def _serve(self) -> None:
        reader = asyncio.create_task(self._read())
        writer = asyncio.create_task(self._write())
        stopper = asyncio.create_task(self._stop.wait())
        done, pending = await asyncio.wait(
            {reader, writer, stopper}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect):
                log.error("realtime session failed", exc_info=exc)
                self.finish(CloseCode.internal, "internal: the server failed; reconnect")

    async def _authenticate(self) -> bool:
        header = self.ws.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                self.finish(CloseCode.unauthenticated, "token_missing: send Bearer <token>")
                return False
            return await self._accept_token(token.strip())
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.config.auth_timeout_seconds)
        except TimeoutError:
            self.finish(CloseCode.unauthenticated, "auth_timeout: send an auth frame first")
            return False
        if message["type"] == "websocket.disconnect":
            return False
        try:
            frame = parse_frame(message.get("text", message.get("bytes")))
        except FrameError as exc:
            self.finish(CloseCode.unauthenticated, f"auth_required: {exc.message}")
            return False
        if not isinstance(frame, Auth):
            self.finish(CloseCode.unauthenticated, "auth_required: the first frame must be auth")
            return False
        return await self._accept_token(frame.token)

    async def _accept_token(self, token: str) -> bool:
        try:
            principal = await principal_for_token(self.runtime, token)
            # Verified again only to learn when it expires; the connection closes then.
            claims = self.runtime.tokens.verify(token, now=datetime.now(UTC))
        except Unauthenticated as exc:
            self.finish(CloseCode.unauthenticated, f"{exc.code}: {exc.message}")
            return False
        except (TokenExpired, TokenInvalid):
            self.finish(CloseCode.unauthenticated, "token_expired: sign in again")
            return False
        self.principal = principal
        self._token = token
        self._expires_at = claims.expires_at
        await self._send(
            {
                "type": "welcome",
                "user_id": str(self.principal.user_id),
                "role": self.principal.role.value,
                "streams": await readable_streams(self.principal),
                "heartbeat_seconds": self.config.heartbeat_seconds,
                "idle_timeout_seconds": self.config.idle_timeout_seconds,
                "queue_size": self.config.queue_size,
                "replay_limit": self.config.replay_limit,
            }
        )
        return True

    # -- reading -------------------------------------------------------------------------------
    async def _read(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.config.idle_timeout_seconds):
                    message = await self.ws.receive()
            except TimeoutError:
                self.finish(CloseCode.idle_timeout, "idle_timeout: no frame from the client")
                return
            if message["type"] == "websocket.disconnect":
                return
            try:
                frame = parse_frame(message.get("text", message.get("bytes")))
            except FrameError as exc:
                self._malformed += 1
                if self._malformed > self.config.max_malformed_frames:
                    self.finish(CloseCode.malformed, f"malformed: too many bad frames ({exc.code})")
                    return
                self._enqueue(_error(exc.code, exc.message))
                continue
            if isinstance(frame, Auth):
                self._enqueue(_error("already_authenticated", "this connection is signed in"))
            elif isinstance(frame, Subscribe | Unsubscribe):
                self._enqueue(_Command(frame))
            elif isinstance(frame, Ping):
                self._enqueue({"type": "pong"})
            elif isinstance(frame, Pong):
                pass  # its arrival already reset the idle timer

    def _enqueue(self, item: _Command | dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.finish(CloseCode.slow_consumer, "slow_consumer: the outgoing queue is full")

    # -- writing -------------------------------------------------------------------------------
    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.config.heartbeat_seconds
        next_check = loop.time() + self._check_period()
        while True:
            if loop.time() >= next_check:
                if not await self._recheck_rights():
                    return
                next_check = loop.time() + self._check_period()
            if self._expires_at is not None and datetime.now(UTC) >= self._expires_at:
                self.finish(CloseCode.unauthenticated, "token_expired: sign in again, then resume")
                return
            try:
                if self._queue.empty():
                    # A deadline, not wait_for: no extra task per frame on the fan-out path.
                    async with asyncio.timeout_at(next_ping):
                        item = await self._queue.get()
                else:
                    item = self._queue.get_nowait()
            except TimeoutError:
                await self._send({"type": "ping"})
                next_ping = loop.time() + self.config.heartbeat_seconds
                continue
            if isinstance(item, Event):
                await self._live(item)
            elif isinstance(item, _Command):
                if isinstance(item.frame, Subscribe):
                    await self._subscribe(item.frame)
                else:
                    await self._unsubscribe(item.frame)
            else:
                await self._send(item)

    def _check_period(self) -> float:
        """A few heartbeats, drawn anew each time: connections opened together (a reconnect
        wave after a restart) spread their checks out instead of querying all at once."""
        base = self.config.heartbeat_seconds * RIGHTS_CHECK_HEARTBEATS
        return random.uniform(0.5 * base, 1.5 * base)

    async def _recheck_rights(self) -> bool:
        """Rights change while a connection lives: a signed-out token, a suspended account, a
        revoked family link. Checked every few heartbeats; False when the session must end."""
        try:
            principal = await principal_for_token(self.runtime, self._token)
        except Unauthenticated as exc:
            self.finish(CloseCode.unauthenticated, f"{exc.code}: {exc.message}")
            return False
        self.principal = principal
        readable = set(await readable_streams(principal))
        lost = [s for s in self._positions if s not in readable]
        lost = [s for s in lost if not await may_read(principal, s)]
        for stream in lost:
            self.realtime.hub.unsubscribe(stream, self)
            del self._positions[stream]
        if lost:
            await self._send(
                _error("streams_revoked", "you may no longer read these streams", streams=lost)
            )
        return True

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))

    async def _send_event(self, event: Event) -> None:
        await self.ws.send_text(event.wire)
        self._positions[event.stream] = event.seq

    async def _live(self, event: Event) -> None:
        position = self._positions.get(event.stream)
        if position is None or event.seq <= position:
            return  # not (or no longer) subscribed, or already sent by the replay
        if event.seq > position + 1:
            await self._fill(event.stream, position, event.seq - 1)
        await self._send_event(event)

    async def _fill(self, stream: str, position: int, up_to: int) -> None:
        missing = up_to - position
        events = (
            await read_stream(stream, position, missing)
            if missing <= self.config.replay_limit
            else []
        )
        if [e.seq for e in events] == list(range(position + 1, up_to + 1)):
            for event in events:
                await self._send_event(event)
            return
        await self._reset(stream, up_to, "gap")

    async def _reset(self, stream: str, seq: int, reason: str) -> None:
        await self._send({"type": "reset", "stream": stream, "seq": seq, "reason": reason})
        self._positions[stream] = seq

    async def _subscribe(self, frame: Subscribe) -> None:
        principal = self.principal
        if principal is None:  # commands are only queued after authentication
            return
        readable = await readable_streams(principal)
        refused: list[str] = []
        if frame.streams is None:
            targets = readable
        else:
            targets = []
            for stream in frame.streams:
                allowed = stream in readable or await may_read(principal, stream)
                (targets if allowed else refused).append(stream)
        if refused:
            await self._send(
                _error(
                    "forbidden_streams",
                    "not subscribed: you may not read these streams (or they do not exist)",
                    streams=refused,
                )
            )
        new = [s for s in targets if s not in self._positions]
        if len(self._positions) + len(new) > MAX_SUBSCRIPTIONS:
            await self._send(
                _error("too_many_streams", f"at most {MAX_SUBSCRIPTIONS} streams per connection")
            )
            return
        for stream in new:
            # Join the hub before reading the log: nothing committed from now on can be missed.
            await self.realtime.hub.subscribe(stream, self)
            self._positions[stream] = 0
        heads = await stream_heads(new)
        resumed = [s for s in new if s in frame.resume]
        firsts = await first_seqs(resumed)
        for stream in new:
            self._positions[stream] = heads[stream]
        await self._send(
            {
                "type": "subscribed",
                "streams": {s: self._positions[s] for s in targets},
            }
        )
        for stream in resumed:
            await self._replay(stream, frame.resume[stream], heads[stream], firsts.get(stream))

    async def _replay(self, stream: str, after: int, head: int, first: int | None) -> None:
        if after > head:
            await self._reset(stream, head, "ahead_of_log")
            return
        if after == head:
            return
        if head - after > self.config.replay_limit:
            await self._reset(stream, head, "too_far_behind")
            return
        if first is None or first > after + 1:
            await self._reset(stream, head, "purged")
            return
        self._positions[stream] = after
        while self._positions[stream] < head:
            position = self._positions[stream]
            page = await read_stream(stream, position, min(REPLAY_PAGE, head - position))
            if not page or page[0].seq != position + 1:
                await self._reset(stream, head, "purged")
                return
            for event in page:
                await self._send_event(event)

    async def _unsubscribe(self, frame: Unsubscribe) -> None:
        removed = [s for s in frame.streams if s in self._positions]
        for stream in removed:
            self.realtime.hub.unsubscribe(stream, self)
            del self._positions[stream]
        await self._send({"type": "unsubscribed", "streams": removed})


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **extra}
