"""Who decides that a checkpoint is witnessed: not the witnessed district.

The quorum comes from the policy in force when the checkpoint was signed and never drops below
the deployment's floor; auditors co-sign with a key pinned once; auditors created by the
witnessed district's own admins do not count toward its quorum.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from ledger.checkpoint import Checkpoint
from ledger.keys import Signer
from ledger.witness import cosignature_message
from market.models import DistrictPolicy, Role, User
from market.policy import LedgerRules, policy_to_json
from market.services import checkpoints
from market.services.runtime import Runtime
from market.settings import SettingsError, load_settings
from market.witnessing.models import Cosignature, WitnessKey
from tests.market.conftest import PASSWORD, Actor, make_actor, next_phone, sign_in
from tests.market.ledger.conftest import LedgerCity, error_of, fund, set_policy, with_rules

API = "/api/v1/ledger"


def ledger_rules(quorum: int, count: int = 3) -> LedgerRules:
    return LedgerRules(witness_quorum=quorum, witness_count=count)


async def signed_unwitnessed(lcity: LedgerCity) -> Checkpoint:
    """A checkpoint of east that nobody co-signed yet."""
    await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
    cp = await checkpoints.sign_now(lcity.gateway, "east")
    assert cp is not None
    return cp


def cosign_body(signer: Signer, cp: Checkpoint, at_ms: int = 1) -> dict[str, Any]:
    message = cosignature_message(
        witness_id=signer.key_id,
        district=cp.district,
        size=cp.size,
        root=cp.root,
        checkpoint_digest=cp.digest(),
        at_ms=at_ms,
    )
    return {
        "public_key": signer.public.hex(),
        "signature": signer.sign(message).hex(),
        "at_ms": at_ms,
    }


async def register(client: httpx.AsyncClient, actor: Actor, signer: Signer) -> httpx.Response:
    body = {"public_key": signer.public.hex()}
    return await client.post(f"{API}/witness-key", json=body, headers=actor.headers)


async def cosign(
    client: httpx.AsyncClient, actor: Actor, cp: Checkpoint, signer: Signer
) -> httpx.Response:
    url = f"{API}/districts/{cp.district}/checkpoints/{cp.size}/cosignatures"
    return await client.post(url, json=cosign_body(signer, cp), headers=actor.headers)


async def staff_auditor(
    client: httpx.AsyncClient, runtime: Runtime, admin: Actor, district_id: Any
) -> Actor:
    """An auditor created by `admin` through `POST /api/v1/staff`."""
    phone = next_phone()
    body = {
        "phone": phone,
        "password": PASSWORD,
        "name": "Staff Auditor",
        "role": "auditor",
        "district_id": str(district_id),
    }
    response = await client.post("/api/v1/staff", json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    user = await User.get(id=response.json()["user"]["id"])
    return Actor(user=user, phone=phone, token=await sign_in(runtime, user))


class TestQuorumSource:
    async def test_later_policy_does_not_lower_a_signed_checkpoints_quorum(
        self, lcity: LedgerCity
    ) -> None:
        await set_policy(lcity.city.east, with_rules(ledger=ledger_rules(2)))
        cp = await signed_unwitnessed(lcity)
        await checkpoints.witness(lcity.gateway, cp)  # centre:west: 1 of 2
        # A version with quorum 1, effective after the checkpoint was signed, now in force.
        await DistrictPolicy.create(
            district=lcity.city.east,
            version=2,
            effective_from=datetime.fromtimestamp(cp.at_ms / 1000, UTC) + timedelta(hours=1),
            content=policy_to_json(with_rules(ledger=ledger_rules(1))),
        )
        lcity.gateway.clock = lambda: cp.at_ms + 2 * 3600 * 1000
        view = await checkpoints.witnessed(lcity.gateway, cp)
        assert (view.quorum, [c.witness for c in view.valid]) == (2, ["centre:west"])
        assert view.witnessed is False

    async def test_checkpoint_signed_under_the_new_policy_uses_it(self, lcity: LedgerCity) -> None:
        await set_policy(lcity.city.east, with_rules(ledger=ledger_rules(1)))
        cp = await signed_unwitnessed(lcity)
        await checkpoints.witness(lcity.gateway, cp)
        view = await checkpoints.witnessed(lcity.gateway, cp)
        assert view.quorum == 1 and view.witnessed is True

    async def test_quorum_zero_policy_still_needs_the_floor(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await set_policy(lcity.city.east, with_rules(ledger=ledger_rules(0)))
        cp = await signed_unwitnessed(lcity)
        view = await checkpoints.witnessed(lcity.gateway, cp)
        assert (view.quorum, view.witnessed) == (1, False)
        entry = (await lcity.gateway.store.entries("east"))[0]
        volunteer = lcity["volunteer"]
        url = f"{API}/districts/east/entries/{entry.id}/receipt"
        response = await client.get(url, headers=volunteer.headers)
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.not_witnessed"
        await checkpoints.witness(lcity.gateway, cp)  # one independent co-signature
        response = await client.get(url, headers=volunteer.headers)
        assert response.status_code == 200, response.text
        assert response.json()["threshold"] == 1

    async def test_floor_comes_from_the_settings(self, lcity: LedgerCity) -> None:
        gateway = lcity.gateway
        gateway.settings = replace(gateway.settings, witness_quorum_floor=3)
        cp = await signed_unwitnessed(lcity)
        assert (await checkpoints.witnessed(gateway, cp)).quorum == 3

    def test_floor_setting_is_read_and_must_be_positive(self) -> None:
        assert load_settings({}).witness_quorum_floor == 1
        assert load_settings({"ELDERCARE_WITNESS_QUORUM_FLOOR": "2"}).witness_quorum_floor == 2
        for bad in ("0", "-1", "x"):
            with pytest.raises(SettingsError, match="ELDERCARE_WITNESS_QUORUM_FLOOR"):
                load_settings({"ELDERCARE_WITNESS_QUORUM_FLOOR": bad})


class TestRegisterWitnessKey:
    async def test_register_once_then_same_key_again(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        auditor, signer = lcity["auditor"], Signer.generate()
        first = await register(client, auditor, signer)
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["witness"] == f"auditor:{auditor.user.id}"
        assert (body["key_id"], body["public"]) == (signer.key_id, signer.public.hex())
        again = await register(client, auditor, signer)
        assert again.status_code == 200
        assert await WitnessKey.all().count() == 1

    async def test_another_key_is_409_and_keeps_the_first(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        auditor, signer = lcity["auditor"], Signer.generate()
        await register(client, auditor, signer)
        response = await register(client, auditor, Signer.generate())
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.witness_key_pinned"
        row = await WitnessKey.get(witness=f"auditor:{auditor.user.id}")
        assert bytes(row.public) == signer.public

    async def test_only_auditors_register(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        for role in ("volunteer", "centre_admin", "elder"):
            response = await register(client, lcity[role], Signer.generate())
            assert response.status_code == 403, role
        assert await WitnessKey.all().count() == 0

    async def test_malformed_keys_are_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        headers = lcity["auditor"].headers
        for body in ({}, {"public_key": "AB" * 32}, {"public_key": "ab" * 31}, {"public_key": 1}):
            response = await client.post(f"{API}/witness-key", json=body, headers=headers)
            assert response.status_code == 422, body
            assert "error" in response.json()
        assert await WitnessKey.all().count() == 0

    async def test_update_and_delete_are_refused_by_the_database(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        from tortoise.connection import get_connection

        await register(client, lcity["auditor"], Signer.generate())
        connection = get_connection("default")
        for statement in (
            "UPDATE ledger_witness_key SET at_ms = 1",
            "DELETE FROM ledger_witness_key",
        ):
            try:
                await connection.execute_query(statement)
            except Exception as error:  # the driver's own error type differs per database
                assert "append-only" in str(error)
            else:
                raise AssertionError(f"{statement} was not refused")
        assert await WitnessKey.all().count() == 1


class TestPinnedCosignatures:
    async def test_unregistered_auditor_is_409_and_stores_nothing(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        cp = await signed_unwitnessed(lcity)
        response = await cosign(client, lcity["auditor"], cp, Signer.generate())
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.witness_key_unregistered"
        assert await Cosignature.all().count() == 0

    async def test_registered_key_cosigns(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        auditor, signer = lcity["auditor"], Signer.generate()
        await register(client, auditor, signer)
        cp = await signed_unwitnessed(lcity)
        response = await cosign(client, auditor, cp, signer)
        assert response.status_code == 201, response.text
        assert response.json()["witnesses"] == [f"auditor:{auditor.user.id}"]

    async def test_stored_cosignature_under_an_unpinned_key_does_not_count(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        # Rows from before keys were pinned, or written around the API.
        auditor = lcity["auditor"]
        await register(client, auditor, Signer.generate())
        cp = await signed_unwitnessed(lcity)
        other = Signer.generate()
        body = cosign_body(other, cp)
        await Cosignature.create(
            district=cp.district,
            size=cp.size,
            witness=f"auditor:{auditor.user.id}",
            key_id=other.key_id,
            public=other.public,
            signature=bytes.fromhex(body["signature"]),
            at_ms=body["at_ms"],
        )
        view = await checkpoints.witnessed(lcity.gateway, cp)
        assert view.valid == [] and view.witnessed is False


class TestAuditorIndependence:
    async def test_auditor_made_by_the_districts_own_admin_is_refused(
        self, client: httpx.AsyncClient, runtime: Runtime, lcity: LedgerCity
    ) -> None:
        own = await staff_auditor(client, runtime, lcity["centre_admin"], lcity.city.east.id)
        signer = Signer.generate()
        assert (await register(client, own, signer)).status_code == 201
        cp = await signed_unwitnessed(lcity)
        response = await cosign(client, own, cp, signer)
        assert response.status_code == 403
        assert error_of(response)["code"] == "ledger.own_district_auditor"
        assert await Cosignature.all().count() == 0

    async def test_stored_cosignature_of_an_own_auditor_does_not_count(
        self, client: httpx.AsyncClient, runtime: Runtime, lcity: LedgerCity
    ) -> None:
        await set_policy(lcity.city.east, with_rules(ledger=ledger_rules(1)))
        own = await staff_auditor(client, runtime, lcity["centre_admin"], lcity.city.east.id)
        signer = Signer.generate()
        await register(client, own, signer)
        cp = await signed_unwitnessed(lcity)
        body = cosign_body(signer, cp)
        await Cosignature.create(
            district=cp.district,
            size=cp.size,
            witness=f"auditor:{own.user.id}",
            key_id=signer.key_id,
            public=signer.public,
            signature=bytes.fromhex(body["signature"]),
            at_ms=body["at_ms"],
        )
        view = await checkpoints.witnessed(lcity.gateway, cp)
        assert view.valid == [] and view.witnessed is False

    async def test_auditor_made_by_another_districts_admin_counts(
        self, client: httpx.AsyncClient, runtime: Runtime, lcity: LedgerCity
    ) -> None:
        outsider = await staff_auditor(client, runtime, lcity.city.west_admin, lcity.city.west.id)
        signer = Signer.generate()
        await register(client, outsider, signer)
        cp = await signed_unwitnessed(lcity)
        await checkpoints.witness(lcity.gateway, cp)  # centre:west
        response = await cosign(client, outsider, cp, signer)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["witnesses"] == [f"auditor:{outsider.user.id}", "centre:west"]
        assert (body["quorum"], body["witnessed"]) == (2, True)

    async def test_cli_made_auditor_counts_for_its_own_district(
        self, client: httpx.AsyncClient, runtime: Runtime, lcity: LedgerCity
    ) -> None:
        # `eldercare admin create` records no creator: the deployment's operator made it.
        auditor = await make_actor(client, runtime, Role.auditor, lcity.city.east)
        assert auditor.user.created_by_id is None
        signer = Signer.generate()
        await register(client, auditor, signer)
        cp = await signed_unwitnessed(lcity)
        response = await cosign(client, auditor, cp, signer)
        assert response.status_code == 201, response.text
        assert response.json()["witnesses"] == [f"auditor:{auditor.user.id}"]
