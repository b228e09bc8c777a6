"""Inputs at the edges of what JSON allows get a clear 4xx, never a 500, and write nothing."""

from __future__ import annotations

import httpx
import pytest

from market.models import ElderProfile, User
from tests.market.conftest import City


def elder_body(city: City, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "Wang",
        "district_id": str(city.east_community.id),
        "birth_year": 1938,
        "gender": "male",
        "latitude": 30.1,
        "longitude": 120.1,
    }
    body.update(overrides)
    return body


async def post_elder(client: httpx.AsyncClient, city: City, raw: bytes) -> httpx.Response:
    return await client.post(
        "/api/v1/elders",
        content=raw,
        headers={**city["centre_admin"].headers, "content-type": "application/json"},
    )


async def counts() -> tuple[int, int]:
    return await User.all().count(), await ElderProfile.all().count()


async def test_integer_beyond_the_parser_digit_limit_is_400(
    client: httpx.AsyncClient, city: City
) -> None:
    before = await counts()
    raw = b'{"birth_year": ' + b"9" * 5000 + b"}"
    response = await post_elder(client, city, raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_body"
    assert await counts() == before


async def test_integer_too_large_for_a_float_field_is_422(
    client: httpx.AsyncClient, city: City
) -> None:
    before = await counts()
    raw = (
        b'{"name": "Wang", "district_id": "'
        + str(city.east_community.id).encode()
        + b'", "birth_year": 1938, "gender": "male", "latitude": 1'
        + b"0" * 400
        + b', "longitude": 120.1}'
    )
    response = await post_elder(client, city, raw)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "latitude"
    assert await counts() == before


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("   ", "must not be blank"),
        ("Wang\u200b", "must not contain control or invisible characters (U+200B)"),
        ("Wang\u202eevil", "must not contain control or invisible characters (U+202E)"),
        ("Wang\nLi", "must not contain control or invisible characters (U+000A)"),
    ],
    ids=["blank", "zero-width", "bidi-override", "newline"],
)
async def test_names_must_be_visible_single_line_text(
    client: httpx.AsyncClient, city: City, name: str, problem: str
) -> None:
    before = await counts()
    response = await client.post(
        "/api/v1/elders", json=elder_body(city, name=name), headers=city["centre_admin"].headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [{"field": "name", "problem": problem}]
    assert await counts() == before


async def test_long_text_may_span_lines(client: httpx.AsyncClient, city: City) -> None:
    body = elder_body(city, health_notes="高血压\n糖尿病")
    response = await client.post("/api/v1/elders", json=body, headers=city["centre_admin"].headers)
    assert response.status_code == 201


@pytest.mark.parametrize("moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+00:00"])
async def test_datetimes_outside_plausible_years_are_422(
    client: httpx.AsyncClient, city: City, moment: str
) -> None:
    response = await client.post(
        f"/api/v1/districts/{city.east.id}/policies",
        json={"effective_from": moment, "content": {}},
        headers=city["centre_admin"].headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {"field": "effective_from", "problem": "must be between the years 1900 and 2200"}
    ]


async def test_policy_cannot_take_effect_now_or_earlier(
    client: httpx.AsyncClient, city: City
) -> None:
    from datetime import UTC, datetime

    from market import policy

    response = await client.post(
        f"/api/v1/districts/{city.east.id}/policies",
        json={
            "effective_from": datetime.now(UTC).isoformat(),
            "content": policy.policy_to_json(policy.DEFAULT_POLICY),
        },
        headers=city["centre_admin"].headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "policy_backdated"


async def test_district_code_must_name_a_ledger_chain(
    client: httpx.AsyncClient, city: City
) -> None:
    response = await client.post(
        "/api/v1/districts",
        json={"code": "_east-2", "name": "Bad", "parent_id": str(city.east.id)},
        headers=city["centre_admin"].headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "code"
