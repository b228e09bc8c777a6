"""Every write route x every kind of malformed input: a 4xx JSON error, and not one table changed.

The routes come from the app's own route list, so a new write route is swept without being
named here. Each is called by a caller entitled to it, on real resources (the scope world of
`test_authorization`), so the input is what gets refused, not the caller or a missing id.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import types
import typing
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints
from uuid import UUID

import httpx
import pytest
from starlette.routing import Route

from market.app import api_routes
from market.models import Role
from market.routes.spec import EndpointSpec, spec_of
from market.services.runtime import Runtime
from market.settings import Settings
from tests.market.conftest import City
from tests.market.tables import changed, snapshot
from tests.market.test_authorization import SCOPE_BY_ROUTE, World, build_world, concrete

MAX_BODY = 64 * 1024


def write_routes() -> list[tuple[str, str, EndpointSpec]]:
    rows = []
    for route in api_routes():
        if not isinstance(route, Route):
            continue
        spec = spec_of(route.endpoint)
        assert spec is not None
        for method in sorted((route.methods or set()) - {"GET", "HEAD"}):
            rows.append((method, route.path, spec))
    return rows


WRITES = write_routes()
IDS = [f"{method} {path}" for method, path, _ in WRITES]

# Bodies no endpoint can take, with the status each must get.
MALFORMED: list[tuple[str, bytes, str, int]] = [
    ("not-json", b"{not json", "application/json", 400),
    ("truncated", b'{"a": [1,', "application/json", 400),
    ("not-utf8", b'{"a": "\xff\xfe"}', "application/json", 400),
    ("duplicate-key", b'{"a": 1, "a": 2}', "application/json", 400),
    ("nan", b'{"a": NaN}', "application/json", 400),
    ("infinity", b'{"a": -Infinity}', "application/json", 400),
    ("array", b"[1, 2]", "application/json", 400),
    ("null", b"null", "application/json", 400),
    ("string", b'"text"', "application/json", 400),
    ("number", b"12", "application/json", 400),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "application/json", 413),
    ("nested-deep", b'{"a": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", "application/json", 400),
    ("huge-int", b'{"a": ' + b"9" * 5000 + b"}", "application/json", 400),
    ("form", b"a=1&b=2", "application/x-www-form-urlencoded", 415),
    ("text", b'{"a": 1}', "text/plain", 415),
    ("no-type", b'{"a": 1}', "", 415),
]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        keys_dir=tmp_path / "keys",
        matching_enabled=False,
    )


@pytest.fixture
async def world(client: httpx.AsyncClient, runtime: Runtime, city: City) -> World:
    return await build_world(client, runtime, city)


def caller(world: World, method: str, path: str, spec: EndpointSpec) -> dict[str, str]:
    """Headers of someone entitled to call the route (none for a public one)."""
    if spec.roles is None:
        return {}
    case = SCOPE_BY_ROUTE.get((method, path))
    if case is not None:
        return world.actors[case.insider].headers
    role = Role.centre_admin if Role.centre_admin in spec.roles else min(spec.roles)
    return world.actors[role.value].headers


def real_path(world: World, method: str, path: str) -> str:
    case = SCOPE_BY_ROUTE.get((method, path))
    return case.path.format(**world.ids) if case is not None else concrete(path)


def valid_body(world: World, method: str, path: str) -> dict[str, Any]:
    case = SCOPE_BY_ROUTE.get((method, path))
    if case is None:
        return {}
    return case.body(world.ids) if callable(case.body) else dict(case.body)


def _wrong_value(annotation: Any) -> Any:
    """A JSON value of the wrong type for `annotation`."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
        return _wrong_value(annotation)
    origin = get_origin(annotation)
    if annotation is bool:
        return "yes"
    if annotation in (int, float):
        return "12"
    if annotation is str or origin is Literal:
        return 12345
    if annotation in (UUID, date, datetime):
        return 20260101
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return 7
    if origin is list:
        return {"not": "a list"}
    if origin is dict or dataclasses.is_dataclass(annotation):
        return [1, 2]
    return None


def wrong_types(spec: EndpointSpec) -> dict[str, Any]:
    assert spec.body is not None
    hints = get_type_hints(spec.body, include_extras=True)
    return {f.name: _wrong_value(hints[f.name]) for f in dataclasses.fields(spec.body)}


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _nullable(annotation: Any) -> bool:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in get_args(
        annotation
    )


def missing_or_null(spec: EndpointSpec) -> list[tuple[str, dict[str, Any]]]:
    """An empty object when a field is required; every non-nullable field set to null."""
    assert spec.body is not None
    hints = get_type_hints(spec.body, include_extras=True)
    fields = dataclasses.fields(spec.body)
    bodies = []
    if any(_required(f) for f in fields):
        bodies.append(("empty-object", {}))
    nulls = {f.name: None for f in fields if not _nullable(hints[f.name])}
    if nulls:
        bodies.append(("null-fields", nulls))
    return bodies


def bad_uuids(spec: EndpointSpec, valid: dict[str, Any]) -> list[dict[str, Any]]:
    """`valid` with one UUID field at a time set to something that is not a UUID."""
    if spec.body is None:
        return []
    hints = get_type_hints(spec.body, include_extras=True)
    bodies = []
    for f in dataclasses.fields(spec.body):
        text = repr(hints[f.name])
        if "UUID" in text and "list" not in text:
            for bad in ("not-a-uuid", "1234", "", "00000000-0000-4000-8000-00000000000g"):
                bodies.append({**valid, f.name: bad})
    return bodies


BAD_IDS = ["not-a-uuid", "0", "-1", "%F0%9F%98%80", "x" * 300, "%00", "1e3", "..%2F..%2Fetc"]


async def expect_refused(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    content: bytes,
    headers: dict[str, str],
    what: str,
    status: int | None = None,
) -> list[str]:
    response = await client.request(method, url, content=content, headers=headers)
    problems = []
    if not 400 <= response.status_code < 500 or (status and response.status_code != status):
        problems.append(f"{what}: {response.status_code} {response.text[:160]}")
    elif not response.headers.get("content-type", "").startswith("application/json"):
        problems.append(f"{what}: {response.status_code} without a JSON body")
    else:
        error = response.json().get("error", {})
        if not isinstance(error.get("code"), str) or not isinstance(error.get("message"), str):
            problems.append(f"{what}: {response.status_code} without the error shape")
    return problems


@pytest.mark.parametrize(("method", "path", "spec"), WRITES, ids=IDS)
async def test_malformed_input_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, world: World, method: str, path: str, spec: EndpointSpec
) -> None:
    headers = caller(world, method, path, spec)
    url = real_path(world, method, path)
    valid = valid_body(world, method, path)
    as_json = {**headers, "content-type": "application/json"}
    before = await snapshot()
    problems: list[str] = []

    for name, raw, media, status in MALFORMED:
        kind = {**headers, "content-type": media} if media else headers
        problems += await expect_refused(
            client, method, url, content=raw, headers=kind, what=name, status=status
        )
    oversize = json.dumps({"x": "y" * (MAX_BODY + 1)}).encode()
    problems += await expect_refused(
        client, method, url, content=oversize, headers=as_json, what="oversize", status=413
    )
    unknown = json.dumps({**valid, "zz_not_a_field": 1}).encode()
    problems += await expect_refused(
        client,
        method,
        url,
        content=unknown,
        headers=as_json,
        what="unknown-field",
        status=None if spec.raw_body else 422,
    )
    if spec.body is not None:
        for name, body in [("wrong-types", wrong_types(spec)), *missing_or_null(spec)]:
            problems += await expect_refused(
                client,
                method,
                url,
                content=json.dumps(body).encode(),
                headers=as_json,
                what=name,
                status=422,
            )
        for body in bad_uuids(spec, valid):
            problems += await expect_refused(
                client,
                method,
                url,
                content=json.dumps(body).encode(),
                headers=as_json,
                what=f"bad-uuid {body}",
                status=422,
            )
    for bad in BAD_IDS if "{" in path else []:
        bad_url = re.sub(r"\{\w+\}", bad, path)
        problems += await expect_refused(
            client,
            method,
            bad_url,
            content=json.dumps(valid).encode(),
            headers=as_json,
            what=f"bad id {bad[:20]}",
        )
    assert problems == []
    assert changed(before, await snapshot()) == []


def test_every_write_route_is_swept() -> None:
    swept = {(m, p) for m, p, _ in WRITES}
    every = {
        (m, r.path)
        for r in api_routes()
        if isinstance(r, Route)
        for m in (r.methods or set()) - {"GET", "HEAD"}
    }
    assert swept == every and len(swept) > 30
