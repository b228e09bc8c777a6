"""Every booking endpoint x every role: a refusal (403 wrong role or district, 409 wrong state,
422/400 bad input) always carries the JSON error and writes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from market.models import Booking, BookingState, Offer, OfferState
from market.routes import bookings as booking_routes
from market.routes import offers as offer_routes
from tests.market.bookings.world import book, neighbourhood, now, request_body, snapshot
from tests.market.conftest import Actor, City

ACTORS = ["elder", "family", "volunteer", "provider_staff", "centre_admin", "auditor", "west"]
POSITION = {"latitude": 30.0, "longitude": 120.0}


def actor(city: City, name: str) -> Actor:
    return city.west_admin if name == "west" else city[name]


async def booking_in(client: httpx.AsyncClient, city: City, state: BookingState) -> dict[str, str]:
    """A booking of the elder in `state`, with the volunteer as its helper from `offered` on."""
    created = await book(client, city["elder"])
    ids = {"booking": created["id"], "elder": str(city["elder"].user.id)}
    if state is BookingState.requested:
        return ids
    volunteer = city["volunteer"].user.id
    offered = state in (BookingState.offered, BookingState.escalated)
    offer = await Offer.create(
        booking_id=created["id"],
        district_id=city.east_community.id,
        helper_id=volunteer,
        state=OfferState.open if offered else OfferState.accepted,
        deadline=now() + timedelta(minutes=5),
        planned_start=now(),
        created_at=now(),
    )
    ids["offer"] = str(offer.id)
    columns: dict[str, Any] = {"state": state}
    if not offered:
        columns["helper_id"] = volunteer
    if state in (BookingState.completed, BookingState.disputed, BookingState.settled):
        columns.update(checkin_at=now(), checkout_at=now(), served_minutes=5)
    if state is BookingState.in_service:
        columns.update(checkin_at=now())
    await Booking.filter(id=created["id"]).update(**columns)
    return ids


async def declined_offer(client: httpx.AsyncClient, city: City, _: BookingState) -> dict[str, str]:
    ids = await booking_in(client, city, BookingState.offered)
    await Offer.filter(id=ids["offer"]).update(state=OfferState.declined)
    return ids


Setup = Callable[[httpx.AsyncClient, City, BookingState], Awaitable[dict[str, str]]]


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # {booking}, {offer} or {elder} filled from the setup's ids
    allowed: frozenset[str]
    state: BookingState = BookingState.requested
    wrong_state: BookingState | None = None
    body: dict[str, Any] | None = None
    bad_body: dict[str, Any] | None = None
    setup: Setup = booking_in
    wrong_setup: Setup | None = None
    # How the route is written in the routes list (for the coverage check).
    route: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


BOOKERS = frozenset({"elder", "family", "centre_admin"})
HELPER = frozenset({"volunteer"})
CENTRE = frozenset({"centre_admin"})
S = BookingState

CASES: dict[str, Case] = {
    "request": Case(
        "POST",
        "/api/v1/requests",
        BOOKERS,
        body={"elder_id": "{elder}"},
        bad_body={"service": "massage"},
    ),
    # Another district's admin may list, and sees only their own district (checked below).
    "list": Case("GET", "/api/v1/bookings", BOOKERS | HELPER | {"provider_staff", "west"}),
    "get": Case("GET", "/api/v1/bookings/{booking}", BOOKERS),
    # The printed card's code: the centre only, while the code can still confirm.
    "confirm-code": Case(
        "GET", "/api/v1/bookings/{booking}/confirm-code", CENTRE, S.accepted, S.settled
    ),
    # Not a state change: any flagged booking; here an unflagged one meets 409 not_flagged.
    "flags-review": Case(
        "POST",
        "/api/v1/bookings/{booking}/flags/review",
        CENTRE,
        body={"note": "called the family"},
        bad_body={"note": ""},
    ),
    "cancel": Case(
        "POST",
        "/api/v1/bookings/{booking}/cancel",
        BOOKERS,
        wrong_state=S.completed,
        body={"reason": "no longer needed"},
        bad_body={"reason": ""},
    ),
    "start": Case(
        "POST", "/api/v1/bookings/{booking}/start", HELPER, S.accepted, S.in_service, body={}
    ),
    "check-in": Case(
        "POST",
        "/api/v1/bookings/{booking}/check-in",
        HELPER,
        S.accepted,
        S.completed,
        body=POSITION,
        bad_body={"latitude": 100, "longitude": 0},
    ),
    "check-out": Case(
        "POST",
        "/api/v1/bookings/{booking}/check-out",
        HELPER,
        S.in_service,
        S.accepted,
        body={**POSITION, "reason": "done quickly"},
        bad_body={**POSITION, "code": "12ab"},
    ),
    "confirm": Case(
        "POST",
        "/api/v1/bookings/{booking}/confirm",
        BOOKERS | HELPER,
        S.completed,
        S.in_service,
        body={},
        bad_body={"code": 123456},
    ),
    "dispute": Case(
        "POST",
        "/api/v1/bookings/{booking}/dispute",
        BOOKERS,
        S.completed,
        S.accepted,
        body={"reason": "left early"},
        bad_body={"reason": 5},
    ),
    "decision": Case(
        "POST",
        "/api/v1/bookings/{booking}/dispute/decision",
        CENTRE,
        S.disputed,
        S.completed,
        body={"decision": "upheld", "note": "checked"},
        bad_body={"decision": "maybe", "note": "x"},
    ),
    "no-show": Case(
        "POST",
        "/api/v1/bookings/{booking}/no-show",
        HELPER,
        S.accepted,
        S.completed,
        body={"side": "elder_not_home", "reason": "nobody home"},
        bad_body={"side": "elder_asleep", "reason": "x"},
    ),
    "dispatch": Case(
        "POST",
        "/api/v1/bookings/{booking}/dispatch",
        CENTRE,
        S.escalated,
        S.completed,
        body={"helper_id": "{provider_staff}", "reason": "called"},
        bad_body={"helper_id": "nobody", "reason": "x"},
    ),
    "refuse": Case(
        "POST",
        "/api/v1/bookings/{booking}/refuse",
        CENTRE,
        S.escalated,
        S.completed,
        body={"reason": "no staff"},
        bad_body={"reason": ["no"]},
    ),
    "rate": Case(
        "POST",
        "/api/v1/bookings/{booking}/rate",
        frozenset({"elder", "family"}),
        S.settled,
        S.completed,
        body={"stars": 4},
        bad_body={"stars": 9},
    ),
    "lists-get": Case("GET", "/api/v1/elders/{elder}/helper-lists", BOOKERS),
    "lists-set": Case(
        "POST",
        "/api/v1/elders/{elder}/helper-lists",
        BOOKERS,
        body={"helper_id": "{volunteer}", "kind": "blocked"},
        bad_body={"helper_id": "{volunteer}", "kind": "vip"},
    ),
    "vouchers": Case("GET", "/api/v1/elders/{elder}/vouchers", BOOKERS),
    "offers": Case("GET", "/api/v1/offers", HELPER | {"provider_staff"}),
    "accept": Case(
        "POST",
        "/api/v1/offers/{offer}/accept",
        HELPER,
        S.offered,
        S.offered,
        body={},
        wrong_setup=declined_offer,
    ),
    "decline": Case(
        "POST",
        "/api/v1/offers/{offer}/decline",
        HELPER,
        S.offered,
        S.offered,
        body={"reason": "busy"},
        bad_body={"reason": 5},
        wrong_setup=declined_offer,
    ),
}


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids) if value.startswith("{") or "/" in value else value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def call(
    client: httpx.AsyncClient, case: Case, who: Actor, ids: dict[str, str], body: Any
) -> httpx.Response:
    path = case.path.format(**ids)
    if case.method == "GET":
        return await client.get(path, headers=who.headers)
    payload = _fill(body, ids)
    if case.path == "/api/v1/requests":
        payload = request_body(**payload)
    return await client.post(path, json=payload, headers=who.headers)


async def ids_for(
    client: httpx.AsyncClient, city: City, case: Case, state: BookingState
) -> dict[str, str]:
    ids = await case.setup(client, city, state)
    ids.setdefault("elder", str(city["elder"].user.id))
    ids["volunteer"] = str(city["volunteer"].user.id)
    ids["provider_staff"] = str(city["provider_staff"].user.id)
    return ids


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


def test_every_booking_and_offer_route_is_in_the_matrix() -> None:
    covered = {(c.method, c.path) for c in CASES.values()}
    missing = []
    for route in [*booking_routes.routes, *offer_routes.routes]:
        assert isinstance(route, Route)
        if route.path.endswith("/catalogue"):
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            templated = {
                path.replace("{booking}", "{id}")
                .replace("{offer}", "{id}")
                .replace("{elder}", "{id}")
                for m, path in covered
                if m == method
            }
            if route.path not in templated:
                missing.append(f"{method} {route.path}")
    assert missing == []


@pytest.mark.parametrize("name", sorted(CASES))
async def test_wrong_role_or_district_is_403_and_writes_nothing(
    client: httpx.AsyncClient, town: City, name: str
) -> None:
    case = CASES[name]
    ids = await ids_for(client, town, case, case.state)
    outsiders = [a for a in ACTORS if a not in case.allowed]
    assert outsiders
    before = await snapshot()
    for who in outsiders:
        response = await call(client, case, actor(town, who), ids, case.body or {})
        assert response.status_code == 403, f"{who}: {response.status_code} {response.text}"
        assert response.json()["error"]["code"]
    assert await snapshot() == before


TRANSITIONS = sorted(n for n, c in CASES.items() if c.wrong_state is not None)


@pytest.mark.parametrize("name", TRANSITIONS)
async def test_wrong_state_is_409_naming_the_state_and_writes_nothing(
    client: httpx.AsyncClient, town: City, name: str
) -> None:
    case = CASES[name]
    assert case.wrong_state is not None
    setup = case.wrong_setup or case.setup
    ids = await setup(client, town, case.wrong_state)
    ids.setdefault("elder", str(town["elder"].user.id))
    ids["provider_staff"] = str(town["provider_staff"].user.id)
    before = await snapshot()
    for who in sorted(case.allowed):
        response = await call(client, case, actor(town, who), ids, case.body or {})
        assert response.status_code == 409, f"{who}: {response.status_code} {response.text}"
        assert response.json()["error"]["details"]["state"]
    assert await snapshot() == before


WITH_BODY = sorted(n for n, c in CASES.items() if c.bad_body is not None)


@pytest.mark.parametrize("name", WITH_BODY)
async def test_bad_input_is_422_or_400_and_writes_nothing(
    client: httpx.AsyncClient, town: City, name: str
) -> None:
    case = CASES[name]
    ids = await ids_for(client, town, case, case.state)
    before = await snapshot()
    who = actor(town, sorted(case.allowed)[0])
    response = await call(client, case, who, ids, case.bad_body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]
    path = case.path.format(**ids)
    response = await client.post(
        path, content=b"[1,", headers={**who.headers, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_body"
    assert await snapshot() == before


ID_ROUTES = sorted(n for n, c in CASES.items() if "{" in c.path)


@pytest.mark.parametrize("name", ID_ROUTES)
async def test_a_malformed_id_is_422_and_an_unknown_one_404(
    client: httpx.AsyncClient, town: City, name: str
) -> None:
    case = CASES[name]
    who = actor(town, sorted(case.allowed)[0])
    before = await snapshot()
    body = case.body or {}
    for value, status in (("not-a-uuid", 422), ("00000000-0000-4000-8000-000000000000", 404)):
        ids = {"booking": value, "offer": value, "elder": value, "volunteer": value}
        ids["provider_staff"] = str(town["provider_staff"].user.id)
        response = await call(client, case, who, ids, body)
        assert response.status_code == status, f"{value}: {response.text}"
    assert await snapshot() == before


async def test_the_catalogue_names_the_policy_version(
    client: httpx.AsyncClient, town: City
) -> None:
    path = f"/api/v1/districts/{town.east_community.id}/catalogue"
    response = await client.get(path, headers=town["volunteer"].headers)
    assert response.status_code == 200
    body = response.json()
    assert body["policy_version"] == 0
    bathing = next(s for s in body["services"] if s["code"] == "bathing")
    assert bathing["certified_only_from"] == "moderate" and bathing["certified_min_staff"] == 2
    response = await client.get(
        "/api/v1/districts/00000000-0000-4000-8000-000000000000/catalogue",
        headers=town["volunteer"].headers,
    )
    assert response.status_code == 404


async def test_a_district_admin_lists_only_their_district(
    client: httpx.AsyncClient, town: City
) -> None:
    ids = await booking_in(client, town, BookingState.requested)
    east = await client.get("/api/v1/bookings", headers=town["centre_admin"].headers)
    west = await client.get("/api/v1/bookings", headers=town.west_admin.headers)
    assert [b["id"] for b in east.json()["bookings"]] == [ids["booking"]]
    assert west.json()["bookings"] == []
