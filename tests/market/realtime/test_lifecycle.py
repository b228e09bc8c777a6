"""A booking's whole lifecycle, driven through the HTTP API, seen live by every party: from the
request through the service to confirmation, settlement and the elder's rating.

The elder and the linked family member (elder stream), the helper (own stream: the offer, then
the booking once assigned) and the district's centre admin (admin feed) each see the changes
on their own streams; a centre admin of another district sees nothing.
"""

from __future__ import annotations

import pytest

from market.realtime.client import RealtimeClient
from market.realtime.events import Event
from tests.market.bookings.world import completed_booking, neighbourhood, post
from tests.market.conftest import City
from tests.market.realtime.conftest import Live
from tests.market.realtime.helpers import quiet


async def until_state(client: RealtimeClient, booking_id: str, state: str) -> list[Event]:
    """Events of this connection up to the booking's change to `state`."""
    seen: list[Event] = []
    async for item in client:
        assert isinstance(item, Event), item
        seen.append(item)
        payload = item.payload
        if payload.get("booking_id") == booking_id and payload.get("state") == state:
            return seen
    raise AssertionError(f"the connection ended before the booking was {state}")


def states(events: list[Event], booking_id: str) -> list[str]:
    return [
        e.payload["state"]
        for e in events
        if e.kind == "booking.state" and e.payload.get("booking_id") == booking_id
    ]


class TestBookingLifecycle:
    @pytest.fixture
    def realtime_overrides(self) -> dict[str, object]:
        return {"matching_enabled": False}  # the test runs the matching round itself

    async def test_every_party_sees_the_lifecycle_on_its_own_streams(
        self, live: Live, city: City
    ) -> None:
        await neighbourhood(city)
        parties = {
            "elder": city["elder"],
            "family": city["family"],
            "helper": city["volunteer"],
            "admin": city["centre_admin"],
            "west_admin": city.west_admin,
        }
        clients = {name: RealtimeClient(live.ws_url, a.token) for name, a in parties.items()}
        for client in clients.values():
            await client.__aenter__()
        try:
            booking = await completed_booking(live.http, city)
            base = f"/api/v1/bookings/{booking['id']}"
            confirmed = await post(live.http, city["family"], f"{base}/confirm")
            assert confirmed.status_code == 200, confirmed.text
            rated = await post(live.http, city["elder"], f"{base}/rate", {"stars": 5})
            assert rated.status_code == 200, rated.text
            seen = {
                name: await until_state(clients[name], booking["id"], "rated")
                for name in ("elder", "family", "helper", "admin")
            }
            assert await quiet(clients["west_admin"], 0.5) == []
        finally:
            for client in clients.values():
                await client.close()
        whole = states(seen["elder"], booking["id"])
        assert whole[0] == "requested" and whole[-1] == "rated"
        assert {"accepted", "in_service", "completed", "confirmed", "settled"} <= set(whole)
        assert states(seen["family"], booking["id"]) == whole
        assert states(seen["admin"], booking["id"]) == whole
        # The helper hears of the booking by its offer, then follows it once assigned.
        helper_kinds = [e.kind for e in seen["helper"]]
        assert "offer.new" in helper_kinds
        helper_states = states(seen["helper"], booking["id"])
        assert helper_states == whole[whole.index(helper_states[0]) :]
        assert "requested" not in helper_states
        # Everyone received each event once, in seq order per stream.
        for name, events in seen.items():
            for stream in {e.stream for e in events}:
                seqs = [e.seq for e in events if e.stream == stream]
                assert seqs == sorted(set(seqs)), name
