"""The centre's review of a flagged booking: a check-in or check-out outside the district's
tolerance, or a complaint, stays in the centre's list (`GET /api/v1/bookings?flagged=true`)
until an admin of the booking's district has looked at it and says so with a note.

The review is no state change: the booking keeps its state and its `flags` (the record of
what was flagged); `flagged` goes false, the version moves on (so open pages reload), the
booking's log gets a `review_flags` row with the note, and `booking.flags_reviewed` reaches the
district admin feed, all in one transaction. A second review of the same flags is a 409.
"""

from __future__ import annotations

from uuid import UUID

from market.errors import Conflict
from market.models import Booking, BookingEvent
from market.realtime.events import admin_stream
from market.schemas.bookings import ReviewFlags
from market.services.auth import now_utc
from market.services.booking_tx import booking_transaction
from market.services.bookings import get_booking
from market.services.scope import Principal, require_admin_of

ACTION = "review_flags"


async def review(principal: Principal, booking_id: UUID, cmd: ReviewFlags) -> Booking:
    booking = await get_booking(booking_id)
    require_admin_of(principal, booking.district_id, "review flagged bookings of this district")
    if not booking.flagged:
        raise Conflict("booking.not_flagged", f"booking {booking.id} is not flagged")
    now = now_utc()
    async with booking_transaction() as tx:
        # Guarded by the version: a review races neither a new flag nor another review.
        updated = (
            await Booking.filter(id=booking.id, flagged=True, version=booking.version)
            .using_db(tx.connection)
            .update(flagged=False, version=booking.version + 1, updated_at=now)
        )
        if updated != 1:
            raise Conflict(
                "booking.changed", f"booking {booking.id} changed meanwhile; reload and review"
            )
        await BookingEvent.create(
            booking_id=booking.id,
            action=ACTION,
            from_state=booking.state.value,
            to_state=booking.state.value,
            actor_id=principal.user_id,
            actor_role=principal.role.value,
            reason=cmd.note,
            detail={"flags": len(booking.flags)},
            at=now,
            using_db=tx.connection,
        )
        await tx.publish(
            [admin_stream(booking.district_id)],
            "booking.flags_reviewed",
            {
                "booking_id": str(booking.id),
                "state": booking.state.value,
                "version": booking.version + 1,
                "note": cmd.note,
            },
        )
    booking.flagged = False
    booking.version += 1
    return booking
