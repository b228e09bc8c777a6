"""The helper on the way and at the door: en route, check-in, check-out; then confirmation.

Check-in and check-out carry time and position. Outside the district's distance or time
tolerance they need a reason and are flagged for the centre (electronic visit verification).
Hours count only from check-out. Confirmation comes from the elder's side or the centre; a
helper confirms only with the one-time code the elder's side holds, so never alone. The code
reaches an elder without a phone through linked family (their booking views) or a card the
centre prints (`confirmation_card`, each read access-logged); helpers never see it.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from market import lifecycle
from market.errors import Forbidden, InvalidInput
from market.lifecycle import Action, Change, Party
from market.models import Booking, BookingState, User
from market.policy import BookingRules
from market.realtime.events import admin_stream
from market.schemas.bookings import CheckOut, ConfirmBooking, Position
from market.services import access, settlement
from market.services.auth import now_utc
from market.services.booking_tx import BookingTransaction, booking_transaction
from market.services.bookings import (
    CODE_PURPOSE,
    actor,
    get_booking,
    party_of,
    streams_for,
    transition,
)
from market.services.districts import policy_in_force
from market.services.runtime import Runtime
from market.services.scope import Principal, require_admin_of
from matching.geo import distance_km
from matching.types import Location

# Wrong codes tolerated per booking; then only the elder's side or the centre can confirm.
MAX_CODE_ATTEMPTS = 5
# While a helper may still confirm with the code; afterwards a card would be of no use.
CODE_USABLE = lifecycle.LIVE_BEFORE_SERVICE | {BookingState.in_service, BookingState.completed}


async def _helper_booking(principal: Principal, booking_id: UUID) -> Booking:
    booking = await get_booking(booking_id)
    party = await party_of(principal, booking)
    if party is not Party.helper or booking.helper_id != principal.user_id:  # type: ignore[attr-defined]
        raise Forbidden("booking.party_forbidden", "only the booked helper may do this")
    return booking


def _deviation(
    booking: Booking,
    rules: BookingRules,
    *,
    latitude: float,
    longitude: float,
    expected: datetime,
    now: datetime,
    step: str,
) -> dict[str, Any] | None:
    """What is outside tolerance at this step, or None."""
    metres = round(
        distance_km(Location(booking.latitude, booking.longitude), Location(latitude, longitude))
        * 1000
    )
    minutes_off = round((now - expected).total_seconds() / 60)
    problems = []
    if metres > rules.checkin_distance_tolerance_metres:
        problems.append("distance")
    if abs(minutes_off) > rules.checkin_time_tolerance_minutes:
        problems.append("time")
    if not problems:
        return None
    return {"step": step, "outside": problems, "distance_m": metres, "minutes_off": minutes_off}


def _need_reason(deviation: dict[str, Any], reason: str | None) -> None:
    if reason is None:
        outside = " and ".join(deviation["outside"])
        raise InvalidInput(
            "checkin.reason_required",
            f"{deviation['step']} is outside the district's {outside} tolerance: give a reason",
            [{"field": "reason", "problem": "is required outside the tolerance"}],
        )


async def _flag(tx: BookingTransaction, booking: Booking, deviation: dict[str, Any]) -> None:
    await tx.publish(
        [admin_stream(booking.district_id)],
        "booking.flagged",
        {"booking_id": str(booking.id), **deviation},
    )


async def start(principal: Principal, booking_id: UUID) -> Booking:
    booking = await _helper_booking(principal, booking_id)
    return await transition(
        booking, Change(Action.start), actor(principal, Party.helper), now=now_utc()
    )


async def check_in(principal: Principal, booking_id: UUID, cmd: Position) -> Booking:
    booking = await _helper_booking(principal, booking_id)
    lifecycle.check(Action.check_in, Party.helper, booking.id, booking.state)
    now = now_utc()
    _, policy = await policy_in_force(booking.district_id, now)
    deviation = _deviation(
        booking,
        policy.bookings,
        latitude=cmd.latitude,
        longitude=cmd.longitude,
        expected=min(max(now, booking.window_start), booking.window_end),
        now=now,
        step="check_in",
    )
    columns: dict[str, Any] = {
        "checkin_at": now,
        "checkin_latitude": cmd.latitude,
        "checkin_longitude": cmd.longitude,
    }
    if deviation is not None:
        _need_reason(deviation, cmd.reason)
        deviation["reason"] = cmd.reason
        columns.update(flagged=True, flags=[*booking.flags, deviation])
    async with booking_transaction() as tx:
        await lifecycle.apply(
            tx,
            booking,
            Change(Action.check_in, cmd.reason or "", detail=deviation or {}, columns=columns),
            actor(principal, Party.helper),
            now=now,
            streams=streams_for(booking),
        )
        if deviation is not None:
            await _flag(tx, booking, deviation)
    return booking


def _code_matches(runtime: Runtime, booking: Booking, code: str) -> bool:
    held = runtime.crypto.decrypt(booking.confirm_code_enc, purpose=CODE_PURPOSE)
    return hmac.compare_digest(held.encode(), code.encode())


async def _check_code(runtime: Runtime, booking: Booking, code: str) -> None:
    """403 for a wrong or exhausted code; a wrong try is counted (that write is deliberate)."""
    if booking.code_attempts >= MAX_CODE_ATTEMPTS:
        raise Forbidden(
            "booking.code_locked",
            "too many wrong codes: the elder's side or the centre must confirm",
        )
    if not _code_matches(runtime, booking, code):
        await Booking.filter(id=booking.id).update(code_attempts=booking.code_attempts + 1)
        raise Forbidden("booking.code_wrong", "the confirmation code is not right")


async def confirmation_card(
    runtime: Runtime, principal: Principal, booking_id: UUID
) -> dict[str, Any]:
    """What the centre prints for an elder without a phone: the booking and its one-time code."""
    booking = await get_booking(booking_id)
    require_admin_of(principal, booking.district_id, "print confirmation cards of this district")
    if booking.state not in CODE_USABLE:
        raise lifecycle.wrong_state(booking.id, Action.confirm, booking.state)
    elder = await User.get(id=booking.elder_id)  # type: ignore[attr-defined]
    await access.log_access(principal, elder.id, ("confirm_code",), "confirmation_card")
    return {
        "booking_id": str(booking.id),
        "elder_id": str(elder.id),
        "elder_name": elder.name,
        "service": booking.service,
        "window_start": booking.window_start.isoformat(),
        "window_end": booking.window_end.isoformat(),
        "code": runtime.crypto.decrypt(booking.confirm_code_enc, purpose=CODE_PURPOSE),
    }


async def check_out(
    runtime: Runtime, principal: Principal, booking_id: UUID, cmd: CheckOut
) -> Booking:
    booking = await _helper_booking(principal, booking_id)
    lifecycle.check(Action.check_out, Party.helper, booking.id, booking.state)
    now = now_utc()
    _, policy = await policy_in_force(booking.district_id, now)
    started = booking.checkin_at or now
    expected_end = started + timedelta(minutes=booking.duration_minutes)
    deviation = _deviation(
        booking,
        policy.bookings,
        latitude=cmd.latitude,
        longitude=cmd.longitude,
        # Leaving early is the deviation that matters; staying longer is no fault.
        expected=min(now, expected_end),
        now=now,
        step="check_out",
    )
    if deviation is not None and "distance" not in deviation["outside"]:
        deviation = None
    early = now < expected_end - timedelta(minutes=policy.bookings.checkin_time_tolerance_minutes)
    if early:
        deviation = deviation or {
            "step": "check_out",
            "outside": [],
            "distance_m": None,
            "minutes_off": 0,
        }
        deviation["outside"] = [*deviation["outside"], "time"]
        deviation["minutes_off"] = round((now - expected_end).total_seconds() / 60)
    if deviation is not None:
        _need_reason(deviation, cmd.reason)
        deviation["reason"] = cmd.reason
    if cmd.code is not None:
        await _check_code(runtime, booking, cmd.code)
    served = max(1, int((now - started).total_seconds() // 60))
    columns: dict[str, Any] = {
        "checkout_at": now,
        "checkout_latitude": cmd.latitude,
        "checkout_longitude": cmd.longitude,
        "served_minutes": served,
    }
    if deviation is not None:
        columns.update(flagged=True, flags=[*booking.flags, deviation])
    who = actor(principal, Party.helper)
    async with booking_transaction() as tx:
        await lifecycle.apply(
            tx,
            booking,
            Change(Action.check_out, cmd.reason or "", detail=deviation or {}, columns=columns),
            who,
            now=now,
            streams=streams_for(booking),
        )
        if deviation is not None:
            await _flag(tx, booking, deviation)
        if cmd.code is not None:
            await lifecycle.apply(
                tx,
                booking,
                Change(
                    Action.confirm,
                    "one-time code read out by the elder's side",
                    detail={"by_code": True},
                    columns={"confirmed_by_id": principal.user_id, "confirmed_at": now},
                ),
                who,
                now=now,
                streams=streams_for(booking),
            )
    if cmd.code is not None:
        await settlement.settle_booking(booking, now=now)
    return booking


async def confirm(
    runtime: Runtime, principal: Principal, booking_id: UUID, cmd: ConfirmBooking
) -> Booking:
    booking = await get_booking(booking_id)
    party = await party_of(principal, booking)
    lifecycle.check(Action.confirm, party, booking.id, booking.state)
    detail: dict[str, Any] = {}
    if party is Party.helper:
        if cmd.code is None:
            raise InvalidInput(
                "booking.code_required",
                "a helper confirms only with the elder side's one-time code",
                [{"field": "code", "problem": "is required for a helper"}],
            )
        await _check_code(runtime, booking, cmd.code)
        detail["by_code"] = True
    now = now_utc()
    change = Change(
        Action.confirm,
        detail=detail,
        columns={"confirmed_by_id": principal.user_id, "confirmed_at": now},
    )
    await transition(booking, change, actor(principal, party), now=now)
    await settlement.settle_booking(booking, now=now)
    return booking


async def auto_confirm(booking: Booking, *, now: datetime) -> Booking:
    change = Change(
        Action.auto_confirm,
        "not confirmed or disputed within the policy's period",
        columns={"confirmed_at": now},
    )
    await transition(booking, change, lifecycle.SYSTEM, now=now)
    await settlement.settle_booking(booking, now=now)
    return booking
