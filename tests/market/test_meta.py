"""Health, version and the API reference."""

import httpx


class TestHealth:
    async def test_reports_database_ok(self, client: httpx.AsyncClient) -> None:
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
