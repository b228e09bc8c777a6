"""Cross-district redemption between two deployments: two real `eldercare serve` processes.

Each deployment has its own SQLite database and key directory and knows the other through
`<keys_dir>/ledger/peers.json`. The home side's signed messages reach the serving side's
`POST /api/v1/ledger/federation/credit` over loopback HTTP (aiohttp).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    code: str
    data: Path
    port: int
    info: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env["ELDERCARE_DATA_DIR"] = str(self.data)
        env["ELDERCARE_LEDGER_KEY_PASSPHRASE"] = f"passphrase of {self.code}"
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str) -> Any:
        result = subprocess.run(
            [sys.executable, "-m", "tests.market.ledger.deployment", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    @property
    def log(self) -> Path:
        return self.data / "serve.log"

    def serve(self) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "market.cli", "serve", "--port", str(self.port), "--quiet"],
                env=self.env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(self.log.read_text()[-3000:])
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"{self.code} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def write_peers(home: Deployment, peer: Deployment) -> None:
    path = home.data / "keys" / "ledger" / "peers.json"
    peers = {
        "districts": {
            peer.code: {
                "url": f"{peer.url}/api/v1",
                "keys": {peer.info["key_id"]: peer.info["public"]},
            }
        }
    }
    path.write_text(json.dumps(peers))


@pytest.fixture(scope="module")
def deployments(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Deployment, Deployment]]:
    base = tmp_path_factory.mktemp("two-deployments")
    a = Deployment("east", base / "a", free_port(), {})
    b = Deployment("west", base / "b", free_port(), {})
    for d in (a, b):
        d.data.mkdir()
        d.info = d.run("setup", d.code)
    write_peers(a, b)
    write_peers(b, a)
    try:
        a.serve()
        b.serve()
        yield a, b
    finally:
        a.stop()
        b.stop()


def test_transfer_between_deployments_mirrors_clearing(
    deployments: tuple[Deployment, Deployment],
) -> None:
    a, b = deployments
    payee = f"user:{b.info['payee']}"
    outcome = a.run("transfer", a.info["payer"], "west", payee, "45", "fed-ok")
    assert outcome["state"] == "posted", outcome
    in_a, in_b = a.run("balances", "east"), b.run("balances", "west")
    assert in_a[f"user:{a.info['payer']}"] == 75
    assert in_b[payee] == 45
    assert in_a["clearing:west"] == 45
    assert in_b["clearing:east"] == -45  # clearing:B in A mirrors clearing:A in B
    again = a.run("transfer", a.info["payer"], "west", payee, "45", "fed-ok")
    assert again["state"] == "posted"
    assert b.run("balances", "west")[payee] == 45


def test_refusal_by_the_serving_deployment_voids_the_hold(
    deployments: tuple[Deployment, Deployment],
) -> None:
    a, b = deployments
    before_a, before_b = a.run("balances", "east"), b.run("balances", "west")
    stranger = f"user:{uuid.uuid4()}"  # no account in west
    outcome = a.run("transfer", a.info["payer"], "west", stranger, "30", "fed-refused")
    assert outcome["state"] == "voided", outcome
    assert "unknown_payee" in outcome["reason"]
    assert a.run("balances", "east") == before_a  # the hold was voided: minutes are back
    assert b.run("balances", "west") == before_b


def test_expired_transfer_is_aborted_over_http_and_voided(
    deployments: tuple[Deployment, Deployment],
) -> None:
    a, b = deployments
    before_a, before_b = a.run("balances", "east"), b.run("balances", "west")
    payee = f"user:{b.info['payee']}"
    outcome = a.run("transfer", a.info["payer"], "west", payee, "30", "fed-late", "expired")
    assert outcome["state"] == "voided", outcome
    assert "aborted" in outcome["reason"]
    assert a.run("balances", "east") == before_a
    assert b.run("balances", "west") == before_b


def test_forged_message_is_refused_by_the_real_route(
    deployments: tuple[Deployment, Deployment],
) -> None:
    _, b = deployments
    envelope = {
        "v": 1,
        "type": "credit",
        "from": "east",
        "to": "west",
        "key": "0" * 32,
        "at": int(time.time() * 1000),
        "body": {},
        "sig": "00" * 64,
    }
    response = httpx.post(f"{b.url}/api/v1/ledger/federation/credit", json=envelope)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ledger.bad_signature"
    bad = httpx.post(
        f"{b.url}/api/v1/ledger/federation/credit",
        content=b"{",
        headers={"content-type": "application/json"},
    )
    assert bad.status_code == 400
    assert httpx.post(f"{b.url}/api/v1/ledger/federation/delete", json=envelope).status_code == 404
