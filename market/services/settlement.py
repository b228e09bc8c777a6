"""Settlement of a confirmed booking: what it pays, from whom to whom, then confirmed -> settled.

Who pays whom (`Funding`), by the booking's payment and the kind of helper who served it:

| payment | volunteer                                   | provider staff                       |
|---------|---------------------------------------------|--------------------------------------|
| public  | issuance -> volunteer (hours minted)        | the district pays the provider price |
| hours   | payer -> volunteer; between two chains the  | payer -> issuance (redeemed), the    |
|         | two-phase transfer (hold, credit, post)     | district pays the price (guaranteed) |
| pool    | pool -> volunteer (same chain only)         | the district pays the price          |
| subsidy | -                                           | voucher share + the elder's part     |
| self    | -                                           | the elder pays the price             |

The hours moved are the served minutes times the service's hour weight, for `hours` and
`pool` at most what the request held. Every ledger movement goes through the gateway's append
helpers, so a volunteer's per-account cap (`time_bank.account_cap_minutes`) is checked under
the chain lock: hours above the cap can only be donated, so a settlement that would pass it is
refused and waits (the volunteer can donate), and the matching loop's sweep retries it.

Exactly once: a same-chain entry is appended inside the transaction that moves the booking to
`settled`, holding the booking's row lock, so the entry, the state and their events commit
together; a transfer runs its phases first (each its own transaction, as the protocol needs)
and the settling transaction follows once it is posted. Ledger ids derive from the booking and
an attempt number (`booking-<id>`, then `booking-<id>-<n>`): a retry of the same attempt
appends nothing twice, and an attempt whose id the ledger refused for good (a voided transfer,
a refusal under the chain lock) is followed by a new one, never by the refused id succeeding.
A refusal is kept on the booking (`settle_blocked`, told to the elder, helper and admin feed
once) and retried with a growing pause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from ledger.entries import Entry
from ledger.transfer import State, TransferOutcome, credit_id
from market.errors import ApiError
from market.lifecycle import SYSTEM, Action, Change
from market.models import Booking, BookingState, Payment
from market.policy import HelperKind, ServiceCode
from market.services import payments
from market.services.booking_tx import BookingTransaction, booking_transaction
from market.services.districts import policy_in_force
from market.services.eligibility import Staffing, staffing
from market.services.ledger import CAP_RULE, LedgerGateway, process_gateway, top_level
from market.services.ledger_events import publishing_into

LEDGER_ACTOR = "market.settlement"
RETRY_FIRST = timedelta(minutes=1)
RETRY_MOST = timedelta(hours=24)


class Funding(StrEnum):
    issuance = "issuance"
    payer = "payer"
    transfer = "transfer"
    pool = "pool"
    redeemed = "redeemed"
    district = "district"
    voucher = "voucher"
    self_paid = "self"
    nothing = "nothing"  # no minute served counts (an hour weight of 0)


@dataclass
class Plan:
    funding: Funding
    helper: UUID
    minutes: int = 0
    price_fen: int | None = None
    voucher_fen: int | None = None
    copay_fen: int | None = None
    provider_id: UUID | None = None
    # Why it cannot settle now: (code, message, details).
    refusal: tuple[str, str, dict[str, Any]] | None = None
    entries: list[Entry] = field(default_factory=list)
    transfer: str | None = None
    # The ledger refused this attempt's id for good: the next try needs a new one.
    burned: bool = False


async def ledger_district(district_id: object) -> str:
    """The ledger of a booking's district: the chain of its top-level district (by code)."""
    return (await top_level(district_id)).code  # type: ignore[arg-type]


def entry_id(booking: Booking, attempt: int | None = None) -> str:
    """The ledger id (and transfer id) of a booking's settlement attempt."""
    n = booking.settle_attempt if attempt is None else attempt
    return f"booking-{booking.id}" if n == 0 else f"booking-{booking.id}-{n}"


def late_id(booking: Booking) -> str:
    return f"booking-{booking.id}-late"


# ---- planning ----------------------------------------------------------------------------------


async def weighted_minutes(booking: Booking, now: datetime) -> int:
    _, policy = await policy_in_force(booking.district_id, booking.confirmed_at or now)
    weight = policy.services.rule(ServiceCode(booking.service)).hour_weight
    return weight.apply_floor(booking.served_minutes or 0)


def _refuse(plan: Plan, code: str, message: str, **details: Any) -> Plan:
    plan.refusal = (code, message, details)
    return plan


async def plan_settlement(gateway: LedgerGateway, booking: Booking, now: datetime) -> Plan:
    helper: UUID = booking.helper_id  # type: ignore[attr-defined]
    staff = (await staffing([helper], booking.service))[helper]
    minutes = await weighted_minutes(booking, now)
    if booking.payment in payments.TIME_BANK and booking.hold_minutes is not None:
        # The payer agreed to the booked minutes; a booking made before holds pays what it used.
        minutes = min(minutes, booking.hold_minutes)
    if staff.kind is HelperKind.PROVIDER:
        return await _provider_plan(gateway, booking, staff, helper, minutes)
    plan = Plan(Funding.nothing, helper, minutes)
    if minutes == 0:
        return plan
    if booking.payment in (Payment.public, *payments.PRICED):
        # Priced bookings go to provider staff; one a volunteer served anyway (made before the
        # payment rules) was given time, which the district funds as it funds public service.
        plan.funding = Funding.issuance
    elif booking.payment is Payment.pool:
        plan.funding = Funding.pool
        if staff.chain != booking.hold_chain:
            return _refuse(plan, "payment.pool_other_district", "pool hours stay in their chain")
    else:
        payer = await gateway.holder(booking.payer_id)  # type: ignore[arg-type]
        plan.funding = Funding.payer if payer.chain == staff.chain else Funding.transfer
        if await _payer_short(gateway, booking, plan):
            return plan
    return await _check_cap(gateway, plan, now)


async def _payer_short(gateway: LedgerGateway, booking: Booking, plan: Plan) -> bool:
    """Refuse before the ledger is asked when the payer no longer has the minutes due (the
    request held them, but a hold is the market's, not the ledger's)."""
    payer = await gateway.holder(booking.payer_id)  # type: ignore[arg-type]
    have = await gateway.store.balance(payer.chain, payer.account)
    if have >= plan.minutes:
        return False
    message = f"the payer has {have} minutes, {plan.minutes} are due"
    _refuse(plan, "ledger.insufficient_minutes", message, balance_minutes=have)
    return True


async def _check_cap(gateway: LedgerGateway, plan: Plan, now: datetime) -> Plan:
    """Refuse before the ledger is asked when the credit would pass the volunteer's cap (the
    ledger checks again under the chain lock)."""
    volunteer = await gateway.holder(plan.helper)
    version, policy = await gateway.policy(volunteer.district_id, int(now.timestamp() * 1000))
    cap = policy.time_bank.account_cap_minutes
    have = await gateway.store.balance(volunteer.chain, volunteer.account)
    if have + plan.minutes > cap:
        return _refuse(
            plan,
            "policy.forbids",
            f"the helper holds {have} minutes; {plan.minutes} more would pass the cap of "
            f"{cap}; minutes above the cap can only be donated",
            rule=CAP_RULE,
            policy_version=version,
        )
    return plan


async def _provider_plan(
    gateway: LedgerGateway, booking: Booking, staff: Staffing, helper: UUID, minutes: int
) -> Plan:
    plan = Plan(Funding.district, helper, 0, staff.price, provider_id=staff.provider_id)
    if booking.payment in payments.PRICED and staff.price is None:
        return _refuse(plan, "payment.unpriced", "the provider has no price for this service")
    if booking.payment is Payment.hours:
        plan.funding, plan.minutes = Funding.redeemed, minutes
        if minutes > 0:
            await _payer_short(gateway, booking, plan)
    elif booking.payment is Payment.self_paid:
        plan.funding, plan.copay_fen = Funding.self_paid, staff.price
    elif booking.payment is Payment.subsidy:
        plan.funding = Funding.voucher
        plan.voucher_fen = await _voucher_due(booking, staff.price or 0)
        plan.copay_fen = (staff.price or 0) - plan.voucher_fen
    return plan


async def _voucher_due(booking: Booking, price: int) -> int:
    """The voucher's share of the price, within what the month has left besides the holds of
    the elder's other live bookings (this booking's own hold is spent now)."""
    _, policy = await policy_in_force(booking.district_id, booking.window_start)
    month = booking.voucher_month or payments.local_month(booking.window_start)
    used, held = await payments.voucher_use(booking.elder_id, month)  # type: ignore[attr-defined]
    left = policy.vouchers.monthly_cap_fen - used - (held - (booking.voucher_hold_fen or 0))
    return max(0, min(payments.voucher_share(policy, price), left))


# ---- settling ----------------------------------------------------------------------------------


async def settle_booking(
    booking: Booking, *, now: datetime, gateway: LedgerGateway | None = None
) -> Booking:
    """Settle a confirmed booking (see the module docstring); returns it as it now stands."""
    if booking.state is not BookingState.confirmed or _waiting(booking, now):
        return booking
    gateway = gateway or process_gateway()
    plan = await plan_settlement(gateway, booking, now)
    if plan.refusal is None and plan.funding is Funding.transfer:
        moved = await _transfer(gateway, booking, plan, now)
        if moved is None:
            return await Booking.get(id=booking.id)
    async with booking_transaction() as tx:
        with publishing_into(tx):
            current = await _lock(tx, booking)
            if current.state is not BookingState.confirmed:
                return current  # settled meanwhile by another caller: the same entries
            if plan.refusal is None and plan.funding is not Funding.transfer:
                await _append(gateway, current, plan, now, entry_id(current))
            if plan.refusal is not None:
                await _block(tx, current, plan.refusal, now, next_attempt=plan.burned)
                return current
            return await _settle(tx, current, plan, now)


def _waiting(booking: Booking, now: datetime) -> bool:
    blocked = booking.settle_blocked
    if not isinstance(blocked, dict) or "retry_at" not in blocked:
        return False
    return now < datetime.fromisoformat(blocked["retry_at"])


async def _lock(tx: BookingTransaction, booking: Booking) -> Booking:
    return await Booking.select_for_update().using_db(tx.connection).get(id=booking.id)  # type: ignore[no-any-return]


async def _append(
    gateway: LedgerGateway, booking: Booking, plan: Plan, now: datetime, ledger_id: str
) -> None:
    """The one same-chain entry of the plan, inside the settling transaction."""
    at_ms = int((booking.confirmed_at or now).timestamp() * 1000)
    ref, category = str(booking.id), booking.service
    try:
        if plan.funding in (Funding.issuance, Funding.pool, Funding.payer):
            entry = await gateway.deposit(
                volunteer_id=plan.helper,
                minutes=plan.minutes,
                entry_id=ledger_id,
                actor=LEDGER_ACTOR,
                category=category,
                ref=ref,
                payer_id=booking.payer_id if plan.funding is Funding.payer else None,
                from_pool=plan.funding is Funding.pool,
                at_ms=at_ms,
            )
        elif plan.funding is Funding.redeemed and plan.minutes > 0:
            entry = await gateway.redeem(
                payer_id=booking.payer_id,  # type: ignore[arg-type]
                minutes=plan.minutes,
                entry_id=ledger_id,
                actor=LEDGER_ACTOR,
                category=category,
                ref=ref,
                at_ms=at_ms,
            )
        else:
            return
    except ApiError as refused:
        # Refused under the chain lock and recorded against this id: the next try needs a new one.
        _refuse(plan, refused.code, refused.message, **_details(refused))
        plan.burned = True
        return
    plan.entries = [entry]


def _details(error: ApiError) -> dict[str, Any]:
    details = error.details if isinstance(error.details, dict) else {}
    out = dict(details)
    if "version" in out:  # the ledger gateway's name for it; bookings say policy_version
        out["policy_version"] = out.pop("version")
    return out


async def _transfer(
    gateway: LedgerGateway, booking: Booking, plan: Plan, now: datetime
) -> Plan | None:
    """Run (or resume) the attempt's transfer; the plan when it posted, None when it did not
    (still pending: the checkpointer resumes it; voided: the booking notes it and a new
    attempt follows)."""
    tid = entry_id(booking)
    outcome = await _pay_helper_across(gateway, booking, plan, tid)
    if outcome is None:
        await _block_now(booking, plan, now, next_attempt=True)
        return None
    if outcome.state is State.PENDING:
        return None
    if outcome.state is State.VOIDED:
        why = outcome.reason or "the serving district refused the credit"
        _refuse(plan, "ledger.transfer_voided", f"the transfer was voided: {why}", transfer=tid)
        await _block_now(booking, plan, now, next_attempt=True)
        return None
    await _take_entries(gateway, plan, outcome, tid)
    plan.transfer = tid
    return plan


async def _pay_helper_across(
    gateway: LedgerGateway, booking: Booking, plan: Plan, tid: str
) -> TransferOutcome | None:
    """The payer's minutes to the helper by the two-phase transfer; None when the ledger
    refused it at once (the refusal is on the plan)."""
    try:
        return await gateway.transfer(
            payer_id=booking.payer_id,  # type: ignore[arg-type]
            payee_id=plan.helper,
            minutes=plan.minutes,
            transfer_id=tid,
            actor=LEDGER_ACTOR,
            category=booking.service,
            ref=str(booking.id),
        )
    except ApiError as refused:
        _refuse(plan, refused.code, refused.message, **_details(refused))
        return None


async def _take_entries(
    gateway: LedgerGateway, plan: Plan, outcome: TransferOutcome, tid: str
) -> None:
    payee = await gateway.holder(plan.helper)
    credit = await gateway.store.entry(payee.chain, credit_id(tid))
    plan.entries = [e for e in (outcome.hold, credit, outcome.closing) if e is not None]


async def _block_now(booking: Booking, plan: Plan, now: datetime, *, next_attempt: bool) -> None:
    """Note the refusal of `booking`'s attempt in a transaction of its own. A concurrent
    settler that already noted this attempt's failure moved on to the next one: nothing to add."""
    async with booking_transaction() as tx:
        current = await _lock(tx, booking)
        same = current.settle_attempt == booking.settle_attempt
        if current.state is BookingState.confirmed and same:
            assert plan.refusal is not None
            await _block(tx, current, plan.refusal, now, next_attempt=next_attempt)


async def _block(
    tx: BookingTransaction,
    booking: Booking,
    refusal: tuple[str, str, dict[str, Any]],
    now: datetime,
    *,
    next_attempt: bool,
) -> None:
    """Keep the refusal on the booking and pause before the next try; tell the parties when the
    reason is new. `next_attempt` when the ledger id of this attempt can no longer succeed."""
    from market.services.bookings import streams_for

    code, message, details = refusal
    previous = booking.settle_blocked if isinstance(booking.settle_blocked, dict) else {}
    tries = int(previous.get("tries", 0)) + 1
    pause = min(RETRY_FIRST * 2 ** (tries - 1), RETRY_MOST)
    blocked = {
        "code": code,
        "message": message,
        **details,
        "tries": tries,
        "at": now.isoformat(),
        "retry_at": (now + pause).isoformat(),
    }
    columns: dict[str, Any] = {"settle_blocked": blocked}
    if next_attempt:
        columns["settle_attempt"] = booking.settle_attempt + 1
    await Booking.filter(id=booking.id).using_db(tx.connection).update(**columns)
    for name, value in columns.items():
        setattr(booking, name, value)
    if previous.get("code") != code or next_attempt:
        payload = {
            "booking_id": str(booking.id),
            "state": booking.state.value,
            "code": code,
            "message": message,
            **details,
        }
        await tx.publish(streams_for(booking), "booking.settlement_blocked", payload)


async def _settle(tx: BookingTransaction, booking: Booking, plan: Plan, now: datetime) -> Booking:
    from market import lifecycle
    from market.services.bookings import streams_for

    record: dict[str, Any] = {
        "funding": plan.funding.value,
        "minutes": plan.minutes,
        "entries": _entries_json(plan),
    }
    if plan.transfer is not None:
        record["transfer"] = plan.transfer
    if plan.provider_id is not None:
        record["provider_id"] = str(plan.provider_id)
    columns = {
        "settled_at": now,
        "charged_minutes": plan.minutes,
        "price_fen": plan.price_fen,
        "voucher_fen": plan.voucher_fen,
        "copay_fen": plan.copay_fen,
        "settlement": record,
        "settle_blocked": None,
    }
    detail = {**record, "price_fen": plan.price_fen, "voucher_fen": plan.voucher_fen}
    change = Change(Action.settle, plan.funding.value, detail=detail, columns=columns)
    return await lifecycle.apply(tx, booking, change, SYSTEM, now=now, streams=streams_for(booking))


# ---- late cancellation -------------------------------------------------------------------------


async def late_charge_minutes(booking: Booking) -> int:
    """What a cancellation inside the window costs an hours or pool booking a helper accepted."""
    if booking.payment not in payments.TIME_BANK or booking.helper_id is None:  # type: ignore[attr-defined]
        return 0
    _, policy = await policy_in_force(booking.district_id, booking.created_at)
    return (booking.hold_minutes or 0) * policy.bookings.late_cancellation_charge_bp // 10_000


async def charge_late_cancellation(
    booking: Booking, minutes: int, *, now: datetime, gateway: LedgerGateway | None = None
) -> Booking:
    """Pay the helper of a late-cancelled booking `minutes` of its hold, routed as settlement
    would route it (a provider's share is redeemed to the district, the pool's is not taken).
    Idempotent by its ledger id; the outcome is kept on the booking."""
    if minutes <= 0:
        return booking
    gateway = gateway or process_gateway()
    helper: UUID = booking.helper_id  # type: ignore[attr-defined]
    staff = (await staffing([helper], booking.service))[helper]
    plan = Plan(Funding.nothing, helper, minutes)
    if staff.kind is HelperKind.PROVIDER:
        plan.funding = Funding.redeemed if booking.payment is Payment.hours else Funding.district
    elif booking.payment is Payment.pool:
        plan.funding = Funding.pool
    else:
        payer = await gateway.holder(booking.payer_id)  # type: ignore[arg-type]
        plan.funding = Funding.payer if payer.chain == staff.chain else Funding.transfer
    if plan.funding is Funding.district:
        return booking
    if plan.funding is not Funding.redeemed:
        await _check_cap(gateway, plan, now)
    if plan.refusal is None and plan.funding is Funding.transfer:
        await _late_transfer(gateway, booking, plan)
    async with booking_transaction() as tx:
        with publishing_into(tx):
            current = await _lock(tx, booking)
            if current.charged_minutes is not None:
                return current  # charged (or refused) already
            if plan.refusal is None and plan.funding is not Funding.transfer:
                await _append(gateway, current, plan, now, late_id(current))
            return await _record_charge(tx, current, plan, now)


async def _late_transfer(gateway: LedgerGateway, booking: Booking, plan: Plan) -> None:
    tid = late_id(booking)
    outcome = await _pay_helper_across(gateway, booking, plan, tid)
    if outcome is None:
        return
    plan.transfer = tid
    if outcome.state is State.POSTED:
        await _take_entries(gateway, plan, outcome, tid)
    else:
        # Between local chains a transfer posts or voids at once; pending means a peer that
        # did not answer, and the checkpointer finishes it: the booking says which transfer.
        why = outcome.reason or outcome.state.value
        _refuse(plan, f"ledger.transfer_{outcome.state.value}", why, transfer=tid)


async def _record_charge(
    tx: BookingTransaction, booking: Booking, plan: Plan, now: datetime
) -> Booking:
    from market.services.bookings import streams_for

    if plan.refusal is not None:
        code, message, details = plan.refusal
        record: dict[str, Any] = {
            "late_cancellation": {"refused": code, "message": message, **details}
        }
        charged = 0
    else:
        record = {
            "funding": plan.funding.value,
            "late_cancellation": True,
            "minutes": plan.minutes,
            "entries": _entries_json(plan),
        }
        if plan.transfer is not None:
            record["transfer"] = plan.transfer
        charged = plan.minutes
    await (
        Booking.filter(id=booking.id)
        .using_db(tx.connection)
        .update(charged_minutes=charged, settlement=record)
    )
    booking.charged_minutes, booking.settlement = charged, record
    payload = {"booking_id": str(booking.id), "state": booking.state.value, **record}
    await tx.publish(streams_for(booking), "booking.cancellation_charged", payload)
    return booking


def _entries_json(plan: Plan) -> list[dict[str, Any]]:
    return [{"district": e.district, "seq": e.seq, "entry_id": e.id} for e in plan.entries]
