"""Cross-district redemption (通存通兑): a two-phase transfer between two chains, one transfer id.

Home chain A (the payer's district) and serving chain B (where the service is delivered):

1. A appends `hold_pending` `xfer:<tid>:hold`: payer -> clearing:B. The minutes leave the
   payer's account at once, so nothing can spend them twice.
2. A asks B to credit. B appends `transfer_credit` `xfer:<tid>:credit`: clearing:A -> payee,
   citing the hold's hash, unless it refuses (bad payee, past the deadline, ...). B's decision
   is final and durable: either that entry exists, or the id is recorded as refused (a failed
   id), and whichever reached B's chain lock first wins. After the deadline A asks B to
   *abort* instead, which records the refusal unless the credit is already there.
3. A appends `hold_post` `xfer:<tid>:post` if B credited, `hold_void` `xfer:<tid>:void`
   (minutes back to the payer) if B refused.

Every step has a derived id, so it is idempotent, and A decides only from B's durable answer:
a crash anywhere leaves an open hold that `resume_transfers` completes or voids. If B cannot be
reached the hold stays open (the payer's minutes stay held) until B answers.

`ServingSide` is how A talks to B: `LocalServing` for two districts of one store, and
`ledger.federation.HttpServing` between deployments, with signed messages.

Settlement: in A, clearing:B holds what A's users spent in B minus what B's users spent in A,
i.e. the minutes A owes B; once no transfer is in flight, clearing:B in A mirrors clearing:A in
B (they sum to zero). `settlement_report` gives those net positions and checks the mirrors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from ledger.entries import (
    META_COUNTERPART,
    META_HOLD,
    META_TRANSFER,
    Entry,
    Kind,
    clearing_account,
)
from ledger.errors import (
    IdempotencyConflict,
    IdempotencyFailed,
    LedgerError,
    TransferConflict,
    TransferError,
)
from ledger.rules import Limits, Proposal, clearing_district
from ledger.service import DEFAULT_LIMITS, append, refuse
from ledger.storage.base import ChainStore

META_PAYEE = "payee"
META_DEADLINE = "deadline"
META_CREDIT = "credit"  # on a hold_post: hex hash of the serving chain's transfer_credit


def hold_id(transfer_id: str) -> str:
    return f"xfer:{transfer_id}:hold"


def credit_id(transfer_id: str) -> str:
    return f"xfer:{transfer_id}:credit"


def post_id(transfer_id: str) -> str:
    return f"xfer:{transfer_id}:post"


def void_id(transfer_id: str) -> str:
    return f"xfer:{transfer_id}:void"


class TransportError(TransferError):
    """The serving side could not be reached or answered garbage; the step may be retried."""


class State(StrEnum):
    PENDING = "pending"  # hold placed, the serving side's answer not known yet
    POSTED = "posted"
    VOIDED = "voided"


@dataclass(frozen=True)
class TransferRequest:
    transfer_id: str
    home: str
    serving: str
    payer: str  # user account in the home chain
    payee: str  # user account in the serving chain
    minutes: int
    actor: str
    policy: int
    deadline_ms: int
    category: str | None = None
    ref: str | None = None  # the booking this pays for


@dataclass(frozen=True)
class CreditRequest:
    """What the home district asks of the serving district (the signed federation message)."""

    transfer_id: str
    home: str
    serving: str
    payee: str
    minutes: int
    hold_hash: str
    deadline_ms: int
    actor: str
    policy: int
    category: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CreditRequest:
        names = set(cls.__dataclass_fields__)
        if set(obj) != names:
            raise TransferError(f"credit request fields {sorted(obj)} are not {sorted(names)}")
        texts = ("transfer_id", "home", "serving", "payee", "hold_hash", "actor")
        bad = [n for n in texts if not isinstance(obj[n], str)]
        bad += [n for n in ("minutes", "deadline_ms", "policy") if type(obj[n]) is not int]
        if obj["category"] is not None and not isinstance(obj["category"], str):
            bad.append("category")
        if bad:
            raise TransferError(f"credit request fields of the wrong type: {bad}")
        return cls(**obj)

    def proposal(self, at_ms: int) -> Proposal:
        return Proposal(
            district=self.serving,
            id=credit_id(self.transfer_id),
            kind=Kind.TRANSFER_CREDIT,
            debit=clearing_account(self.home),
            credit=self.payee,
            minutes=self.minutes,
            actor=self.actor,
            policy=self.policy,
            at_ms=at_ms,
            category=self.category,
            ref=None,
            meta={
                META_TRANSFER: self.transfer_id,
                META_COUNTERPART: self.home,
                META_HOLD: self.hold_hash,
            },
        )


@dataclass(frozen=True)
class CreditAnswer:
    """The serving district's final word on a transfer: credited (with the entry's hash) or not."""

    transfer_id: str
    credited: bool
    entry_hash: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CreditAnswer:
        names = set(cls.__dataclass_fields__)
        if set(obj) != names or not isinstance(obj.get("credited"), bool):
            raise TransportError(f"malformed credit answer {dict(obj)!r}")
        return cls(**obj)


class ServingSide(Protocol):
    async def credit(self, request: CreditRequest) -> CreditAnswer: ...

    async def abort(self, request: CreditRequest) -> CreditAnswer: ...


@dataclass(frozen=True)
class TransferOutcome:
    transfer_id: str
    state: State
    hold: Entry
    closing: Entry | None = None
    reason: str | None = None


# ----- the serving side ---------------------------------------------------------------------


async def serve_credit(
    store: ChainStore, request: CreditRequest, *, now_ms: int, limits: Limits = DEFAULT_LIMITS
) -> CreditAnswer:
    """Credit the payee unless refused; past the deadline this is an abort."""
    if now_ms > request.deadline_ms:
        return await serve_abort(store, request, now_ms=now_ms)
    proposal = request.proposal(now_ms)
    try:
        entry = await append(store, proposal, limits=limits)
    except IdempotencyFailed as refused:
        return CreditAnswer(request.transfer_id, False, reason=refused.first_error)
    except LedgerError as refused:
        if isinstance(refused, TransferError | IdempotencyConflict):
            raise TransferConflict(request.transfer_id, str(refused)) from refused
        return CreditAnswer(request.transfer_id, False, reason=f"{refused.code}: {refused}")
    return CreditAnswer(request.transfer_id, True, entry_hash=entry.hash.hex())


async def serve_abort(store: ChainStore, request: CreditRequest, *, now_ms: int) -> CreditAnswer:
    """Make the refusal final unless the credit is already written; report which one holds."""
    proposal = request.proposal(now_ms)
    outcome = await refuse(
        store, proposal, code="ledger.transfer_aborted", message="aborted by the home district"
    )
    if isinstance(outcome, Entry):
        return CreditAnswer(request.transfer_id, True, entry_hash=outcome.hash.hex())
    return CreditAnswer(request.transfer_id, False, reason=f"{outcome.code}: {outcome.message}")


@dataclass(frozen=True)
class LocalServing:
    """The serving side for a district in the same store (the same deployment)."""

    store: ChainStore
    clock: Callable[[], int]
    limits: Limits = DEFAULT_LIMITS

    async def credit(self, request: CreditRequest) -> CreditAnswer:
        return await serve_credit(self.store, request, now_ms=self.clock(), limits=self.limits)

    async def abort(self, request: CreditRequest) -> CreditAnswer:
        return await serve_abort(self.store, request, now_ms=self.clock())


# ----- the home side ------------------------------------------------------------------------

Network = Callable[[str], ServingSide]
CrashHook = Callable[[str], Awaitable[None]]


def hold_proposal(req: TransferRequest, *, now_ms: int) -> Proposal:
    return Proposal(
        district=req.home,
        id=hold_id(req.transfer_id),
        kind=Kind.HOLD_PENDING,
        debit=req.payer,
        credit=clearing_account(req.serving),
        minutes=req.minutes,
        actor=req.actor,
        policy=req.policy,
        at_ms=now_ms,
        category=req.category,
        ref=req.ref,
        meta={
            META_TRANSFER: req.transfer_id,
            META_COUNTERPART: req.serving,
            META_PAYEE: req.payee,
            META_DEADLINE: req.deadline_ms,
        },
    )


def credit_request(hold: Entry) -> CreditRequest:
    serving = clearing_district(hold.credit)
    payee, deadline = hold.meta.get(META_PAYEE), hold.meta.get(META_DEADLINE)
    if (
        serving is None
        or hold.kind != Kind.HOLD_PENDING
        or hold.transfer_id is None
        or not isinstance(payee, str)
        or type(deadline) is not int
    ):
        raise TransferConflict(hold.id, "not a pending hold placed by run_transfer")
    return CreditRequest(
        transfer_id=hold.transfer_id,
        home=hold.district,
        serving=serving,
        payee=payee,
        minutes=hold.minutes,
        hold_hash=hold.hash.hex(),
        deadline_ms=deadline,
        actor=hold.actor,
        policy=hold.policy,
        category=hold.category,
    )


async def _noop(step: str) -> None:
    return None


async def run_transfer(
    store: ChainStore,
    request: TransferRequest,
    *,
    network: Network,
    now_ms: int,
    limits: Limits = DEFAULT_LIMITS,
    crash: CrashHook = _noop,
) -> TransferOutcome:
    """Run (or resume) one transfer as far as it can go now. Safe to call again at any time.

    A refused hold raises its `LedgerError` (nothing was held). `crash(step)` lets tests stop
    the run between steps ("hold", "answer") the way a killed process would.
    """
    if request.home == request.serving:
        raise TransferConflict(request.transfer_id, "home and serving district are the same")
    hold = await append(store, hold_proposal(request, now_ms=now_ms), limits=limits)
    await crash("hold")
    return await settle_hold(store, hold, network=network, now_ms=now_ms, crash=crash)


async def settle_hold(
    store: ChainStore,
    hold: Entry,
    *,
    network: Network,
    now_ms: int,
    crash: CrashHook = _noop,
) -> TransferOutcome:
    """Ask the serving side for its final answer about `hold`, then post or void it."""
    tid = hold.transfer_id or hold.id
    closed = await _closing_entry(store, hold)
    if closed is not None:
        return closed
    request = credit_request(hold)
    side = network(request.serving)
    try:
        if now_ms > request.deadline_ms:
            answer = await side.abort(request)
        else:
            answer = await side.credit(request)
    except TransportError as error:
        return TransferOutcome(tid, State.PENDING, hold, reason=str(error))
    if answer.transfer_id != tid:
        return TransferOutcome(tid, State.PENDING, hold, reason="answer for another transfer")
    await crash("answer")
    kind, entry_id = (
        (Kind.HOLD_POST, post_id(tid)) if answer.credited else (Kind.HOLD_VOID, void_id(tid))
    )
    debit, credit = (hold.debit, hold.credit) if answer.credited else (hold.credit, hold.debit)
    meta: dict[str, Any] = {META_TRANSFER: tid}
    if answer.credited and answer.entry_hash is not None:
        meta[META_CREDIT] = answer.entry_hash
    closing = await append(
        store,
        Proposal(
            district=hold.district,
            id=entry_id,
            kind=kind,
            debit=debit,
            credit=credit,
            minutes=hold.minutes,
            actor=hold.actor,
            policy=hold.policy,
            at_ms=now_ms,
            category=hold.category,
            ref=hold.id,
            meta=meta,
        ),
    )
    state = State.POSTED if answer.credited else State.VOIDED
    return TransferOutcome(tid, state, hold, closing, answer.reason)


async def _closing_entry(store: ChainStore, hold: Entry) -> TransferOutcome | None:
    tid = hold.transfer_id or hold.id
    for state, entry_id in ((State.POSTED, post_id(tid)), (State.VOIDED, void_id(tid))):
        entry = await store.entry(hold.district, entry_id)
        if entry is not None:
            return TransferOutcome(tid, state, hold, entry)
    return None


async def transfer_state(store: ChainStore, home: str, transfer_id: str) -> TransferOutcome:
    hold = await store.entry(home, hold_id(transfer_id))
    if hold is None:
        raise TransferConflict(transfer_id, f"no hold in {home}")
    closed = await _closing_entry(store, hold)
    return closed or TransferOutcome(transfer_id, State.PENDING, hold)


async def resume_transfers(
    store: ChainStore, *, network: Network, now_ms: int, districts: list[str] | None = None
) -> list[TransferOutcome]:
    """Complete or void every open hold of the given (default: all) home chains."""
    outcomes = []
    for district in districts if districts is not None else await store.districts():
        for hold in await store.open_holds(district):
            outcomes.append(await settle_hold(store, hold, network=network, now_ms=now_ms))
    return outcomes


# ----- settlement ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """`debtor` owes `creditor` this many minutes of service (net over both directions)."""

    debtor: str
    creditor: str
    minutes: int


@dataclass(frozen=True)
class SettlementReport:
    positions: tuple[Position, ...]
    open_holds: int
    mismatches: tuple[tuple[str, str, int, int], ...]  # (A, B, clearing:B in A, clearing:A in B)

    @property
    def mirrored(self) -> bool:
        return not self.mismatches


async def clearing_positions(store: ChainStore, district: str) -> dict[str, int]:
    """Balance of each clearing account of a chain, by counterpart district: what a federation
    partner compares with its own mirror."""
    positions = {}
    for account, minutes in (await store.balances(district)).items():
        other = clearing_district(account)
        if other is not None:
            positions[other] = minutes
    return dict(sorted(positions.items()))


async def settlement_report(store: ChainStore) -> SettlementReport:
    """Net positions between every pair of districts this store knows, and mirror mismatches.

    A district that appears only as a counterpart (another deployment) counts with empty
    balances, so its pairs show as mismatches here: compare `clearing_positions` with the peer.
    """
    stored = await store.districts()
    clearing = {d: await clearing_positions(store, d) for d in stored}
    districts = sorted(set(stored).union(*[set(c) for c in clearing.values()]))
    open_holds = sum([len(await store.open_holds(d)) for d in stored])
    positions: list[Position] = []
    mismatches: list[tuple[str, str, int, int]] = []
    for a in districts:
        for b in districts:
            if a >= b:
                continue
            ab = clearing.get(a, {}).get(b, 0)
            ba = clearing.get(b, {}).get(a, 0)
            if ab + ba != 0:
                mismatches.append((a, b, ab, ba))
            if ab > 0:
                positions.append(Position(a, b, ab))
            elif ab < 0:
                positions.append(Position(b, a, -ab))
    return SettlementReport(tuple(positions), open_holds, tuple(mismatches))
