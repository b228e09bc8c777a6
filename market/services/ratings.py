"""Ratings and complaints: the elder's side rates a settled service, 1-5 stars and a comment.

The stars feed the helper's average (the matcher's rating term, and their provider's grade
read beside the official star grade in `GET /api/v1/providers`) and, per elder, continuity:
the matching loop keeps a helper this elder rated well (`matching_loop._previous_helpers`).
A rating at or below the policy's `bookings.complaint_max_stars`, or one marked as a
complaint, also reaches the centre: the booking is flagged (the centre's
`GET /api/v1/bookings?flagged=true`) and `booking.complaint` goes to the district admin feed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tortoise.expressions import F

from market import lifecycle
from market.errors import InvalidInput
from market.lifecycle import Action, Change
from market.models import Booking, HelperProfile
from market.realtime.events import admin_stream
from market.schemas.bookings import RateBooking
from market.services.auth import now_utc
from market.services.booking_tx import booking_transaction
from market.services.bookings import actor, get_booking, party_of, streams_for
from market.services.districts import policy_in_force
from market.services.scope import Principal


def complaint_of(cmd: RateBooking, *, max_stars: int) -> dict[str, Any] | None:
    """The flag a rating puts on its booking for the centre, or None if it is no complaint."""
    if not cmd.complaint and cmd.stars > max_stars:
        return None
    if cmd.complaint and not cmd.comment:
        # A complaint the centre cannot read is one it cannot act on.
        raise InvalidInput(
            "rating.comment_required",
            "a complaint needs a comment saying what went wrong",
            [{"field": "comment", "problem": "is required with complaint"}],
        )
    return {"step": "rating", "stars": cmd.stars, "marked": cmd.complaint, "reason": cmd.comment}


async def rate(principal: Principal, booking_id: UUID, cmd: RateBooking) -> Booking:
    booking = await get_booking(booking_id)
    party = await party_of(principal, booking)
    lifecycle.check(Action.rate, party, booking.id, booking.state)
    now = now_utc()
    _, policy = await policy_in_force(booking.district_id, now)
    complaint = complaint_of(cmd, max_stars=policy.bookings.complaint_max_stars)
    columns: dict[str, Any] = {"rating": cmd.stars}
    detail: dict[str, Any] = {"stars": cmd.stars}
    if complaint is not None:
        columns.update(flagged=True, flags=[*booking.flags, complaint])
        detail["complaint"] = True
    async with booking_transaction() as tx:
        await lifecycle.apply(
            tx,
            booking,
            Change(Action.rate, cmd.comment, detail=detail, columns=columns),
            actor(principal, party),
            now=now,
            streams=streams_for(booking),
        )
        # Added in the database, so ratings of one helper's jobs committing together all count.
        await (
            HelperProfile.filter(user_id=booking.helper_id)  # type: ignore[attr-defined]
            .using_db(tx.connection)
            .update(rating_sum=F("rating_sum") + cmd.stars, rating_count=F("rating_count") + 1)
        )
        if complaint is not None:
            await tx.publish(
                [admin_stream(booking.district_id)],
                "booking.complaint",
                {
                    "booking_id": str(booking.id),
                    "helper_id": str(booking.helper_id),  # type: ignore[attr-defined]
                    **complaint,
                },
            )
    return booking
