"""Browser tests: Debian's chromium driven by Playwright against a real uvicorn server.

No browser is ever downloaded: `/usr/bin/chromium` is used, installed with apt-get if missing.
One seeded server runs for the session (in its own process); every test gets a fresh browser
context, so sessionStorage and cookies never leak between tests.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api")
# An expectation waits up to 15 s, not 5: a sign-in pays for scrypt on purpose, and on a busy
# 2-core machine the server, chromium and the suite share the cores. A passing check still
# returns as soon as it holds.
playwright_sync.expect.set_options(timeout=15_000)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "screenshots"


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None:
        pytest.skip("no /usr/bin/chromium and no apt-get to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base_url: str
    seed: dict[str, Any]
    process: subprocess.Popen[bytes]

    def account(self, role: str) -> dict[str, str]:
        return self.seed["accounts"][role]  # type: ignore[no-any-return]

    @property
    def password(self) -> str:
        return self.seed["password"]  # type: ignore[no-any-return]


@dataclass
class Starting:
    process: subprocess.Popen[bytes]
    data_dir: Path
    port: int


@pytest.fixture(scope="session")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Starting]:
    """Spawn the server early: it migrates and seeds while chromium starts."""
    data_dir = tmp_path_factory.mktemp("web")
    port = _free_port()
    with (data_dir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.web.server", str(data_dir), str(port)],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        yield Starting(process, data_dir, port)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def server(server_process: Starting) -> Server:
    process, data_dir, port = server_process.process, server_process.data_dir, server_process.port
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError((data_dir / "server.log").read_text(errors="replace"))
        try:
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=1) as response:
                if response.status == 200 and (data_dir / "seed.json").exists():
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the test server did not start within 60 s")
        time.sleep(0.2)
    seed = json.loads((data_dir / "seed.json").read_text(encoding="utf-8"))
    return Server(base_url, seed, process)


@pytest.fixture(scope="session")
def browser(server_process: Starting) -> Iterator[Any]:
    _ensure_chromium()
    with playwright_sync.sync_playwright() as playwright:
        # Playwright gives every launch a new, empty temporary profile (user-data-dir).
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any, server: Server) -> Iterator[Any]:
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    # A JavaScript exception is a test failure even if the screen looks fine.
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    assert not errors, errors


def sign_in(page: Any, server: Server, role: str, password: str | None = None) -> None:
    page.goto(server.base_url + "/#/signin")
    page.get_by_label("手机号码").fill(server.account(role)["phone"])
    page.get_by_label("密码").fill(password or server.password)
    page.get_by_role("button", name="登录").click()
    if password is None:
        # Signed in once the header offers to sign out; later navigation cannot race it.
        playwright_sync.expect(page.locator("#sign-out")).to_be_visible()


@contextmanager
def signed_in_pages(
    browser: Any, server: Server, widths: dict[str, int], **options: Any
) -> Iterator[dict[str, Any]]:
    """One signed-in page per role (at its viewport width), each in its own browser context,
    so each keeps its own session; a JavaScript exception on any of them fails the test."""
    contexts, pages, errors = [], {}, []
    try:
        for role, width in widths.items():
            ctx = browser.new_context(
                viewport={"width": width, "height": 900}, locale="zh-CN", **options
            )
            contexts.append(ctx)
            page = ctx.new_page()
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            sign_in(page, server, role)
            pages[role] = page
        yield pages
    finally:
        for ctx in contexts:
            ctx.close()
    assert not errors, errors


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
