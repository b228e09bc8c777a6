"""Health, version and the API reference (OpenAPI JSON and a readable page)."""

from __future__ import annotations

import html
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from tortoise.connection import get_connection

from market import __version__
from market.openapi import openapi_document
from market.routes.spec import endpoint

API_VERSION = "v1"


@endpoint(summary="Check that the service and its database answer", tag="meta", roles=None)
async def healthz(request: Request) -> Response:
    try:
        await get_connection("default").execute_query("SELECT 1")
    except Exception as exc:  # any driver error means the database is not usable
        return JSONResponse(
            {"error": {"code": "database_unavailable", "message": type(exc).__name__}},
            status_code=503,
        )
    return JSONResponse({"status": "ok", "database": "ok"})


@endpoint(summary="Service and API version", tag="meta", roles=None)
async def version(request: Request) -> Response:
    return JSONResponse({"service": "eldercare", "version": __version__, "api": API_VERSION})


@endpoint(summary="This API as an OpenAPI 3.1 document", tag="meta", roles=None)
async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi_document(request.app.routes))


def _schema_rows(schema: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[-1]]
    rows = []
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or prop.get("$ref", "").rsplit("/", 1)[-1] or "any"
        extras = {k: v for k, v in prop.items() if k not in {"type", "$ref", "items"}}
        rows.append(
            f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(str(kind))}</td>"
            f"<td>{'yes' if name in required else 'no'}</td>"
            f"<td>{html.escape(json.dumps(extras, ensure_ascii=False)) if extras else ''}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<table><tr><th>field</th><th>type</th><th>required</th><th>constraints</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render_reference(doc: dict[str, Any]) -> str:
    components = doc["components"]["schemas"]
    sections: dict[str, list[str]] = {}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            roles = ", ".join(op.get("x-roles", [])) or "public"
            sections.setdefault(op["tags"][0], []).append(
                f"<section><h3><code>{method.upper()} {html.escape(path)}</code></h3>"
                f"<p>{html.escape(op['summary'])}. <em>Who:</em> {html.escape(roles)}.</p>"
                f"{_schema_rows(body['schema'], components) if body else ''}"
                f"<p>Responses: {', '.join(sorted(op['responses']))}</p></section>"
            )
    parts = [
        f"<h2>{html.escape(tag)}</h2>{''.join(items)}" for tag, items in sorted(sections.items())
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>eldercare API reference</title><style>body{font:16px/1.5 system-ui;"
        "max-width:60rem;margin:auto;padding:1rem}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:.2rem .5rem;text-align:left}</style></head><body>"
        f"<h1>eldercare API {html.escape(doc['info']['version'])}</h1>"
        '<p>Every error is JSON: <code>{"error": {"code", "message", "details"?}}</code>. '
        "Authenticate with <code>Authorization: Bearer &lt;token&gt;</code> from "
        "<code>POST /api/v1/auth/login</code>. Machine-readable: "
        "<a href='/api/v1/openapi.json'>/api/v1/openapi.json</a>.</p>"
        + "".join(parts)
        + "</body></html>"
    )


@endpoint(summary="This API as a readable page", tag="meta", roles=None)
async def reference(request: Request) -> Response:
    return HTMLResponse(render_reference(openapi_document(request.app.routes)))


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/api/v1/version", version, methods=["GET"]),
    Route("/api/v1/openapi.json", openapi_json, methods=["GET"]),
    Route("/api/v1/docs", reference, methods=["GET"]),
]
