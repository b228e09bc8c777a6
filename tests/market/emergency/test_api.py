"""The emergency API: who reads a call's record and who acknowledges it, bad input, and the
escalation timer the app's lifespan runs on its own."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import httpx
import pytest
from tortoise.exceptions import OperationalError

from market.app import create_app
from market.emergency.models import CallState, EmergencyStep, StepKind, WebhookState
from market.models import FamilyLink, LinkStatus, Offer, Role
from market.services.runtime import Runtime
from market.settings import Settings
from tests.market.bookings.world import book, neighbourhood, post, set_policy
from tests.market.conftest import City, build_city, make_actor
from tests.market.emergency.gateway import gateway_server
from tests.market.emergency.world import SECRET, emergency, kinds, reload
from tests.market.harness import LifespanApp, running


def record_path(call_id: object) -> str:
    return f"/api/v1/emergencies/{call_id}"


def ack_path(call_id: object) -> str:
    return f"/api/v1/emergencies/{call_id}/acknowledgement"


class TestReading:
    async def test_the_centre_sees_every_step_with_its_details(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await neighbourhood(city)
        booking, call = await emergency(client, city["elder"])
        response = await client.get(record_path(call.id), headers=city["centre_admin"].headers)
        assert response.status_code == 200, response.text
        record = response.json()["emergency"]
        assert record["booking_id"] == booking["id"] and record["state"] == "open"
        assert record["escalation"]["level"] == "none"
        assert record["acknowledgement"] is None
        assert [s["kind"] for s in record["steps"]] == ["created", "offered"]
        offered = record["steps"][1]["detail"]
        assert sorted(offered["helper_ids"]) == sorted(
            str(city[r].user.id) for r in ("volunteer", "provider_staff")
        )

    async def test_the_elder_and_linked_family_see_their_own_without_helper_ids(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await neighbourhood(city)  # links the family member to the elder
        booking, call = await emergency(client, city["elder"])
        for reader in ("elder", "family"):
            for path in (record_path(call.id), f"/api/v1/bookings/{booking['id']}/emergency"):
                response = await client.get(path, headers=city[reader].headers)
                assert response.status_code == 200, (reader, path, response.text)
                steps = response.json()["emergency"]["steps"]
                assert steps[1]["kind"] == "offered"
                assert steps[1]["detail"] == {"helpers": 2}

    async def test_the_elder_side_sees_a_helper_ack_but_not_which_admin_acknowledged(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await neighbourhood(city)
        _, call = await emergency(client, city["elder"])
        assert (await post(client, city["centre_admin"], ack_path(call.id))).status_code == 201
        response = await client.get(record_path(call.id), headers=city["family"].headers)
        ack = response.json()["emergency"]["acknowledgement"]
        assert ack["via"] == "centre" and ack["role"] == "centre_admin" and ack["by"] is None
        assert response.json()["emergency"]["steps"][-1]["actor_id"] is None

    async def test_the_elder_side_sees_who_acknowledged_by_role_only(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        """A helper's accept and a helper coming after the centre: the elder and family see
        the roles, never a helper's or an admin's id; the centre sees both ids."""
        await neighbourhood(city)
        for first in ("helper", "centre"):
            booking, call = await emergency(client, city["elder"])
            if first == "centre":
                assert (await post(client, city["centre_admin"], ack_path(call.id))).is_success
            offer = await Offer.get(booking_id=booking["id"], helper_id=city["volunteer"].user.id)
            accepted = await post(client, city["volunteer"], f"/api/v1/offers/{offer.id}/accept")
            assert accepted.status_code == 200, accepted.text
            expected_kinds = ["created", "offered", "acknowledged"]
            if first == "centre":
                expected_kinds.append("helper_accepted")
            for reader in ("elder", "family"):
                for path in (record_path(call.id), f"/api/v1/bookings/{booking['id']}/emergency"):
                    record = (await client.get(path, headers=city[reader].headers)).json()
                    record = record["emergency"]
                    assert [s["kind"] for s in record["steps"]] == expected_kinds
                    assert all(s["actor_id"] is None for s in record["steps"])
                    roles = [s["actor_role"] for s in record["steps"][2:]]
                    ack = record["acknowledgement"]
                    assert ack["by"] is None
                    if first == "helper":
                        assert ack["role"] == "volunteer" and ack["via"] == "accept"
                        assert roles == ["volunteer"]
                    else:
                        assert ack["role"] == "centre_admin" and ack["via"] == "centre"
                        assert roles == ["centre_admin", "volunteer"]
                    text = json.dumps(record)
                    for person in ("volunteer", "provider_staff", "centre_admin"):
                        assert str(city[person].user.id) not in text
            centre = await client.get(record_path(call.id), headers=city["centre_admin"].headers)
            steps = centre.json()["emergency"]["steps"]
            assert steps[-1]["actor_id"] == str(city["volunteer"].user.id)
            expected_by = city["volunteer" if first == "helper" else "centre_admin"].user.id
            assert centre.json()["emergency"]["acknowledgement"]["by"] == str(expected_by)

    async def test_unrelated_people_are_refused(
        self, client: httpx.AsyncClient, runtime: Runtime, city: City
    ) -> None:
        await neighbourhood(city)
        booking, call = await emergency(client, city["elder"])
        stranger = await make_actor(client, runtime, Role.family, city.east_community)
        other_elder = await make_actor(client, runtime, Role.elder, city.east_community)
        pending = await make_actor(client, runtime, Role.family, city.east_community)
        await FamilyLink.create(
            family=pending.user,
            elder=city["elder"].user,
            relation="child",
            status=LinkStatus.pending,
        )
        for actor in (stranger, other_elder, pending, city.west_admin):
            for path in (record_path(call.id), f"/api/v1/bookings/{booking['id']}/emergency"):
                response = await client.get(path, headers=actor.headers)
                assert response.status_code == 403, (actor.user.role, path)
                assert response.json()["error"]["code"] == "emergency_forbidden"

    async def test_helpers_and_auditors_may_not_read_calls(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await neighbourhood(city)
        _, call = await emergency(client, city["elder"])
        for role in ("volunteer", "provider_staff", "auditor"):
            response = await client.get(record_path(call.id), headers=city[role].headers)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "role_forbidden"

    async def test_unknown_ids_and_routine_bookings_are_404(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        routine = await book(client, city["elder"])
        admin = city["centre_admin"].headers
        for path in (record_path(uuid.uuid4()), f"/api/v1/bookings/{routine['id']}/emergency"):
            response = await client.get(path, headers=admin)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "emergency_not_found"

    async def test_a_malformed_id_is_422(self, client: httpx.AsyncClient, city: City) -> None:
        response = await client.get(record_path("not-a-uuid"), headers=city["elder"].headers)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_id"


class TestAcknowledging:
    async def test_the_centre_acknowledges_once_then_answers_with_the_standing_ack(
        self, client: httpx.AsyncClient, runtime: Runtime, city: City
    ) -> None:
        await neighbourhood(city)
        _, call = await emergency(client, city["elder"])
        street_admin = await make_actor(client, runtime, Role.centre_admin, city.east_street)
        first = await post(client, street_admin, ack_path(call.id), {"handling": True})
        assert first.status_code == 201 and first.json()["acknowledged_now"] is True
        again = await post(client, city["centre_admin"], ack_path(call.id), {"handling": False})
        assert again.status_code == 200 and again.json()["acknowledged_now"] is False
        ack = again.json()["emergency"]["acknowledgement"]
        assert ack["by"] == str(street_admin.user.id) and ack["handling"] is True
        row = await reload(call)
        assert row.state is CallState.acknowledged and row.handling
        assert await kinds(call) == ["created", "offered", "acknowledged"]

    async def test_another_districts_admin_may_not_acknowledge(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await neighbourhood(city)
        _, call = await emergency(client, city["elder"])
        response = await post(client, city.west_admin, ack_path(call.id))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "district_forbidden"
        assert (await reload(call)).state is CallState.open
        assert await kinds(call) == ["created", "offered"]

    async def test_only_centre_admins_acknowledge_by_this_endpoint(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await neighbourhood(city)
        _, call = await emergency(client, city["elder"])
        for role in ("elder", "family", "volunteer", "provider_staff", "auditor"):
            response = await post(client, city[role], ack_path(call.id))
            assert response.status_code == 403, role
        assert (await reload(call)).state is CallState.open

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"handling": "yes"}, "handling"),
            ({"handling": 1}, "handling"),
            ({"handling": None}, "handling"),
            ({"note": "on my way"}, "note"),
        ],
    )
    async def test_bad_bodies_are_422_and_acknowledge_nothing(
        self, client: httpx.AsyncClient, city: City, body: dict[str, object], field: str
    ) -> None:
        await neighbourhood(city)
        _, call = await emergency(client, city["elder"])
        response = await post(client, city["centre_admin"], ack_path(call.id), body)
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["field"] == field
        assert (await reload(call)).state is CallState.open

    async def test_malformed_requests_are_refused(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await neighbourhood(city)
        _, call = await emergency(client, city["elder"])
        headers = city["centre_admin"].headers
        cases = [
            (
                {
                    "content": b"{not json",
                    "headers": {**headers, "content-type": "application/json"},
                },
                400,
            ),
            ({"content": b"[]", "headers": {**headers, "content-type": "application/json"}}, 400),
            ({"content": b"handling=1", "headers": {**headers, "content-type": "text/plain"}}, 415),
        ]
        for kwargs, status in cases:
            response = await client.post(ack_path(call.id), **kwargs)  # type: ignore[arg-type]
            assert response.status_code == status
            assert "error" in response.json()
        missing = await post(client, city["centre_admin"], ack_path(uuid.uuid4()))
        assert missing.status_code == 404
        assert (await reload(call)).state is CallState.open


class TestDistrictList:
    async def test_open_calls_of_the_subtree_newest_first(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        await neighbourhood(city)
        _, first = await emergency(client, city["elder"])
        _, second = await emergency(client, city["elder"])
        await post(client, city["centre_admin"], ack_path(first.id))
        path = f"/api/v1/districts/{city.east.id}/emergencies"
        admin = city["centre_admin"].headers
        everything = (await client.get(path, headers=admin)).json()
        assert everything["total"] == 2
        assert [c["id"] for c in everything["emergencies"]] == [str(second.id), str(first.id)]
        waiting = (await client.get(path, params={"state": "open"}, headers=admin)).json()
        assert [c["id"] for c in waiting["emergencies"]] == [str(second.id)]
        page = (await client.get(path, params={"limit": 1, "offset": 1}, headers=admin)).json()
        assert [c["id"] for c in page["emergencies"]] == [str(first.id)]

    async def test_bad_queries_and_other_districts_are_refused(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        path = f"/api/v1/districts/{city.east.id}/emergencies"
        admin = city["centre_admin"].headers
        for params in ({"state": "ringing"}, {"limit": "0"}, {"limit": "x"}, {"colour": "red"}):
            response = await client.get(path, params=params, headers=admin)
            assert response.status_code == 422, params
        refused = await client.get(path, headers=city.west_admin.headers)
        assert refused.status_code == 403
        unknown = await client.get(f"/api/v1/districts/{uuid.uuid4()}/emergencies", headers=admin)
        assert unknown.status_code == 404


class TestRecord:
    async def test_steps_cannot_be_edited_or_deleted(
        self, client: httpx.AsyncClient, city: City
    ) -> None:
        _, call = await emergency(client, city["elder"])
        step = await EmergencyStep.get(call_id=call.id, seq=1)
        with pytest.raises(OperationalError, match="append-only"):
            await EmergencyStep.filter(id=step.id).update(kind=StepKind.closed)
        with pytest.raises(OperationalError, match="append-only"):
            await EmergencyStep.filter(id=step.id).delete()
        assert (await EmergencyStep.get(id=step.id)).kind is StepKind.created

    async def test_the_spec_documents_the_endpoints(self, client: httpx.AsyncClient) -> None:
        paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
        assert "get" in paths["/api/v1/emergencies/{id}"]
        assert "post" in paths["/api/v1/emergencies/{id}/acknowledgement"]
        assert "get" in paths["/api/v1/bookings/{id}/emergency"]
        assert "get" in paths["/api/v1/districts/{id}/emergencies"]
        ack = paths["/api/v1/emergencies/{id}/acknowledgement"]["post"]
        assert ack["x-roles"] == ["centre_admin"] and "requestBody" in ack


async def test_the_lifespan_runs_the_timer_through_to_the_webhook(
    database_url: str, tmp_path: Path
) -> None:
    """The app's own background task, on the real clock: a call due at once goes to the duty
    feed and the gateway without anyone driving it."""
    async with gateway_server() as gateway:
        settings = Settings(
            database_url=database_url,
            data_dir=tmp_path,
            keys_dir=tmp_path / "keys",
            matching_enabled=True,
            matching_interval_seconds=3600,
            emergency_webhook_url=gateway.url,
            emergency_webhook_secret=SECRET.decode(),
            emergency_webhook_attempts=2,
            emergency_webhook_backoff_seconds=1,
        )
        async with running(create_app(settings)) as started:
            runtime = started.state["runtime"]
            city = await build_city(started.http, runtime)
            await set_policy(
                city, emergency_duty_feed_after_seconds=0, emergency_webhook_after_seconds=0
            )
            _, call = await emergency(started.http, city["elder"])
            for _ in range(200):
                if (await reload(call)).webhook_state is WebhookState.delivered:
                    break
                await asyncio.sleep(0.05)
            assert await kinds(call) == [
                "created",
                "no_helper_in_reach",
                "duty_feed",
                "webhook_started",
                "webhook_attempt",
                "webhook_delivered",
            ]
        assert len(gateway.received) == 1


async def test_a_webhook_it_cannot_use_stops_the_lifespan_before_anything_opens(
    tmp_path: Path,
) -> None:
    """Settings built in code skip `load_settings`; the lifespan still refuses them first,
    before the database, the runtime and its key files are opened (nothing to leak)."""
    data = tmp_path / "data"
    settings = Settings(
        database_url=f"sqlite://{data / 'eldercare.sqlite3'}",
        data_dir=data,
        keys_dir=data / "keys",
        matching_enabled=False,
        emergency_webhook_url="http://:80",
        emergency_webhook_secret=SECRET.decode(),
    )
    app = LifespanApp(create_app(settings, check_migrations=False))
    with pytest.raises(RuntimeError, match="ELDERCARE_EMERGENCY_WEBHOOK_URL"):
        await app.startup()
    assert app._task is not None
    with pytest.raises(ValueError, match="ELDERCARE_EMERGENCY_WEBHOOK_URL"):
        await app._task  # the lifespan ended with the refusal
    assert not data.exists()
