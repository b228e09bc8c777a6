"""Every kind of malformed request gets a 4xx JSON error and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.market.conftest import City
from tests.market.tables import snapshot


async def tables() -> dict[str, tuple[int, str]]:
    """Every table of every app, fingerprinted."""
    return await snapshot()


def assert_json_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    assert "Traceback" not in response.text
    return error


REGISTER = "/api/v1/auth/register"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_body"),
        (b"[1, 2]", 400, "malformed_body"),
        (b'{"phone": "1", "phone": "2"}', 400, "malformed_body"),
        (b'{"phone": NaN}', 400, "malformed_body"),
        (b"\xff\xfe", 400, "malformed_body"),
        (b"", 400, "malformed_body"),
        (
            b'{"phone": 13800000000, "password": true, "name": [], '
            b'"role": "elder", "district_code": 1}',
            422,
            "invalid_input",
        ),
        (
            b'{"phone": "13800000000", "password": "x y z 123", "name": "A", '
            b'"role": "family", "district_code": "east", "admin": true}',
            422,
            "invalid_input",
        ),
        (b'{"phone": "13800000000"}', 422, "invalid_input"),
    ],
    ids=[
        "bad-json",
        "not-object",
        "duplicate-key",
        "nan",
        "not-utf8",
        "empty",
        "wrong-types",
        "unknown-field",
        "missing-fields",
    ],
)
async def test_bad_bodies(
    client: httpx.AsyncClient, city: City, body: bytes, status: int, code: str
) -> None:
    before = await tables()
    response = await client.post(
        REGISTER, content=body, headers={"content-type": "application/json"}
    )
    assert assert_json_error(response, status)["code"] == code
    assert await tables() == before


async def test_wrong_types_are_all_listed(client: httpx.AsyncClient, city: City) -> None:
    response = await client.post(
        REGISTER,
        json={"phone": 1, "password": True, "name": [], "role": "king", "district_code": None},
    )
    details = assert_json_error(response, 422)["details"]
    assert {d["field"] for d in details} == {"phone", "password", "name", "role", "district_code"}  # type: ignore[union-attr]


async def test_wrong_media_type(client: httpx.AsyncClient, city: City) -> None:
    response = await client.post(
        REGISTER, content=b"phone=1", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert assert_json_error(response, 415)["code"] == "unsupported_media_type"


async def test_oversize_body(client: httpx.AsyncClient, city: City) -> None:
    before = await tables()
    big = b'{"name": "' + b"x" * (200 * 1024) + b'"}'
    response = await client.post(
        REGISTER, content=big, headers={"content-type": "application/json"}
    )
    assert assert_json_error(response, 413)["code"] == "payload_too_large"
    assert await tables() == before


async def test_unknown_route(client: httpx.AsyncClient) -> None:
    assert assert_json_error(await client.get("/api/v1/nothing-here"), 404)["code"] == "not_found"


async def test_wrong_method(client: httpx.AsyncClient) -> None:
    assert (
        assert_json_error(await client.delete("/api/v1/auth/login"), 405)["code"]
        == "method_not_allowed"
    )


async def test_overlong_string(client: httpx.AsyncClient, city: City) -> None:
    response = await client.post(
        REGISTER,
        json={
            "phone": "13800000000",
            "password": "good pass 1",
            "name": "x" * 101,
            "role": "family",
            "district_code": "east",
        },
    )
    assert assert_json_error(response, 422)["details"] == [
        {"field": "name", "problem": "must have at most 100 characters"}
    ]


async def test_bad_uuid_in_path(client: httpx.AsyncClient, city: City) -> None:
    response = await client.get("/api/v1/elders/not-a-uuid", headers=city["centre_admin"].headers)
    error = assert_json_error(response, 422)
    assert error["code"] == "invalid_id"
    assert error["details"] == [{"field": "id", "problem": "must be a UUID"}]


async def test_bad_uuid_in_body(client: httpx.AsyncClient, city: City) -> None:
    response = await client.post(
        "/api/v1/districts",
        json={"code": "x1", "name": "X", "parent_id": "12345"},
        headers=city["centre_admin"].headers,
    )
    assert assert_json_error(response, 422)["details"] == [
        {"field": "parent_id", "problem": "must be a UUID, got '12345'"}
    ]


async def test_unknown_but_valid_uuid_is_404(client: httpx.AsyncClient, city: City) -> None:
    response = await client.get(
        "/api/v1/elders/00000000-0000-4000-8000-000000000000", headers=city["centre_admin"].headers
    )
    assert assert_json_error(response, 404)["code"] == "elder_not_found"


LEDGER_DISTRICT_PATHS = [
    "/checkpoint",
    "/checkpoints",
    "/proof?seq=0",
    "/consistency?old=1&new=2",
    "/keys",
]


@pytest.mark.parametrize("suffix", LEDGER_DISTRICT_PATHS)
@pytest.mark.parametrize("code", ["a" * 33, "-east", "east%20west", "%E4%B8%9C"])
async def test_a_district_code_no_district_can_have_is_422(
    client: httpx.AsyncClient, suffix: str, code: str
) -> None:
    response = await client.get(f"/api/v1/ledger/districts/{code}{suffix}")
    error = assert_json_error(response, 422)
    assert error["code"] == "invalid_district"
    assert error["details"][0]["field"] == "district"  # type: ignore[index]


@pytest.mark.parametrize("suffix", LEDGER_DISTRICT_PATHS)
async def test_a_well_formed_unknown_district_is_404(
    client: httpx.AsyncClient, suffix: str
) -> None:
    response = await client.get(f"/api/v1/ledger/districts/{'a' * 32}{suffix}")
    assert assert_json_error(response, 404)["code"] == "ledger.unknown_district"


# Too long for the column, a NUL PostgreSQL refuses in text, another control character.
@pytest.mark.parametrize("entry_id", ["x" * 257, "a%00b", "%00", "a%0Ab", "a%7Fb"])
async def test_an_entry_id_no_store_could_hold_is_422(
    client: httpx.AsyncClient, city: City, entry_id: str
) -> None:
    response = await client.get(f"/api/v1/ledger/districts/east/proof?entry_id={entry_id}")
    assert assert_json_error(response, 422)["details"][0]["field"] == "entry_id"  # type: ignore[index]
    response = await client.get(
        f"/api/v1/ledger/districts/east/entries/{entry_id}/receipt",
        headers=city["auditor"].headers,
    )
    assert assert_json_error(response, 422)["details"][0]["field"] == "entry_id"  # type: ignore[index]


@pytest.mark.parametrize(
    "declared", [b"abc", b"-1", b"1.5", "１２".encode(), b"12, 12", b"0x10", b" 2"]
)
async def test_a_content_length_that_is_not_a_number_is_400(
    client: httpx.AsyncClient, city: City, declared: bytes
) -> None:
    before = await tables()
    response = await client.post(
        REGISTER,
        content=b"{}",
        headers={"content-type": "application/json", "content-length": declared},
    )
    assert assert_json_error(response, 400)["code"] == "bad_content_length"
    assert await tables() == before


async def test_a_declared_length_over_the_limit_is_413(
    client: httpx.AsyncClient, city: City
) -> None:
    for declared in ("65537", "9" * 40):
        response = await client.post(
            REGISTER,
            content=b"{}",
            headers={"content-type": "application/json", "content-length": declared},
        )
        assert assert_json_error(response, 413)["code"] == "payload_too_large"
