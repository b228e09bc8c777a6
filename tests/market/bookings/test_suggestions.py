"""`GET /api/v1/bookings/{id}/suggestions`: the matcher's best helpers for the centre's queue,
each one dispatchable; and `GET /api/v1/ledger/gift-recipients`."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from market import policy as rules
from market.models import DistrictPolicy, FamilyLink, LinkStatus, Role
from tests.market.bookings.world import (
    book,
    neighbourhood,
    now,
    offer_for,
    post,
    run_round,
    snapshot,
    state_of,
)
from tests.market.conftest import City, make_actor

RECIPIENTS = "/api/v1/ledger/gift-recipients"


@pytest.fixture
async def town(client: httpx.AsyncClient, city: City) -> City:
    return await neighbourhood(city)


def path(booking_id: str, query: str = "") -> str:
    return f"/api/v1/bookings/{booking_id}/suggestions{query}"


async def suggest(
    client: httpx.AsyncClient, town: City, booking_id: str, query: str = ""
) -> dict[str, Any]:
    response = await client.get(path(booking_id, query), headers=town["centre_admin"].headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class TestSuggestions:
    async def test_the_nearest_able_helpers_come_first_with_names_and_travel(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        body = await suggest(client, town, booking["id"])
        assert (body["booking_id"], body["state"], body["window_open"]) == (
            booking["id"],
            "requested",
            True,
        )
        helpers = body["suggestions"]
        # The volunteer lives next door, the provider's staff member a little further away.
        assert [s["helper_id"] for s in helpers] == [
            str(town["volunteer"].user.id),
            str(town["provider_staff"].user.id),
        ]
        assert [s["name"] for s in helpers] == [
            town["volunteer"].user.name,
            town["provider_staff"].user.name,
        ]
        assert [s["kind"] for s in helpers] == ["volunteer", "provider"]
        assert 0 < helpers[0]["travel_minutes"] <= helpers[1]["travel_minutes"]
        assert helpers[0]["cost"] <= helpers[1]["cost"]

    async def test_the_limit_keeps_the_best(self, client: httpx.AsyncClient, town: City) -> None:
        booking = await book(client, town["elder"])
        body = await suggest(client, town, booking["id"], "?limit=1")
        assert [s["helper_id"] for s in body["suggestions"]] == [str(town["volunteer"].user.id)]

    async def test_a_suggestion_can_be_dispatched_as_it_is(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        best = (await suggest(client, town, booking["id"]))["suggestions"][0]
        response = await post(
            client,
            town["centre_admin"],
            f"/api/v1/bookings/{booking['id']}/dispatch",
            {"helper_id": best["helper_id"], "reason": "suggested"},
        )
        assert response.status_code == 201, response.text
        assert await state_of(booking["id"]) == "offered"
        assert (await offer_for(client, town["volunteer"], booking["id"]))["state"] == "open"

    async def test_a_helper_who_declined_is_not_suggested_again(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        assert await run_round() == 1
        offer = await offer_for(client, town["volunteer"], booking["id"])
        await post(client, town["volunteer"], f"/api/v1/offers/{offer['id']}/decline")
        assert await state_of(booking["id"]) == "requested"
        body = await suggest(client, town, booking["id"])
        assert [s["helper_id"] for s in body["suggestions"]] == [
            str(town["provider_staff"].user.id)
        ]

    async def test_a_helper_the_elder_blocked_is_not_suggested(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        lists = f"/api/v1/elders/{town['elder'].user.id}/helper-lists"
        blocked = {"helper_id": str(town["volunteer"].user.id), "kind": "blocked"}
        assert (await post(client, town["elder"], lists, blocked)).status_code == 200
        booking = await book(client, town["elder"])
        body = await suggest(client, town, booking["id"])
        assert str(town["volunteer"].user.id) not in {s["helper_id"] for s in body["suggestions"]}

    async def test_a_window_that_can_no_longer_hold_the_service_has_no_suggestion(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        start = now() - timedelta(minutes=2)
        booking = await book(
            client,
            town["elder"],
            window_start=start.isoformat(),
            window_end=(start + timedelta(minutes=6)).isoformat(),
        )
        body = await suggest(client, town, booking["id"])
        assert (body["window_open"], body["suggestions"]) == (False, [])

    async def test_asking_writes_nothing(self, client: httpx.AsyncClient, town: City) -> None:
        booking = await book(client, town["elder"])
        before = await snapshot()
        await suggest(client, town, booking["id"])
        assert await snapshot() == before


class TestSuggestionRefusals:
    @pytest.mark.parametrize("role", ["elder", "family", "volunteer", "provider_staff", "auditor"])
    async def test_only_a_centre_admin_may_ask(
        self, client: httpx.AsyncClient, town: City, role: str
    ) -> None:
        booking = await book(client, town["elder"])
        response = await client.get(path(booking["id"]), headers=town[role].headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_forbidden"

    async def test_another_districts_admin_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        response = await client.get(path(booking["id"]), headers=town.west_admin.headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "district_forbidden"

    async def test_without_a_token_it_is_401(self, client: httpx.AsyncClient, town: City) -> None:
        booking = await book(client, town["elder"])
        assert (await client.get(path(booking["id"]))).status_code == 401

    async def test_an_unknown_booking_is_404(self, client: httpx.AsyncClient, town: City) -> None:
        response = await client.get(path(str(uuid.uuid4())), headers=town["centre_admin"].headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "booking_not_found"

    @pytest.mark.parametrize(
        ("query", "field"),
        [("?limit=0", "limit"), ("?limit=11", "limit"), ("?limit=x", "limit"), ("?k=1", "k")],
    )
    async def test_a_bad_query_is_422(
        self, client: httpx.AsyncClient, town: City, query: str, field: str
    ) -> None:
        booking = await book(client, town["elder"])
        response = await client.get(
            path(booking["id"], query), headers=town["centre_admin"].headers
        )
        assert response.status_code == 422
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]

    async def test_a_bad_id_is_422(self, client: httpx.AsyncClient, town: City) -> None:
        response = await client.get(path("not-a-uuid"), headers=town["centre_admin"].headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_id"

    async def test_a_booking_the_centre_cannot_dispatch_is_409(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        assert await run_round() == 1
        response = await client.get(path(booking["id"]), headers=town["centre_admin"].headers)
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "booking.wrong_state"
        assert error["details"]["state"] == "offered"


async def recipients(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(RECIPIENTS, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


class TestGiftRecipients:
    async def test_the_family_member_is_offered_the_linked_parent(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        body = await recipients(client, town["family"].headers)
        assert body["relatives"] == [
            {
                "user_id": str(town["elder"].user.id),
                "name": town["elder"].user.name,
                "relation": "parent",
                "gift_allowed": True,
            }
        ]

    async def test_the_elder_is_offered_the_linked_child(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        body = await recipients(client, town["elder"].headers)
        assert [(r["user_id"], r["relation"]) for r in body["relatives"]] == [
            (str(town["family"].user.id), "child")
        ]

    async def test_pending_links_and_strangers_are_not_offered(
        self, client: httpx.AsyncClient, town: City, runtime: Any
    ) -> None:
        other = await make_actor(client, runtime, Role.elder, town.east_community)
        await FamilyLink.create(family=town["family"].user, elder=other.user, relation="child")
        body = await recipients(client, town["family"].headers)
        assert [r["user_id"] for r in body["relatives"]] == [str(town["elder"].user.id)]
        assert (await recipients(client, other.headers))["relatives"] == []

    async def test_a_relation_the_policy_excludes_is_listed_but_not_allowed(
        self, client: httpx.AsyncClient, town: City, runtime: Any
    ) -> None:
        sibling = await make_actor(client, runtime, Role.elder, town.east_community)
        await FamilyLink.create(
            family=town["family"].user,
            elder=sibling.user,
            relation="sibling",
            status=LinkStatus.approved,
        )
        body = await recipients(client, town["family"].headers)
        # Allowed relatives first; a sibling is not among the default gift recipients.
        assert [(r["user_id"], r["relation"], r["gift_allowed"]) for r in body["relatives"]] == [
            (str(town["elder"].user.id), "parent", True),
            (str(sibling.user.id), "sibling", False),
        ]

    async def test_the_policy_in_force_decides(self, client: httpx.AsyncClient, town: City) -> None:
        policy = dataclasses.replace(
            rules.DEFAULT_POLICY,
            time_bank=dataclasses.replace(
                rules.DEFAULT_POLICY.time_bank,
                gift_recipients=frozenset({rules.RelationKind.SPOUSE}),
            ),
        )
        await DistrictPolicy.create(
            district=town.east,
            version=1,
            effective_from=now() - timedelta(days=1),
            content=rules.policy_to_json(policy),
        )
        body = await recipients(client, town["family"].headers)
        assert body["policy_version"] == 1
        assert [r["gift_allowed"] for r in body["relatives"]] == [False]

    async def test_a_volunteer_linked_to_a_parent_is_offered_them(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        assert (await recipients(client, town["volunteer"].headers))["relatives"] == []
        await FamilyLink.create(
            family=town["volunteer"].user,
            elder=town["elder"].user,
            relation="child",
            status=LinkStatus.approved,
        )
        body = await recipients(client, town["volunteer"].headers)
        assert [(r["relation"], r["gift_allowed"]) for r in body["relatives"]] == [("parent", True)]

    @pytest.mark.parametrize("role", ["centre_admin", "auditor", "provider_staff"])
    async def test_other_roles_are_refused(
        self, client: httpx.AsyncClient, town: City, role: str
    ) -> None:
        response = await client.get(RECIPIENTS, headers=town[role].headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_forbidden"

    async def test_without_a_token_it_is_401(self, client: httpx.AsyncClient) -> None:
        assert (await client.get(RECIPIENTS)).status_code == 401
