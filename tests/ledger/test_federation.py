"""Cross-district redemption between two deployments: signed messages over HTTP (aiohttp)."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from ledger.errors import BadSignature
from ledger.federation import FederationEndpoint, open_message, sign_message
from ledger.keys import Signer
from ledger.storage.memory import MemoryStore
from ledger.transfer import CreditRequest, credit_id

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_700_000_000_000

A_KEY, B_KEY, MALLORY = Signer.generate(), Signer.generate(), Signer.generate()
TRUST = {"A": {A_KEY.key_id: A_KEY.public}, "B": {B_KEY.key_id: B_KEY.public}}
REQUEST = CreditRequest(
    transfer_id="t1",
    home="A",
    serving="B",
    payee="user:h",
    minutes=40,
    hold_hash="ab" * 32,
    deadline_ms=NOW + 60_000,
    actor="centre-a",
    policy=1,
)


def signed(signer: Signer = A_KEY, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "kind": "credit",
        "sender": "A",
        "recipient": "B",
        "body": REQUEST.to_json(),
        "at_ms": NOW,
    }
    fields.update(overrides)
    return sign_message(signer, **fields)


def opened(envelope: dict[str, Any], now: int = NOW) -> tuple[str, dict[str, Any]]:
    return open_message(envelope, kind="credit", recipient="B", trusted=TRUST, now_ms=now)


class TestMessages:
    def test_valid_message_opens(self) -> None:
        assert opened(signed()) == ("A", REQUEST.to_json())

    def test_tampered_body_refused(self) -> None:
        envelope = signed()
        envelope["body"]["minutes"] = 4000
        with pytest.raises(BadSignature):
            opened(envelope)

    def test_wrong_key_refused(self) -> None:
        envelope = signed(MALLORY)
        with pytest.raises(BadSignature, match="unknown key"):
            opened(envelope)

    def test_forged_key_id_refused(self) -> None:
        envelope = signed(MALLORY)
        envelope["key"] = A_KEY.key_id
        envelope["sig"] = MALLORY.sign(b"anything").hex()
        with pytest.raises(BadSignature, match="does not verify"):
            opened(envelope)

    def test_message_for_another_district_refused(self) -> None:
        with pytest.raises(BadSignature, match="addressed"):
            opened(signed(recipient="C"))

    def test_untrusted_sender_refused(self) -> None:
        with pytest.raises(BadSignature, match="trusted"):
            opened(signed(sender="Z"))

    def test_stale_message_refused(self) -> None:
        with pytest.raises(BadSignature, match="window"):
            opened(signed(), now=NOW + 11 * 60 * 1000)

    def test_type_is_signed(self) -> None:
        envelope = signed()
        envelope["type"] = "abort"
        with pytest.raises(BadSignature):
            open_message(envelope, kind="abort", recipient="B", trusted=TRUST, now_ms=NOW)


class TestEndpoint:
    def endpoint(self) -> FederationEndpoint:
        return FederationEndpoint(MemoryStore(), {"B": B_KEY}, TRUST, lambda: NOW)

    async def test_credit_is_signed_by_the_serving_district(self) -> None:
        status, reply = await self.endpoint().handle("credit", signed())
        assert status == 200
        sender, body = open_message(reply, kind="answer", recipient="A", trusted=TRUST, now_ms=NOW)
        assert sender == "B" and body["credited"] is True

    async def test_replayed_credit_writes_once(self) -> None:
        endpoint = self.endpoint()
        envelope = signed()
        first = await endpoint.handle("credit", envelope)
        second = await endpoint.handle("credit", envelope)
        assert first[1]["body"] == second[1]["body"]
        assert (await endpoint.store.head("B")).size == 1

    async def test_replayed_credit_after_abort_stays_refused(self) -> None:
        endpoint = self.endpoint()
        status, reply = await endpoint.handle("abort", signed(kind="abort"))
        assert status == 200 and reply["body"]["credited"] is False
        status, reply = await endpoint.handle("credit", signed())
        assert reply["body"]["credited"] is False
        assert await endpoint.store.entry("B", credit_id("t1")) is None

    async def test_forged_request_refused(self) -> None:
        status, reply = await self.endpoint().handle("credit", signed(MALLORY))
        assert status == 401 and reply["error"]["code"] == "ledger.bad_signature"

    async def test_request_naming_other_home_refused(self) -> None:
        body = {**REQUEST.to_json(), "home": "C"}
        status, _ = await self.endpoint().handle("credit", signed(body=body))
        assert status == 403

    async def test_malformed_request_body(self) -> None:
        body = {**REQUEST.to_json(), "minutes": "40"}
        status, reply = await self.endpoint().handle("credit", signed(body=body))
        assert status == 400 and "minutes" in reply["error"]["message"]

    async def test_unknown_message_type(self) -> None:
        status, _ = await self.endpoint().handle("delete", signed())
        assert status == 404


# ----- two real deployments -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    district: str
    config: Path
    port: int
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.ledger.federation_server",
            str(self.config),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=30)
        if line.strip() != b"ready":
            err = await self.proc.stderr.read() if self.proc.stderr else b""
            raise AssertionError(f"{self.district} did not start: {err.decode()[-2000:]}")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deployments(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, Deployment]]:
    """Two deployments for the whole module (starting them is the slow part); tests use their
    own users and transfer ids, and restart whatever they stop."""
    tmp_path = tmp_path_factory.mktemp("federation")
    keys = {"A": Signer.generate(), "B": Signer.generate()}
    ports = {"A": free_port(), "B": free_port()}
    found: dict[str, Deployment] = {}
    for district, other in (("A", "B"), ("B", "A")):
        seed = keys[district].private.private_bytes_raw().hex()
        peer = {"url": f"http://127.0.0.1:{ports[other]}"}
        peer["keys"] = {keys[other].key_id: keys[other].public.hex()}  # type: ignore[assignment]
        config = {
            "district": district,
            "db": f"sqlite://{tmp_path / district}.sqlite3",
            "port": ports[district],
            "seed": seed,
            "peers": {other: peer},
        }
        path = tmp_path / f"{district}.json"
        path.write_text(json.dumps(config))
        found[district] = Deployment(district, path, ports[district])
    for deployment in found.values():
        await deployment.start()
    yield found
    for deployment in found.values():
        await deployment.stop()


async def call(
    http: aiohttp.ClientSession, d: Deployment, path: str, body: Any = None
) -> tuple[int, Any]:
    method = http.get if body is None else http.post
    async with method(d.url + path, json=body) as response:
        return response.status, await response.json()


def transfer(tid: str, serving: str, payer: str, payee: str, minutes: int) -> dict[str, Any]:
    deadline = 2**52  # far ahead: these runs must not expire
    return {
        "transfer_id": tid,
        "serving": serving,
        "payer": payer,
        "payee": payee,
        "minutes": minutes,
        "deadline_ms": deadline,
    }


async def assert_mirrored(http: aiohttp.ClientSession, a: Deployment, b: Deployment) -> None:
    _, state_a = await call(http, a, "/test/state")
    _, state_b = await call(http, b, "/test/state")
    assert state_a["open_holds"] == 0
    assert state_a["clearing"].get("B", 0) + state_b["clearing"].get("A", 0) == 0


async def clearing(http: aiohttp.ClientSession, d: Deployment) -> dict[str, int]:
    _, state = await call(http, d, "/test/state")
    return dict(state["clearing"])


@pytest.mark.asyncio(loop_scope="module")
class TestTwoDeployments:
    async def test_transfers_both_ways(self, deployments: dict[str, Deployment]) -> None:
        a, b = deployments["A"], deployments["B"]
        async with aiohttp.ClientSession() as http:
            before = await clearing(http, a)
            await call(http, a, "/test/fund", {"id": "f1", "user": "user:e1", "minutes": 100})
            await call(http, b, "/test/fund", {"id": "f2", "user": "user:g1", "minutes": 50})
            status, out = await call(
                http, a, "/test/transfer", transfer("t1", "B", "user:e1", "user:h1", 40)
            )
            assert (status, out["state"]) == (200, "posted")
            status, out = await call(
                http, b, "/test/transfer", transfer("t2", "A", "user:g1", "user:k1", 15)
            )
            assert (status, out["state"]) == (200, "posted")
            _, state_a = await call(http, a, "/test/state")
            _, state_b = await call(http, b, "/test/state")
            assert state_a["balances"]["user:e1"] == 60 and state_a["balances"]["user:k1"] == 15
            assert state_b["balances"]["user:h1"] == 40 and state_b["balances"]["user:g1"] == 35
            assert state_a["clearing"]["B"] - before.get("B", 0) == 25
            await assert_mirrored(http, a, b)

    async def test_home_killed_after_hold_resumes(self, deployments: dict[str, Deployment]) -> None:
        a, b = deployments["A"], deployments["B"]
        async with aiohttp.ClientSession() as http:
            await call(http, a, "/test/fund", {"id": "f3", "user": "user:e3", "minutes": 100})
            body = {**transfer("t3", "B", "user:e3", "user:h3", 40), "crash_at": "hold"}
            with pytest.raises(aiohttp.ClientError):
                await call(http, a, "/test/transfer", body)
            await a.stop()
            await a.start()
            _, state = await call(http, a, "/test/state")
            assert state["open_holds"] == 1 and state["balances"]["user:e3"] == 60
            _, resumed = await call(http, a, "/test/resume", {})
            assert resumed == {"t3": "posted"}
            await assert_mirrored(http, a, b)

    async def test_home_killed_after_credit_resumes(
        self, deployments: dict[str, Deployment]
    ) -> None:
        a, b = deployments["A"], deployments["B"]
        async with aiohttp.ClientSession() as http:
            _, before_b = await call(http, b, "/test/state")
            await call(http, a, "/test/fund", {"id": "f4", "user": "user:e4", "minutes": 100})
            body = {**transfer("t4", "B", "user:e4", "user:h4", 40), "crash_at": "answer"}
            with pytest.raises(aiohttp.ClientError):
                await call(http, a, "/test/transfer", body)
            await a.stop()
            await a.start()
            _, resumed = await call(http, a, "/test/resume", {})
            assert resumed == {"t4": "posted"}
            _, state_b = await call(http, b, "/test/state")
            assert state_b["balances"]["user:h4"] == 40
            assert state_b["size"] == before_b["size"] + 1
            await assert_mirrored(http, a, b)

    async def test_serving_side_down_keeps_hold_until_back(
        self, deployments: dict[str, Deployment]
    ) -> None:
        a, b = deployments["A"], deployments["B"]
        async with aiohttp.ClientSession() as http:
            await call(http, a, "/test/fund", {"id": "f5", "user": "user:e5", "minutes": 100})
            await b.stop()
            _, out = await call(
                http, a, "/test/transfer", transfer("t5", "B", "user:e5", "user:h5", 40)
            )
            assert out["state"] == "pending"
            await b.start()
            _, resumed = await call(http, a, "/test/resume", {})
            assert resumed == {"t5": "posted"}
            await assert_mirrored(http, a, b)

    async def test_refused_credit_voids(self, deployments: dict[str, Deployment]) -> None:
        a, b = deployments["A"], deployments["B"]
        async with aiohttp.ClientSession() as http:
            await call(http, a, "/test/fund", {"id": "f6", "user": "user:e6", "minutes": 100})
            # The payee is the serving district's issuance account: B refuses to credit it.
            _, out = await call(
                http, a, "/test/transfer", transfer("t6", "B", "user:e6", "issuance", 40)
            )
            assert out["state"] == "voided"
            _, state_a = await call(http, a, "/test/state")
            assert state_a["balances"]["user:e6"] == 100
            await assert_mirrored(http, a, b)

    async def test_forged_message_refused_by_server(
        self, deployments: dict[str, Deployment]
    ) -> None:
        b = deployments["B"]
        async with aiohttp.ClientSession() as http:
            _, before = await call(http, b, "/test/state")
            forged = sign_message(
                MALLORY,
                kind="credit",
                sender="A",
                recipient="B",
                body=REQUEST.to_json(),
                at_ms=NOW,
            )
            status, reply = await call(http, b, "/ledger/federation/credit", forged)
            assert status == 401 and reply["error"]["code"] == "ledger.bad_signature"
            _, after = await call(http, b, "/test/state")
            assert after["size"] == before["size"]
