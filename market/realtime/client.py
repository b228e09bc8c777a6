"""A Python client for `/api/v1/ws` (websockets library): resume, de-duplicate, reconnect.

    async with RealtimeClient("ws://127.0.0.1:8000/api/v1/ws", token) as client:
        async for item in client:
            if isinstance(item, Reset):
                ...  # reload that stream's state over HTTP; events continue after item.seq
            else:
                print(item.stream, item.seq, item.kind, item.payload)

The client remembers the last seq of every stream and resumes from it after any disconnect
(slow consumer, idle timeout, server restart, network loss), so the caller sees each event at
most once and in seq order per stream. It gives up only when the server refuses the token
(`AuthenticationFailed`) or the protocol (`ProtocolRefused`), or when `close()` is called.

Each connection attempt is bounded: the handshake, and then the `subscribed` answer, must each
arrive within `open_timeout`, or the socket is closed and the attempt fails with `TimeoutError`
(retried with backoff when reconnecting). `ping_interval=None` turns off the websockets library's
protocol pings; the server's own heartbeat frames still flow (the benchmark holds thousands of
connections that way). A runnable example is in `docs/realtime.md`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from market.realtime.events import Event

SEEN_IDS = 10_000
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 5.0


class RealtimeError(Exception):
    pass


class AuthenticationFailed(RealtimeError):
    """The server closed with 4401: the token is missing, invalid, expired or revoked."""


class ProtocolRefused(RealtimeError):
    """The server closed with 4400: this client sent malformed frames."""


@dataclass(frozen=True)
class Reset:
    """The server cannot replay `stream` from our position: reload it; live from `seq` on."""

    stream: str
    seq: int
    reason: str


@dataclass(frozen=True)
class Closed:
    code: int
    reason: str


def event_from_frame(frame: Mapping[str, Any]) -> Event:
    return Event(
        id=UUID(frame["id"]),
        stream=frame["stream"],
        seq=int(frame["seq"]),
        kind=frame["kind"],
        payload=frame["payload"],
        at=datetime.fromisoformat(frame["at"]),
    )


class RealtimeClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        streams: Sequence[str] | None = None,
        resume: Mapping[str, int] | None = None,
        auth: Literal["header", "frame"] = "header",
        reconnect: bool = True,
        max_backoff: float = BACKOFF_MAX,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
    ) -> None:
        self.url = url
        self.token = token
        self.streams = list(streams) if streams is not None else None
        self.positions: dict[str, int] = dict(resume or {})
        self.auth = auth
        self.reconnect = reconnect
        self.max_backoff = max_backoff
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.welcome: dict[str, Any] = {}
        self.subscribed: dict[str, int] = {}
        self.errors: list[dict[str, Any]] = []
        self.closes: list[Closed] = []
        self.connects = 0
        self.duplicates = 0
        self._seen: OrderedDict[UUID, None] = OrderedDict()
        self._ws: ClientConnection | None = None
        self._ready = asyncio.Event()

    async def __aenter__(self) -> RealtimeClient:
        await self.connect()
        return self

    async def connect(self) -> None:
        """Connect and subscribe: events committed from now on will be delivered.

        For callers that hold many clients outside `async with`; `close()` each when done.
        """
        await self._connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        self.reconnect = False
        if self._ws is not None:
            await self._ws.close()
            self._ws = None

    async def send_raw(self, text: str) -> None:
        """Send a frame as is (for tests of the server's validation)."""
        if self._ws is None:
            raise RealtimeError("not connected")
        await self._ws.send(text)

    async def _connect(self) -> None:
        self._ready.clear()
        headers = {"Authorization": f"Bearer {self.token}"} if self.auth == "header" else None
        ws = await connect(
            self.url,
            additional_headers=headers,
            open_timeout=self.open_timeout,
            ping_interval=self.ping_interval,
            max_size=2**20,
        )
        self._ws = ws
        self.connects += 1
        try:
            # Sent without waiting for `welcome`: the server reads frames in order.
            for frame in self._greeting():
                await ws.send(frame)
            # The server answers `subscribed` before any event of this connection.
            async with asyncio.timeout(self.open_timeout):
                while not self._ready.is_set():
                    await self._handle(json.loads(await ws.recv()))
        except ConnectionClosed as exc:
            self._ws = None
            self._closed(exc)
            raise ConnectionError(f"closed while subscribing: {self.closes[-1]}") from None
        except BaseException:
            # A server that never answers (or a cancelled caller) must not leave the socket open.
            self._ws = None
            await ws.close()
            raise

    def _greeting(self) -> list[str]:
        frames = []
        if self.auth == "frame":
            frames.append(json.dumps({"type": "auth", "token": self.token}))
        subscribe: dict[str, Any] = {"type": "subscribe"}
        if self.streams is not None:
            subscribe["streams"] = self.streams
            subscribe["resume"] = {s: n for s, n in self.positions.items() if s in self.streams}
        else:
            subscribe["resume"] = dict(self.positions)
        frames.append(json.dumps(subscribe))
        return frames

    def _closed(self, exc: ConnectionClosed) -> None:
        code = exc.rcvd.code if exc.rcvd else 1006
        reason = exc.rcvd.reason if exc.rcvd else ""
        self.closes.append(Closed(code, reason))
        if code == 4401:
            raise AuthenticationFailed(reason) from None
        if code == 4400:
            raise ProtocolRefused(reason) from None

    async def _reconnect(self) -> None:
        delay = BACKOFF_FIRST
        while self.reconnect:
            try:
                await self._connect()
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI):
                # ConnectionError (an OSError) covers a close while subscribing; a refused
                # token or protocol raises through.
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            if not self.reconnect:  # close() was called while this attempt was under way
                await self.close()
            return

    def __aiter__(self) -> AsyncIterator[Event | Reset]:
        return self._items()

    async def _items(self) -> AsyncIterator[Event | Reset]:
        while True:
            if self._ws is None:
                if not self.reconnect:
                    return
                await self._reconnect()
                if self._ws is None:
                    return  # closed while reconnecting
            assert self._ws is not None
            try:
                raw = await self._ws.recv()
            except ConnectionClosed as exc:
                self._ws = None
                self._closed(exc)
                continue
            item = await self._handle(json.loads(raw))
            if item is not None:
                yield item

    async def _handle(self, frame: dict[str, Any]) -> Event | Reset | None:
        kind = frame.get("type")
        if kind == "event":
            event = event_from_frame(frame)
            if event.id in self._seen or event.seq <= self.positions.get(event.stream, -1):
                self.duplicates += 1
                return None
            self._remember(event.id)
            self.positions[event.stream] = event.seq
            return event
        if kind == "reset":
            self.positions[frame["stream"]] = int(frame["seq"])
            return Reset(frame["stream"], int(frame["seq"]), frame["reason"])
        if kind == "ping" and self._ws is not None:
            with contextlib.suppress(ConnectionClosed):  # the next receive reports the close
                await self._ws.send('{"type":"pong"}')
        elif kind == "welcome":
            self.welcome = frame
        elif kind == "subscribed":
            self.subscribed = dict(frame["streams"])
            for stream, head in self.subscribed.items():
                self.positions.setdefault(stream, head)
            self._ready.set()
        elif kind == "error":
            self.errors.append(frame)
        return None

    def _remember(self, event_id: UUID) -> None:
        self._seen[event_id] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
