"""Who may call what, written down here independently of the routes' own declarations.

`ALLOWED` is the role x endpoint matrix from the issue and the domain rules (who books, who
serves, who runs a centre, who audits). It is not read from the code: a route that lets in a
role the table does not list fails, a route the table does not list fails, and a listed route
that no longer exists fails.

`SCOPE` covers every route whose path names a resource (a district, an elder, a user, a
booking, ...): a centre admin of another district, a family member who is not linked, another
elder, another volunteer or provider staff must get 403 and write nothing, while the one
entitled to it passes the check. A new route with an id in its path fails the coverage test
until it has a case (or is listed in `UNSCOPED` with the reason it needs none).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, get_type_hints

import httpx
import pytest
from starlette.routing import Route, WebSocketRoute

from market import assessment, policy
from market.app import api_routes
from market.emergency.models import EmergencyCall
from market.models import (
    AccessLog,
    Booking,
    BookingState,
    Certificate,
    FamilyLink,
    HelperKind,
    HelperProfile,
    LinkStatus,
    Offer,
    OfferState,
    Provider,
    Role,
    User,
    UserStatus,
)
from market.routes.spec import EndpointSpec, spec_of
from market.services import checkpoints
from market.services.runtime import Runtime
from market.settings import Settings
from market.visits.models import VisitRecord
from tests.market.conftest import Actor, City, make_actor, next_phone
from tests.market.tables import changed, snapshot

E, F, V, P, C, A = (
    Role.elder,
    Role.family,
    Role.volunteer,
    Role.provider_staff,
    Role.centre_admin,
    Role.auditor,
)
PUBLIC = None
SIGNED_IN = frozenset(Role)
ELDER_SIDE = frozenset({E, F, C})  # the elder, their approved family, their centre
HELPERS = frozenset({V, P})
CENTRE = frozenset({C})
HOLDERS = frozenset({E, F, V})  # time-bank account holders who give hours away

ALLOWED: dict[tuple[str, str], frozenset[Role] | None] = {
    # Service health, version and documentation are for anyone.
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/api/v1/version"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
    ("GET", "/api/v1/docs"): PUBLIC,
    # Accounts: elders, families and volunteers register themselves; admins and auditors are
    # made by an admin (issue 2, item 5).
    ("POST", "/api/v1/auth/register"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): SIGNED_IN,
    ("GET", "/api/v1/auth/me"): SIGNED_IN,
    # Districts and their policies are public rules; only a centre changes them.
    ("GET", "/api/v1/districts"): PUBLIC,
    ("POST", "/api/v1/districts"): CENTRE,
    ("GET", "/api/v1/districts/{id}/policy"): PUBLIC,
    ("GET", "/api/v1/districts/{id}/policies"): PUBLIC,
    ("POST", "/api/v1/districts/{id}/policies"): CENTRE,
    ("GET", "/api/v1/districts/{id}/catalogue"): SIGNED_IN,
    ("GET", "/api/v1/districts/{id}/stats"): CENTRE,
    ("POST", "/api/v1/staff"): CENTRE,
    ("POST", "/api/v1/users/{id}/status"): CENTRE,
    # Family links: the family member asks, the elder or the centre approves, any of the
    # three ends it.
    ("POST", "/api/v1/family-links"): frozenset({F}),
    ("GET", "/api/v1/family-links"): frozenset({E, F}),
    ("POST", "/api/v1/family-links/{id}/approve"): frozenset({E, C}),
    ("POST", "/api/v1/family-links/{id}/revoke"): ELDER_SIDE,
    # Elder records: the centre registers and assesses; the elder and linked family read;
    # only the elder and the centre change the profile or see assessments (health data).
    ("POST", "/api/v1/elders"): CENTRE,
    ("GET", "/api/v1/elders"): CENTRE,
    ("GET", "/api/v1/elders/{id}"): ELDER_SIDE,
    ("POST", "/api/v1/elders/{id}/profile"): frozenset({E, C}),
    ("POST", "/api/v1/elders/{id}/assessments"): CENTRE,
    ("GET", "/api/v1/elders/{id}/assessments"): frozenset({E, C}),
    # Helpers: they keep their own profile and certificates; the centre vets and verifies.
    ("GET", "/api/v1/helpers"): CENTRE,
    ("POST", "/api/v1/helpers/me"): HELPERS,
    ("GET", "/api/v1/helpers/{id}"): HELPERS | CENTRE,
    ("POST", "/api/v1/helpers/{id}/vetting"): CENTRE,
    ("POST", "/api/v1/helpers/{id}/crew"): CENTRE,
    ("POST", "/api/v1/certificates"): HELPERS,
    ("GET", "/api/v1/certificates/{id}"): HELPERS | CENTRE,
    ("POST", "/api/v1/certificates/{id}/verify"): CENTRE,
    ("POST", "/api/v1/providers"): CENTRE,
    ("GET", "/api/v1/providers"): CENTRE,
    ("POST", "/api/v1/providers/{id}/listing"): CENTRE,
    # Bookings: the elder side books ("子女网上下单"), the centre books for walk-ins and the
    # hotline; helpers serve; everyone involved reads. Auditors audit the ledger, not bookings.
    ("POST", "/api/v1/requests"): ELDER_SIDE,
    ("GET", "/api/v1/bookings"): ELDER_SIDE | HELPERS,
    ("GET", "/api/v1/bookings/{id}"): ELDER_SIDE | HELPERS,
    # The one-time code on a card the centre prints for an elder without a phone; the elder
    # side reads it in its booking views, helpers never.
    ("GET", "/api/v1/bookings/{id}/confirm-code"): CENTRE,
    # The elder side cancels; the helper holding it withdraws (it goes back to matching).
    ("POST", "/api/v1/bookings/{id}/cancel"): ELDER_SIDE | HELPERS,
    ("POST", "/api/v1/bookings/{id}/start"): HELPERS,
    ("POST", "/api/v1/bookings/{id}/check-in"): HELPERS,
    ("POST", "/api/v1/bookings/{id}/check-out"): HELPERS,
    # Confirmation: the elder side, or the helper typing the elder's confirmation code.
    ("POST", "/api/v1/bookings/{id}/confirm"): ELDER_SIDE | HELPERS,
    ("POST", "/api/v1/bookings/{id}/dispute"): ELDER_SIDE,
    ("POST", "/api/v1/bookings/{id}/dispute/decision"): CENTRE,
    # The centre marks a flagged booking (outside tolerance, a complaint) as looked at.
    ("POST", "/api/v1/bookings/{id}/flags/review"): CENTRE,
    # Either side reports the other missing.
    ("POST", "/api/v1/bookings/{id}/no-show"): ELDER_SIDE | HELPERS,
    ("POST", "/api/v1/bookings/{id}/dispatch"): CENTRE,
    ("POST", "/api/v1/bookings/{id}/refuse"): CENTRE,
    ("GET", "/api/v1/bookings/{id}/suggestions"): CENTRE,
    ("POST", "/api/v1/bookings/{id}/rate"): frozenset({E, F}),
    ("GET", "/api/v1/elders/{id}/helper-lists"): ELDER_SIDE,
    ("POST", "/api/v1/elders/{id}/helper-lists"): ELDER_SIDE,
    ("GET", "/api/v1/elders/{id}/vouchers"): ELDER_SIDE,
    ("GET", "/api/v1/offers"): HELPERS,
    ("POST", "/api/v1/offers/{id}/accept"): HELPERS,
    ("POST", "/api/v1/offers/{id}/decline"): HELPERS,
    ("GET", "/api/v1/series"): ELDER_SIDE,
    ("GET", "/api/v1/series/{id}"): ELDER_SIDE,
    ("POST", "/api/v1/series/{id}/skip"): ELDER_SIDE,
    ("POST", "/api/v1/series/{id}/move"): ELDER_SIDE,
    ("POST", "/api/v1/series/{id}/end"): ELDER_SIDE,
    # Emergencies: the elder side follows its call; the centre acknowledges and oversees.
    ("GET", "/api/v1/emergencies/{id}"): ELDER_SIDE,
    ("POST", "/api/v1/emergencies/{id}/acknowledgement"): CENTRE,
    ("GET", "/api/v1/bookings/{id}/emergency"): ELDER_SIDE,
    ("GET", "/api/v1/districts/{id}/emergencies"): CENTRE,
    # Visits: the centre or a vetted helper records; the records (health findings) are the
    # centre's.
    ("POST", "/api/v1/elders/{id}/visits"): HELPERS | CENTRE,
    ("GET", "/api/v1/elders/{id}/visits"): CENTRE,
    ("POST", "/api/v1/elders/{id}/major-changes"): CENTRE,
    ("POST", "/api/v1/visits/{id}/referrals"): CENTRE,
    ("GET", "/api/v1/districts/{id}/visit-queue"): CENTRE,
    ("GET", "/api/v1/districts/{id}/visit-coverage"): CENTRE,
    # Ledger: checkpoints, proofs and keys are public so anyone can check the log; entries by
    # range for auditors and the chain's centre; accounts for holders, their centre, auditors.
    ("GET", "/api/v1/ledger/districts"): PUBLIC,
    ("GET", "/api/v1/ledger/districts/{district}/checkpoint"): PUBLIC,
    ("GET", "/api/v1/ledger/districts/{district}/checkpoints"): PUBLIC,
    ("POST", "/api/v1/ledger/districts/{district}/checkpoints/{size}/cosignatures"): frozenset({A}),
    ("GET", "/api/v1/ledger/districts/{district}/entries"): frozenset({A, C}),
    ("GET", "/api/v1/ledger/districts/{district}/categories"): frozenset({A, C}),
    ("GET", "/api/v1/ledger/districts/{district}/entries/{entry_id}/receipt"): SIGNED_IN,
    ("GET", "/api/v1/ledger/districts/{district}/proof"): PUBLIC,
    ("GET", "/api/v1/ledger/districts/{district}/consistency"): PUBLIC,
    ("GET", "/api/v1/ledger/districts/{district}/keys"): PUBLIC,
    ("GET", "/api/v1/ledger/accounts/{user_id}/balance"): SIGNED_IN,
    ("GET", "/api/v1/ledger/accounts/{user_id}/statement"): SIGNED_IN,
    ("GET", "/api/v1/ledger/settlement"): frozenset({A, C}),
    ("POST", "/api/v1/ledger/witness-key"): frozenset({A}),
    ("POST", "/api/v1/ledger/gifts"): HOLDERS,
    ("POST", "/api/v1/ledger/donations"): HOLDERS,
    ("GET", "/api/v1/ledger/gift-recipients"): HOLDERS,
    # Signed by the sending deployment's district key, not by a user token.
    ("POST", "/api/v1/ledger/federation/{kind}"): PUBLIC,
}


def routes() -> list[tuple[str, str, frozenset[Role] | None]]:
    """(method, path, roles the route itself declares) of every HTTP route."""
    rows = []
    for route in api_routes():
        if isinstance(route, WebSocketRoute):
            continue  # the websocket authenticates in its own protocol (tests/market/realtime)
        assert isinstance(route, Route), f"{route!r} is neither an HTTP nor a websocket route"
        spec = spec_of(route.endpoint)
        assert spec is not None, f"{route.path} has no EndpointSpec"
        for method in sorted((route.methods or set()) - {"HEAD"}):
            rows.append((method, route.path, spec.roles))
    return rows


def concrete(path: str) -> str:
    values = {"district": "east", "size": "1", "kind": "credit", "entry_id": "x"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


def test_the_table_lists_every_route_and_only_existing_ones() -> None:
    existing = {(method, path) for method, path, _ in routes()}
    assert sorted(existing - set(ALLOWED)) == [], "routes missing from ALLOWED"
    assert sorted(set(ALLOWED) - existing) == [], "ALLOWED lists routes that do not exist"


def test_declared_roles_match_the_table() -> None:
    """The cheap, exact comparison; the HTTP tests below prove the same by calling."""
    wrong = [
        f"{method} {path}: declares {sorted(r.value for r in declared or [])}, "
        f"table says {sorted(r.value for r in ALLOWED[(method, path)] or [])}"
        for method, path, declared in routes()
        if (method, path) in ALLOWED and declared != ALLOWED[(method, path)]
    ]
    assert wrong == []


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # No matching loop: the bookings set up below must stay in the state they were put in.
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        keys_dir=tmp_path / "keys",
        matching_enabled=False,
    )


# Logout last: it revokes the token the other calls use.
PROTECTED = sorted(
    ((m, p) for (m, p), roles in ALLOWED.items() if roles is not PUBLIC),
    key=lambda route: (route[1] == "/api/v1/auth/logout", route),
)


async def test_roles_outside_the_table_are_refused(client: httpx.AsyncClient, city: City) -> None:
    wrong: list[str] = []
    for method, path in PROTECTED:
        allowed = ALLOWED[(method, path)]
        assert allowed is not None
        # Refused roles first, and they write nothing; then the allowed ones, which may.
        before = await snapshot()
        for role in sorted(Role, key=lambda r: (r in allowed, r.value)):
            if role in allowed and before is not None:
                if writes := changed(before, await snapshot()):
                    wrong.append(f"refused calls to {method} {path} wrote {writes}")
                before = None
            response = await client.request(
                method, concrete(path), json={}, headers=city[role.value].headers
            )
            refused = (
                response.status_code == 403 and response.json()["error"]["code"] == "role_forbidden"
            )
            if refused == (role in allowed):
                verdict = "refused" if refused else f"let in ({response.status_code})"
                wrong.append(f"{role.value} {method} {path}: {verdict}")
    assert wrong == []


async def test_protected_routes_need_a_token(client: httpx.AsyncClient) -> None:
    wrong = []
    for (method, path), roles in sorted(ALLOWED.items()):
        response = await client.request(method, concrete(path), json={})
        if (response.status_code == 401) != (roles is not PUBLIC):
            wrong.append(f"{method} {path} without a token -> {response.status_code}")
        if response.status_code == 401:
            assert response.json()["error"]["code"] == "token_missing"
    assert wrong == []


# ---- district and ownership scope -----------------------------------------------------------

# Each stranger and the role they hold. All but the west ones live in the east community,
# next to the elder, family member, volunteer and provider staff the resources belong to.
STRANGERS = {
    "west_admin": C,
    "other_elder": E,
    "other_family": F,
    "other_volunteer": V,
    "other_provider": P,
    "west_volunteer": V,
    "west_provider": P,
}
# Roles not scoped by district anywhere, and why.
UNSCOPED_ROLES = {A: "auditors read every district's ledger and co-sign other districts"}

# Routes with an id in the path that are not scoped, and why.
UNSCOPED = {
    ("GET", "/api/v1/districts/{id}/policy"): "district policy is public",
    ("GET", "/api/v1/districts/{id}/policies"): "district policy is public",
    ("GET", "/api/v1/districts/{id}/catalogue"): "what a district offers is public to users",
    ("GET", "/api/v1/ledger/districts/{district}/checkpoint"): "public: hashes and signatures",
    ("GET", "/api/v1/ledger/districts/{district}/checkpoints"): "public: hashes and signatures",
    ("GET", "/api/v1/ledger/districts/{district}/proof"): "public: hashes only",
    ("GET", "/api/v1/ledger/districts/{district}/consistency"): "public: hashes only",
    ("GET", "/api/v1/ledger/districts/{district}/keys"): "public keys",
    (
        "POST",
        "/api/v1/ledger/districts/{district}/checkpoints/{size}/cosignatures",
    ): "auditors witness every district (own-district auditors: test_witness_quorum.py)",
    ("POST", "/api/v1/ledger/federation/{kind}"): "authenticated by the peer's district key",
}

Body = dict[str, Any] | Callable[[dict[str, str]], dict[str, Any]]


@dataclass(frozen=True)
class Scope:
    method: str
    route: str  # as written in the routes list
    path: str  # with {names} from World.ids
    insider: str  # who is entitled and must pass the scope check
    outsiders: tuple[str, ...]
    body: Body = dataclasses.field(default_factory=dict)
    query: str = ""


def future(days: int = 30) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def recent(hours: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


POSITION = {"latitude": 30.0, "longitude": 120.0}
ASSESSMENT = {
    "item_scores": {item.code: item.max_score for item in assessment.ITEMS},
    "assessor_1": "A",
    "assessor_2": "B",
    "informant": "C",
    "assessed_on": "2026-01-05",
}
VISIT = {"method": "phone", "visited_at": recent(), "record": {"health": "steady"}}
EAST_PEOPLE = ("west_admin", "other_elder", "other_family")
ANY_STRANGER = (*EAST_PEOPLE, "other_volunteer", "other_provider")
HELPER_STRANGERS = ("other_volunteer", "other_provider")
WEST = ("west_admin",)

SCOPE = [
    Scope(
        "POST",
        "/api/v1/districts/{id}/policies",
        "/api/v1/districts/{east}/policies",
        "centre_admin",
        WEST,
        {"effective_from": future(), "content": policy.policy_to_json(policy.DEFAULT_POLICY)},
    ),
    Scope(
        "GET",
        "/api/v1/districts/{id}/stats",
        "/api/v1/districts/{east}/stats",
        "centre_admin",
        WEST,
    ),
    Scope(
        "POST",
        "/api/v1/users/{id}/status",
        "/api/v1/users/{family_user}/status",
        "centre_admin",
        WEST,
        {"status": "suspended", "reason": "test"},
    ),
    Scope(
        "POST",
        "/api/v1/family-links/{id}/approve",
        "/api/v1/family-links/{pending_link}/approve",
        "elder",
        ("west_admin", "other_elder"),
    ),
    Scope(
        "POST",
        "/api/v1/family-links/{id}/revoke",
        "/api/v1/family-links/{pending_link}/revoke",
        "elder",
        EAST_PEOPLE,
    ),
    Scope("GET", "/api/v1/elders/{id}", "/api/v1/elders/{elder}", "family", EAST_PEOPLE),
    Scope(
        "POST",
        "/api/v1/elders/{id}/profile",
        "/api/v1/elders/{elder}/profile",
        "elder",
        ("west_admin", "other_elder"),
        {"latitude": 30.1},
    ),
    Scope(
        "POST",
        "/api/v1/elders/{id}/assessments",
        "/api/v1/elders/{elder}/assessments",
        "centre_admin",
        WEST,
        ASSESSMENT,
    ),
    Scope(
        "GET",
        "/api/v1/elders/{id}/assessments",
        "/api/v1/elders/{elder}/assessments",
        "elder",
        ("west_admin", "other_elder"),
    ),
    Scope(
        "GET",
        "/api/v1/helpers/{id}",
        "/api/v1/helpers/{volunteer}",
        "volunteer",
        ("west_admin", *HELPER_STRANGERS),
    ),
    Scope(
        "POST",
        "/api/v1/helpers/{id}/vetting",
        "/api/v1/helpers/{pending_volunteer}/vetting",
        "centre_admin",
        WEST,
        {"decision": "approved", "reason": "interviewed"},
    ),
    Scope(
        "POST",
        "/api/v1/helpers/{id}/crew",
        "/api/v1/helpers/{provider_staff}/crew",
        "centre_admin",
        WEST,
        {"crew_size": 2},
    ),
    Scope(
        "GET",
        "/api/v1/certificates/{id}",
        "/api/v1/certificates/{certificate}",
        "volunteer",
        ("west_admin", *HELPER_STRANGERS),
    ),
    Scope(
        "POST",
        "/api/v1/certificates/{id}/verify",
        "/api/v1/certificates/{certificate}/verify",
        "centre_admin",
        WEST,
    ),
    Scope(
        "POST",
        "/api/v1/providers/{id}/listing",
        "/api/v1/providers/{provider}/listing",
        "centre_admin",
        WEST,
        {"list_status": "red", "reason": "late twice"},
    ),
    Scope("GET", "/api/v1/bookings/{id}", "/api/v1/bookings/{booking}", "family", ANY_STRANGER),
    Scope(
        "GET",
        "/api/v1/bookings/{id}/confirm-code",
        "/api/v1/bookings/{booking}/confirm-code",
        "centre_admin",
        WEST,
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/flags/review",
        "/api/v1/bookings/{booking}/flags/review",
        "centre_admin",
        WEST,
        {"note": "called the family"},
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/cancel",
        "/api/v1/bookings/{booking}/cancel",
        "family",
        ANY_STRANGER,
        {"reason": "no longer needed"},
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/start",
        "/api/v1/bookings/{accepted}/start",
        "volunteer",
        HELPER_STRANGERS,
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/check-in",
        "/api/v1/bookings/{accepted}/check-in",
        "volunteer",
        HELPER_STRANGERS,
        POSITION,
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/check-out",
        "/api/v1/bookings/{accepted}/check-out",
        "volunteer",
        HELPER_STRANGERS,
        {**POSITION, "reason": "done quickly"},
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/confirm",
        "/api/v1/bookings/{accepted}/confirm",
        "elder",
        ANY_STRANGER,
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/dispute",
        "/api/v1/bookings/{accepted}/dispute",
        "family",
        EAST_PEOPLE,
        {"reason": "left early"},
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/dispute/decision",
        "/api/v1/bookings/{accepted}/dispute/decision",
        "centre_admin",
        WEST,
        {"decision": "upheld", "note": "checked"},
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/no-show",
        "/api/v1/bookings/{accepted}/no-show",
        "elder",
        ANY_STRANGER,
        {"side": "helper_absent", "reason": "nobody came"},
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/dispatch",
        "/api/v1/bookings/{booking}/dispatch",
        "centre_admin",
        WEST,
        lambda ids: {"helper_id": ids["provider_staff"], "reason": "called"},
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/refuse",
        "/api/v1/bookings/{booking}/refuse",
        "centre_admin",
        WEST,
        {"reason": "no staff"},
    ),
    Scope(
        "GET",
        "/api/v1/bookings/{id}/suggestions",
        "/api/v1/bookings/{booking}/suggestions",
        "centre_admin",
        WEST,
    ),
    Scope(
        "POST",
        "/api/v1/bookings/{id}/rate",
        "/api/v1/bookings/{accepted}/rate",
        "family",
        ("other_elder", "other_family"),
        {"stars": 4},
    ),
    Scope(
        "GET",
        "/api/v1/elders/{id}/helper-lists",
        "/api/v1/elders/{elder}/helper-lists",
        "family",
        EAST_PEOPLE,
    ),
    Scope(
        "POST",
        "/api/v1/elders/{id}/helper-lists",
        "/api/v1/elders/{elder}/helper-lists",
        "family",
        EAST_PEOPLE,
        lambda ids: {"helper_id": ids["volunteer"], "kind": "blocked"},
    ),
    Scope(
        "GET",
        "/api/v1/elders/{id}/vouchers",
        "/api/v1/elders/{elder}/vouchers",
        "family",
        EAST_PEOPLE,
    ),
    Scope(
        "POST",
        "/api/v1/offers/{id}/accept",
        "/api/v1/offers/{offer}/accept",
        "volunteer",
        HELPER_STRANGERS,
    ),
    Scope(
        "POST",
        "/api/v1/offers/{id}/decline",
        "/api/v1/offers/{offer}/decline",
        "volunteer",
        HELPER_STRANGERS,
        {"reason": "busy"},
    ),
    Scope("GET", "/api/v1/series/{id}", "/api/v1/series/{series}", "family", EAST_PEOPLE),
    Scope(
        "POST",
        "/api/v1/series/{id}/skip",
        "/api/v1/series/{series}/skip",
        "family",
        EAST_PEOPLE,
        lambda ids: {"occurrence": ids["series_day"], "reason": "away"},
    ),
    Scope(
        "POST",
        "/api/v1/series/{id}/move",
        "/api/v1/series/{series}/move",
        "family",
        EAST_PEOPLE,
        lambda ids: {"occurrence": ids["series_day"], "to": future(2), "reason": "away"},
    ),
    Scope(
        "POST",
        "/api/v1/series/{id}/end",
        "/api/v1/series/{series}/end",
        "family",
        EAST_PEOPLE,
        {"reason": "moved in with us"},
    ),
    Scope(
        "GET", "/api/v1/emergencies/{id}", "/api/v1/emergencies/{emergency}", "family", EAST_PEOPLE
    ),
    Scope(
        "POST",
        "/api/v1/emergencies/{id}/acknowledgement",
        "/api/v1/emergencies/{emergency}/acknowledgement",
        "centre_admin",
        WEST,
    ),
    Scope(
        "GET",
        "/api/v1/bookings/{id}/emergency",
        "/api/v1/bookings/{emergency_booking}/emergency",
        "family",
        EAST_PEOPLE,
    ),
    Scope(
        "GET",
        "/api/v1/districts/{id}/emergencies",
        "/api/v1/districts/{east}/emergencies",
        "centre_admin",
        WEST,
    ),
    # Any vetted helper of the elder's district may record a visit: strangers are in the west.
    Scope(
        "POST",
        "/api/v1/elders/{id}/visits",
        "/api/v1/elders/{elder}/visits",
        "volunteer",
        ("west_admin", "west_volunteer", "west_provider"),
        VISIT,
    ),
    Scope(
        "GET", "/api/v1/elders/{id}/visits", "/api/v1/elders/{elder}/visits", "centre_admin", WEST
    ),
    Scope(
        "POST",
        "/api/v1/elders/{id}/major-changes",
        "/api/v1/elders/{elder}/major-changes",
        "centre_admin",
        WEST,
        {"kind": "fall", "at": recent()},
    ),
    Scope(
        "POST",
        "/api/v1/visits/{id}/referrals",
        "/api/v1/visits/{visit}/referrals",
        "centre_admin",
        WEST,
        {"service": "cleaning", "window_start": future(1)},
    ),
    Scope(
        "GET",
        "/api/v1/districts/{id}/visit-queue",
        "/api/v1/districts/{east}/visit-queue",
        "centre_admin",
        WEST,
    ),
    Scope(
        "GET",
        "/api/v1/districts/{id}/visit-coverage",
        "/api/v1/districts/{east}/visit-coverage",
        "centre_admin",
        WEST,
        query=f"?month={datetime.now(UTC):%Y-%m}",
    ),
    Scope(
        "GET",
        "/api/v1/ledger/districts/{district}/entries",
        "/api/v1/ledger/districts/east/entries",
        "centre_admin",
        WEST,
        query="?start=0&end=1",
    ),
    Scope(
        "GET",
        "/api/v1/ledger/districts/{district}/categories",
        "/api/v1/ledger/districts/east/categories",
        "centre_admin",
        WEST,
        query="?first=2026-01",
    ),
    Scope(
        "GET",
        "/api/v1/ledger/districts/{district}/entries/{entry_id}/receipt",
        "/api/v1/ledger/districts/east/entries/{entry}/receipt",
        "volunteer",
        ANY_STRANGER,
    ),
    Scope(
        "GET",
        "/api/v1/ledger/accounts/{user_id}/balance",
        "/api/v1/ledger/accounts/{volunteer}/balance",
        "volunteer",
        ANY_STRANGER,
    ),
    Scope(
        "GET",
        "/api/v1/ledger/accounts/{user_id}/statement",
        "/api/v1/ledger/accounts/{volunteer}/statement",
        "volunteer",
        ANY_STRANGER,
    ),
]
PATH_SCOPE_ROUTES = {(s.method, s.route) for s in SCOPE}

# Ids in the query or the body name a resource too: a district to act in, an elder to book for.
SCOPE_IN_INPUT = [
    Scope(
        "POST",
        "/api/v1/districts",
        "/api/v1/districts",
        "centre_admin",
        WEST,
        lambda ids: {"code": "east-s9", "name": "Ninth Street", "parent_id": ids["east"]},
    ),
    Scope(
        "POST",
        "/api/v1/staff",
        "/api/v1/staff",
        "centre_admin",
        WEST,
        lambda ids: {
            "phone": next_phone(),
            "password": "strong pass 9",
            "name": "Auditor",
            "role": "auditor",
            "district_id": ids["east"],
        },
    ),
    Scope(
        "POST",
        "/api/v1/elders",
        "/api/v1/elders",
        "centre_admin",
        WEST,
        lambda ids: {
            "name": "Wang",
            "district_id": ids["community"],
            "birth_year": 1938,
            "gender": "male",
            "latitude": 30.1,
            "longitude": 120.1,
        },
    ),
    Scope(
        "GET", "/api/v1/elders", "/api/v1/elders", "centre_admin", WEST, query="?district_id={east}"
    ),
    Scope(
        "GET",
        "/api/v1/helpers",
        "/api/v1/helpers",
        "centre_admin",
        WEST,
        query="?district_id={east}",
    ),
    Scope(
        "POST",
        "/api/v1/providers",
        "/api/v1/providers",
        "centre_admin",
        WEST,
        lambda ids: {
            "name": "Meals Ltd",
            "district_id": ids["east"],
            "services": ["meal"],
            "prices_fen": {"meal": 1500},
            "capacity_per_day": 100,
        },
    ),
    Scope(
        "GET",
        "/api/v1/providers",
        "/api/v1/providers",
        "centre_admin",
        WEST,
        query="?district_id={east}",
    ),
    Scope(
        "POST",
        "/api/v1/requests",
        "/api/v1/requests",
        "family",
        EAST_PEOPLE,
        lambda ids: {
            "elder_id": ids["elder"],
            "service": "cleaning",
            "window_start": future(1),
            "duration_minutes": 30,
            "payment": "public",
        },
    ),
    Scope(
        "GET", "/api/v1/series", "/api/v1/series", "family", EAST_PEOPLE, query="?elder_id={elder}"
    ),
]

# Ids in the input that name no resource the caller acts on, and why.
UNSCOPED_INPUT = {
    ("POST", "/api/v1/bookings/{id}/dispatch"): "the booking in the path is scoped; the helper "
    "named is checked by the dispatch rules",
    ("POST", "/api/v1/elders/{id}/helper-lists"): "the elder in the path is scoped; the helper "
    "named is only listed",
    ("POST", "/api/v1/elders/{id}/visits"): "the elder in the path is scoped; a named visitor "
    "must be a helper of the elder's district (tests/market/visits)",
    ("POST", "/api/v1/ledger/gifts"): "the giver is the caller; the recipient is checked by the "
    "gift rules (tests/market/ledger/test_gifts.py)",
}
ALL_SCOPE = [*SCOPE, *SCOPE_IN_INPUT]
SCOPE_BY_ROUTE = {(s.method, s.route): s for s in ALL_SCOPE}


def _input_ids(spec: EndpointSpec) -> list[str]:
    names = []
    for schema in (spec.body, spec.query):
        if schema is not None:
            hints = get_type_hints(schema, include_extras=True)
            names += [f.name for f in dataclasses.fields(schema) if "UUID" in repr(hints[f.name])]
    return names


def test_every_route_with_an_id_has_a_scope_case() -> None:
    with_ids = {(m, p) for m, p, _ in routes() if "{" in p}
    assert len(SCOPE_BY_ROUTE) == len(ALL_SCOPE), "two cases for one route"
    assert sorted(with_ids - PATH_SCOPE_ROUTES - set(UNSCOPED)) == []
    assert sorted((PATH_SCOPE_ROUTES | set(UNSCOPED)) - with_ids) == []
    assert PATH_SCOPE_ROUTES.isdisjoint(UNSCOPED)


def test_every_route_with_an_id_in_its_input_has_a_scope_case() -> None:
    with_ids = set()
    for route in api_routes():
        spec = spec_of(getattr(route, "endpoint", None))
        if isinstance(route, Route) and spec is not None and _input_ids(spec):
            with_ids |= {(m, route.path) for m in (route.methods or set()) - {"HEAD"}}
    in_input = {(s.method, s.route) for s in SCOPE_IN_INPUT}
    assert sorted(with_ids - in_input - set(UNSCOPED_INPUT) - PATH_SCOPE_ROUTES) == []
    assert sorted((in_input | set(UNSCOPED_INPUT)) - with_ids) == []


def test_each_case_has_a_stranger_of_every_allowed_role() -> None:
    """A scope case that forgets, say, the family member who is not linked fails here."""
    missing = []
    for case in ALL_SCOPE:
        allowed = ALLOWED[(case.method, case.route)]
        assert allowed is not None, f"{case.route} is public; list it in UNSCOPED"
        covered = {STRANGERS[name] for name in case.outsiders}
        for role in sorted(allowed - covered - set(UNSCOPED_ROLES), key=lambda r: r.value):
            missing.append(f"{case.method} {case.route}: no stranger who is {role.value}")
        assert covered <= allowed, f"{case.route}: a stranger of a role the route refuses anyway"
    assert missing == []


@dataclass
class World:
    actors: dict[str, Actor]
    ids: dict[str, str]


async def booking(
    client: httpx.AsyncClient, city: City, state: BookingState, helper: Actor | None = None
) -> Booking:
    """A booking of the elder, made by the family member, then put in `state`."""
    response = await client.post(
        "/api/v1/requests", json=request(city), headers=city["family"].headers
    )
    assert response.status_code == 201, response.text
    booking_id = response.json()["bookings"][0]["id"]
    columns: dict[str, Any] = {"state": state}
    if helper is not None:
        columns["helper_id"] = helper.user.id
    await Booking.filter(id=booking_id).update(**columns)
    return await Booking.get(id=booking_id)


async def build_world(client: httpx.AsyncClient, runtime: Runtime, city: City) -> World:
    """Resources of the east elder, family member (linked), volunteer and provider staff, and
    strangers of every role."""
    east = city.east_community
    actors = {role.value: city[role.value] for role in Role}
    actors["west_admin"] = city.west_admin
    for name, role in STRANGERS.items():
        if name != "west_admin":
            home = city.west if name.startswith("west") else east
            actors[name] = await make_actor(client, runtime, role, home)
    await FamilyLink.create(
        family=city["family"].user,
        elder=city["elder"].user,
        relation="child",
        status=LinkStatus.approved,
    )
    asking = await make_actor(client, runtime, Role.family, east)
    pending_link = await FamilyLink.create(
        family=asking.user, elder=city["elder"].user, relation="grandchild"
    )
    pending = await User.create(
        role=Role.volunteer,
        name="new volunteer",
        district=east,
        status=UserStatus.pending,
        birth_year=1990,
    )
    await HelperProfile.create(user=pending, kind=HelperKind.volunteer)
    certificate = await Certificate.create(
        helper=city["volunteer"].user,
        kind="first_aid",
        number_enc=runtime.crypto.encrypt("FA-1234", purpose="certificate.number"),
        expires_on=date.today() + timedelta(days=365),
    )
    provider = await Provider.create(
        district=city.east, name="Care Co", services=["cleaning"], prices={}, capacity_per_day=5
    )
    requested = await booking(client, city, BookingState.requested)
    accepted = await booking(client, city, BookingState.accepted, city["volunteer"])
    offered = await booking(client, city, BookingState.offered)
    offer = await Offer.create(
        booking=offered,
        district_id=east.id,
        helper=city["volunteer"].user,
        state=OfferState.open,
        deadline=datetime.now(UTC) + timedelta(minutes=5),
        planned_start=offered.window_start,
        created_at=datetime.now(UTC),
    )
    series = await weekly_series(client, city)
    emergency = await client.post(
        "/api/v1/requests",
        json=request(city, service="emergency"),
        headers=city["elder"].headers,
    )
    assert emergency.status_code == 201, emergency.text
    emergency_booking = emergency.json()["bookings"][0]["id"]
    call = await EmergencyCall.get(booking_id=emergency_booking)
    visit = await VisitRecord.create(
        elder_id=city["elder"].user.id,
        district_id=east.id,
        visitor_id=city["volunteer"].user.id,
        method="phone",
        visited_at=datetime.now(UTC) - timedelta(days=1),
        record_enc=runtime.crypto.encrypt('{"health": "ok"}', purpose="visit.record"),
        created_by_id=city["volunteer"].user.id,
    )
    ledger = runtime.ledger
    if ledger.background is not None:  # no checkpoint signed behind the test's back
        ledger.background.cancel()
        ledger.background = None
    entry = await ledger.deposit(
        volunteer_id=city["volunteer"].user.id,
        minutes=30,
        entry_id="deposit:scope-test",
        actor="test",
        category="visit",
    )
    await checkpoints.checkpoint_all(ledger, force=True)
    ids = {
        "east": str(city.east.id),
        "community": str(east.id),
        "elder": str(city["elder"].user.id),
        "family_user": str(city["family"].user.id),
        "volunteer": str(city["volunteer"].user.id),
        "provider_staff": str(city["provider_staff"].user.id),
        "pending_link": str(pending_link.id),
        "pending_volunteer": str(pending.id),
        "certificate": str(certificate.id),
        "provider": str(provider.id),
        "booking": str(requested.id),
        "accepted": str(accepted.id),
        "offer": str(offer.id),
        "series": series["id"],
        "series_day": series["occurrences"][1]["window_start"][:10],
        "emergency": str(call.id),
        "emergency_booking": emergency_booking,
        "visit": str(visit.id),
        "entry": entry.id,
    }
    return World(actors, ids)


def request(city: City, **overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(minutes=5)
    body: dict[str, Any] = {
        "elder_id": str(city["elder"].user.id),
        "service": "cleaning",
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(minutes=40)).isoformat(),
        "duration_minutes": 5,
        "payment": "public",
    }
    body.update(overrides)
    return body


async def weekly_series(client: httpx.AsyncClient, city: City) -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(minutes=5)
    until = (start + timedelta(days=14)).date().isoformat()
    body = request(city, recurrence={"weekdays": [start.weekday()], "until": until})
    response = await client.post("/api/v1/requests", json=body, headers=city["family"].headers)
    assert response.status_code == 201, response.text
    series_id = response.json()["bookings"][0]["series_id"]
    response = await client.get(f"/api/v1/series/{series_id}", headers=city["family"].headers)
    assert response.status_code == 200, response.text
    return response.json()["series"]  # type: ignore[no-any-return]


@pytest.fixture
async def world(client: httpx.AsyncClient, runtime: Runtime, city: City) -> World:
    return await build_world(client, runtime, city)


async def call(
    client: httpx.AsyncClient, case: Scope, actor: Actor, ids: dict[str, str]
) -> httpx.Response:
    path = (case.path + case.query).format(**ids)
    if case.method == "GET":
        return await client.get(path, headers=actor.headers)
    body = case.body(ids) if callable(case.body) else case.body
    return await client.post(path, json=body, headers=actor.headers)


@pytest.mark.parametrize("case", ALL_SCOPE, ids=[f"{s.method} {s.route}" for s in ALL_SCOPE])
async def test_strangers_are_refused_and_the_entitled_pass(
    client: httpx.AsyncClient, world: World, case: Scope
) -> None:
    before = await snapshot()
    wrong = []
    for name in case.outsiders:
        response = await call(client, case, world.actors[name], world.ids)
        if response.status_code != 403:
            wrong.append(f"{name}: {response.status_code} {response.text[:160]}")
        else:
            assert response.json()["error"]["code"]
    assert wrong == []
    assert changed(before, await snapshot()) == []
    # The same request by the one entitled gets past the scope check (it may still meet a
    # state rule, 409, or a business rule, 422): the refusals above were about scope.
    response = await call(client, case, world.actors[case.insider], world.ids)
    assert response.status_code not in (401, 403, 404), response.text


class TestElderRecordScope:
    async def test_linked_family_sees_phone_and_address_not_health(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        response = await client.get(
            f"/api/v1/elders/{world.ids['elder']}", headers=world.actors["family"].headers
        )
        assert response.status_code == 200
        assert set(response.json()["elder"]["sensitive"]) == {"phone", "address"}
        log = await AccessLog.get(actor_id=world.actors["family"].user.id)
        assert log.fields_read == ["phone", "address"]

    async def test_elder_reads_own_record_without_log(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        elder = world.actors["elder"]
        response = await client.get(f"/api/v1/elders/{elder.user.id}", headers=elder.headers)
        assert response.json()["elder"]["sensitive"]["phone"] == elder.phone
        assert await AccessLog.all().count() == 0


async def test_a_new_staff_account_only_in_the_admins_district(
    client: httpx.AsyncClient, city: City
) -> None:
    before = await snapshot()
    body = {
        "phone": next_phone(),
        "password": "strong pass 9",
        "name": "Auditor",
        "role": "auditor",
        "district_id": str(city.east.id),
    }
    response = await client.post("/api/v1/staff", json=body, headers=city.west_admin.headers)
    assert response.status_code == 403
    assert changed(before, await snapshot()) == []
    response = await client.post("/api/v1/staff", json=body, headers=city["centre_admin"].headers)
    assert response.status_code == 201


async def test_a_provider_only_in_the_admins_district(
    client: httpx.AsyncClient, city: City
) -> None:
    before = await snapshot()
    body = {
        "name": "Meals Ltd",
        "district_id": str(city.east.id),
        "services": ["meal"],
        "prices_fen": {"meal": 1500},
        "capacity_per_day": 100,
    }
    response = await client.post("/api/v1/providers", json=body, headers=city.west_admin.headers)
    assert response.status_code == 403
    response = await client.post(
        "/api/v1/districts",
        json={"code": "east-s2", "name": "Second", "parent_id": str(city.east.id)},
        headers=city.west_admin.headers,
    )
    assert response.status_code == 403
    assert changed(before, await snapshot()) == []
