"""Requests and bookings: create, read, and every transition the elder side, helper or centre
may take. Each handler parses, calls one service function and renders; services decide."""

from __future__ import annotations

import hashlib
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.models import Role
from market.routes.spec import endpoint
from market.schemas.bookings import (
    BookingListQuery,
    CancelBooking,
    CheckOut,
    ConfirmBooking,
    CreateRequest,
    DecideDispute,
    DispatchBooking,
    DisputeBooking,
    HelperListEntry,
    Position,
    RateBooking,
    ReportNoShow,
    ReviewFlags,
    StateReason,
    VoucherQuery,
)
from market.schemas.parse import json_body, parse, parse_body, parse_query, path_uuid
from market.services import auth, bookings, checkin, flag_review, payments, ratings, requests
from market.services.runtime import runtime_of

ELDER_SIDE = [Role.elder, Role.family]
BOOKERS = [Role.elder, Role.family, Role.centre_admin]
HELPERS = [Role.volunteer, Role.provider_staff]
PARTIES = [*BOOKERS, *HELPERS]


async def _render(request: Request, booking_id: object, status: int = 200) -> Response:
    view = await bookings.view(runtime_of(request), auth.current(request), booking_id)  # type: ignore[arg-type]
    return JSONResponse({"booking": view}, status_code=status)


@endpoint(
    summary="Request a service for an elder",
    tag="bookings",
    roles=BOOKERS,
    body=CreateRequest,
    status=201,
    description="By the elder, a linked family member, or a centre admin for an elder of their "
    "district. An `Idempotency-Key` header makes retries safe: the same key with the same body "
    "answers with the same bookings, with another body 409. A recurrence books one booking "
    "per occurrence up to `ELDERCARE_SERIES_HORIZON_DAYS` ahead (at least its first week); "
    "its `until` is optional (within a year; absent: no end), and the service books later "
    "occurrences as the horizon moves on. An emergency is offered to the nearest helpers and "
    "the centre at once. Payment: `public` (district-funded), `hours` (the elder's or a "
    "redeeming relative's time account: the booked minutes are held, 409 "
    "`payment.insufficient_hours` if they are not there), `pool` (donated hours, for elders "
    "of `time_bank.pool_priority` without enough hours), `subsidy` (a voucher share of a "
    "provider's price, within `vouchers.monthly_cap_fen` per month) or `self` (a provider's "
    "price; 409 `payment.unpriced` when no provider of the district prices the service). What "
    "is held shows in each booking's `payment_detail`.",
)
async def create_request(request: Request) -> Response:
    key = requests.check_idempotency_key(request.headers.get("idempotency-key"))
    data = await json_body(request)
    cmd = parse(CreateRequest, data)
    digest = hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    principal = auth.current(request)
    created = await requests.create_request(
        runtime_of(request), principal, cmd, idempotency_key=key, body_sha256=digest
    )
    views = [
        await bookings.view(runtime_of(request), principal, booking_id)
        for booking_id in created.booking_ids
    ]
    headers = {"Idempotent-Replayed": "true"} if created.replayed else {}
    return JSONResponse({"bookings": views}, status_code=created.status, headers=headers)


@endpoint(
    summary="Bookings you may see",
    tag="bookings",
    roles=PARTIES,
    query=BookingListQuery,
    description="The elder's own, a family member's linked elders', a helper's jobs, or the "
    "centre's district, the latest window first; `?state=` and `?service=` filter, "
    "`?flagged=true` keeps the bookings flagged for the centre (a check-in or check-out "
    "outside the district's tolerance, a complaint; `?flagged=false` the others), "
    "`?order=soonest` puts the earliest window first (a work list: the centre's queue), "
    "`?limit=` "
    "(1-500, default 100) and `?offset=` page. `next_offset` is the next page's offset, null "
    "on the last page. "
    "The helper's name is shown to the elder's side and the centre; the one-time confirmation "
    "code (`confirm_code`) to the elder's side only.",
)
async def list_bookings(request: Request) -> Response:
    query = parse_query(request, BookingListQuery)
    views, next_offset = await bookings.visible_bookings(
        runtime_of(request),
        auth.current(request),
        query.state,
        limit=query.limit,
        offset=query.offset,
        service=query.service,
        flagged=query.flagged,
        soonest_first=query.order == "soonest",
    )
    return JSONResponse({"bookings": views, "next_offset": next_offset})


@endpoint(summary="A booking and its history", tag="bookings", roles=PARTIES)
async def get_booking(request: Request) -> Response:
    return await _render(request, path_uuid(request))


@endpoint(
    summary="The one-time confirmation code, for a card the centre prints",
    tag="bookings",
    roles=[Role.centre_admin],
    description="For an elder without a phone: the centre of the booking's district prints the "
    "code (with the elder's name, the service and its window) and the elder reads it out to "
    "the helper at check-out. Every read is access-logged. 409 once the booking can no longer "
    "be confirmed by code. Helpers never see the code; the elder and approved linked family "
    "see it in their booking views.",
)
async def confirmation_card(request: Request) -> Response:
    card = await checkin.confirmation_card(
        runtime_of(request), auth.current(request), path_uuid(request)
    )
    return JSONResponse({"card": card})


@endpoint(
    summary="Cancel a booking, or drop out of it as its helper",
    tag="bookings",
    roles=PARTIES,
    body=CancelBooking,
    description="The elder side or centre cancels (free before the service's cancellation "
    "window, late after it); the booked helper drops out and the booking is re-staffed. An "
    "hours or pool hold is released; late, after a helper accepted, "
    "`bookings.late_cancellation_charge_bp` of it pays that helper.",
)
async def cancel(request: Request) -> Response:
    cmd = await parse_body(request, CancelBooking)
    booking = await bookings.cancel(auth.current(request), path_uuid(request), cmd)
    return await _render(request, booking.id)


@endpoint(summary="Set off to the elder (en route)", tag="bookings", roles=HELPERS)
async def start(request: Request) -> Response:
    booking = await checkin.start(auth.current(request), path_uuid(request))
    return await _render(request, booking.id)


@endpoint(
    summary="Check in at the elder's place",
    tag="bookings",
    roles=HELPERS,
    body=Position,
    description="Outside the district's distance or time tolerance a reason is required and "
    "the booking is flagged for the centre.",
)
async def check_in(request: Request) -> Response:
    cmd = await parse_body(request, Position)
    booking = await checkin.check_in(auth.current(request), path_uuid(request), cmd)
    return await _render(request, booking.id)


@endpoint(
    summary="Check out; with the elder side's one-time code this also confirms",
    tag="bookings",
    roles=HELPERS,
    body=CheckOut,
)
async def check_out(request: Request) -> Response:
    cmd = await parse_body(request, CheckOut)
    booking = await checkin.check_out(
        runtime_of(request), auth.current(request), path_uuid(request), cmd
    )
    return await _render(request, booking.id)


@endpoint(
    summary="Confirm a completed service",
    tag="bookings",
    roles=PARTIES,
    body=ConfirmBooking,
    description="The elder, linked family or the centre confirm; a helper only with the "
    "elder side's one-time code. Confirmation settles: hours minted, paid by the payer (across "
    "districts by the two-phase transfer), from the pool or redeemed to the district, or a "
    "provider's price recorded. A settlement that cannot happen yet (the helper's account cap, "
    "a voided transfer) leaves the booking confirmed with `payment_detail.settle_blocked` and "
    "is retried.",
)
async def confirm(request: Request) -> Response:
    cmd = await parse_body(request, ConfirmBooking)
    booking = await checkin.confirm(
        runtime_of(request), auth.current(request), path_uuid(request), cmd
    )
    return await _render(request, booking.id)


@endpoint(
    summary="Dispute a completed service; settlement waits for the centre",
    tag="bookings",
    roles=BOOKERS,
    body=DisputeBooking,
)
async def dispute(request: Request) -> Response:
    cmd = await parse_body(request, DisputeBooking)
    booking = await bookings.dispute(auth.current(request), path_uuid(request), cmd)
    return await _render(request, booking.id)


@endpoint(
    summary="Decide a dispute: upheld (no hours) or rejected (confirmed and settled)",
    tag="bookings",
    roles=[Role.centre_admin],
    body=DecideDispute,
)
async def decide_dispute(request: Request) -> Response:
    cmd = await parse_body(request, DecideDispute)
    booking = await bookings.decide_dispute(auth.current(request), path_uuid(request), cmd)
    return await _render(request, booking.id)


@endpoint(
    summary="Mark a flagged booking as reviewed by the centre",
    tag="bookings",
    roles=[Role.centre_admin],
    body=ReviewFlags,
    description="For a booking flagged for the centre (a check-in or check-out outside the "
    "district's tolerance, a complaint): an admin of its district records a note and the "
    "booking leaves `?flagged=true`. The state and the `flags` record stay; the booking's log "
    "gets the note and `booking.flags_reviewed` goes to the district admin feed. 409 "
    "`booking.not_flagged` when there is nothing to review, `booking.changed` when the booking "
    "changed meanwhile.",
)
async def review_flags(request: Request) -> Response:
    cmd = await parse_body(request, ReviewFlags)
    booking = await flag_review.review(auth.current(request), path_uuid(request), cmd)
    return await _render(request, booking.id)


@endpoint(
    summary="Report a no-show: helper absent, elder not home, or elder refused",
    tag="bookings",
    roles=PARTIES,
    body=ReportNoShow,
)
async def no_show(request: Request) -> Response:
    cmd = await parse_body(request, ReportNoShow)
    booking = await bookings.report_no_show(auth.current(request), path_uuid(request), cmd)
    return await _render(request, booking.id)


@endpoint(
    summary="Offer a booking to a chosen helper (centre queue)",
    tag="bookings",
    roles=[Role.centre_admin],
    body=DispatchBooking,
    status=201,
    description="The helper must meet every rule the matcher applies to one booking and "
    "helper, else 403 naming it (`details.rule`): never the elder themself nor a helper the "
    "elder blocked (`eligibility.self`, `eligibility.blocked_by_elder`), never staff of a "
    "black-listed provider (`eligibility.blacklisted`), the payment's rules (`payment.*`), and "
    "the district policy's service rules (`policy.forbids`: who may serve, certified staff, "
    "crew and certificates, `services.lifting`, and the elder's gender preference where "
    "`services.<code>.intimate`). Reach, skills and availability are the centre's call. 409 "
    "`booking.helper_excluded` or `booking.already_offered` for a helper who dropped out of "
    "or was already offered this booking. Accepting checks the same rules again.",
)
async def dispatch(request: Request) -> Response:
    cmd = await parse_body(request, DispatchBooking)
    offer = await bookings.dispatch(auth.current(request), path_uuid(request), cmd)
    return await _render(request, offer.booking_id, status=201)  # type: ignore[attr-defined]


@endpoint(
    summary="Decline an escalated request the centre cannot staff",
    tag="bookings",
    roles=[Role.centre_admin],
    body=StateReason,
)
async def refuse(request: Request) -> Response:
    cmd = await parse_body(request, StateReason)
    booking = await bookings.refuse(auth.current(request), path_uuid(request), cmd)
    return await _render(request, booking.id)


@endpoint(
    summary="Rate a settled service (1-5 stars), or complain",
    tag="bookings",
    roles=ELDER_SIDE,
    body=RateBooking,
    description="The stars feed the helper's average (used by the matcher, and shown per "
    "provider in `GET /api/v1/providers`) and continuity: a helper this elder rated 4 or 5 is "
    "preferred for the elder's next bookings. A rating of `bookings.complaint_max_stars` "
    "(policy, default 2) or fewer, or one sent with `complaint: true` (which needs a "
    "`comment`), is a complaint: the booking is flagged for the centre "
    "(`GET /api/v1/bookings?flagged=true`) and `booking.complaint` goes to the district's "
    "admin feed.",
)
async def rate(request: Request) -> Response:
    cmd = await parse_body(request, RateBooking)
    booking = await ratings.rate(auth.current(request), path_uuid(request), cmd)
    return await _render(request, booking.id)


@endpoint(summary="An elder's preferred and blocked helpers", tag="bookings", roles=BOOKERS)
async def get_helper_lists(request: Request) -> Response:
    lists = await bookings.helper_lists(auth.current(request), path_uuid(request))
    return JSONResponse({"helpers": lists})


@endpoint(
    summary="Put a helper on an elder's preferred or blocked list, or take them off (kind null)",
    tag="bookings",
    roles=BOOKERS,
    body=HelperListEntry,
)
async def set_helper_list(request: Request) -> Response:
    cmd = await parse_body(request, HelperListEntry)
    elder_id = path_uuid(request)
    await bookings.set_helper_list(auth.current(request), elder_id, cmd)
    lists = await bookings.helper_lists(auth.current(request), elder_id)
    return JSONResponse({"helpers": lists})


@endpoint(
    summary="An elder's subsidy vouchers of a month: cap, used, held, left",
    tag="bookings",
    roles=BOOKERS,
    query=VoucherQuery,
    description="For the elder, linked family and the elder's centre. `used_fen` is what "
    "settled bookings of the month paid by voucher, `held_fen` what live subsidy bookings hold "
    "against it, out of `vouchers.monthly_cap_fen` of the policy in force on the month's first "
    "day (local time); `month` is `YYYY-MM`, the current month when left out.",
)
async def vouchers(request: Request) -> Response:
    query = parse_query(request, VoucherQuery)
    status = await payments.voucher_status(auth.current(request), path_uuid(request), query.month)
    return JSONResponse(status)


routes = [
    Route("/api/v1/requests", create_request, methods=["POST"]),
    Route("/api/v1/bookings", list_bookings, methods=["GET"]),
    Route("/api/v1/bookings/{id}", get_booking, methods=["GET"]),
    Route("/api/v1/bookings/{id}/confirm-code", confirmation_card, methods=["GET"]),
    Route("/api/v1/bookings/{id}/cancel", cancel, methods=["POST"]),
    Route("/api/v1/bookings/{id}/start", start, methods=["POST"]),
    Route("/api/v1/bookings/{id}/check-in", check_in, methods=["POST"]),
    Route("/api/v1/bookings/{id}/check-out", check_out, methods=["POST"]),
    Route("/api/v1/bookings/{id}/confirm", confirm, methods=["POST"]),
    Route("/api/v1/bookings/{id}/dispute", dispute, methods=["POST"]),
    Route("/api/v1/bookings/{id}/dispute/decision", decide_dispute, methods=["POST"]),
    Route("/api/v1/bookings/{id}/no-show", no_show, methods=["POST"]),
    Route("/api/v1/bookings/{id}/dispatch", dispatch, methods=["POST"]),
    Route("/api/v1/bookings/{id}/refuse", refuse, methods=["POST"]),
    Route("/api/v1/bookings/{id}/rate", rate, methods=["POST"]),
    Route("/api/v1/bookings/{id}/flags/review", review_flags, methods=["POST"]),
    Route("/api/v1/elders/{id}/helper-lists", get_helper_lists, methods=["GET"]),
    Route("/api/v1/elders/{id}/helper-lists", set_helper_list, methods=["POST"]),
    Route("/api/v1/elders/{id}/vouchers", vouchers, methods=["GET"]),
]
