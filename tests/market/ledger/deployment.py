"""Set-up and probes for one `eldercare serve` deployment of the two-deployment test.

Run with ELDERCARE_DATA_DIR pointing at the deployment's directory:

    python -m tests.market.ledger.deployment setup CODE        -> JSON: key, payer, payee
    python -m tests.market.ledger.deployment transfer PAYER SERVING PAYEE MINUTES ID [expired]
    python -m tests.market.ledger.deployment balances CODE     -> JSON balances of the chain

`transfer` runs the home side in its own process against the deployment's database, exactly as
the service does (`LedgerGateway.transfer_to` with the peers of peers.json), so its messages
reach the other deployment's real `eldercare serve` over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from uuid import UUID

from market.cli import with_database
from market.migrate import apply_migrations
from market.models import District, DistrictLevel, Role, UserStatus
from market.services.auth import create_account
from market.services.ledger import open_ledger
from market.services.runtime import Runtime
from market.settings import load_settings


async def setup(code: str) -> dict[str, Any]:
    settings = load_settings()
    runtime = Runtime.start(settings)
    district = await District.create(code=code, name=code, level=DistrictLevel.district)
    users = []
    for n, role in enumerate((Role.volunteer, Role.volunteer)):
        users.append(
            await create_account(
                runtime,
                phone=f"13900000{n:03d}",
                password="federation test 1",
                name=f"{code} {n}",
                role=role,
                district=district,
                status=UserStatus.active,
            )
        )
    payer, payee = users
    gateway = runtime.ledger
    await gateway.deposit(volunteer_id=payer.id, minutes=120, entry_id="seed", actor="test")
    signer = gateway.signer(code)
    await runtime.close()
    return {
        "district": code,
        "key_id": signer.key_id,
        "public": signer.public.hex(),
        "payer": str(payer.id),
        "payee": str(payee.id),
    }


async def transfer(
    payer: str, serving: str, payee: str, minutes: int, tid: str, *, expired: bool = False
) -> dict[str, Any]:
    gateway = open_ledger(load_settings())
    try:
        outcome = await gateway.transfer_to(
            payer_id=UUID(payer),
            serving=serving,
            payee_account=payee,
            minutes=minutes,
            transfer_id=tid,
            actor="test",
            # An expired deadline makes the home side send `abort` instead of `credit`.
            deadline_ms=gateway.clock() - 1 if expired else None,
        )
    finally:
        await gateway.close()
    return {"state": outcome.state.value, "reason": outcome.reason}


async def balances(code: str) -> dict[str, int]:
    gateway = open_ledger(load_settings())
    try:
        return await gateway.store.balances(code)
    finally:
        await gateway.close()


def main(argv: list[str]) -> None:
    settings = load_settings()
    command, *args = argv
    if command == "setup":
        asyncio.run(apply_migrations(settings.database_url))
        work: Any = lambda: setup(args[0])  # noqa: E731
    elif command == "transfer":
        expired = args[5:] == ["expired"]
        work = lambda: transfer(*args[:3], int(args[3]), args[4], expired=expired)  # noqa: E731
    else:
        work = lambda: balances(args[0])  # noqa: E731
    print(json.dumps(asyncio.run(with_database(settings, work))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
