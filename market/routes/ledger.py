"""The ledger's HTTP API: checkpoints, proofs, keys, accounts, receipts, gifts and federation.

Read rights are in `market.services.ledger_reads`; proofs and checkpoints are public so that
anyone can check the log. District paths use the ledger chain name, a top-level district code.
"""

from __future__ import annotations

import re
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ledger.entries import check_text
from ledger.errors import InvalidEntry
from market.errors import InvalidInput, NotFound
from market.models import Role
from market.routes.spec import ALL_ROLES, endpoint
from market.schemas.common import DISTRICT_CODE_PATTERN
from market.schemas.ledger import (
    CategoryReportQuery,
    Cosign,
    DonateHours,
    GiftHours,
    RegisterWitnessKey,
)
from market.schemas.parse import json_body, parse_body, parse_query, path_uuid
from market.services import auth, checkpoints, ledger_actions, ledger_reads
from market.services.ledger import LedgerGateway
from market.services.runtime import runtime_of

HOLDERS = [Role.volunteer, Role.elder, Role.family]
MAX_INT = 2**53 - 1
# ASCII digits only: str.isdigit() and int() also take "²" or full-width "１", which then
# either raise (a 500) or quietly parse as a number nobody typed.
_SIGNED = re.compile(r"-?[0-9]{1,16}")
_UNSIGNED = re.compile(r"[0-9]{1,16}")


def _gateway(request: Request) -> LedgerGateway:
    return runtime_of(request).ledger


def _parse_int(name: str, raw: str, *, signed: bool) -> int:
    pattern, what = (_SIGNED, "an integer") if signed else (_UNSIGNED, "a non-negative integer")
    text = raw.strip()
    if pattern.fullmatch(text) is None or abs(int(text)) > MAX_INT:
        raise InvalidInput(
            "invalid_input",
            f"{name} must be {what}",
            [{"field": name, "problem": f"must be {what}"}],
        )
    return int(text)


def _int(
    request: Request, name: str, default: int | None = None, *, signed: bool = True
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return _parse_int(name, raw, signed=signed)


def _required(request: Request, name: str) -> int:
    value = _int(request, name)
    if value is None:
        raise InvalidInput(
            "invalid_input", f"{name} is required", [{"field": name, "problem": "is required"}]
        )
    return value


def _district(request: Request) -> str:
    """The chain named in the path, checked before any lookup: a code no district can have
    (too long, odd characters) is refused here instead of reaching the database's column."""
    raw = str(request.path_params["district"])
    if re.fullmatch(DISTRICT_CODE_PATTERN, raw) is None:
        raise InvalidInput(
            "invalid_district",
            f"{raw[:40]!r} is not a district code",
            [{"field": "district", "problem": f"must match {DISTRICT_CODE_PATTERN}"}],
        )
    return raw


def _entry_id(raw: str) -> str:
    # An id the ledger could never have stored (too long, a NUL or other control character
    # PostgreSQL refuses in text) is refused before it reaches the column.
    try:
        check_text("entry_id", raw)
    except InvalidEntry as exc:
        raise InvalidInput(
            "invalid_input",
            f"entry_id {exc.reason}",
            [{"field": "entry_id", "problem": exc.reason}],
        ) from None
    return raw


@endpoint(
    summary="Every district chain with its size and latest checkpoint", tag="ledger", roles=None
)
async def list_chains(request: Request) -> Response:
    gateway = _gateway(request)
    chains = []
    for chain in await gateway.local_chains():
        latest = await checkpoints.latest_checkpoint(chain)
        chains.append(
            {
                "district": chain,
                "size": (await gateway.store.head(chain)).size,
                "checkpoint": latest.to_json() if latest else None,
            }
        )
    return JSONResponse({"districts": chains})


@endpoint(
    summary="The latest signed checkpoint of a district and its co-signatures",
    tag="ledger",
    roles=None,
)
async def latest_checkpoint(request: Request) -> Response:
    gateway = _gateway(request)
    cp = await checkpoints.require_latest(gateway, _district(request))
    return JSONResponse((await checkpoints.witnessed(gateway, cp)).to_json())


@endpoint(
    summary="Signed checkpoints of a district, oldest first (?after=size&limit=)",
    tag="ledger",
    roles=None,
)
async def checkpoint_history(request: Request) -> Response:
    gateway = _gateway(request)
    chain = _district(request)
    await gateway.district_of_chain(chain)
    after = _int(request, "after", -1)
    limit = _int(request, "limit", checkpoints.HISTORY_PAGE, signed=False)
    assert after is not None and limit is not None
    if not 1 <= limit <= checkpoints.HISTORY_PAGE:
        raise InvalidInput(
            "invalid_input",
            f"limit must be 1-{checkpoints.HISTORY_PAGE}",
            [{"field": "limit", "problem": f"must be 1-{checkpoints.HISTORY_PAGE}"}],
        )
    rows = await checkpoints.checkpoint_history(chain, after=after, limit=limit)
    return JSONResponse({"district": chain, "checkpoints": [cp.to_json() for cp in rows]})


@endpoint(
    summary="Co-sign a checkpoint as an auditor",
    tag="ledger",
    roles=[Role.auditor],
    body=Cosign,
    status=201,
    description="Sign ledger.witness.cosignature_message (canonical JSON of the checkpoint's "
    "district, size, root, digest, your key id and at_ms) with your Ed25519 key.",
)
async def cosign(request: Request) -> Response:
    size = _parse_int("size", str(request.path_params["size"]), signed=False)
    cmd = await parse_body(request, Cosign)
    view = await checkpoints.auditor_cosign(
        _gateway(request),
        auth.current(request),
        _district(request),
        size,
        public=bytes.fromhex(cmd.public_key),
        signature=bytes.fromhex(cmd.signature),
        at_ms=cmd.at_ms,
    )
    return JSONResponse(view.to_json(), status_code=201)


@endpoint(
    summary="Register your witness key as an auditor (once; it cannot be replaced)",
    tag="ledger",
    roles=[Role.auditor],
    body=RegisterWitnessKey,
    status=201,
    description="Co-signatures are checked against this key only. 201 when registered, 200 when "
    "the same key was already registered, 409 for a different one.",
)
async def register_witness_key(request: Request) -> Response:
    cmd = await parse_body(request, RegisterWitnessKey)
    body, created = await checkpoints.register_auditor_key(
        _gateway(request), auth.current(request), bytes.fromhex(cmd.public_key)
    )
    return JSONResponse(body, status_code=201 if created else 200)


@endpoint(
    summary="Entries of a district chain by seq range (?start=&end=, at most 500)",
    tag="ledger",
    roles=[Role.auditor, Role.centre_admin],
)
async def entries(request: Request) -> Response:
    start = _required(request, "start")
    end = _required(request, "end")
    size, rows = await ledger_reads.entries_page(
        _gateway(request), auth.current(request), _district(request), start, end
    )
    return JSONResponse(
        {
            "district": _district(request),
            "size": size,
            "entries": [ledger_reads.entry_json(e) for e in rows],
        }
    )


@endpoint(
    summary="Inclusion proof of an entry (?seq= or ?entry_id=, optional ?size=)",
    tag="ledger",
    roles=None,
    description="Against the latest checkpoint unless a tree size is given. Hashes only.",
)
async def proof(request: Request) -> Response:
    raw_entry_id = request.query_params.get("entry_id")
    entry_id = None if raw_entry_id is None else _entry_id(raw_entry_id)
    result = await ledger_reads.inclusion(
        _gateway(request),
        _district(request),
        seq=_int(request, "seq"),
        entry_id=entry_id,
        size=_int(request, "size", signed=False),
    )
    return JSONResponse(result)


@endpoint(summary="Consistency proof between two tree sizes (?old=&new=)", tag="ledger", roles=None)
async def consistency(request: Request) -> Response:
    result = await ledger_reads.consistency(
        _gateway(request), _district(request), _required(request, "old"), _required(request, "new")
    )
    return JSONResponse(result)


@endpoint(
    summary="Public keys of a district (with the rotation chain) and its witnesses",
    tag="ledger",
    roles=None,
)
async def keys(request: Request) -> Response:
    return JSONResponse(await ledger_reads.public_keys(_gateway(request), _district(request)))


@endpoint(
    summary="A self-contained receipt for one of your entries",
    tag="ledger",
    roles=ALL_ROLES,
    description="Entry, inclusion proof, witnessed checkpoint and public keys; verify offline "
    "with ledger.receipt.verify_receipt. 409 until a witnessed checkpoint covers the entry.",
)
async def receipt(request: Request) -> Response:
    body = await ledger_reads.receipt(
        _gateway(request),
        auth.current(request),
        _district(request),
        _entry_id(str(request.path_params["entry_id"])),
    )
    filename = f"receipt-{_district(request)}-{body['index']}.json"
    return JSONResponse(body, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _user(request: Request) -> UUID:
    return path_uuid(request, "user_id")


@endpoint(summary="An account's balance", tag="ledger", roles=ALL_ROLES)
async def balance(request: Request) -> Response:
    result = await ledger_reads.balance(_gateway(request), auth.current(request), _user(request))
    return JSONResponse(result)


@endpoint(
    summary="An account's statement with an inclusion proof per line (?after=seq&limit=)",
    tag="ledger",
    roles=ALL_ROLES,
)
async def statement(request: Request) -> Response:
    after = _int(request, "after", -1)
    limit = _int(request, "limit", 50, signed=False)
    assert after is not None and limit is not None
    result = await ledger_reads.statement(
        _gateway(request), auth.current(request), _user(request), after=after, limit=limit
    )
    return JSONResponse(result)


@endpoint(
    summary="Net minutes owed between districts",
    tag="ledger",
    roles=[Role.centre_admin, Role.auditor],
)
async def settlement(request: Request) -> Response:
    return JSONResponse(await ledger_reads.settlement(_gateway(request), auth.current(request)))


@endpoint(
    summary="Minutes by service category and month of a district chain",
    tag="ledger",
    roles=[Role.auditor, Role.centre_admin],
    query=CategoryReportQuery,
    description="For each local month (Asia/Shanghai) from `first` to `last` (YYYY-MM, both "
    "included, at most 36; `last` defaults to `first`): the chain's entries made in it summed "
    "by service category and kind (`deposit`, `redeem`, `reverse`, `hold_pending`, ...), each "
    "with its number of entries and minutes. Kinds are as stored, nothing netted: a reversal "
    "is its own line, a hold counts when placed and its post or void on their own lines. "
    "`category: null` totals the entries without a category. `?category=` keeps one service. "
    "For auditors and the chain's centre admins; 422 for a bad month, a range backwards or "
    "longer than 36 months, or an unknown category.",
)
async def categories(request: Request) -> Response:
    query = parse_query(request, CategoryReportQuery)
    result = await ledger_reads.categories(
        _gateway(request), auth.current(request), _district(request), query
    )
    return JSONResponse(result)


@endpoint(
    summary="Gift hours to an approved linked relative",
    tag="ledger",
    roles=HOLDERS,
    body=GiftHours,
    status=201,
)
async def gift(request: Request) -> Response:
    cmd = await parse_body(request, GiftHours)
    result = await ledger_actions.gift_hours(_gateway(request), auth.current(request), cmd)
    return JSONResponse(result, status_code=201)


@endpoint(
    summary="Donate hours to the district pool",
    tag="ledger",
    roles=HOLDERS,
    body=DonateHours,
    status=201,
)
async def donate(request: Request) -> Response:
    cmd = await parse_body(request, DonateHours)
    result = await ledger_actions.donate_hours(_gateway(request), auth.current(request), cmd)
    return JSONResponse(result, status_code=201)


@endpoint(
    summary="Federation message from another deployment (credit or abort a transfer)",
    tag="ledger",
    roles=None,
    description="Authenticated by the sending district's Ed25519 signature, not by a token.",
    raw_body=True,
)
async def federation(request: Request) -> Response:
    federation = _gateway(request).federation
    if federation is None:
        raise NotFound("ledger.federation_off", "this deployment takes no federation messages")
    envelope = await json_body(request)
    status, body = await federation.handle(str(request.path_params["kind"]), envelope)
    return JSONResponse(body, status_code=status)


D = "/api/v1/ledger/districts/{district}"
routes = [
    Route("/api/v1/ledger/districts", list_chains, methods=["GET"]),
    Route(f"{D}/checkpoint", latest_checkpoint, methods=["GET"]),
    Route(f"{D}/checkpoints", checkpoint_history, methods=["GET"]),
    Route(f"{D}/checkpoints/{{size}}/cosignatures", cosign, methods=["POST"]),
    Route(f"{D}/entries", entries, methods=["GET"]),
    Route(f"{D}/categories", categories, methods=["GET"]),
    Route(f"{D}/entries/{{entry_id}}/receipt", receipt, methods=["GET"]),
    Route(f"{D}/proof", proof, methods=["GET"]),
    Route(f"{D}/consistency", consistency, methods=["GET"]),
    Route(f"{D}/keys", keys, methods=["GET"]),
    Route("/api/v1/ledger/accounts/{user_id}/balance", balance, methods=["GET"]),
    Route("/api/v1/ledger/accounts/{user_id}/statement", statement, methods=["GET"]),
    Route("/api/v1/ledger/settlement", settlement, methods=["GET"]),
    Route("/api/v1/ledger/witness-key", register_witness_key, methods=["POST"]),
    Route("/api/v1/ledger/gifts", gift, methods=["POST"]),
    Route("/api/v1/ledger/donations", donate, methods=["POST"]),
    Route("/api/v1/ledger/federation/{kind}", federation, methods=["POST"]),
]
