"""The cross-district transfer between two deployments, over HTTP, with signed messages.

Envelope (JSON):

    {"v":1,"type":"credit"|"abort"|"answer","from":"A","to":"B","key":"<key id>",
     "at":<unix ms>,"body":{...},"sig":"<hex Ed25519 signature>"}

The signature covers `SIGNING_TAG || canonical JSON of the envelope without "sig"`, made with
the sending district's key (`ledger.keys.Signer`). The receiver accepts a message only if it is
addressed to it, comes from a district it trusts, carries a key id it knows for that district,
verifies, and is not older or newer than `max_skew_ms`. The serving district's answer is signed
the same way and checked by the home district, so nobody in between can turn a credit into a
refusal (which would make the home side void a credited transfer).

Replays are harmless by construction: a transfer's steps have derived ids (`transfer id +
step`), so a replayed credit returns the same answer and writes nothing, a replayed credit after
an abort is still refused, and a message cannot be moved to another transfer, district or
step without breaking its signature.

Two pieces:
- `HttpServing`: the home side's `ServingSide` over aiohttp. Anything but a valid signed answer
  (connection error, timeout, non-200, bad signature) is a `TransportError`: the hold stays open
  and `resume_transfers` asks again later.
- `FederationEndpoint`: the serving side, independent of any web framework: `handle(kind,
  envelope) -> (status, json)`. `aiohttp_app(endpoint)` mounts it at
  `POST /ledger/federation/{credit,abort}`; the market mounts the same handler in its routes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from ledger.canonical import encode
from ledger.errors import BadSignature, LedgerError
from ledger.keys import Signer, verify_signature
from ledger.rules import Limits
from ledger.service import DEFAULT_LIMITS
from ledger.storage.base import ChainStore
from ledger.transfer import (
    CreditAnswer,
    CreditRequest,
    TransportError,
    serve_abort,
    serve_credit,
)

VERSION = 1
SIGNING_TAG = b"eldercare.federation.v1\n"
REQUEST_TYPES = ("credit", "abort")
PATH = "/ledger/federation/{type}"
DEFAULT_MAX_SKEW_MS = 10 * 60 * 1000

# district -> key id -> raw Ed25519 public key
TrustedKeys = Mapping[str, Mapping[str, bytes]]


def sign_message(
    signer: Signer, *, kind: str, sender: str, recipient: str, body: Mapping[str, Any], at_ms: int
) -> dict[str, Any]:
    envelope: dict[str, Any] = {
        "v": VERSION,
        "type": kind,
        "from": sender,
        "to": recipient,
        "key": signer.key_id,
        "at": at_ms,
        "body": dict(body),
    }
    envelope["sig"] = signer.sign(SIGNING_TAG + encode(envelope)).hex()
    return envelope


def open_message(
    envelope: Mapping[str, Any],
    *,
    kind: str,
    recipient: str,
    trusted: TrustedKeys,
    now_ms: int,
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS,
) -> tuple[str, dict[str, Any]]:
    """Check an envelope and return (sender, body); `BadSignature` says why it is refused."""
    if not isinstance(envelope, Mapping):
        raise BadSignature("message is not a JSON object")
    expected = {"v", "type", "from", "to", "key", "at", "body", "sig"}
    if set(envelope) != expected:
        raise BadSignature(f"message fields {sorted(envelope)} are not {sorted(expected)}")
    if envelope["v"] != VERSION or envelope["type"] != kind:
        raise BadSignature(f"expected a v{VERSION} {kind!r} message")
    if envelope["to"] != recipient:
        raise BadSignature(f"message is addressed to {envelope['to']!r}, not {recipient!r}")
    sender = envelope["from"]
    keys = trusted.get(sender) if isinstance(sender, str) else None
    if not keys:
        raise BadSignature(f"district {sender!r} is not a trusted peer")
    public = keys.get(envelope["key"]) if isinstance(envelope["key"], str) else None
    if public is None:
        raise BadSignature(f"unknown key {envelope['key']!r} for district {sender}")
    at = envelope["at"]
    if type(at) is not int or abs(now_ms - at) > max_skew_ms:
        raise BadSignature(f"message time {at!r} is outside the accepted window")
    if not isinstance(envelope["body"], dict) or not isinstance(envelope["sig"], str):
        raise BadSignature("malformed body or signature")
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    try:
        signature = bytes.fromhex(envelope["sig"])
        message = SIGNING_TAG + encode(unsigned)
    except (ValueError, LedgerError) as error:
        raise BadSignature(f"malformed message: {error}") from error
    if not verify_signature(public, signature, message):
        raise BadSignature(f"signature of {sender} does not verify")
    return sender, envelope["body"]


@dataclass
class HttpServing:
    """`ServingSide` of a district in another deployment, reached at `base_url`."""

    home: str
    serving: str
    base_url: str
    signer: Signer
    trusted: TrustedKeys
    clock: Callable[[], int]
    session: aiohttp.ClientSession
    timeout_s: float = 10.0

    async def credit(self, request: CreditRequest) -> CreditAnswer:
        return await self._call("credit", request)

    async def abort(self, request: CreditRequest) -> CreditAnswer:
        return await self._call("abort", request)

    async def _call(self, kind: str, request: CreditRequest) -> CreditAnswer:
        if (request.home, request.serving) != (self.home, self.serving):
            raise TransportError(f"{request.serving} is not served at {self.base_url}")
        envelope = sign_message(
            self.signer,
            kind=kind,
            sender=self.home,
            recipient=self.serving,
            body=request.to_json(),
            at_ms=self.clock(),
        )
        url = self.base_url.rstrip("/") + PATH.format(type=kind)
        try:
            async with self.session.post(
                url, json=envelope, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            ) as response:
                if response.status != 200:
                    text = await response.text()
                    raise TransportError(f"{url} answered {response.status}: {text[:200]}")
                reply = await response.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise TransportError(f"{url}: {error!r}") from error
        try:
            _, body = open_message(
                reply,
                kind="answer",
                recipient=self.home,
                trusted={self.serving: self.trusted.get(self.serving, {})},
                now_ms=self.clock(),
            )
        except BadSignature as error:
            raise TransportError(f"answer from {self.serving} refused: {error}") from error
        answer = CreditAnswer.from_json(body)
        if answer.transfer_id != request.transfer_id:
            raise TransportError("answer names another transfer")
        return answer


@dataclass
class FederationEndpoint:
    """The serving side of the federation protocol for the districts of one store."""

    store: ChainStore
    signers: Mapping[str, Signer]  # the districts this deployment serves, with their keys
    trusted: TrustedKeys
    clock: Callable[[], int]
    limits: Limits = DEFAULT_LIMITS
    max_skew_ms: int = DEFAULT_MAX_SKEW_MS

    async def handle(self, kind: str, envelope: Any) -> tuple[int, dict[str, Any]]:
        """Answer one request of type `kind`: (HTTP status, JSON body)."""
        if kind not in REQUEST_TYPES:
            return 404, _error("ledger.federation.unknown", f"no federation message {kind!r}")
        recipient = envelope.get("to") if isinstance(envelope, dict) else None
        if not isinstance(recipient, str) or recipient not in self.signers:
            return 404, _error("ledger.unknown_district", f"{recipient!r} is not served here")
        signer = self.signers[recipient]
        now = self.clock()
        try:
            sender, body = open_message(
                envelope,
                kind=kind,
                recipient=recipient,
                trusted=self.trusted,
                now_ms=now,
                max_skew_ms=self.max_skew_ms,
            )
        except BadSignature as error:
            return 401, _error(error.code, str(error))
        try:
            request = CreditRequest.from_json(body)
        except LedgerError as error:
            return 400, _error(error.code, str(error))
        if (request.home, request.serving) != (sender, recipient):
            return 403, _error("ledger.bad_signature", "the request names other districts")
        try:
            if kind == "credit":
                answer = await serve_credit(self.store, request, now_ms=now, limits=self.limits)
            else:
                answer = await serve_abort(self.store, request, now_ms=now)
        except LedgerError as error:
            return 409, _error(error.code, str(error))
        reply = sign_message(
            signer,
            kind="answer",
            sender=recipient,
            recipient=sender,
            body=answer.to_json(),
            at_ms=now,
        )
        return 200, reply


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def aiohttp_app(endpoint: FederationEndpoint) -> web.Application:
    """A minimal aiohttp app serving the federation endpoint (standalone ledger servers)."""

    async def handle(request: web.Request) -> web.Response:
        try:
            envelope = await request.json()
        except ValueError:
            return web.json_response(_error("ledger.federation.bad_json", "not JSON"), status=400)
        status, body = await endpoint.handle(request.match_info["type"], envelope)
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post(PATH, handle)
    return app
