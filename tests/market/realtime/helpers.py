"""Small helpers for realtime tests: publish through the log, collect what a client sees."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from market.realtime.client import RealtimeClient, Reset
from market.realtime.events import Event, event_transaction
from market.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


async def publish(streams: Sequence[str], kind: str = "tick", **payload: Any) -> list[Event]:
    async with event_transaction() as tx:
        return await tx.publish(streams, kind, payload)


async def publish_many(stream: str, count: int, kind: str = "tick") -> list[Event]:
    """`count` events on `stream`, one transaction each, in order."""
    published: list[Event] = []
    for n in range(count):
        published += await publish([stream], kind, n=n)
    return published


async def collect(
    client: RealtimeClient, count: int, *, within: float = 10.0
) -> list[Event | Reset]:
    """The next `count` items the client yields (fails the test on timeout)."""
    items: list[Event | Reset] = []

    async def take() -> None:
        async for item in client:
            items.append(item)
            if len(items) >= count:
                return

    try:
        await asyncio.wait_for(take(), within)
    except TimeoutError:
        raise AssertionError(f"got {len(items)} of {count} items: {items[-3:]}") from None
    return items


async def quiet(client: RealtimeClient, seconds: float) -> list[Event | Reset]:
    """Everything the client yields within `seconds` (to check that nothing more arrives)."""
    items: list[Event | Reset] = []

    async def take() -> None:
        async for item in client:
            items.append(item)

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(take(), seconds)
    return items


class StalledClient:
    """A websocket client that stops reading after the handshake, like a phone in a tunnel.

    Written on a plain socket: the websockets library keeps reading into its own buffers,
    which would hide the backpressure the server must notice.
    """

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            "GET /api/v1/ws HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self.sock.recv(4096)
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"handshake refused: {head[:80]!r}")

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            header = struct.pack("!BB", 0x81, 0x80 | len(payload))
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed without a close frame")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def read_until_close(self) -> tuple[int, str, int]:
        """Drain every frame; returns the close code, its reason and how many texts came."""
        texts = 0
        while True:
            first, second = self._read(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            if first & 0x0F == 0x8:
                (code,) = struct.unpack("!H", payload[:2])
                return code, payload[2:].decode(), texts
            texts += 1

    def close(self) -> None:
        self.sock.close()


async def until(condition: Callable[[], bool], *, within: float = 10.0) -> None:
    """Poll a condition on server state that offers no event to wait on."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def run_publisher(url: str, stream: str, count: int, label: str, pause: float = 0.0) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.market.realtime.publisher",
        url,
        stream,
        str(count),
        label,
        str(pause),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]


@asynccontextmanager
async def server_process(settings: Settings, **env_extra: str) -> AsyncIterator[int]:
    """A second app process (uvicorn) on the same database and keys; yields its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "ELDERCARE_DATA_DIR": str(settings.data_dir),
        "ELDERCARE_KEYS_DIR": str(settings.keys_dir),
        "ELDERCARE_REALTIME_HEARTBEAT_SECONDS": "1",
        **env_extra,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "market.app:create_app",
        "--fd",
        str(sock.fileno()),
        "--ws",
        "websockets-sansio",
        "--log-level",
        "warning",
        cwd=ROOT,
        env=env,
        pass_fds=[sock.fileno()],
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async with asyncio.timeout(30):
                while True:
                    if proc.returncode is not None:
                        raise AssertionError("the second server exited during startup")
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 15)
        sock.close()
