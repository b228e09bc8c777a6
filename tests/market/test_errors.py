"""An exception no handler expects answers a bare JSON 500 and is logged, never shown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx
import pytest
import pytest_asyncio

from market.app import create_app
from market.routes import meta
from market.services import auth
from market.settings import Settings
from tests.market.harness import running

INTERNAL = {"error": {"code": "internal", "message": "Internal error; it has been logged."}}
# Would tell an attacker about the server, or is personal data: must stay in the log.
LEAK = "/srv/eldercare/keys/fields/7f3a.key for 13912345678"


class Boom(RuntimeError):
    pass


def explode(*args: Any, **kwargs: Any) -> NoReturn:
    raise Boom(LEAK)


async def explode_async(*args: Any, **kwargs: Any) -> NoReturn:
    explode()


@pytest_asyncio.fixture
async def served(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app answering as under a server: an escaped exception becomes the handler's 500
    (httpx's ASGI transport would otherwise raise it into the test)."""
    async with running(create_app(settings), raise_app_exceptions=False) as service:
        yield service.http


def assert_bare_500(response: httpx.Response) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == INTERNAL
    for hint in ("Traceback", "Boom", "RuntimeError", "13912345678", "/srv/", 'File "'):
        assert hint not in response.text


def logged_boom(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "eldercare" and record.exc_info and record.exc_info[0] is Boom
    ]


class TestUnexpectedException:
    async def test_a_failing_read_answers_internal_without_detail(
        self,
        served: httpx.AsyncClient,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        monkeypatch.setattr(meta, "openapi_document", explode)
        with caplog.at_level(logging.ERROR, logger="eldercare"):
            response = await served.get("/api/v1/openapi.json")
        assert_bare_500(response)
        [record] = logged_boom(caplog)
        assert "GET /api/v1/openapi.json" in record.getMessage()

    async def test_a_failing_service_behind_a_body_answers_internal_without_detail(
        self,
        served: httpx.AsyncClient,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        monkeypatch.setattr(auth, "login", explode_async)
        with caplog.at_level(logging.ERROR, logger="eldercare"):
            response = await served.post(
                "/api/v1/auth/login", json={"phone": "13912345678", "password": "whatever 123"}
            )
        assert_bare_500(response)
        assert len(logged_boom(caplog)) == 1

    async def test_the_service_keeps_answering_afterwards(
        self, served: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with monkeypatch.context() as patch:
            patch.setattr(meta, "openapi_document", explode)
            assert (await served.get("/api/v1/openapi.json")).status_code == 500
        response = await served.get("/api/v1/openapi.json")
        assert response.status_code == 200
        assert response.json()["openapi"].startswith("3.1")
