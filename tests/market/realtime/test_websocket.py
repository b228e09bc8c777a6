"""The websocket endpoint on a real uvicorn: auth, rights, bad frames, resume, flow control."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from market.models import FamilyLink, LinkStatus
from market.realtime.client import (
    AuthenticationFailed,
    ProtocolRefused,
    RealtimeClient,
    Reset,
)
from market.realtime.events import Event, admin_stream, elder_stream, user_stream
from market.realtime.retention import purge_events
from market.realtime.session import Session
from tests.market.conftest import Actor, City
from tests.market.realtime.conftest import Live
from tests.market.realtime.helpers import (
    StalledClient,
    collect,
    publish,
    publish_many,
    quiet,
    until,
)


def client_for(live: Live, actor: Actor, **options: Any) -> RealtimeClient:
    return RealtimeClient(live.ws_url, actor.token, **options)


async def raw(live: Live, actor: Actor | None = None, **options: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {actor.token}"} if actor else None
    return await connect(live.ws_url, additional_headers=headers, **options)


async def next_frame(ws: ClientConnection, kind: str, within: float = 5.0) -> dict[str, Any]:
    """The next frame of type `kind`, skipping pings and the welcome."""
    async with asyncio.timeout(within):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame
            assert frame["type"] in ("ping", "welcome"), frame


async def closed_with(ws: ClientConnection, within: float = 10.0) -> tuple[int, str]:
    async with asyncio.timeout(within):
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await ws.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


def seqs(items: list[Event | Reset]) -> list[int]:
    return [item.seq for item in items if isinstance(item, Event)]


class TestAuthentication:
    async def test_invalid_token_closes_with_4401(self, live: Live) -> None:
        client = RealtimeClient(live.ws_url, "not-a-token")
        with pytest.raises(AuthenticationFailed, match="token_invalid"):
            await client.__aenter__()
        assert client.closes[-1].code == 4401

    async def test_expired_token_closes_with_4401(self, live: Live, city: City) -> None:
        elder = city["elder"]
        token, _ = live.runtime.tokens.issue(
            elder.user.id,
            "elder",
            now=datetime.now(UTC) - timedelta(hours=2),
            ttl=timedelta(hours=1),
        )
        ws = await raw(live, None)
        await ws.send(json.dumps({"type": "auth", "token": token}))
        code, reason = await closed_with(ws)
        assert (code, reason.split(":")[0]) == (4401, "token_expired")

    async def test_revoked_token_closes_with_4401(self, live: Live, city: City) -> None:
        elder = city["elder"]
        response = await live.http.post("/api/v1/auth/logout", headers=elder.headers)
        assert response.status_code in (200, 204), response.text
        ws = await raw(live, elder)
        code, reason = await closed_with(ws)
        assert (code, reason.split(":")[0]) == (4401, "token_revoked")

    async def test_first_frame_must_be_auth(self, live: Live) -> None:
        ws = await raw(live, None)
        await ws.send(json.dumps({"type": "subscribe"}))
        code, reason = await closed_with(ws)
        assert code == 4401
        assert reason.startswith("auth_required")

    async def test_bad_authorization_scheme_closes(self, live: Live) -> None:
        ws = await connect(live.ws_url, additional_headers={"Authorization": "Basic abc"})
        code, reason = await closed_with(ws)
        assert (code, reason.split(":")[0]) == (4401, "token_missing")

    async def test_auth_frame_signs_in(self, live: Live, city: City) -> None:
        elder = city["elder"]
        async with client_for(live, elder, auth="frame") as client:
            assert client.welcome["user_id"] == str(elder.user.id)
            await publish([user_stream(elder.user.id)], "hello")
            (event,) = await collect(client, 1)
        assert isinstance(event, Event) and event.kind == "hello"

    async def test_second_auth_frame_is_an_error_not_a_close(self, live: Live, city: City) -> None:
        elder = city["elder"]
        ws = await raw(live, elder)
        await next_frame(ws, "welcome")
        await ws.send(json.dumps({"type": "auth", "token": elder.token}))
        assert (await next_frame(ws, "error"))["code"] == "already_authenticated"
        await ws.close()


class TestStreamsPerRole:
    async def test_each_role_is_offered_exactly_its_streams(self, live: Live, city: City) -> None:
        elder, family, volunteer = city["elder"], city["family"], city["volunteer"]
        admin = city["centre_admin"]
        await FamilyLink.create(
            family=family.user, elder=elder.user, relation="daughter", status=LinkStatus.approved
        )
        expected = {
            "elder": [user_stream(elder.user.id), elder_stream(elder.user.id)],
            "family": [user_stream(family.user.id), elder_stream(elder.user.id)],
            "volunteer": [user_stream(volunteer.user.id)],
            "admin": [
                user_stream(admin.user.id),
                *sorted(
                    admin_stream(d.id) for d in (city.east, city.east_street, city.east_community)
                ),
            ],
        }
        actors = {"elder": elder, "family": family, "volunteer": volunteer, "admin": admin}
        for name, actor in actors.items():
            async with client_for(live, actor) as client:
                assert client.welcome["streams"] == expected[name], name
                assert sorted(client.subscribed) == sorted(expected[name]), name

    async def test_events_reach_only_those_who_may_read(self, live: Live, city: City) -> None:
        elder, family, volunteer = city["elder"], city["family"], city["volunteer"]
        admin, west_admin = city["centre_admin"], city.west_admin
        await FamilyLink.create(
            family=family.user, elder=elder.user, relation="son", status=LinkStatus.approved
        )
        clients = {
            name: client_for(live, actor)
            for name, actor in {
                "elder": elder,
                "family": family,
                "volunteer": volunteer,
                "admin": admin,
                "west_admin": west_admin,
            }.items()
        }
        for client in clients.values():
            await client.__aenter__()
        try:
            # The steps of one booking as the booking service publishes them.
            booking = {"booking": "b-1"}
            await publish([elder_stream(elder.user.id)], "booking.requested", **booking)
            await publish([admin_stream(city.east_community.id)], "booking.unmatched", **booking)
            await publish(
                [elder_stream(elder.user.id), user_stream(volunteer.user.id)],
                "booking.accepted",
                **booking,
            )
            await publish([elder_stream(elder.user.id)], "booking.completed", **booking)
            kinds = {}
            for name, count in {"elder": 3, "family": 3, "volunteer": 1, "admin": 1}.items():
                kinds[name] = [e.kind for e in await collect(clients[name], count)]  # type: ignore[union-attr]
            assert kinds == {
                "elder": ["booking.requested", "booking.accepted", "booking.completed"],
                "family": ["booking.requested", "booking.accepted", "booking.completed"],
                "volunteer": ["booking.accepted"],
                "admin": ["booking.unmatched"],
            }
            for name in ("elder", "volunteer", "admin", "west_admin"):
                assert await quiet(clients[name], 0.3) == [], name
        finally:
            for client in clients.values():
                await client.close()

    async def test_unauthorised_streams_are_refused_and_others_unharmed(
        self, live: Live, city: City
    ) -> None:
        elder, volunteer = city["elder"], city["volunteer"]
        own = user_stream(volunteer.user.id)
        foreign = [elder_stream(elder.user.id), admin_stream(city.east.id), "user:nonsense"]
        async with (
            client_for(live, elder) as watcher,
            client_for(live, volunteer, streams=[own, *foreign]) as intruder,
        ):
            assert list(intruder.subscribed) == [own]
            (error,) = intruder.errors
            assert error["code"] == "forbidden_streams"
            assert error["streams"] == foreign
            await publish([elder_stream(elder.user.id)], "booking.requested")
            await publish([own], "offer.made")
            (seen_by_elder,) = await collect(watcher, 1)
            (seen_by_volunteer,) = await collect(intruder, 1)
            assert isinstance(seen_by_elder, Event) and seen_by_elder.kind == "booking.requested"
            assert isinstance(seen_by_volunteer, Event) and seen_by_volunteer.kind == "offer.made"

    async def test_pending_family_link_gives_no_elder_stream(self, live: Live, city: City) -> None:
        elder, family = city["elder"], city["family"]
        await FamilyLink.create(family=family.user, elder=elder.user, relation="son")
        async with client_for(live, family, streams=[elder_stream(elder.user.id)]) as client:
            assert client.subscribed == {}
            assert client.errors[0]["streams"] == [elder_stream(elder.user.id)]


class TestMalformedFrames:
    BAD_FRAMES: ClassVar[list[tuple[str, str]]] = [
        ("not json", "malformed_frame"),
        ("[1, 2]", "malformed_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe", "streams": "user:x"}', "malformed_frame"),
        ('{"type": "subscribe", "resume": {"user:x": -1}}', "malformed_frame"),
        ('{"type": "subscribe", "resume": {"user:x": true}}', "malformed_frame"),
        ('{"type": "subscribe", "streams": [], "resume": {"user:x": 1}}', "malformed_frame"),
        ('{"type": "ping", "extra": 1}', "malformed_frame"),
        ('{"type": "ping", "type": "ping"}', "malformed_frame"),
        ('{"type": "unsubscribe"}', "malformed_frame"),
        ("x" * 40_000, "frame_too_large"),
    ]

    async def test_each_bad_frame_gets_its_error_and_the_connection_lives(
        self, live: Live, city: City
    ) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        for frame, code in self.BAD_FRAMES:
            ws = await raw(live, elder)
            await ws.send(json.dumps({"type": "subscribe", "streams": [stream]}))
            await next_frame(ws, "subscribed")
            await ws.send(frame)
            assert (await next_frame(ws, "error"))["code"] == code, frame[:60]
            await publish([stream], "after.bad.frame")
            assert (await next_frame(ws, "event"))["kind"] == "after.bad.frame"
            await ws.close()

    async def test_binary_frame_is_refused(self, live: Live, city: City) -> None:
        ws = await raw(live, city["elder"])
        await next_frame(ws, "welcome")
        await ws.send(b'{"type": "ping"}')
        assert (await next_frame(ws, "error"))["code"] == "malformed_frame"
        await ws.close()

    async def test_too_many_bad_frames_close_with_4400_only_that_connection(
        self, live: Live, city: City
    ) -> None:
        elder = city["elder"]
        async with client_for(live, elder) as bystander:
            ws = await raw(live, city["volunteer"])
            await next_frame(ws, "welcome")
            for _ in range(6):
                await ws.send("{")
            code, reason = await closed_with(ws)
            assert code == 4400 and reason.startswith("malformed")
            await publish([user_stream(elder.user.id)], "still.here")
            (event,) = await collect(bystander, 1)
            assert isinstance(event, Event) and event.kind == "still.here"

    async def test_client_library_reports_protocol_refusal(self, live: Live, city: City) -> None:
        async with client_for(live, city["elder"]) as client:
            for _ in range(6):
                await client.send_raw("nope")
            with pytest.raises(ProtocolRefused):
                await collect(client, 1)


class TestResume:
    async def test_resume_replays_missed_events_then_goes_live(
        self, live: Live, city: City
    ) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        await publish_many(stream, 5)
        async with client_for(live, elder, streams=[stream], resume={stream: 2}) as client:
            replayed = await collect(client, 3)
            await publish_many(stream, 2)
            live_items = await collect(client, 2)
        assert seqs(replayed) == [3, 4, 5]
        assert seqs(live_items) == [6, 7]

    async def test_disconnect_mid_burst_then_resume_sees_each_event_once_in_order(
        self, live: Live, city: City
    ) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        total = 120
        async with client_for(live, elder, streams=[stream]) as client:
            publisher = asyncio.create_task(publish_many(stream, total))
            received: list[Event | Reset] = []
            cuts = [20, 50, 80]
            cut: list[object] = []  # the connections already cut (kept: ids may be reused)
            async with asyncio.timeout(30):
                async for item in client:
                    received.append(item)
                    ws = client._ws
                    # Frames already buffered may still arrive from a connection we cut: cut
                    # each connection once, and the next one only when it is a new one.
                    if cuts and len(received) >= cuts[0] and ws is not None and ws not in cut:
                        ws.transport.abort()  # the TCP connection dies under the client
                        cut.append(ws)
                        cuts.pop(0)
                    if len(received) == total:
                        break
            await publisher
        # The last cut may come when the rest is already buffered: at least two resumes.
        assert not cuts and client.connects >= 3
        assert seqs(received) == list(range(1, total + 1))
        assert len({e.id for e in received if isinstance(e, Event)}) == total

    async def test_too_far_behind_gets_a_reset(self, live: Live, city: City) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        await publish_many(stream, 205)  # replay limit is 200 in these tests
        async with client_for(live, elder, streams=[stream], resume={stream: 1}) as client:
            (reset,) = await collect(client, 1)
            await publish([stream], "after")
            (event,) = await collect(client, 1)
        assert reset == Reset(stream, 205, "too_far_behind")
        assert isinstance(event, Event) and event.seq == 206

    async def test_purged_position_gets_a_reset(self, live: Live, city: City) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        await publish_many(stream, 4)
        assert await purge_events(older_than=datetime.now(UTC) + timedelta(seconds=1)) >= 4
        await publish_many(stream, 1)
        async with client_for(live, elder, streams=[stream], resume={stream: 2}) as client:
            (reset,) = await collect(client, 1)
        assert reset == Reset(stream, 5, "purged")

    async def test_position_ahead_of_the_log_gets_a_reset(self, live: Live, city: City) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        await publish_many(stream, 2)
        async with client_for(live, elder, streams=[stream], resume={stream: 9}) as client:
            (reset,) = await collect(client, 1)
        assert reset == Reset(stream, 2, "ahead_of_log")

    async def test_up_to_date_resume_replays_nothing(self, live: Live, city: City) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        await publish_many(stream, 3)
        async with client_for(live, elder, streams=[stream], resume={stream: 3}) as client:
            assert await quiet(client, 0.3) == []
            await publish([stream], "next")
            (event,) = await collect(client, 1)
        assert isinstance(event, Event) and event.seq == 4

    async def test_unsubscribe_stops_delivery(self, live: Live, city: City) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        ws = await raw(live, elder)
        await ws.send(json.dumps({"type": "subscribe", "streams": [stream]}))
        await next_frame(ws, "subscribed")
        await ws.send(json.dumps({"type": "unsubscribe", "streams": [stream]}))
        assert (await next_frame(ws, "unsubscribed"))["streams"] == [stream]
        await publish([stream], "unseen")
        await ws.send(json.dumps({"type": "ping"}))
        await next_frame(ws, "pong")  # an event would have failed next_frame
        await ws.close()


class TestHeartbeats:
    @pytest.fixture
    def realtime_overrides(self) -> dict[str, object]:
        return {"realtime_idle_timeout_seconds": 2}

    async def test_server_sends_pings_and_pongs(self, live: Live, city: City) -> None:
        ws = await raw(live, city["elder"])
        await next_frame(ws, "welcome")
        assert json.loads(await asyncio.wait_for(ws.recv(), 3)) == {"type": "ping"}
        await ws.send(json.dumps({"type": "ping"}))
        await next_frame(ws, "pong")
        await ws.close()

    async def test_silent_client_is_closed_for_idleness(self, live: Live, city: City) -> None:
        ws = await raw(live, city["elder"])
        code, reason = await closed_with(ws)
        assert (code, reason.split(":")[0]) == (4410, "idle_timeout")

    async def test_answering_pings_keeps_the_connection(self, live: Live, city: City) -> None:
        elder = city["elder"]
        async with client_for(live, elder) as client:
            assert await quiet(client, 3.0) == []  # the client answers the pings meanwhile
            await publish([user_stream(elder.user.id)], "still.open")
            (event,) = await collect(client, 1)
        assert isinstance(event, Event) and client.connects == 1


class TestSlowConsumer:
    @pytest.fixture
    def realtime_overrides(self) -> dict[str, object]:
        return {
            "realtime_queue_size": 8,
            "realtime_idle_timeout_seconds": 60,
            "realtime_replay_limit": 1000,
        }

    async def test_slow_client_is_closed_with_4408_then_resumes(
        self, live: Live, city: City
    ) -> None:
        elder = city["elder"]
        stream = user_stream(elder.user.id)
        hub = live.runtime.realtime.hub
        # Blocking socket calls run in a thread: the server shares this event loop.
        stalled = await asyncio.to_thread(StalledClient, live.port, elder.token)
        try:
            stalled.send_text(json.dumps({"type": "subscribe", "streams": [stream]}))
            await until(lambda: hub.subscriber_count(stream) == 1)
            pad = "x" * 15_000
            total = 0
            # Publish until the server gives up on the client (bounded: the kernel buffers of a
            # connection that is not read hold well under 1,000 such events).
            while hub.subscriber_count(stream) == 1 and total < 1000:
                await publish([stream], "bulky", n=total, pad=pad)
                total += 1
            await until(lambda: hub.subscriber_count(stream) == 0)
            code, reason, texts = await asyncio.to_thread(stalled.read_until_close)
        finally:
            stalled.close()
        assert (code, reason.split(":")[0]) == (4408, "slow_consumer")
        assert 0 < texts < total + 2  # what the buffers held before the queue overflowed
        async with client_for(live, elder, streams=[stream], resume={stream: 0}) as client:
            items = await collect(client, total, within=20)
        assert seqs(items) == list(range(1, total + 1))


class TestRightsChangeDuringAConnection:
    async def test_signing_out_closes_the_open_connection(self, live: Live, city: City) -> None:
        elder = city["elder"]
        async with client_for(live, elder) as client:
            response = await live.http.post("/api/v1/auth/logout", headers=elder.headers)
            assert response.status_code in (200, 204), response.text
            with pytest.raises(AuthenticationFailed, match="token_revoked"):
                await collect(client, 1)  # rights are re-read within 4.5 heartbeats (4.5 s here)

    async def test_revoked_family_link_stops_the_elder_stream(self, live: Live, city: City) -> None:
        elder, family = city["elder"], city["family"]
        link = await FamilyLink.create(
            family=family.user, elder=elder.user, relation="son", status=LinkStatus.approved
        )
        mother = elder_stream(elder.user.id)
        async with client_for(live, family) as client:
            assert mother in client.subscribed
            await FamilyLink.filter(id=link.id).update(status=LinkStatus.revoked)
            async with asyncio.timeout(8):
                while not client.errors:
                    await quiet(client, 0.5)
            (error,) = client.errors
            assert (error["code"], error["streams"]) == ("streams_revoked", [mother])
            await publish([mother], "after.revocation")
            await publish([user_stream(family.user.id)], "own.news")
            (event,) = await collect(client, 1)
        assert isinstance(event, Event) and event.kind == "own.news"


def test_rights_rechecks_are_spread_around_three_heartbeats() -> None:
    # A reconnect wave must not re-read everyone's rights in the same second.
    session = SimpleNamespace(config=SimpleNamespace(heartbeat_seconds=20.0))
    periods = [Session._check_period(session) for _ in range(200)]  # type: ignore[arg-type]
    assert all(30.0 <= p <= 90.0 for p in periods)
    assert max(periods) - min(periods) > 30.0
