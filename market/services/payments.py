"""How a booking is paid for: what a request holds, prices, the voucher quota, the guarantee.

Payment kinds (`Booking.payment`):
- `public`: district-funded. A volunteer's hours are minted at settlement (issuance).
- `hours`: the elder's or a redeeming relative's time account (`payer_id`). The request holds
  the booked minutes (the service's duration times its hour weight) against the payer's
  balance; settlement moves the served minutes, at most those held, to the helper.
- `pool`: hours donated to the district pool, for an elder whom the pool serves
  (`time_bank.pool_priority`) and who holds too few hours; held against the pool like `hours`.
- `subsidy`: a monthly voucher (`vouchers`) pays `share_bp` of a provider's price, up to
  `monthly_cap_fen` per elder and local month; the request holds the share of the highest price
  among the district's providers against the month, settlement charges the serving provider's.
- `self`: the elder pays a provider's price; the request records the highest (a quote).

A hold is a column of the booking (`hold_minutes`, `voucher_hold_fen`) that counts while the
booking is live (`HOLDING`) and is released by the state change that ends it, in the same
transaction. Requests take the payer's (or the elder's, or the pool district's) row lock
before reading balance and holds, so two requests, or a request and a gift, cannot both spend
the same minutes; the ledger still refuses an overdraft last.

Guaranteed redemption: an `hours` or `pool` booking is offered to volunteers only until its
guarantee point, the start of its service's cancellation window (when it becomes firm). A
booking nobody has taken by then is guaranteed (`guaranteed_at`): the district buys the service
from a provider, whose staff may be offered it from then on (`guarantee_due`, run by the
matching loop before each round). Settled by provider staff, the payer's hours are redeemed to
the district (issuance) and the provider's price recorded; a pool booking costs the pool nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Sum

from ledger.entries import POOL
from market import lifecycle
from market.errors import Conflict, Forbidden, NotFound
from market.models import (
    Booking,
    BookingEvent,
    BookingState,
    District,
    ElderProfile,
    ListStatus,
    Payment,
    Provider,
    Role,
    User,
)
from market.policy import DistrictPolicy, PolicyForbids, PriorityFlag, ServiceCode
from market.services.access import can_see_elder
from market.services.booking_tx import booking_transaction
from market.services.districts import policy_in_force
from market.services.eligibility import forbids
from market.services.ledger import LedgerGateway, top_level
from market.services.scope import Principal, district_subtree

S = BookingState
# Holds count while a booking may still be served or settled.
HOLDING = (
    S.requested,
    S.offered,
    S.accepted,
    S.en_route,
    S.in_service,
    S.completed,
    S.confirmed,
    S.disputed,
    S.escalated,
)
SETTLED = (S.settled, S.rated)
TIME_BANK = (Payment.hours, Payment.pool)
PRICED = (Payment.self_paid, Payment.subsidy)
# Vouchers are issued per calendar month where the elders live.
LOCAL_TIME = ZoneInfo("Asia/Shanghai")
POOL_RULE = "time_bank.pool_priority"
VOUCHER_CAP_RULE = "vouchers.monthly_cap_fen"
GUARANTEE_BATCH = 2000


def local_month(moment: datetime) -> str:
    return moment.astimezone(LOCAL_TIME).strftime("%Y-%m")


def booked_minutes(policy: DistrictPolicy, service: ServiceCode, duration: int) -> int:
    """What a booking of `duration` minutes costs in hours: the service's hour weight applied."""
    return policy.services.rule(service).hour_weight.apply_floor(duration)


def voucher_share(policy: DistrictPolicy, price_fen: int) -> int:
    return price_fen * policy.vouchers.share_bp // 10_000


# ---- prices ----------------------------------------------------------------------------------


async def district_prices(district_id: UUID, service: str) -> list[int]:
    """Prices of `service` (fen) of every provider of the booking's top-level district that is
    not black-listed."""
    root = await top_level(district_id)
    providers: list[Any] = await Provider.filter(
        district_id__in=sorted(await district_subtree(root.id)),
        list_status__not=ListStatus.black,
    ).values_list("prices", flat=True)
    prices = [p.get(service) for p in providers if isinstance(p, dict)]
    return sorted(price for price in prices if isinstance(price, int))


async def quote(district_id: UUID, service: str) -> int:
    """The highest price of the district's providers for `service`; 409 if nobody prices it."""
    prices = await district_prices(district_id, service)
    if not prices:
        raise Conflict(
            "payment.unpriced",
            f"no provider of this district has a price for {service}; book it as public or hours",
        )
    return prices[-1]


# ---- holds -----------------------------------------------------------------------------------


async def held_by_payer(payer_id: UUID, connection: BaseDBAsyncClient | None = None) -> int:
    """Minutes held by the live `hours` bookings this user pays for."""
    query = Booking.filter(payer_id=payer_id, payment=Payment.hours, state__in=HOLDING)
    return await _sum(query, "hold_minutes", connection)


async def held_from_pool(chain: str, connection: BaseDBAsyncClient | None = None) -> int:
    query = Booking.filter(hold_chain=chain, payment=Payment.pool, state__in=HOLDING)
    return await _sum(query, "hold_minutes", connection)


async def voucher_use(
    elder_id: UUID, month: str, connection: BaseDBAsyncClient | None = None
) -> tuple[int, int]:
    """(fen paid by vouchers in settled bookings, fen held by live ones) for an elder's month."""
    mine = Booking.filter(elder_id=elder_id, payment=Payment.subsidy, voucher_month=month)
    used = await _sum(mine.filter(state__in=SETTLED), "voucher_fen", connection)
    held = await _sum(mine.filter(state__in=HOLDING), "voucher_hold_fen", connection)
    return used, held


async def _sum(query: Any, column: str, connection: BaseDBAsyncClient | None) -> int:
    if connection is not None:
        query = query.using_db(connection)
    rows = await query.annotate(total=Sum(column)).values_list("total", flat=True)
    return int(rows[0] or 0) if rows else 0


async def _lock(model: Any, key: UUID, connection: BaseDBAsyncClient) -> None:
    """A row lock held to the end of the transaction (SQLite's write lock serialises anyway)."""
    await model.filter(id=key).using_db(connection).select_for_update().first()


async def lock_user(user_id: UUID, connection: BaseDBAsyncClient) -> None:
    """Lock a user's row against other spenders of their hours until the commit."""
    await _lock(User, user_id, connection)


async def spendable(gateway: LedgerGateway, user_id: UUID, connection: BaseDBAsyncClient) -> int:
    """A user's balance less what their live hours bookings hold. Call it holding their row."""
    holder = await gateway.holder(user_id)
    balance = await gateway.store.balance(holder.chain, holder.account)
    return balance - await held_by_payer(user_id, connection)


@dataclass(frozen=True)
class Terms:
    """The payment columns a new booking is created with."""

    hold_minutes: int | None = None
    hold_chain: str | None = None
    quote_fen: int | None = None
    voucher_hold_fen: int | None = None
    voucher_month: str | None = None

    def columns(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Request:
    """What `hold_terms` needs to know about a request being made."""

    payment: Payment
    elder: User
    profile: ElderProfile
    payer_id: UUID | None
    service: ServiceCode
    duration: int
    starts: list[datetime]
    version: int
    policy: DistrictPolicy


async def hold_terms(
    gateway: LedgerGateway, request: Request, connection: BaseDBAsyncClient
) -> list[Terms]:
    """The terms of each booking of a request, holding what it may spend; inside the creating
    transaction, which it locks against other spenders. Refusals name the rule."""
    count = len(request.starts)
    if request.payment is Payment.hours and request.payer_id is not None:
        minutes = booked_minutes(request.policy, request.service, request.duration)
        await _lock(User, request.payer_id, connection)
        have = await spendable(gateway, request.payer_id, connection)
        if minutes * count > have:
            raise Conflict(
                "payment.insufficient_hours",
                f"the payer can spend {have} minutes; {count} x {minutes} are needed",
                {"spendable_minutes": have, "needed_minutes": minutes * count},
            )
        chain = (await gateway.holder(request.payer_id)).chain
        return [Terms(hold_minutes=minutes, hold_chain=chain)] * count
    if request.payment is Payment.pool:
        return await _pool_terms(gateway, request, connection)
    if request.payment is Payment.self_paid:
        price = await quote(request.elder.district_id, request.service.value)  # type: ignore[attr-defined]
        return [Terms(quote_fen=price)] * count
    if request.payment is Payment.subsidy:
        return await _voucher_terms(request, connection)
    return [Terms()] * count


async def _pool_terms(
    gateway: LedgerGateway, request: Request, connection: BaseDBAsyncClient
) -> list[Terms]:
    minutes = booked_minutes(request.policy, request.service, request.duration)
    need = minutes * len(request.starts)
    await _lock(User, request.elder.id, connection)
    own = await spendable(gateway, request.elder.id, connection)
    if own >= need:
        raise Conflict(
            "payment.use_hours",
            f"the elder can spend {own} minutes; the pool pays only for elders without enough",
            {"spendable_minutes": own, "needed_minutes": need},
        )
    root = await top_level(request.elder.district_id)  # type: ignore[attr-defined]
    chain = await gateway.chain_of_district(root.id)
    await _lock(District, root.id, connection)
    available = await gateway.store.balance(chain, POOL) - await held_from_pool(chain, connection)
    if need > available:
        raise Conflict(
            "payment.pool_insufficient",
            f"the district pool can give {available} minutes; {need} are needed",
            {"available_minutes": available, "needed_minutes": need},
        )
    return [Terms(hold_minutes=minutes, hold_chain=chain)] * len(request.starts)


async def _voucher_terms(request: Request, connection: BaseDBAsyncClient) -> list[Terms]:
    price = await quote(request.elder.district_id, request.service.value)  # type: ignore[attr-defined]
    share = voucher_share(request.policy, price)
    cap = request.policy.vouchers.monthly_cap_fen
    await _lock(User, request.elder.id, connection)
    taken: dict[str, int] = {}
    terms = []
    for start in request.starts:
        month = local_month(start)
        if month not in taken:
            used, held = await voucher_use(request.elder.id, month, connection)
            taken[month] = used + held
        left = cap - taken[month]
        if left <= 0:
            raise forbids(
                PolicyForbids(
                    VOUCHER_CAP_RULE,
                    request.version,
                    f"the vouchers of {month} are used up ({cap} fen a month)",
                )
            )
        hold = min(share, left)
        taken[month] += hold
        terms.append(
            Terms(quote_fen=price, voucher_hold_fen=hold, voucher_month=month),
        )
    return terms


def _age(birth_year: int, on: date) -> int:
    return on.year - birth_year


def check_pool_priority(
    profile: ElderProfile, *, version: int, policy: DistrictPolicy, today: date
) -> None:
    """403 unless the pool serves this elder (any criterion of `time_bank.pool_priority`)."""
    known = {f.value for f in PriorityFlag}
    flags = {PriorityFlag(f) for f in profile.flags if f in known}
    age = _age(profile.birth_year, today)
    if any(c.matches(age, flags) for c in policy.time_bank.pool_priority):
        return
    raise forbids(
        PolicyForbids(POOL_RULE, version, "the district pool serves only its priority elders")
    )


# ---- what a booking shows about its payment --------------------------------------------------


def payment_view(booking: Booking) -> dict[str, Any]:
    return {
        "hold_minutes": booking.hold_minutes,
        "quote_fen": booking.quote_fen,
        "voucher_hold_fen": booking.voucher_hold_fen,
        "voucher_month": booking.voucher_month,
        "price_fen": booking.price_fen,
        "voucher_fen": booking.voucher_fen,
        "copay_fen": booking.copay_fen,
        "charged_minutes": booking.charged_minutes,
        "guaranteed_at": booking.guaranteed_at.isoformat() if booking.guaranteed_at else None,
        "settlement": booking.settlement,
        "settle_blocked": booking.settle_blocked,
    }


async def voucher_status(
    principal: Principal, elder_id: UUID, month: str | None, *, now: datetime | None = None
) -> dict[str, Any]:
    """An elder's vouchers of a month (default: the current local one): the cap in force, what
    settled bookings used, what live ones hold, what is left. For the elder, linked family and
    the elder's centre."""
    elder = await User.get_or_none(id=elder_id, role=Role.elder)
    if elder is None:
        raise NotFound("elder_not_found", f"no elder {elder_id}")
    if not await can_see_elder(principal, elder):
        raise Forbidden("elder_forbidden", "only the elder, linked family or their centre")
    month = month or local_month(now or datetime.now(LOCAL_TIME))
    year, number = (int(part) for part in month.split("-"))
    first = datetime(year, number, 1, tzinfo=LOCAL_TIME)
    version, policy = await policy_in_force(elder.district_id, first)  # type: ignore[attr-defined]
    used, held = await voucher_use(elder.id, month)
    cap = policy.vouchers.monthly_cap_fen
    return {
        "elder_id": str(elder.id),
        "month": month,
        "policy_version": version,
        "monthly_cap_fen": cap,
        "share_bp": policy.vouchers.share_bp,
        "used_fen": used,
        "held_fen": held,
        "left_fen": max(0, cap - used - held),
    }


# ---- guaranteed redemption -------------------------------------------------------------------


def guarantee_point(booking: Booking, policy: DistrictPolicy) -> datetime:
    """When an unstaffed hours or pool booking passes to the district: its cancellation window."""
    window = policy.services.rule(ServiceCode(booking.service)).cancellation_window_minutes
    return booking.window_start - timedelta(minutes=window)


async def guarantee_due(now: datetime) -> int:
    """Guarantee every open hours or pool booking whose guarantee point has passed: provider
    staff may be offered it from now on. Returns how many were guaranteed."""
    from market.services.bookings import streams_for

    rows = (
        await Booking.filter(
            payment__in=TIME_BANK,
            guaranteed_at__isnull=True,
            state__in=(S.requested, S.offered, S.escalated),
        )
        .order_by("window_start", "id")
        .limit(GUARANTEE_BATCH)
    )
    done = 0
    for booking in rows:
        _, policy = await policy_in_force(booking.district_id, booking.created_at)
        if now < guarantee_point(booking, policy):
            continue
        async with booking_transaction() as tx:
            marked = (
                await Booking.filter(id=booking.id, guaranteed_at__isnull=True)
                .using_db(tx.connection)
                .update(guaranteed_at=now)
            )
            if not marked:
                continue  # another process guaranteed it first
            booking.guaranteed_at = now
            reason = "no volunteer took it before its cancellation window; a provider may serve"
            await BookingEvent.create(
                booking_id=booking.id,
                action="guarantee",
                from_state=booking.state.value,
                to_state=booking.state.value,
                actor_role=lifecycle.SYSTEM.role,
                reason=reason,
                at=now,
                using_db=tx.connection,
            )
            payload = {**lifecycle.booking_payload(booking), "guaranteed_at": now.isoformat()}
            await tx.publish(streams_for(booking), "booking.guaranteed", payload)
        done += 1
    return done
