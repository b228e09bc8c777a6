"""The example in docs/realtime.md, run as written against a live server.

The script is taken from the page's only Python block and run in a subprocess; it signs in
over HTTP and connects through a loopback proxy that the test can cut, like a mobile network
dropping (no close frame: the socket just ends).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from market.models import AuthToken, District, DistrictLevel, Role
from market.realtime.events import Event, elder_stream, user_stream
from tests.market.conftest import PASSWORD, Actor, password_hash
from tests.market.realtime.conftest import Live, quick_actor
from tests.market.realtime.helpers import publish

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "realtime.md"
LINE_TIMEOUT = 15.0


def documented_example() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)
    assert len(blocks) == 1, "docs/realtime.md should hold exactly one Python program"
    return str(blocks[0])


class CuttableProxy:
    """Forwards loopback TCP connections to the live server until `cut()` aborts them."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()

    async def _serve(self, down_r: asyncio.StreamReader, down_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:  # the live server is gone (teardown)
            down_w.transport.abort()
            return
        self._open |= {down_w, up_w}
        try:
            await asyncio.gather(pump(down_r, up_w), pump(up_r, down_w))
        finally:
            self._open -= {down_w, up_w}
            down_w.transport.abort()
            up_w.transport.abort()


async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.transport.abort()  # one side gone: end the other too, as a dropped network does


class Watcher:
    """The documented script in a subprocess, read line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    async def line(self) -> str:
        assert self.proc.stdout is not None
        try:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), LINE_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"no line within {LINE_TIMEOUT} s after {self.lines}") from None
        if not raw:
            err = await self.proc.stderr.read() if self.proc.stderr else b""
            raise AssertionError(f"the example ended early: {self.lines} {err.decode()[-2000:]}")
        self.lines.append(raw.decode().rstrip("\n"))
        return self.lines[-1]

    async def finished(self) -> tuple[int, str]:
        out, err = await asyncio.wait_for(self.proc.communicate(), LINE_TIMEOUT)
        self.lines += out.decode().splitlines()
        return int(self.proc.returncode or 0), err.decode()


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "watch.py"
    path.write_text(documented_example())
    return path


@pytest_asyncio.fixture
async def proxy(live: Live) -> AsyncIterator[tuple[CuttableProxy, str]]:
    through = CuttableProxy(live.port)
    port = await through.start()
    try:
        yield through, f"http://127.0.0.1:{port}"
    finally:
        await through.stop()


@pytest_asyncio.fixture
async def elder(live: Live) -> Actor:
    """An elder who signs in with a password, as the example does."""
    district = await District.create(code="doc", name="Doc District", level=DistrictLevel.district)
    actor = await quick_actor(live.runtime, Role.elder, district)
    actor.user.password_hash = password_hash()
    await actor.user.save(update_fields=["password_hash"])
    return actor


Start = Callable[..., Awaitable[Watcher]]


@pytest_asyncio.fixture
async def start(script: Path) -> AsyncIterator[Start]:
    """Runs the example; whatever a failing test left running is killed afterwards."""
    started: list[Watcher] = []

    async def run(
        base_url: str, phone: str, state: Path, count: int, password: str = PASSWORD
    ) -> Watcher:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, str(script), base_url, phone, "--state", str(state)),
            *("--count", str(count)),
            cwd=script.parent,
            env={**os.environ, "ELDERCARE_PASSWORD": password},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(Watcher(proc))
        return started[-1]

    yield run
    for watcher in started:
        if watcher.proc.returncode is None:
            watcher.proc.kill()
            await watcher.proc.wait()


def printed(event: Event) -> str:
    return f"{event.stream} #{event.seq} {event.kind} {json.dumps(event.payload)}"


def shown(events: list[Event]) -> list[str]:
    """The lines for these events; one per stream here, so their order across streams is free."""
    return sorted(printed(e) for e in events)


async def lines(watcher: Watcher, count: int) -> list[str]:
    return sorted([await watcher.line() for _ in range(count)])


async def test_the_example_prints_events_and_resumes_after_a_cut_and_a_restart(
    start: Start, proxy: tuple[CuttableProxy, str], elder: Actor, tmp_path: Path
) -> None:
    through, base_url = proxy
    own, as_elder = user_stream(elder.user.id), elder_stream(elder.user.id)
    state = tmp_path / "positions.json"
    watcher = await start(base_url, elder.phone, state, count=4)
    assert await watcher.line() == f"subscribed: {own}, {as_elder}"

    first = await publish([own], "tick", n=0) + await publish([as_elder], "tick", n=1)
    assert await lines(watcher, len(first)) == shown(first)

    accepted = through.accepted
    through.cut()
    # Committed while the client is disconnected or reconnecting: replayed or live, once each.
    missed = await publish([own], "tick", n=2) + await publish([as_elder], "tick", n=3)
    assert await watcher.line() == "reconnected; the missed events follow"
    assert await lines(watcher, len(missed)) == shown(missed)
    code, err = await watcher.finished()
    assert code == 0, err
    assert through.accepted > accepted  # it came back through the proxy, on a new socket
    assert json.loads(state.read_text()) == {own: missed[0].seq, as_elder: missed[1].seq}

    # Stopped: these happen while nobody listens, and the next run replays them from the file.
    offline = await publish([as_elder], "tick", n=4) + await publish([own], "tick", n=5)
    again = await start(base_url, elder.phone, state, count=2)
    assert await again.line() == f"subscribed: {own}, {as_elder}"
    assert await lines(again, len(offline)) == shown(offline)
    code, err = await again.finished()
    assert code == 0, err
    assert len(again.lines) == 1 + len(offline)


async def test_the_example_signs_in_again_when_the_server_ends_its_session(
    start: Start, proxy: tuple[CuttableProxy, str], elder: Actor, tmp_path: Path
) -> None:
    _, base_url = proxy
    own = user_stream(elder.user.id)
    watcher = await start(base_url, elder.phone, tmp_path / "positions.json", count=2)
    assert (await watcher.line()).startswith(f"subscribed: {own}")
    (before,) = await publish([own], "tick", n=0)
    assert await watcher.line() == printed(before)

    # Signed out everywhere: the server re-reads rights every 1.5 to 4.5 heartbeats and
    # closes with 4401.
    await AuthToken.filter(user_id=elder.user.id).update(revoked_at=datetime.now(UTC))
    line = await watcher.line()
    assert line.startswith("signed out by the server (token_revoked"), line
    assert (await watcher.line()).startswith(f"subscribed: {own}")
    (after,) = await publish([own], "tick", n=1)
    assert await watcher.line() == printed(after)
    code, err = await watcher.finished()
    assert code == 0, err


async def test_the_example_stops_with_the_reason_when_sign_in_is_refused(
    start: Start, proxy: tuple[CuttableProxy, str], elder: Actor, tmp_path: Path
) -> None:
    _, base_url = proxy
    state = tmp_path / "positions.json"
    watcher = await start(base_url, elder.phone, state, count=1, password="wrong pass 1")
    code, err = await watcher.finished()
    assert code == 1
    assert "sign-in refused: " in err
    assert watcher.lines == []
    assert not state.exists()
