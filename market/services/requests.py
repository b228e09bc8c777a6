"""New requests: who may book for whom, policy checks, recurrence and idempotent replays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from market import catalogue
from market.errors import Conflict, Forbidden, InvalidInput, MalformedBody, NotFound
from market.lifecycle import ActorRef, Party
from market.models import (
    ElderProfile,
    FamilyLink,
    IdempotencyRecord,
    LinkStatus,
    Payment,
    RecurringSeries,
    Role,
    User,
    UserStatus,
)
from market.policy import (
    DistrictPolicy,
    PolicyForbids,
    PriorityFlag,
    RelationKind,
    ServiceCode,
)
from market.schemas.bookings import CreateRequest
from market.services import payments
from market.services.auth import now_utc
from market.services.booking_tx import BookingTransaction, booking_transaction
from market.services.districts import policy_in_force
from market.services.eligibility import forbids
from market.services.runtime import Runtime
from market.services.scope import Principal
from market.services.series_expansion import (
    BookingTemplate,
    Occurrence,
    create_bookings,
    horizon_end,
    occurrences,
    on_pattern,
)

# A request may start a little in the past (clock skew, a hotline call being typed in).
PAST_TOLERANCE = timedelta(minutes=5)
MAX_WINDOW = timedelta(days=7)
MAX_AHEAD = timedelta(days=366)
# A series' last day, when it has one, is within a year of its first window; the request
# books the occurrences up to the rolling horizon (at least the first week), at most this many
# bookings, and `market.services.series_horizon` books the rest as the horizon moves on.
MAX_SERIES_SPAN = timedelta(days=366)
MAX_OCCURRENCES = 100
FIRST_WEEK = timedelta(days=6)
SPECIAL_DIFFICULTY = frozenset({PriorityFlag.ECONOMIC_HARDSHIP, PriorityFlag.DISPERSED_DESTITUTE})


@dataclass(frozen=True)
class Created:
    status: int
    booking_ids: tuple[UUID, ...]
    replayed: bool


def _problem(field: str, problem: str, code: str = "invalid_input") -> InvalidInput:
    return InvalidInput(code, f"{field} {problem}", [{"field": field, "problem": problem}])


def check_idempotency_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not 1 <= len(raw) <= 200 or not raw.isascii() or not raw.isprintable():
        raise MalformedBody(
            "idempotency_key_invalid", "Idempotency-Key must be 1-200 printable ASCII characters"
        )
    return raw


async def _elder_for(principal: Principal, elder_id: UUID | None) -> tuple[User, str | None]:
    """The elder booked for and, for a family booker, their relation to the elder."""
    if elder_id is None:
        if principal.role is not Role.elder:
            raise _problem("elder_id", "is required unless an elder books for themself")
        elder_id = principal.user_id
    elder = await User.get_or_none(id=elder_id, role=Role.elder)
    if elder is None:
        raise NotFound("elder_not_found", f"no elder {elder_id}")
    if principal.user_id == elder.id or principal.administers(elder.district_id):  # type: ignore[attr-defined]
        return elder, None
    if principal.role is Role.family:
        link = await FamilyLink.get_or_none(
            family_id=principal.user_id, elder_id=elder.id, status=LinkStatus.approved
        )
        if link is not None:
            return elder, link.relation
    raise Forbidden(
        "booking_forbidden", "only the elder, linked family or the elder's centre may book"
    )


def _age(birth_year: int, on: date) -> int:
    return on.year - birth_year


def _check_payment(
    payment: Payment,
    booker_id: UUID,
    profile: ElderProfile,
    relation: str | None,
    *,
    version: int,
    policy: DistrictPolicy,
    today: date,
) -> UUID | None:
    """The hours payer, after the policy's payment rules; raises PolicyForbids (the pool's
    priority rule is already the 403 it becomes)."""
    if payment is Payment.subsidy:
        level = catalogue.level_of(profile.capability_level)
        if not level.at_least(policy.vouchers.eligible_from):
            raise PolicyForbids(
                "vouchers.eligible_from",
                version,
                f"subsidy vouchers are for elders assessed "
                f"{policy.vouchers.eligible_from.value} or worse",
            )
    if payment is Payment.pool:
        payments.check_pool_priority(profile, version=version, policy=policy, today=today)
    if payment is not Payment.hours:
        return None
    rules = policy.time_bank
    flags = {f for f in profile.flags if f in {p.value for p in PriorityFlag}}
    special = bool({PriorityFlag(f) for f in flags} & SPECIAL_DIFFICULTY)
    age_needed = rules.redemption_age_special_difficulty if special else rules.redemption_age
    rule = "time_bank.redemption_age_special_difficulty" if special else "time_bank.redemption_age"
    if _age(profile.birth_year, today) < age_needed:
        raise PolicyForbids(rule, version, f"hours are redeemed for elders from {age_needed}")
    if relation is None:
        return profile.user_id  # type: ignore[attr-defined,no-any-return]
    # The link says what the payer is to the elder; the rule, what the elder is to the payer.
    kind = RelationKind.parse(relation)
    if kind is None or kind.inverse not in rules.redeemers:
        raise PolicyForbids(
            "time_bank.redeemers", version, f"a {relation} may not pay hours for this elder"
        )
    return booker_id


async def recheck_series_payment(
    template: BookingTemplate,
    elder: User,
    profile: ElderProfile,
    *,
    version: int,
    policy: DistrictPolicy,
    today: date,
    connection: BaseDBAsyncClient,
) -> None:
    """What the request checked, again before the horizon books later occurrences: the elder
    still active, a relative paying hours still an approved link whom the policy in force lets
    pay, and the payment's rules of that policy. Raises the refusal the series records."""
    if elder.status is not UserStatus.active:
        raise Conflict("series.elder_inactive", "the elder's account is not active")
    relation = None
    if template.payer_id is not None and template.payer_id != elder.id:
        link = (
            await FamilyLink.filter(
                family_id=template.payer_id, elder_id=elder.id, status=LinkStatus.approved
            )
            .using_db(connection)
            .first()
        )
        if link is None:
            raise Forbidden(
                "series.payer_unlinked", "the relative paying for this series is no longer linked"
            )
        relation = link.relation
    try:
        _check_payment(
            template.payment,
            template.payer_id or elder.id,
            profile,
            relation,
            version=version,
            policy=policy,
            today=today,
        )
    except PolicyForbids as exc:
        raise forbids(exc) from None


def _booked_through(
    cmd: CreateRequest, first_start: datetime, now: datetime, horizon_days: int
) -> date:
    """The last day the request itself books: the horizon, at least the first week, at most
    the series' last day."""
    assert cmd.recurrence is not None
    first = first_start.date()
    through = max(horizon_end(first_start, now, horizon_days), first + FIRST_WEEK)
    until = cmd.recurrence.until
    return through if until is None else min(until, through)


def _windows(
    cmd: CreateRequest, start: datetime, now: datetime, horizon_days: int
) -> tuple[list[Occurrence], date | None]:
    """(occurrence, start) of every booking the request books now, and for a series the last
    day they cover (the rolling horizon books later days)."""
    recurrence = cmd.recurrence
    if recurrence is None:
        return [(None, start)], None
    if cmd.service is ServiceCode.EMERGENCY:
        raise _problem("recurrence", "is not allowed for an emergency")
    first = start.date()
    until = recurrence.until
    if until is not None and (until < first or until - first > MAX_SERIES_SPAN):
        raise _problem("recurrence.until", "must be within a year after the first window")
    weekdays = set(recurrence.weekdays)
    moves = {m.occurrence: m.to for m in recurrence.move}
    for day, to in sorted(moves.items()):
        if day in recurrence.skip or not on_pattern(
            day, first=first, weekdays=weekdays, until=until
        ):
            raise _problem("recurrence.move", f"names {day}, which is not an occurrence")
        if to < now - PAST_TOLERANCE:
            raise _problem("recurrence.move", f"moves {day} into the past")
    through = _booked_through(cmd, start, now, horizon_days)
    out: list[Occurrence] = list(
        occurrences(
            start,
            weekdays=weekdays,
            days=(first, through),
            skips=set(recurrence.skip),
            moves=moves,
        )
    )
    if not out:
        raise _problem("recurrence", "produces no occurrence")
    if len(out) > MAX_OCCURRENCES:
        raise _problem("recurrence", f"produces more than {MAX_OCCURRENCES} bookings")
    return out, through


async def _replay(principal: Principal, key: str, body_sha256: str) -> Created | None:
    record = await IdempotencyRecord.get_or_none(user_id=principal.user_id, key=key)
    if record is None:
        return None
    if record.body_sha256 != body_sha256:
        raise Conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body",
        )
    ids = tuple(UUID(i) for i in record.response["booking_ids"])
    return Created(record.status, ids, replayed=True)


async def _create_series(
    tx: BookingTransaction,
    cmd: CreateRequest,
    template: BookingTemplate,
    first_start: datetime,
    booked_through: date | None,
) -> RecurringSeries:
    recurrence = cmd.recurrence
    assert recurrence is not None
    return await RecurringSeries.create(
        district_id=template.district_id,
        elder_id=template.elder_id,
        service=cmd.service.value,
        weekdays=sorted(set(recurrence.weekdays)),
        start_time=first_start.strftime("%H:%M"),
        until=recurrence.until,
        exceptions={
            "skip": sorted(d.isoformat() for d in recurrence.skip),
            "move": {m.occurrence.isoformat(): m.to.isoformat() for m in recurrence.move},
        },
        template=template.to_json(first_start),
        expanded_through=booked_through,
        created_by_id=template.created_by_id,
        using_db=tx.connection,
    )


async def create_request(
    runtime: Runtime,
    principal: Principal,
    cmd: CreateRequest,
    *,
    idempotency_key: str | None,
    body_sha256: str,
) -> Created:
    if idempotency_key is not None:
        earlier = await _replay(principal, idempotency_key, body_sha256)
        if earlier is not None:
            return earlier
    now = now_utc()
    elder, relation = await _elder_for(principal, cmd.elder_id)
    profile = await ElderProfile.get(user_id=elder.id)
    version, policy = await policy_in_force(elder.district_id, now)  # type: ignore[attr-defined]
    rule = policy.services.rule(cmd.service)
    duration = cmd.duration_minutes or rule.default_duration_minutes
    start = cmd.window_start
    end = cmd.window_end or start + timedelta(minutes=duration)
    if start < now - PAST_TOLERANCE:
        raise _problem("window_start", "must not be in the past")
    if start > now + MAX_AHEAD:
        raise _problem("window_start", "must be within a year")
    if end - start < timedelta(minutes=duration):
        raise _problem("window_end", f"must leave room for {duration} minutes of service")
    if end - start > MAX_WINDOW:
        raise _problem("window_end", "must be within 7 days of window_start")
    try:
        payer = _check_payment(
            cmd.payment,
            principal.user_id,
            profile,
            relation,
            version=version,
            policy=policy,
            today=now.date(),
        )
    except PolicyForbids as exc:
        raise forbids(exc) from None
    planned, booked_through = _windows(cmd, start, now, runtime.settings.series_horizon_days)
    place = cmd.place
    template = BookingTemplate(
        district_id=elder.district_id,  # type: ignore[attr-defined]
        elder_id=elder.id,
        created_by_id=principal.user_id,
        service=cmd.service,
        window_seconds=int((end - start).total_seconds()),
        duration_minutes=duration,
        latitude=place.latitude if place else profile.latitude,
        longitude=place.longitude if place else profile.longitude,
        notes=cmd.notes,
        needs_lifting=cmd.needs_lifting,
        payment=cmd.payment,
        payer_id=payer,
    )
    who = ActorRef(
        Party.centre if principal.role is Role.centre_admin else Party.elder_side,
        principal.user_id,
        principal.role.value,
    )
    held = payments.Request(
        payment=cmd.payment,
        elder=elder,
        profile=profile,
        payer_id=payer,
        service=cmd.service,
        duration=duration,
        starts=[at for _, at in planned],
        version=version,
        policy=policy,
    )
    try:
        async with booking_transaction() as tx:
            # Locks the payer (or elder, or pool) against other spenders until the commit.
            terms = await payments.hold_terms(runtime.ledger, held, tx.connection)
            series = None
            if cmd.recurrence is not None:
                series = await _create_series(tx, cmd, template, start, booked_through)
            ids = await create_bookings(
                tx,
                runtime,
                template,
                planned,
                terms,
                series=series,
                policy_version=version,
                actor=who,
                now=now,
            )
            if idempotency_key is not None:
                await IdempotencyRecord.create(
                    user_id=principal.user_id,
                    key=idempotency_key,
                    body_sha256=body_sha256,
                    status=201,
                    response={"booking_ids": [str(i) for i in ids]},
                    using_db=tx.connection,
                )
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        if idempotency_key is None:
            raise
        earlier = await _replay(principal, idempotency_key, body_sha256)
        if earlier is None:
            raise
        return earlier
    if cmd.service is ServiceCode.EMERGENCY:
        from market.services.offers import emergency_fanout

        await emergency_fanout(ids[0], now=now)
    return Created(201, tuple(ids), replayed=False)
