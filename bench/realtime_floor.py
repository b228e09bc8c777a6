"""The memory floor of a websocket on this stack: uvicorn + Starlette holding bare sockets.

    python bench/realtime_floor.py [--connections 2000]

Serves `app` below (accept, then receive until the client leaves) with the same uvicorn
options as the service, opens the connections with the bare websockets library (this endpoint
speaks no realtime protocol, so `RealtimeClient` does not apply), and prints the server's
resident-memory growth per connection. `bench/realtime_fanout.py` gives the same figure for
the realtime endpoint; the difference is what a realtime session costs.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import subprocess
import sys
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

HERE = Path(__file__).resolve().parent


async def bare(websocket: WebSocket) -> None:
    await websocket.accept()
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


app = Starlette(routes=[WebSocketRoute("/ws", bare)])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def serve() -> tuple[subprocess.Popen[bytes], int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "realtime_floor:app",
            "--app-dir",
            str(HERE),
            "--fd",
            str(sock.fileno()),
            "--ws",
            "websockets-sansio",
            "--ws-ping-interval",
            "0",
            "--log-level",
            "warning",
        ],
        pass_fds=[sock.fileno()],
    )
    sock.close()
    return server, port


async def main() -> None:
    from websockets.asyncio.client import connect

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections * 2 + 1024), hard))
    server, port = serve()
    try:
        await asyncio.sleep(3.0)
        before = rss_kib(server.pid)
        gate = asyncio.Semaphore(200)

        async def one() -> object:
            async with gate:
                return await connect(f"ws://127.0.0.1:{port}/ws", ping_interval=None)

        clients = await asyncio.gather(*(one() for _ in range(args.connections)))
        await asyncio.sleep(2.0)
        after = rss_kib(server.pid)
        print(
            f"{args.connections} bare websockets: "
            f"{(after - before) / args.connections:.1f} KiB per connection"
        )
        await asyncio.gather(*(c.close() for c in clients))  # type: ignore[attr-defined]
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
