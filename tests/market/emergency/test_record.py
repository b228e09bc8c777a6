"""The call record: opened by the fan-out, acknowledged by the winning accept, steps in order."""

from __future__ import annotations

import httpx

from market.emergency.models import AckVia, CallState, EmergencyCall, EmergencyStep, StepKind
from market.models import Offer
from market.realtime.events import admin_stream, elder_stream, read_stream
from tests.market.bookings.world import book, neighbourhood, post
from tests.market.conftest import City


async def kinds(call: EmergencyCall) -> list[str]:
    steps = await EmergencyStep.filter(call_id=call.id).order_by("seq")
    assert [s.seq for s in steps] == list(range(1, len(steps) + 1))
    return [s.kind.value for s in steps]


async def test_an_emergency_booking_opens_a_call_offered_to_the_helpers(
    client: httpx.AsyncClient, city: City
) -> None:
    await neighbourhood(city)
    booking = await book(client, city["elder"], service="emergency")
    call = await EmergencyCall.get(booking_id=booking["id"])
    assert call.state is CallState.open and call.district_id == city.east_community.id
    assert await kinds(call) == ["created", "offered"]
    offered = await EmergencyStep.get(call_id=call.id, kind=StepKind.offered)
    assert offered.detail["helpers"] == 2
    admin = [e.kind for e in await read_stream(admin_stream(city.east_community.id), 0, 100)]
    assert "emergency.opened" in admin
    family = [e.kind for e in await read_stream(elder_stream(city["elder"].user.id), 0, 100)]
    assert "emergency.opened" in family


async def test_nobody_in_reach_alerts_the_duty_feed_at_once(
    client: httpx.AsyncClient, city: City
) -> None:
    booking = await book(client, city["elder"], service="emergency")
    call = await EmergencyCall.get(booking_id=booking["id"])
    assert await kinds(call) == ["created", "no_helper_in_reach", "duty_feed"]
    events = await read_stream(admin_stream(city.east_community.id), 0, 100)
    (alert,) = [e for e in events if e.kind == "emergency.escalated"]
    assert alert.payload["step"] == "duty_feed" and alert.payload["needs_acknowledgement"]


async def test_the_winning_accept_acknowledges_the_call(
    client: httpx.AsyncClient, city: City
) -> None:
    await neighbourhood(city)
    booking = await book(client, city["elder"], service="emergency")
    offer = await Offer.get(booking_id=booking["id"], helper_id=city["volunteer"].user.id)
    response = await post(client, city["volunteer"], f"/api/v1/offers/{offer.id}/accept")
    assert response.status_code == 200, response.text
    call = await EmergencyCall.get(booking_id=booking["id"])
    assert call.state is CallState.acknowledged and call.acknowledged_via is AckVia.accept
    assert call.acknowledged_by_id == city["volunteer"].user.id
    assert await kinds(call) == ["created", "offered", "acknowledged"]


async def test_the_elder_side_follows_every_step_live_without_anyones_id(
    client: httpx.AsyncClient, city: City
) -> None:
    """Every `emergency.*` event goes to the elder's stream too (the family's page lists the
    steps live), carrying the call's and booking's ids only."""
    await neighbourhood(city)
    booking = await book(client, city["elder"], service="emergency")
    call = await EmergencyCall.get(booking_id=booking["id"])
    acknowledged = await post(
        client, city["centre_admin"], f"/api/v1/emergencies/{call.id}/acknowledgement"
    )
    assert acknowledged.status_code == 201
    admin = await read_stream(admin_stream(city.east_community.id), 0, 100)
    family = await read_stream(elder_stream(city["elder"].user.id), 0, 100)
    emergency_kinds = ["emergency.opened", "emergency.acknowledged"]
    for events in (admin, family):
        mine = [e for e in events if e.kind.startswith("emergency.")]
        assert [e.kind for e in mine] == emergency_kinds
        for event in mine:
            ids = {event.payload["emergency_id"], event.payload["booking_id"]}
            assert ids == {str(call.id), booking["id"]}
            text = str(event.payload)
            for person in ("volunteer", "provider_staff", "centre_admin", "elder"):
                assert str(city[person].user.id) not in text


async def test_the_duty_feed_alert_reaches_the_elder_side_too(
    client: httpx.AsyncClient, city: City
) -> None:
    booking = await book(client, city["elder"], service="emergency")
    events = await read_stream(elder_stream(city["elder"].user.id), 0, 100)
    (alert,) = [e for e in events if e.kind == "emergency.escalated"]
    assert alert.payload["booking_id"] == booking["id"] and alert.payload["step"] == "duty_feed"
