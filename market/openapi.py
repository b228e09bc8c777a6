"""The OpenAPI 3.1 document, built from the route list and each handler's EndpointSpec."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import BaseRoute, Route

from market import __version__
from market.routes.spec import spec_of
from market.schemas.jsonschema import component

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _operation(route: Route, method: str, components: dict[str, Any]) -> dict[str, Any] | None:
    spec = spec_of(route.endpoint)
    if spec is None:
        return None
    responses: dict[str, Any] = {str(spec.status): {"description": "Success"}}
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "tags": [spec.tag],
        "operationId": f"{method.lower()}_{route.name}",
        "responses": responses,
    }
    if spec.description:
        operation["description"] = spec.description
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.param_convertors
    ]
    if spec.query is not None:
        name = component(spec.query, components)
        for field, schema in components[name]["properties"].items():
            params.append(
                {
                    "name": field,
                    "in": "query",
                    "required": field in components[name]["required"],
                    "schema": schema,
                }
            )
    if params:
        operation["parameters"] = params
    if route.param_convertors:
        responses["404"] = _error("No such resource")
    if spec.query is not None:
        responses["422"] = _error("Invalid query parameters; details list every problem")
    if spec.body is not None:
        name = component(spec.body, components)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
        responses["400"] = _error("Malformed JSON body")
        responses["413"] = _error("Body too large")
        responses["415"] = _error("Not application/json")
        responses["422"] = _error("Invalid input; details list every problem")
    if spec.roles is not None:
        roles = ", ".join(sorted(r.value for r in spec.roles))
        operation["security"] = [{"bearer": []}]
        operation["x-roles"] = sorted(r.value for r in spec.roles)
        operation["description"] = (
            operation.get("description", "") + f"\n\nRoles: {roles}."
        ).strip()
        responses["401"] = _error("Missing, invalid, expired or revoked token")
        responses["403"] = _error("Role or district does not allow this")
    return operation


def openapi_document(routes: list[BaseRoute]) -> dict[str, Any]:
    components: dict[str, Any] = {"Error": ERROR_SCHEMA}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route):
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            operation = _operation(route, method, components)
            if operation is not None:
                paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "eldercare API",
            "version": __version__,
            "description": "Community elder care: bookings, matching and a verifiable time bank.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
