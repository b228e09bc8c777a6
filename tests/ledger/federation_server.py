"""One deployment for the federation test: a district on its own SQLite file, served by aiohttp.

`python -m tests.ledger.federation_server CONFIG.json` serves the federation endpoint plus a
few control routes the test drives (fund, transfer, resume, state). CONFIG:
`{"district", "db", "port", "seed" (hex Ed25519 private key), "peers": {district: {"url",
"keys": {key_id: public hex}}}}`. Prints `ready` once it listens.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.entries import Kind
from ledger.errors import LedgerError
from ledger.federation import FederationEndpoint, HttpServing, aiohttp_app
from ledger.keys import Signer
from ledger.rules import Proposal
from ledger.service import append
from ledger.storage.database import open_store
from ledger.transfer import (
    TransferRequest,
    clearing_positions,
    resume_transfers,
    run_transfer,
)


def now_ms() -> int:
    return int(time.time() * 1000)


async def serve(config: dict[str, Any]) -> None:
    district = config["district"]
    signer = Signer.from_private(
        Ed25519PrivateKey.from_private_bytes(bytes.fromhex(config["seed"]))
    )
    trusted = {
        peer: {kid: bytes.fromhex(pub) for kid, pub in spec["keys"].items()}
        for peer, spec in config["peers"].items()
    }
    async with open_store(config["db"], migrate=True) as store, aiohttp.ClientSession() as http:
        endpoint = FederationEndpoint(store, {district: signer}, trusted, now_ms)

        def network(serving: str) -> HttpServing:
            url = config["peers"][serving]["url"]
            return HttpServing(district, serving, url, signer, trusted, now_ms, http, 3.0)

        async def fund(request: web.Request) -> web.Response:
            body = await request.json()
            p = Proposal(
                district,
                body["id"],
                Kind.DEPOSIT,
                "issuance",
                body["user"],
                body["minutes"],
                "test",
                1,
                now_ms(),
            )
            entry = await append(store, p)
            return web.json_response({"seq": entry.seq})

        async def transfer(request: web.Request) -> web.Response:
            body = await request.json()
            crash_at = body.pop("crash_at", None)

            async def crash(step: str) -> None:
                if step == crash_at:
                    os._exit(17)  # die like a killed process, nothing flushed or closed

            req = TransferRequest(home=district, actor="test", policy=1, **body)
            try:
                out = await run_transfer(store, req, network=network, now_ms=now_ms(), crash=crash)
            except LedgerError as error:
                return web.json_response({"error": error.code}, status=409)
            return web.json_response({"state": out.state, "reason": out.reason})

        async def resume(request: web.Request) -> web.Response:
            outcomes = await resume_transfers(store, network=network, now_ms=now_ms())
            return web.json_response({o.transfer_id: o.state for o in outcomes})

        async def state(request: web.Request) -> web.Response:
            head = await store.head(district)
            return web.json_response(
                {
                    "size": head.size,
                    "balances": await store.balances(district),
                    "clearing": await clearing_positions(store, district),
                    "open_holds": len(await store.open_holds(district)),
                }
            )

        app = aiohttp_app(endpoint)
        app.router.add_post("/test/fund", fund)
        app.router.add_post("/test/transfer", transfer)
        app.router.add_post("/test/resume", resume)
        app.router.add_get("/test/state", state)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", config["port"]).start()
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as handle:
        asyncio.run(serve(json.load(handle)))
