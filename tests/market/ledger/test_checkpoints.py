"""Checkpoint cadence from policy, the background task, centre witnesses and auditor co-signing."""

from __future__ import annotations

import asyncio

import httpx

from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.keys import Signer
from ledger.witness import cosignature_message
from market.policy import LedgerRules
from market.services import checkpoints, witnesses
from market.services.runtime import Runtime
from market.witnessing.models import Cosignature
from tests.market.conftest import Actor
from tests.market.ledger.conftest import (
    LedgerCity,
    error_of,
    fund,
    set_policy,
    sign,
    third_district,
    with_rules,
)

API = "/api/v1/ledger"


class FakeClock:
    def __init__(self, gateway_clock: int) -> None:
        self.now = gateway_clock

    def __call__(self) -> int:
        return self.now


async def cadence(lcity: LedgerCity, *, entries: int, seconds: int) -> FakeClock:
    rules = LedgerRules(checkpoint_every_entries=entries, checkpoint_every_seconds=seconds)
    await set_policy(lcity.city.east, with_rules(ledger=rules))
    clock = FakeClock(lcity.gateway.clock())
    lcity.gateway.clock = clock
    return clock


class TestCadence:
    async def test_every_n_entries(self, lcity: LedgerCity) -> None:
        gw = lcity.gateway
        await cadence(lcity, entries=3, seconds=3600)
        await fund(gw, lcity["volunteer"].user.id, 5)
        first = await checkpoints.checkpoint_if_due(gw, "east")
        assert first is not None and first.size == 1
        for _ in range(2):
            await fund(gw, lcity["volunteer"].user.id, 5)
            assert await checkpoints.checkpoint_if_due(gw, "east") is None
        await fund(gw, lcity["volunteer"].user.id, 5)
        due = await checkpoints.checkpoint_if_due(gw, "east")
        assert due is not None and due.size == 4

    async def test_every_t_seconds(self, lcity: LedgerCity) -> None:
        gw = lcity.gateway
        clock = await cadence(lcity, entries=1000, seconds=60)
        await fund(gw, lcity["volunteer"].user.id, 5)
        assert await checkpoints.checkpoint_if_due(gw, "east") is not None
        await fund(gw, lcity["volunteer"].user.id, 5)
        clock.now += 59_000
        assert await checkpoints.checkpoint_if_due(gw, "east") is None
        clock.now += 2_000
        cp = await checkpoints.checkpoint_if_due(gw, "east")
        assert cp is not None and cp.size == 2

    async def test_nothing_new_signs_nothing(self, lcity: LedgerCity) -> None:
        gw = lcity.gateway
        clock = await cadence(lcity, entries=1, seconds=1)
        assert await checkpoints.checkpoint_if_due(gw, "east") is None  # empty chain
        await fund(gw, lcity["volunteer"].user.id, 5)
        assert await checkpoints.checkpoint_if_due(gw, "east") is not None
        clock.now += 10_000
        assert await checkpoints.checkpoint_if_due(gw, "east") is None

    async def test_background_task_signs(self, lcity: LedgerCity) -> None:
        gw = lcity.gateway
        checkpoints.start_checkpointer(gw, poll_seconds=0.05)
        await fund(gw, lcity["volunteer"].user.id, 5)
        for _ in range(100):
            if await checkpoints.latest_checkpoint("east") is not None:
                break
            await asyncio.sleep(0.05)
        latest = await checkpoints.latest_checkpoint("east")
        assert latest is not None and latest.size == 1


class TestCentreWitnesses:
    async def test_quorum_reached_with_three_districts(
        self, client: httpx.AsyncClient, lcity: LedgerCity, runtime: Runtime
    ) -> None:
        await third_district(client, runtime)
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)  # the second round checks consistency with the first
        body = (await client.get(f"{API}/districts/east/checkpoint")).json()
        assert body["checkpoint"]["size"] == 2
        assert body["witnesses"] == ["centre:north", "centre:west"]
        assert body["witnessed"] is True

    async def test_witness_refuses_a_forked_history(self, lcity: LedgerCity) -> None:
        gw = lcity.gateway
        await fund(gw, lcity["volunteer"].user.id, 5)
        await fund(gw, lcity["volunteer"].user.id, 6)
        await sign(gw)
        await fund(gw, lcity["volunteer"].user.id, 7)
        # The district key signs a size-3 tree that does not extend the co-signed size 2.
        forged = sign_checkpoint(
            district="east", size=3, root=bytes(32), at_ms=gw.clock(), signer=gw.signer("east")
        )
        refused = await witnesses.centre_cosign(gw, "west", forged, checkpoints.load_checkpoint)
        assert refused is None
        assert await Cosignature.filter(district="east", size=3).count() == 0

    async def test_witness_refuses_a_checkpoint_not_signed_by_the_district(
        self, lcity: LedgerCity
    ) -> None:
        gw = lcity.gateway
        await fund(gw, lcity["volunteer"].user.id, 5)
        gw.signer("east")
        forged = sign_checkpoint(
            district="east", size=1, root=bytes(32), at_ms=gw.clock(), signer=Signer.generate()
        )
        assert (
            await witnesses.centre_cosign(gw, "west", forged, checkpoints.load_checkpoint) is None
        )


def auditor_signature(signer: Signer, cp: dict, at_ms: int) -> dict[str, object]:  # type: ignore[type-arg]
    from ledger.checkpoint import Checkpoint

    checkpoint = Checkpoint.from_json(cp)
    message = cosignature_message(
        witness_id=signer.key_id,
        district=checkpoint.district,
        size=checkpoint.size,
        root=checkpoint.root,
        checkpoint_digest=checkpoint.digest(),
        at_ms=at_ms,
    )
    return {
        "public_key": signer.public.hex(),
        "signature": signer.sign(message).hex(),
        "at_ms": at_ms,
    }


async def register_key(client: httpx.AsyncClient, actor: Actor, signer: Signer) -> httpx.Response:
    body = {"public_key": signer.public.hex()}
    return await client.post(f"{API}/witness-key", json=body, headers=actor.headers)


class TestAuditorCosign:
    async def test_auditor_cosignature_completes_the_quorum(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        cp = (await client.get(f"{API}/districts/east/checkpoint")).json()["checkpoint"]
        signer = Signer.generate()
        body = auditor_signature(signer, cp, 1234)
        auditor = lcity["auditor"]
        assert (await register_key(client, auditor, signer)).status_code == 201
        response = await client.post(
            f"{API}/districts/east/checkpoints/1/cosignatures", json=body, headers=auditor.headers
        )
        assert response.status_code == 201, response.text
        result = response.json()
        assert result["witnesses"] == [f"auditor:{auditor.user.id}", "centre:west"]
        assert result["witnessed"] is True
        again = await client.post(
            f"{API}/districts/east/checkpoints/1/cosignatures", json=body, headers=auditor.headers
        )
        assert again.status_code == 201
        assert await Cosignature.filter(district="east", size=1).count() == 2

    async def test_second_key_for_the_same_auditor_is_409(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        cp = (await client.get(f"{API}/districts/east/checkpoint")).json()["checkpoint"]
        url = f"{API}/districts/east/checkpoints/1/cosignatures"
        headers = lcity["auditor"].headers
        pinned = Signer.generate()
        await register_key(client, lcity["auditor"], pinned)
        first = await client.post(url, json=auditor_signature(pinned, cp, 1), headers=headers)
        assert first.status_code == 201, first.text
        response = await client.post(
            url, json=auditor_signature(Signer.generate(), cp, 1), headers=headers
        )
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.witness_key_mismatch"
        assert await Cosignature.filter(witness__startswith="auditor:").count() == 1

    async def test_bad_signature_is_422_and_stores_nothing(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        cp = (await client.get(f"{API}/districts/east/checkpoint")).json()["checkpoint"]
        signer = Signer.generate()
        await register_key(client, lcity["auditor"], signer)
        body = auditor_signature(signer, cp, 1)
        body["at_ms"] = 2  # signed for another time
        response = await client.post(
            f"{API}/districts/east/checkpoints/1/cosignatures",
            json=body,
            headers=lcity["auditor"].headers,
        )
        assert response.status_code == 422
        assert error_of(response)["code"] == "ledger.bad_cosignature"
        assert await Cosignature.filter(witness__startswith="auditor:").count() == 0

    async def test_unknown_checkpoint_and_bad_paths(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        cp = (await client.get(f"{API}/districts/east/checkpoint")).json()["checkpoint"]
        body = auditor_signature(Signer.generate(), cp, 1)
        headers = lcity["auditor"].headers
        cases = [
            (f"{API}/districts/east/checkpoints/9/cosignatures", 404),
            (f"{API}/districts/nowhere/checkpoints/1/cosignatures", 404),
            (f"{API}/districts/east/checkpoints/x/cosignatures", 422),
            (f"{API}/districts/east/checkpoints/-1/cosignatures", 422),
        ]
        for url, status in cases:
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == status, url

    async def test_malformed_cosign_bodies_are_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        url = f"{API}/districts/east/checkpoints/1/cosignatures"
        headers = lcity["auditor"].headers
        good = {"public_key": "ab" * 32, "signature": "cd" * 64, "at_ms": 1}
        for body in (
            {**good, "public_key": "AB" * 32},
            {**good, "signature": "cd" * 63},
            {**good, "at_ms": -1},
            {**good, "at_ms": 1.5},
            {"public_key": "ab" * 32},
        ):
            response = await client.post(url, json=body, headers=headers)
            assert response.status_code == 422, body

    async def test_only_auditors_cosign(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        url = f"{API}/districts/east/checkpoints/1/cosignatures"
        body = {"public_key": "ab" * 32, "signature": "cd" * 64, "at_ms": 1}
        for role in ("volunteer", "centre_admin", "elder"):
            response = await client.post(url, json=body, headers=lcity[role].headers)
            assert response.status_code == 403, role


class TestKeyRotation:
    async def test_rotation_is_published_verified_and_witnessed(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        from ledger.checkpoint import KeyHistory, check_checkpoint, key_history
        from ledger.verify import verify_chain

        gw = lcity.gateway
        await fund(gw, lcity["volunteer"].user.id, 5)
        await sign(gw)
        await fund(gw, lcity["volunteer"].user.id, 6)
        rotation = await checkpoints.rotate(gw, "east")
        assert rotation.size == 2 and rotation.next_key_id is not None
        await fund(gw, lcity["volunteer"].user.id, 7)
        await sign(gw)
        body = (await client.get(f"{API}/districts/east/keys")).json()
        history = KeyHistory.from_json(body["history"])
        assert [k.key_id for k in history.keys][1] == rotation.next_key_id
        assert len(history.periods()) == 2
        latest = (await client.get(f"{API}/districts/east/checkpoint")).json()
        cp = Checkpoint.from_json(latest["checkpoint"])
        assert cp.size == 3 and cp.key_id == rotation.next_key_id
        assert check_checkpoint(cp, history) == (True, "ok")
        assert latest["witnesses"] == ["centre:west"]  # it followed the rotation
        entries = await gw.store.entries("east")
        report = verify_chain(
            [e.body for e in entries],
            district="east",
            checkpoints=await checkpoints.all_checkpoints("east"),
            public_keys=key_history(gw.keys, "east"),
        )
        assert report.ok and report.checkpoints_verified == 3


class TestCosignaturesAreAppendOnly:
    async def test_update_and_delete_are_refused_by_the_database(self, lcity: LedgerCity) -> None:
        from tortoise.connection import get_connection

        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        assert await Cosignature.all().count() == 1
        client = get_connection("default")
        for statement in (
            "UPDATE ledger_cosignature SET at_ms = 1",
            "DELETE FROM ledger_cosignature",
        ):
            try:
                await client.execute_query(statement)
            except Exception as error:  # the driver's own error type differs per database
                assert "append-only" in str(error)
            else:
                raise AssertionError(f"{statement} was not refused")
        assert await Cosignature.all().count() == 1
