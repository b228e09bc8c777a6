"""The matching loop: every few seconds, open requests -> `matching.match` -> offers.

One round (`run_round(now=...)`, which tests call directly with an injected clock):
1. lapse offers past their deadline (the booking goes back to `requested`);
2. escalate requests whose latest start has passed to the centre's queue, and expire
   requests whose window has closed unstaffed;
3. confirm completed services nobody confirmed or disputed within the policy's period;
4. per district, match the open requests against the helpers around and offer each
   assignment with a deadline; helpers who ever had an offer for a booking are excluded.

The engine is pure; this module converts rows into its dataclasses and back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from tortoise.expressions import Q

import matching
from market import catalogue, lifecycle
from market.errors import Conflict
from market.lifecycle import Action, Change
from market.models import (
    Booking,
    BookingEvent,
    BookingState,
    ElderHelperList,
    ElderProfile,
    HelperListKind,
    HelperProfile,
    ListStatus,
    Offer,
    OfferState,
    Provider,
    User,
    UserStatus,
    VettingStatus,
)
from market.policy import DistrictPolicy
from market.services import settlement
from market.services.booking_tx import booking_transaction
from market.services.bookings import streams_for, withdraw_open_offers
from market.services.districts import policy_in_force
from market.services.eligibility import helper_facts, payment_refusals
from market.services.payments import guarantee_due

log = logging.getLogger("eldercare.matching")

# Helpers' weekly availability slots are wall-clock times where the service runs.
LOCAL_TIME = ZoneInfo("Asia/Shanghai")
HORIZON = timedelta(days=8)
ACTIVE = (BookingState.accepted, BookingState.en_route, BookingState.in_service)
# Bookings handled per round at most, so one round never holds the loop for long.
BATCH_LIMIT = 2000
SETTLE_GRACE = timedelta(minutes=1)
# Service minutes a helper gave in this period feed the matcher's fairness term.
FAIRNESS_PERIOD = timedelta(days=28)


def _epoch_minutes(moment: datetime) -> int:
    return matching.minutes_since_epoch(moment)


def availability_windows(
    slots: list[dict[str, str]], now: datetime
) -> tuple[matching.TimeWindow, ...]:
    """Weekly slots as concrete windows over the planning horizon.

    A helper who declared no slot is taken as available at any time: the slots narrow
    availability, they are not required.
    """
    if not slots:
        return (matching.TimeWindow(_epoch_minutes(now) - 60, _epoch_minutes(now + HORIZON)),)
    local = now.astimezone(LOCAL_TIME)
    windows = []
    for offset in range(-1, HORIZON.days + 1):
        day = (local + timedelta(days=offset)).date()
        for slot in slots:
            if slot["weekday"] != day.weekday():
                continue
            start = datetime.combine(
                day, datetime.strptime(slot["start"], "%H:%M").time(), LOCAL_TIME
            )
            if slot["end"] == "24:00":
                end = datetime.combine(day + timedelta(days=1), datetime.min.time(), LOCAL_TIME)
            else:
                end = datetime.combine(
                    day, datetime.strptime(slot["end"], "%H:%M").time(), LOCAL_TIME
                )
            windows.append(matching.TimeWindow(_epoch_minutes(start), _epoch_minutes(end)))
    return tuple(sorted(windows, key=lambda w: (w.start, w.end)))


def free_windows(
    windows: tuple[matching.TimeWindow, ...], busy: list[matching.TimeWindow]
) -> tuple[matching.TimeWindow, ...]:
    """Availability less the spans the helper is already committed to."""
    out = list(windows)
    for span in sorted(busy, key=lambda w: (w.start, w.end)):
        cut: list[matching.TimeWindow] = []
        for w in out:
            if not w.overlaps(span):
                cut.append(w)
                continue
            if w.start < span.start:
                cut.append(matching.TimeWindow(w.start, span.start))
            if span.end < w.end:
                cut.append(matching.TimeWindow(span.end, w.end))
        out = cut
    return tuple(out)


async def _busy_spans(user_ids: list[UUID], now: datetime) -> dict[UUID, list[matching.TimeWindow]]:
    """Per helper, the travel and service time of the jobs they hold and the offers open to
    them: a helper is never offered a second job at the same hour."""
    held = Q(state=OfferState.accepted, booking__state__in=ACTIVE) | Q(state=OfferState.open)
    rows = await Offer.filter(
        held, helper_id__in=user_ids, planned_start__gte=now - timedelta(days=1)
    ).values_list("helper_id", "planned_start", "travel_minutes", "booking__duration_minutes")
    out: dict[UUID, list[matching.TimeWindow]] = defaultdict(list)
    for helper_id, start, travel, duration in rows:
        begin = _epoch_minutes(start)
        out[helper_id].append(  # type: ignore[index]
            matching.TimeWindow(begin - travel, begin + duration + travel)
        )
    return out


async def _recent_minutes(user_ids: list[UUID], now: datetime) -> Counter[UUID]:
    rows = await Booking.filter(
        helper_id__in=user_ids,
        checkout_at__gte=now - FAIRNESS_PERIOD,
        served_minutes__isnull=False,
    ).values_list("helper_id", "served_minutes")
    out: Counter[UUID] = Counter()
    for helper_id, minutes in rows:
        out[helper_id] += minutes  # type: ignore[index]
    return out


@dataclass(frozen=True)
class Box:
    """A latitude/longitude rectangle; helpers outside it cannot reach any booking inside."""

    south: float
    north: float
    west: float
    east: float


def reach_box(bookings: Sequence[Booking], policy: matching.Policy) -> Box:
    """The bookings' places grown by the farthest any service lets a helper travel."""
    minutes = max((rule.radius_minutes for rule in policy.rules.values()), default=0)
    km = policy.travel.reach_km(minutes) * 1.01  # a hair of margin over the sphere's curve
    lats = [b.latitude for b in bookings]
    lons = [b.longitude for b in bookings]
    lat_pad = km / 110.5
    widest = min(89.0, max(abs(min(lats)), abs(max(lats))) + lat_pad)
    lon_pad = min(180.0, km / (111.3 * math.cos(math.radians(widest))))
    return Box(min(lats) - lat_pad, max(lats) + lat_pad, min(lons) - lon_pad, max(lons) + lon_pad)


async def _helpers(box: Box) -> list[tuple[HelperProfile, User]]:
    """Approved, active helpers with a known place inside `box`; the rest of the city is not
    loaded (a district's round, a suggestion or an emergency reads only its neighbourhood)."""
    profiles = await HelperProfile.filter(
        vetting_status=VettingStatus.approved,
        user__status=UserStatus.active,
        latitude__gte=box.south,
        latitude__lte=box.north,
        longitude__gte=box.west,
        longitude__lte=box.east,
    ).select_related("user")
    return [(p, p.user) for p in profiles]


def _local_day(moment: datetime) -> date:
    return moment.astimezone(LOCAL_TIME).date()


def planning_days(now: datetime) -> list[tuple[date, matching.TimeWindow]]:
    """The local days the planning horizon touches, today first, each with its span."""
    first = _local_day(now)
    out = []
    for offset in range((_local_day(now + HORIZON) - first).days + 1):
        day = first + timedelta(days=offset)
        start = datetime.combine(day, time.min, LOCAL_TIME)
        out.append((day, matching.TimeWindow.from_datetimes(start, start + timedelta(days=1))))
    return out


def capacity_windows(
    per_day: int, load_by_day: Counter[date], days: list[tuple[date, matching.TimeWindow]]
) -> tuple[matching.CapacityWindow, ...]:
    """A helper's capacity per local day, less the jobs and open offers already on that day:
    offers for next week must not use up today."""
    return tuple(
        matching.CapacityWindow(span, max(0, per_day - load_by_day[day])) for day, span in days
    )


async def _loads_by_day(user_ids: list[UUID], now: datetime) -> dict[UUID, Counter[date]]:
    """Per helper and local day: bookings they hold and offers still open to them."""
    since = datetime.combine(_local_day(now), time.min, LOCAL_TIME)
    loads: dict[UUID, Counter[date]] = defaultdict(Counter)
    jobs = await Booking.filter(
        helper_id__in=user_ids, state__in=ACTIVE, window_start__gte=since
    ).values_list("helper_id", "window_start")
    offers = await Offer.filter(
        helper_id__in=user_ids, state=OfferState.open, booking__window_start__gte=since
    ).values_list("helper_id", "booking__window_start")
    for helper_id, start in [*jobs, *offers]:
        loads[helper_id][_local_day(start)] += 1  # type: ignore[index]
    return loads


async def _match_policy(version: int, policy: DistrictPolicy) -> matching.Policy:
    black = await Provider.filter(list_status=ListStatus.black).values_list("id", flat=True)
    return dataclasses.replace(
        catalogue.matching_policy(version, policy),
        blacklisted_providers=frozenset(str(p) for p in black),
    )


async def candidate_helpers(
    bookings: Sequence[Booking], version: int, policy: DistrictPolicy, now: datetime
) -> tuple[matching.Policy, list[matching.Helper], dict[UUID, frozenset[str]]]:
    """The matcher's policy, every helper it may consider (with their verified certificates),
    and per booking the helpers the market refuses (the elder's blocked list, earlier offers,
    volunteers for a self-paid booking)."""
    match_policy = await _match_policy(version, policy)
    rows = await _helpers(reach_box(bookings, match_policy))
    user_ids = [user.id for _, user in rows]
    facts = await helper_facts(user_ids)
    loads = await _loads_by_day(user_ids, now)
    busy = await _busy_spans(user_ids, now)
    recent = await _recent_minutes(user_ids, now)
    days = planning_days(now)
    helpers = []
    for profile, user in rows:
        if user.id not in facts:
            continue
        skills = frozenset(
            matching.Service(s) for s in profile.skills if s in {m.value for m in matching.Service}
        )
        helpers.append(
            matching.Helper(
                id=str(user.id),
                kind=matching.HelperKind(profile.kind.value),
                location=matching.Location(profile.latitude, profile.longitude),  # type: ignore[arg-type]
                skills=skills,
                certificates=tuple(
                    catalogue.engine_certificate(kind, expires)
                    for kind, expires in sorted(
                        facts[user.id].certificates.items(), key=lambda c: c[0].value
                    )
                ),
                availability=free_windows(
                    availability_windows(profile.availability, now), busy[user.id]
                ),
                capacity=profile.capacity_per_day * len(days),
                # A day held beyond its capacity must not eat into the other days.
                current_load=sum(
                    min(loads[user.id][day], profile.capacity_per_day) for day, _ in days
                ),
                capacity_windows=capacity_windows(profile.capacity_per_day, loads[user.id], days),
                recent_minutes=recent[user.id],
                rating=profile.rating_sum / profile.rating_count if profile.rating_count else None,
                gender=matching.Gender(user.gender) if user.gender in catalogue.GENDERS else None,
                provider_id=str(profile.provider_id) if profile.provider_id else None,  # type: ignore[attr-defined]
                crew_size=profile.crew_size,
            )
        )
    blocked = await _blocked(bookings, facts)
    return match_policy, helpers, blocked


async def _blocked(
    bookings: Sequence[Booking], facts: dict[UUID, catalogue.HelperFacts]
) -> dict[UUID, frozenset[str]]:
    ids = [b.id for b in bookings]
    elders = sorted({b.elder_id for b in bookings})  # type: ignore[attr-defined]
    offered: dict[UUID, set[str]] = defaultdict(set)
    for booking_id, helper_id in await Offer.filter(booking_id__in=ids).values_list(
        "booking_id", "helper_id"
    ):
        offered[booking_id].add(str(helper_id))  # type: ignore[index]
    listed: dict[UUID, set[str]] = defaultdict(set)
    for elder_id, helper_id in await ElderHelperList.filter(
        elder_id__in=elders, kind=HelperListKind.blocked
    ).values_list("elder_id", "helper_id"):
        listed[elder_id].add(str(helper_id))  # type: ignore[index]
    by_payment = await payment_refusals(bookings, facts)
    out = {}
    for booking in bookings:
        refused = (
            set(offered[booking.id]) | listed[booking.elder_id] | set(booking.excluded_helpers)
        )  # type: ignore[attr-defined]
        refused.update(by_payment[booking.id])
        out[booking.id] = frozenset(refused)
    return out


# Dispersed destitute elders (分散供养特困) are the poorest of the economically disadvantaged.
FLAG_GROUPS = {
    **{g.value: g for g in matching.PriorityGroup},
    "dispersed_destitute": matching.PriorityGroup.ECONOMIC_HARDSHIP,
}


def priority_groups(flags: list[str]) -> frozenset[matching.PriorityGroup]:
    return frozenset(FLAG_GROUPS[f] for f in flags if f in FLAG_GROUPS)


async def request_of(booking: Booking, blocked: frozenset[str]) -> matching.Request:
    profile = await ElderProfile.get(user_id=booking.elder_id)  # type: ignore[attr-defined]
    groups = priority_groups(profile.flags)
    gender = (profile.preferences or {}).get("helper_gender_for_intimate_care")
    previous = await _previous_helpers(booking)
    return matching.Request(
        id=str(booking.id),
        elder_id=str(booking.elder_id),  # type: ignore[attr-defined]
        service=matching.Service(booking.service),
        location=matching.Location(booking.latitude, booking.longitude),
        window=matching.TimeWindow.from_datetimes(booking.window_start, booking.window_end),
        duration=booking.duration_minutes,
        grade=catalogue.grade_of(catalogue.level_of(profile.capability_level)),
        priority_groups=groups,
        preferred_gender=matching.Gender(wanted)
        if (wanted := catalogue.binding_gender(gender))
        else None,
        previous_helpers=previous,
        blocked_helpers=blocked,
        urgency=matching.Urgency.EMERGENCY if booking.emergency else matching.Urgency.ROUTINE,
        needs_lifting=booking.needs_lifting,
    )


async def _previous_helpers(booking: Booking) -> tuple[matching.PreviousHelper, ...]:
    """Continuity: the series' helper and the elder's preferred helpers count as well rated;
    other past helpers with the elder's last rating of them."""
    ratings: dict[str, float] = {}
    past = (
        await Booking.filter(
            elder_id=booking.elder_id,  # type: ignore[attr-defined]
            helper_id__isnull=False,
            state__in=(BookingState.settled, BookingState.rated, BookingState.confirmed),
        )
        .order_by("window_start")
        .values_list("helper_id", "rating")
    )
    for helper_id, rating in past:
        if rating is not None:
            ratings[str(helper_id)] = float(rating)
    keep = 5.0
    if booking.series_id is not None:  # type: ignore[attr-defined]
        same = await Booking.filter(
            series_id=booking.series_id, helper_id__isnull=False
        ).values_list(  # type: ignore[attr-defined]
            "helper_id", flat=True
        )
        for helper_id in same:
            ratings[str(helper_id)] = keep
    for helper_id in await ElderHelperList.filter(
        elder_id=booking.elder_id,
        kind=HelperListKind.preferred,  # type: ignore[attr-defined]
    ).values_list("helper_id", flat=True):
        ratings[str(helper_id)] = keep
    return tuple(matching.PreviousHelper(h, r) for h, r in sorted(ratings.items()))


async def _dispatched(booking_ids: list[UUID]) -> set[UUID]:
    """Bookings whose current offer the centre made by hand (their last move to `offered`)."""
    last: dict[UUID, str] = {}
    for booking_id, action in (
        await BookingEvent.filter(booking_id__in=booking_ids, to_state=BookingState.offered.value)
        .order_by("at", "id")
        .values_list("booking_id", "action")
    ):
        last[booking_id] = action  # type: ignore[index]
    return {b for b, action in last.items() if action == Action.dispatch.value}


async def _sweep(now: datetime) -> None:
    """Escalate requests past their latest start; expire those whose window closed.

    A booking the centre dispatched by hand is not escalated again while its offer is open:
    the centre chose that helper knowing the hour; a decline or lapse brings it back."""
    open_states = (BookingState.requested, BookingState.offered, BookingState.escalated)
    stale = await Booking.filter(state__in=open_states, window_start__lte=now).order_by("id")
    dispatched = await _dispatched([b.id for b in stale if b.state is BookingState.offered])
    for booking in stale:
        latest_start = booking.window_end - timedelta(minutes=booking.duration_minutes)
        if booking.window_end <= now:
            change = Change(Action.expire, "the window closed unstaffed")
        elif (
            latest_start < now
            and booking.state is not BookingState.escalated
            and booking.id not in dispatched
        ):
            change = Change(Action.escalate, "no helper before the latest start")
        else:
            continue
        try:
            async with booking_transaction() as tx:
                offered = booking.state is BookingState.offered
                await lifecycle.apply(
                    tx, booking, change, lifecycle.SYSTEM, now=now, streams=streams_for(booking)
                )
                if offered:
                    await withdraw_open_offers(tx, booking, now)
        except Conflict:
            # Accepted or cancelled meanwhile: the booking is no longer open.
            continue


async def _auto_confirm(now: datetime) -> None:
    from market.services.checkin import auto_confirm

    completed = await Booking.filter(state=BookingState.completed).order_by("id")
    for booking in completed:
        _, policy = await policy_in_force(booking.district_id, now)
        due = booking.checkout_at + timedelta(minutes=policy.bookings.auto_confirm_minutes)  # type: ignore[operator]
        if now >= due:
            try:
                await auto_confirm(booking, now=now)
            except Conflict:
                # Confirmed or disputed by a person meanwhile.
                continue


async def _settle_confirmed(now: datetime) -> None:
    """Settle what was confirmed but not settled, e.g. after a crash between the two steps;
    settlement is idempotent, so a booking settled meanwhile costs one refused update."""
    # Give the confirming request a minute to settle on its own before sweeping behind it.
    confirmed = (
        await Booking.filter(state=BookingState.confirmed, confirmed_at__lt=now - SETTLE_GRACE)
        .order_by("id")
        .limit(500)
    )
    for booking in confirmed:
        try:
            await settlement.settle_booking(booking, now=now)
        except Conflict:
            continue


def match_note(unmatched: matching.Unmatched) -> dict[str, Any]:
    """The matcher's reason in words and counts, as kept on the booking."""
    return {
        "code": unmatched.code.value,
        "message": unmatched.message,
        "funnel": [{"code": s.code.value, "remaining": s.remaining} for s in unmatched.funnel],
    }


async def _note_unmatched(
    unmatched: Sequence[matching.Unmatched], by_id: dict[str, Booking], now: datetime
) -> None:
    """Keep on each booking why the round left it without an offer, and tell the centre and
    the elder's side when that reason changes (a request waiting for hours writes once)."""
    for item in unmatched:
        booking = by_id[item.request_id]
        note = match_note(item)
        kept = booking.match_note or {}
        if all(kept.get(key) == value for key, value in note.items()):
            continue
        async with booking_transaction() as tx:
            changed = (
                await Booking.filter(id=booking.id, state=BookingState.requested)
                .using_db(tx.connection)
                .update(match_note={**note, "at": now.isoformat()})
            )
            if changed:
                await tx.publish(
                    streams_for(booking),
                    "booking.unmatched",
                    {
                        "booking_id": str(booking.id),
                        "code": note["code"],
                        "message": note["message"],
                    },
                )


async def _match_district(district_id: UUID, bookings: list[Booking], now: datetime) -> int:
    from market.services.offers import create_offer, emergency_fanout

    version, policy = await policy_in_force(district_id, now)
    emergencies = [b for b in bookings if b.emergency]
    routine = [b for b in bookings if not b.emergency]
    offered = 0
    for booking in emergencies:
        try:
            offered += await emergency_fanout(booking.id, now=now)
        except Exception:
            # One emergency that cannot be fanned out must not hold up the district's others,
            # nor its routine requests; the next round tries it again.
            log.exception("emergency fan-out of booking %s failed", booking.id)
    if not routine:
        return offered
    match_policy, helpers, blocked = await candidate_helpers(routine, version, policy, now)
    requests = [await request_of(b, blocked.get(b.id, frozenset())) for b in routine]
    result = matching.match(requests, helpers, policy=match_policy, now=_epoch_minutes(now))
    by_id = {str(b.id): b for b in routine}
    await _note_unmatched(result.unmatched, by_id, now)
    deadline = now + timedelta(seconds=policy.bookings.offer_timeout_seconds)
    for assignment in result.assignments:
        booking = by_id[assignment.request_id]
        helper_id = UUID(assignment.helper_id)
        try:
            async with booking_transaction() as tx:
                await create_offer(
                    tx,
                    booking,
                    helper_id,
                    deadline=deadline,
                    planned_start=datetime.fromtimestamp(assignment.start * 60, UTC),
                    now=now,
                    travel_minutes=assignment.travel_minutes,
                    cost={
                        "travel": assignment.cost.travel,
                        "waiting": assignment.cost.waiting,
                        "continuity": assignment.cost.continuity,
                        "fairness": assignment.cost.fairness,
                        "rating": assignment.cost.rating,
                    },
                )
                await lifecycle.apply(
                    tx,
                    booking,
                    Change(
                        Action.offer,
                        detail={"helper_id": assignment.helper_id},
                        columns={"match_note": None},
                    ),
                    lifecycle.SYSTEM,
                    now=now,
                    streams=streams_for(booking, helper_id),
                )
            offered += 1
        except Conflict:
            # Cancelled or staffed by the centre meanwhile: nothing to offer.
            continue
    return offered


async def run_round(*, now: datetime) -> int:
    """One round of the loop; returns the number of offers made."""
    from market.services.offers import expire_offers

    await expire_offers(now)
    await guarantee_due(now)
    await _sweep(now)
    await _auto_confirm(now)
    await _settle_confirmed(now)
    open_requests = (
        await Booking.filter(state=BookingState.requested, window_end__gt=now)
        .order_by("window_start", "id")
        .limit(BATCH_LIMIT)
    )
    by_district: dict[UUID, list[Booking]] = defaultdict(list)
    for booking in open_requests:
        by_district[booking.district_id].append(booking)
    offered = 0
    for district_id in sorted(by_district):
        offered += await _match_district(district_id, by_district[district_id], now)
    return offered


async def run_forever(interval_seconds: float) -> None:
    """The background task started in the lifespan; a failed round is logged, not fatal."""
    while True:
        try:
            await run_round(now=datetime.now(UTC))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("matching round failed")
        await asyncio.sleep(interval_seconds)
