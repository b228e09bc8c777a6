"""Emergencies skip the batch: the best k helpers and the centre at once; one accept wins."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from market.models import Booking, Offer, OfferState, Role
from market.realtime.events import admin_stream, read_stream, user_stream
from market.services.runtime import Runtime
from tests.market.bookings.world import book, neighbourhood, place_helper, post, set_policy
from tests.market.conftest import Actor, City, make_actor

FANOUT = 50


@pytest.fixture
async def crowd(client: httpx.AsyncClient, runtime: Runtime, city: City) -> list[Actor]:
    await neighbourhood(city)
    await set_policy(city, emergency_fanout=FANOUT)
    # The city's own two helpers move out of reach: exactly these fifty are offered the call.
    for role in ("volunteer", "provider_staff"):
        await place_helper(city[role], lat=31.0, lon=121.0)
    helpers = []
    for i in range(FANOUT):
        actor = await make_actor(client, runtime, Role.volunteer, city.east_community)
        await place_helper(actor, lat=30.0 + 0.00005 * (i + 1), lon=120.0)
        helpers.append(actor)
    return helpers


class TestEmergency:
    async def test_fifty_concurrent_accepts_one_winner(
        self, client: httpx.AsyncClient, city: City, crowd: list[Actor]
    ) -> None:
        booking = await book(client, city["elder"], service="emergency")
        offers = await Offer.filter(booking_id=booking["id"]).order_by("id")
        assert len(offers) == FANOUT
        assert await Booking.get(id=booking["id"]).values_list("state", flat=True) == "offered"
        by_helper = {o.helper_id: o for o in offers}  # type: ignore[attr-defined]
        assert set(by_helper) == {a.user.id for a in crowd}

        async def accept(actor: Actor) -> httpx.Response:
            offer = by_helper[actor.user.id]
            return await post(client, actor, f"/api/v1/offers/{offer.id}/accept")

        responses = await asyncio.gather(*(accept(a) for a in crowd))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200] + [409] * (FANOUT - 1)
        losers = [r for r in responses if r.status_code == 409]
        assert {r.json()["error"]["code"] for r in losers} == {"offer.taken"}
        winner = next(a for a, r in zip(crowd, responses, strict=True) if r.status_code == 200)
        row = await Booking.get(id=booking["id"])
        assert row.state.value == "accepted" and row.helper_id == winner.user.id  # type: ignore[attr-defined]
        states = sorted(o.state.value for o in await Offer.filter(booking_id=row.id))
        assert states == ["accepted"] + ["withdrawn"] * (FANOUT - 1)
        # The others are told on their own stream.
        loser = next(a for a in crowd if a is not winner)
        kinds = [e.kind for e in await read_stream(user_stream(loser.user.id), 0, 100)]
        assert kinds == ["offer.new", "offer.withdrawn"]

    async def test_the_centre_is_alerted_at_once(
        self, client: httpx.AsyncClient, city: City, crowd: list[Actor]
    ) -> None:
        booking = await book(client, city["elder"], service="emergency")
        events = await read_stream(admin_stream(city.east_community.id), 0, 100)
        alerts = [e for e in events if e.kind == "booking.emergency"]
        assert len(alerts) == 1
        assert alerts[0].payload["booking_id"] == booking["id"]
        assert len(alerts[0].payload["offered_to"]) == FANOUT

    async def test_nobody_in_reach_escalates_to_the_centre(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        booking = await book(client, city["elder"], service="emergency")
        assert await Offer.filter(booking_id=booking["id"]).count() == 0
        row = await Booking.get(id=booking["id"])
        assert row.state.value == "escalated"

    async def test_a_late_accept_after_the_winner_is_told_taken(
        self, client: httpx.AsyncClient, city: City, crowd: list[Actor]
    ) -> None:
        booking = await book(client, city["elder"], service="emergency")
        offers = {o.helper_id: o for o in await Offer.filter(booking_id=booking["id"])}  # type: ignore[attr-defined]
        first, second = crowd[0], crowd[1]
        ok = await post(client, first, f"/api/v1/offers/{offers[first.user.id].id}/accept")
        assert ok.status_code == 200
        late = await post(client, second, f"/api/v1/offers/{offers[second.user.id].id}/accept")
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "offer.taken"
        assert (await Offer.get(id=offers[second.user.id].id)).state is OfferState.withdrawn
