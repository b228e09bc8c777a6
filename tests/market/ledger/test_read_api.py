"""The read API: checkpoints, entries by range, proofs, keys, balances and statements."""

from __future__ import annotations

import uuid

import httpx

from ledger import merkle
from ledger.checkpoint import Checkpoint, KeyHistory, check_checkpoint
from tests.market.conftest import make_actor
from tests.market.ledger.conftest import LedgerCity, error_of, fund, sign

API = "/api/v1/ledger"


async def history_of(client: httpx.AsyncClient, district: str) -> KeyHistory:
    response = await client.get(f"{API}/districts/{district}/keys")
    assert response.status_code == 200
    return KeyHistory.from_json(response.json()["history"])


class TestCheckpoint:
    async def test_latest_checkpoint_is_signed_by_the_published_key(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 60)
        await fund(lcity.gateway, lcity.west_volunteer.user.id, 60)
        await sign(lcity.gateway)
        response = await client.get(f"{API}/districts/east/checkpoint")
        assert response.status_code == 200
        body = response.json()
        cp = Checkpoint.from_json(body["checkpoint"])
        assert cp.size == 1
        assert check_checkpoint(cp, await history_of(client, "east")) == (True, "ok")
        assert body["witnesses"] == ["centre:west"]
        assert (body["quorum"], body["witness_count"], body["witnessed"]) == (2, 3, False)

    async def test_no_checkpoint_yet_is_404(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        response = await client.get(f"{API}/districts/west/checkpoint")
        assert response.status_code == 404
        assert error_of(response)["code"] == "ledger.no_checkpoint"

    async def test_unknown_district_is_404(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        for path in ("checkpoint", "checkpoints", "keys", "proof?seq=0", "consistency?old=1&new=1"):
            response = await client.get(f"{API}/districts/nowhere/{path}")
            assert response.status_code == 404, path
            assert error_of(response)["code"] == "ledger.unknown_district"

    async def test_history_pages_by_size(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        for _ in range(3):
            await fund(lcity.gateway, lcity["volunteer"].user.id, 10)
            await sign(lcity.gateway)
        response = await client.get(f"{API}/districts/east/checkpoints?after=1&limit=1")
        assert response.status_code == 200
        assert [cp["size"] for cp in response.json()["checkpoints"]] == [2]
        all_sizes = (await client.get(f"{API}/districts/east/checkpoints")).json()["checkpoints"]
        assert [cp["size"] for cp in all_sizes] == [1, 2, 3]

    async def test_history_bad_limit_is_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        for query in ("limit=0", "limit=101", "limit=x", "after=1.5"):
            response = await client.get(f"{API}/districts/east/checkpoints?{query}")
            assert response.status_code == 422, query
            assert error_of(response)["code"] == "invalid_input"

    async def test_list_of_chains(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 10)
        body = (await client.get(f"{API}/districts")).json()
        assert [(d["district"], d["size"]) for d in body["districts"]] == [("east", 1), ("west", 0)]


class TestEntries:
    async def test_auditor_reads_a_range(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        for minutes in (10, 20, 30):
            await fund(lcity.gateway, lcity["volunteer"].user.id, minutes)
        response = await client.get(
            f"{API}/districts/east/entries?start=1&end=10", headers=lcity["auditor"].headers
        )
        assert response.status_code == 200
        body = response.json()
        assert body["size"] == 3
        assert [e["minutes"] for e in body["entries"]] == [20, 30]

    async def test_admin_of_the_district_reads(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 10)
        response = await client.get(
            f"{API}/districts/east/entries?start=0&end=1", headers=lcity["centre_admin"].headers
        )
        assert response.status_code == 200

    async def test_admin_of_another_district_is_403(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        response = await client.get(
            f"{API}/districts/east/entries?start=0&end=1", headers=lcity.city.west_admin.headers
        )
        assert response.status_code == 403
        assert error_of(response)["code"] == "ledger.forbidden"

    async def test_volunteer_is_403(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        response = await client.get(
            f"{API}/districts/east/entries?start=0&end=1", headers=lcity["volunteer"].headers
        )
        assert response.status_code == 403

    async def test_anonymous_is_401(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        response = await client.get(f"{API}/districts/east/entries?start=0&end=1")
        assert response.status_code == 401

    async def test_bad_ranges_are_422(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 10)
        headers = lcity["auditor"].headers
        for query in (
            "start=-1&end=2",
            "start=2&end=2",
            "start=3&end=1",
            "start=0&end=501",
            "start=5&end=6",
            "start=a&end=2",
            "end=2",
            "start=0",
            "start=0&end=99999999999999999999",
        ):
            response = await client.get(f"{API}/districts/east/entries?{query}", headers=headers)
            assert response.status_code == 422, query
            assert error_of(response)["code"] == "invalid_input"


class TestProofs:
    async def test_inclusion_by_seq_and_by_id_verify_against_checkpoint(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        entries = [await fund(lcity.gateway, lcity["volunteer"].user.id, m) for m in (5, 6, 7)]
        await sign(lcity.gateway)
        for query in ("seq=1", f"entry_id={entries[1].id}"):
            response = await client.get(f"{API}/districts/east/proof?{query}")
            assert response.status_code == 200, response.text
            body = response.json()
            proof = [bytes.fromhex(h) for h in body["proof"]]
            root = bytes.fromhex(body["checkpoint"]["checkpoint"]["root"])
            assert bytes.fromhex(body["leaf_hash"]) == entries[1].hash
            assert merkle.verify_inclusion(entries[1].hash, 1, 3, proof, root)

    async def test_inclusion_in_an_older_tree(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        entries = [await fund(lcity.gateway, lcity["volunteer"].user.id, m) for m in (5, 6, 7)]
        response = await client.get(f"{API}/districts/east/proof?seq=0&size=2")
        body = response.json()
        root = merkle.root([e.hash for e in entries[:2]])
        assert body["root"] == root.hex()
        proof = [bytes.fromhex(h) for h in body["proof"]]
        assert merkle.verify_inclusion(entries[0].hash, 0, 2, proof, root)

    async def test_entry_after_latest_checkpoint_is_409(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        await fund(lcity.gateway, lcity["volunteer"].user.id, 6)
        response = await client.get(f"{API}/districts/east/proof?seq=1")
        assert response.status_code == 409
        assert error_of(response)["code"] == "ledger.not_checkpointed"

    async def test_unknown_entries_are_404(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        for query in ("seq=7", "seq=-1", "entry_id=nope"):
            response = await client.get(f"{API}/districts/east/proof?{query}")
            assert response.status_code == 404, query
            assert error_of(response)["code"] == "ledger.unknown_entry"

    async def test_bad_proof_queries_are_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        for query in ("", "seq=0&entry_id=x", "seq=zero", "seq=0&size=5"):
            response = await client.get(f"{API}/districts/east/proof?{query}")
            assert response.status_code in (409, 422), query
            assert "error" in response.json()

    async def test_consistency_proof_verifies(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        entries = [await fund(lcity.gateway, lcity["volunteer"].user.id, m) for m in range(1, 8)]
        response = await client.get(f"{API}/districts/east/consistency?old=3&new=7")
        assert response.status_code == 200
        body = response.json()
        old_root = merkle.root([e.hash for e in entries[:3]])
        new_root = merkle.root([e.hash for e in entries])
        assert (body["old_root"], body["new_root"]) == (old_root.hex(), new_root.hex())
        proof = [bytes.fromhex(h) for h in body["proof"]]
        assert merkle.verify_consistency(3, 7, old_root, new_root, proof)

    async def test_bad_consistency_ranges_are_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        for query in ("old=0&new=1", "old=2&new=1", "old=1&new=9", "old=1", "old=x&new=1"):
            response = await client.get(f"{API}/districts/east/consistency?{query}")
            assert response.status_code == 422, query


class TestKeys:
    async def test_keys_and_witnesses_are_published(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        body = (await client.get(f"{API}/districts/east/keys")).json()
        history = KeyHistory.from_json(body["history"])
        assert len(history.periods()) == 1
        assert [w["witness"] for w in body["witnesses"]] == ["centre:west"]


class TestStatement:
    async def test_statement_lines_prove_inclusion_in_signed_checkpoint(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        gw, volunteer = lcity.gateway, lcity["volunteer"]
        await fund(gw, volunteer.user.id, 90)
        await fund(gw, lcity.elder_parent.user.id, 10)  # someone else's entry in between
        await gw.redeem(payer_id=volunteer.user.id, minutes=30, entry_id="r-1", actor="t")
        await sign(gw)
        await fund(gw, volunteer.user.id, 15)  # after the checkpoint: no proof yet
        response = await client.get(
            f"{API}/accounts/{volunteer.user.id}/statement", headers=volunteer.headers
        )
        assert response.status_code == 200
        body = response.json()
        assert body["balance_minutes"] == 75
        cp = Checkpoint.from_json(body["checkpoint"]["checkpoint"])
        assert check_checkpoint(cp, await history_of(client, "east"))[0]
        lines = body["lines"]
        assert [line["signed_minutes"] for line in lines] == [90, -30, 15]
        for line in lines[:2]:
            leaf = bytes.fromhex(line["hash"])
            proof = [bytes.fromhex(h) for h in line["proof"]["hashes"]]
            assert merkle.verify_inclusion(leaf, line["seq"], cp.size, proof, cp.root)
        assert lines[2]["proof"] is None

    async def test_statement_pages(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        volunteer = lcity["volunteer"]
        for minutes in (1, 2, 3):
            await fund(lcity.gateway, volunteer.user.id, minutes)
        url = f"{API}/accounts/{volunteer.user.id}/statement"
        first = (await client.get(f"{url}?limit=2", headers=volunteer.headers)).json()
        assert [line["minutes"] for line in first["lines"]] == [1, 2]
        rest = await client.get(f"{url}?after={first['next_after']}", headers=volunteer.headers)
        assert [line["minutes"] for line in rest.json()["lines"]] == [3]

    async def test_other_users_statement_is_403(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        url = f"{API}/accounts/{lcity['volunteer'].user.id}"
        for actor in (lcity["elder"], lcity["family"], lcity.city.west_admin):
            for what in ("statement", "balance"):
                response = await client.get(f"{url}/{what}", headers=actor.headers)
                assert response.status_code == 403, (actor.user.role, what)
                assert error_of(response)["code"] == "ledger.forbidden"

    async def test_admin_and_auditor_read_statements(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        url = f"{API}/accounts/{lcity['volunteer'].user.id}/statement"
        for actor in (lcity["centre_admin"], lcity["auditor"]):
            assert (await client.get(url, headers=actor.headers)).status_code == 200

    async def test_bad_statement_queries(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        url = f"{API}/accounts/{volunteer.user.id}/statement"
        for query in ("limit=0", "limit=201", "after=-2", "after=x"):
            response = await client.get(f"{url}?{query}", headers=volunteer.headers)
            assert response.status_code == 422, query
        response = await client.get(
            f"{API}/accounts/not-a-uuid/statement", headers=volunteer.headers
        )
        assert response.status_code == 422
        response = await client.get(
            f"{API}/accounts/{uuid.uuid4()}/statement", headers=lcity["auditor"].headers
        )
        assert response.status_code == 404

    async def test_balance_counts_held_minutes(
        self, client: httpx.AsyncClient, lcity: LedgerCity, runtime
    ) -> None:  # type: ignore[no-untyped-def]
        volunteer = lcity["volunteer"]
        await fund(lcity.gateway, volunteer.user.id, 50)
        response = await client.get(
            f"{API}/accounts/{volunteer.user.id}/balance", headers=volunteer.headers
        )
        assert response.json()["balance_minutes"] == 50
        assert response.json()["held_minutes"] == 0
        assert response.json()["district"] == "east"


class TestSettlement:
    async def test_settlement_after_transfer(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        gw = lcity.gateway
        await fund(gw, lcity["volunteer"].user.id, 90)
        await gw.transfer(
            payer_id=lcity["volunteer"].user.id,
            payee_id=lcity.west_volunteer.user.id,
            minutes=45,
            transfer_id="settle-1",
            actor="t",
        )
        for actor in (lcity["auditor"], lcity["centre_admin"]):
            response = await client.get(f"{API}/settlement", headers=actor.headers)
            assert response.status_code == 200
            body = response.json()
            assert body["positions"] == [{"debtor": "east", "creditor": "west", "minutes": 45}]
            assert body["mirrored"] is True and body["open_holds"] == 0

    async def test_volunteer_may_not_read_settlement(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        response = await client.get(f"{API}/settlement", headers=lcity["volunteer"].headers)
        assert response.status_code == 403


async def test_provider_staff_reads_own_balance(
    client: httpx.AsyncClient, lcity: LedgerCity, runtime
) -> None:  # type: ignore[no-untyped-def]
    from market.models import Role

    staff = await make_actor(client, runtime, Role.provider_staff, lcity.city.east_community)
    response = await client.get(f"{API}/accounts/{staff.user.id}/balance", headers=staff.headers)
    assert response.status_code == 200
    assert response.json()["balance_minutes"] == 0


class TestIntegerParameters:
    """Query and path integers are ASCII digits: anything else is a 422 naming the parameter."""

    # "--5", superscript two "²" and full-width one "１" (URL-encoded UTF-8).
    BAD = ("--5", "%C2%B2", "%EF%BC%91")

    async def assert_422(self, response: httpx.Response, name: str) -> None:
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["code"] == "invalid_input"
        assert name in error["message"]

    async def test_bad_seq_is_422(self, client: httpx.AsyncClient, lcity: LedgerCity) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        for raw in self.BAD:
            response = await client.get(f"{API}/districts/east/proof?seq={raw}")
            await self.assert_422(response, "seq")

    async def test_bad_or_negative_size_is_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        for raw in ("--1", "-1", "%C2%B2"):
            response = await client.get(f"{API}/districts/east/proof?seq=0&size={raw}")
            await self.assert_422(response, "size")

    async def test_plain_seq_and_size_still_work(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        await fund(lcity.gateway, lcity["volunteer"].user.id, 5)
        await sign(lcity.gateway)
        response = await client.get(f"{API}/districts/east/proof?seq=0&size=1")
        assert response.status_code == 200, response.text
        assert response.json()["tree_size"] == 1

    async def test_bad_checkpoint_history_after_is_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        for raw in ("--1", "%EF%BC%91"):
            response = await client.get(f"{API}/districts/east/checkpoints?after={raw}")
            await self.assert_422(response, "after")

    async def test_bad_statement_limit_is_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        volunteer = lcity["volunteer"]
        url = f"{API}/accounts/{volunteer.user.id}/statement"
        for raw in ("%C2%B2", "--1", "-5"):
            response = await client.get(f"{url}?limit={raw}", headers=volunteer.headers)
            await self.assert_422(response, "limit")

    async def test_bad_cosign_size_is_422(
        self, client: httpx.AsyncClient, lcity: LedgerCity
    ) -> None:
        headers = lcity["auditor"].headers
        for raw in ("--1", "-1", "%C2%B2", "%EF%BC%91"):
            response = await client.post(
                f"{API}/districts/east/checkpoints/{raw}/cosignatures", json={}, headers=headers
            )
            await self.assert_422(response, "size")
