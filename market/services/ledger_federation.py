"""Cross-district redemption with other deployments: peers, the HTTP client side, the endpoint.

Peers are trust anchors, so they live beside the keys, not in the database:
`<keys_dir>/ledger/peers.json`

    {"districts": {"330110": {"url": "https://other.example/api/v1",
                              "keys": {"<key id>": "<hex Ed25519 public key>"}}}}

A transfer toward a peer district goes through `ledger.federation.HttpServing` (signed with the
home district's key, answers checked against the peer's keys); the peer's requests arrive at
`POST /api/v1/ledger/federation/{credit,abort}` and are answered by
`ledger.federation.FederationEndpoint` for the local districts, signed with their keys. A
credit for a payee who has no account in the serving district is refused there, durably, so
the home district voids its hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import aiohttp

from ledger.entries import check_district
from ledger.errors import LedgerError
from ledger.federation import FederationEndpoint, HttpServing, open_message
from ledger.keys import is_key_id
from ledger.service import refuse
from ledger.transfer import CreditAnswer, CreditRequest, credit_id
from market.models import User
from market.services.ledger import LedgerGateway, ledger_dir
from market.settings import Settings

PEERS_FILE = "peers.json"


class PeersInvalid(ValueError):
    """peers.json is malformed; the message says where."""


@dataclass(frozen=True)
class Peer:
    district: str
    url: str
    keys: dict[str, bytes]


def load_peers(settings: Settings) -> dict[str, Peer]:
    path = ledger_dir(settings) / PEERS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text("utf-8"))
        peers = {}
        for district, peer in data["districts"].items():
            check_district(district)
            keys = {}
            for key_id, public in peer["keys"].items():
                if not is_key_id(key_id):
                    raise PeersInvalid(f"{district}: {key_id!r} is not a key id")
                keys[key_id] = bytes.fromhex(public)
            url = peer["url"]
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise PeersInvalid(f"{district}: url must be http(s)")
            peers[district] = Peer(district, url, keys)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LedgerError) as error:
        raise PeersInvalid(f"{path}: {error}") from error
    return peers


@dataclass
class PeerServing:
    """The serving side of a peer district, for transfers from any local home district."""

    gateway: LedgerGateway
    peer: Peer
    federation: Federation

    def _client(self, home: str) -> HttpServing:
        return HttpServing(
            home=home,
            serving=self.peer.district,
            base_url=self.peer.url,
            signer=self.gateway.signer(home),
            trusted={self.peer.district: self.peer.keys},
            clock=self.gateway.clock,
            session=self.federation.session(),
        )

    async def credit(self, request: CreditRequest) -> CreditAnswer:
        return await self._client(request.home).credit(request)

    async def abort(self, request: CreditRequest) -> CreditAnswer:
        return await self._client(request.home).abort(request)


@dataclass
class Federation:
    gateway: LedgerGateway
    peers: dict[str, Peer]
    _session: aiohttp.ClientSession | None = field(default=None)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def serving(self, district: str) -> PeerServing | None:
        peer = self.peers.get(district)
        return PeerServing(self.gateway, peer, self) if peer is not None else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _trusted(self) -> dict[str, dict[str, bytes]]:
        return {d: p.keys for d, p in self.peers.items()}

    async def _refuse_unknown_payee(self, envelope: Any, local: list[str]) -> None:
        """Make the serving side's "no" final for a credit to someone who is not ours.

        Only for a message that verifies: nobody else can make us refuse a transfer. The
        endpoint then answers from that durable refusal, signed, like any other answer.
        """
        recipient = envelope.get("to") if isinstance(envelope, dict) else None
        if recipient not in local:
            return
        try:
            sender, body = open_message(
                envelope,
                kind="credit",
                recipient=recipient,
                trusted=self._trusted(),
                now_ms=self.gateway.clock(),
            )
            request = CreditRequest.from_json(body)
        except LedgerError:
            return  # the endpoint answers these with its own error
        if (request.home, request.serving) != (sender, recipient):
            return
        if await self._payee_chain(request.payee) == recipient:
            return
        if await self.gateway.store.entry(recipient, credit_id(request.transfer_id)) is None:
            await refuse(
                self.gateway.store,
                request.proposal(self.gateway.clock()),
                code="market.unknown_payee",
                message=f"{request.payee} has no account in district {recipient}",
            )

    async def _payee_chain(self, account: str) -> str | None:
        owner = account.removeprefix("user:")
        try:
            user_id = UUID(owner)
        except ValueError:
            return None
        user = await User.get_or_none(id=user_id)
        if user is None:
            return None
        return await self.gateway.chain_of_district(user.district_id)  # type: ignore[attr-defined]

    async def handle(self, kind: str, envelope: Any) -> tuple[int, dict[str, Any]]:
        local = await self.gateway.local_chains()
        if kind == "credit":
            await self._refuse_unknown_payee(envelope, local)
        endpoint = FederationEndpoint(
            store=self.gateway.store,
            signers={chain: self.gateway.signer(chain) for chain in local},
            trusted=self._trusted(),
            clock=self.gateway.clock,
            limits=self.gateway.limits,
        )
        return await endpoint.handle(kind, envelope)


def install(gateway: LedgerGateway, settings: Settings) -> Federation:
    """Connect the gateway to the peers of peers.json (none: local districts only)."""
    federation = Federation(gateway, load_peers(settings))
    gateway.remote = federation.serving
    gateway.federation = federation
    gateway.on_close.append(federation.close)
    return federation
