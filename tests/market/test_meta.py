"""Health, version and the API reference."""

from pathlib import Path

import httpx
import pytest
from tortoise.connection import get_connection


async def cut_off_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Close the app's connection and point it where no database answers, as when the server
    goes down: the next query must open a new connection, and that fails."""
    connection = get_connection("default")
    await connection.close()
    if connection.capabilities.dialect == "sqlite":
        # A file in a directory that does not exist cannot be opened.
        monkeypatch.setattr(connection, "filename", str(tmp_path / "gone" / "db.sqlite3"))
    else:
        # Port 1 on loopback: nothing listens there, the connection is refused at once.
        monkeypatch.setattr(connection, "port", 1)


class TestHealth:
    async def test_reports_database_ok(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok"}

    async def test_unreachable_database_is_503(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        await cut_off_database(monkeypatch, tmp_path)
        response = await client.get("/healthz")
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "database_unavailable"
        # The driver's error class only: no path, host or credentials of the database.
        assert error["message"].isidentifier() and "Error" in error["message"]
        assert str(tmp_path) not in response.text

    # PostgreSQL only: on SQLite, Tortoise's connection lock stays held after a failed
    # reconnect (`ConnectionWrapper.__aenter__` does not release it when connecting raises),
    # so every later query waits; there the database is opened once, at start, and never again.
    @pytest.mark.postgres
    async def test_healthy_again_once_the_database_answers(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        await cut_off_database(monkeypatch, tmp_path)
        assert (await client.get("/healthz")).status_code == 503
        monkeypatch.undo()
        response = await client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "database": "ok"}


class TestVersion:
    async def test_names_service_and_api(self, client: httpx.AsyncClient) -> None:
        body = (await client.get("/api/v1/version")).json()
        assert body["service"] == "eldercare"
        assert body["api"] == "v1"


class TestOpenApi:
    async def test_lists_every_api_route(self, client: httpx.AsyncClient) -> None:
        doc = (await client.get("/api/v1/openapi.json")).json()
        assert doc["openapi"].startswith("3.1")
        assert "post" in doc["paths"]["/api/v1/auth/login"]
        assert doc["paths"]["/api/v1/auth/logout"]["post"]["security"] == [{"bearer": []}]

    async def test_body_schemas_reject_unknown_fields(self, client: httpx.AsyncClient) -> None:
        doc = (await client.get("/api/v1/openapi.json")).json()
        register = doc["components"]["schemas"]["RegisterCommand"]
        assert register["additionalProperties"] is False
        assert "phone" in register["required"]

    async def test_readable_reference_page(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/v1/docs")
        assert response.status_code == 200
        assert "POST /api/v1/auth/login" in response.text
