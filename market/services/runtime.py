"""Process-wide resources created in the lifespan and reached through `request.state`."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from market.security.fieldcrypto import Keyring
from market.security.throttle import LoginThrottle, ThrottleLimits
from market.security.tokens import TokenSigner
from market.services.ledger import LedgerGateway, open_ledger
from market.settings import Settings

if TYPE_CHECKING:
    from market.realtime.service import RealtimeService


def registration_limiter() -> LoginThrottle:
    """Every registration counts as an attempt: each costs a scrypt hash and tells whether a
    phone is taken, so one address may try only so many per hour."""
    per_phone = ThrottleLimits(5, 3600, 300, 3600, 86400)
    per_address = ThrottleLimits(20, 3600, 600, 6 * 3600, 86400)
    return LoginThrottle(account_limits=per_phone, client_limits=per_address)


@dataclass
class Runtime:
    settings: Settings
    crypto: Keyring
    tokens: TokenSigner
    throttle: LoginThrottle
    registrations: LoginThrottle
    ledger: LedgerGateway
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Started by the app lifespan only: CLI commands need no websocket hub or LISTEN connection.
    realtime: RealtimeService | None = None

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            crypto=Keyring.open(settings.keys_dir / "fields"),
            tokens=TokenSigner.from_directory(settings.keys_dir / "tokens"),
            throttle=LoginThrottle(),
            registrations=registration_limiter(),
            ledger=open_ledger(settings),
        )

    def background(self, job: Coroutine[Any, Any, None]) -> None:
        """Run `job` until the service stops (the matching loop)."""
        self.tasks.append(asyncio.create_task(job))

    async def close(self) -> None:
        """Stop the background tasks."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()
        if self.realtime is not None:
            await self.realtime.close()
            self.realtime = None
        await self.ledger.close()


def runtime_of(connection: HTTPConnection) -> Runtime:
    return connection.state.runtime  # type: ignore[no-any-return]
