"""Process-wide resources created in the lifespan and reached through `request.state`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from market.security.fieldcrypto import Keyring
from market.security.throttle import LoginThrottle
from market.security.tokens import TokenSigner
from market.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    crypto: Keyring
    tokens: TokenSigner
    throttle: LoginThrottle

    @classmethod
    def start(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            crypto=Keyring.open(settings.keys_dir / "fields"),
            tokens=TokenSigner.from_directory(settings.keys_dir / "tokens"),
            throttle=LoginThrottle(),
        )

    async def close(self) -> None:
        """Nothing to release yet; background tasks will be stopped here."""


def runtime_of(connection: HTTPConnection) -> Runtime:
    return connection.state.runtime  # type: ignore[no-any-return]
