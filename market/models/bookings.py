"""Bookings, their offers and transition log, recurring series, idempotency and helper lists.

Every booking carries its district so the tables can be sharded by district later.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model


class BookingState(StrEnum):
    requested = "requested"
    offered = "offered"
    accepted = "accepted"
    en_route = "en_route"
    in_service = "in_service"
    completed = "completed"
    confirmed = "confirmed"
    settled = "settled"
    rated = "rated"
    cancelled = "cancelled"
    expired = "expired"
    escalated = "escalated"
    declined = "declined"
    no_show = "no_show"
    disputed = "disputed"


class Payment(StrEnum):
    # District-funded: a volunteer's hours are minted (issuance).
    public = "public"
    # From the time account of the elder or a redeeming relative (`Booking.payer_id`).
    hours = "hours"
    # A monthly voucher pays a share of a provider's price; the elder pays the rest.
    subsidy = "subsidy"
    # The elder pays a provider's price.
    self_paid = "self"
    # Hours donated to the district pool pay for an elder who has none.
    pool = "pool"


class OfferState(StrEnum):
    open = "open"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"
    # Another helper won an emergency fan-out, or the booking was cancelled meanwhile.
    withdrawn = "withdrawn"


class HelperListKind(StrEnum):
    preferred = "preferred"
    blocked = "blocked"


class RecurringSeries(Model):
    # One recurring request (weekday lunch, weekly bath); its bookings point back here so the
    # same helper can be kept from one occurrence to the next.

    id = fields.UUIDField(primary_key=True)
    district_id = fields.UUIDField(db_index=True)
    elder: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "market.User", related_name="series", on_delete=fields.RESTRICT
    )
    service = fields.CharField(max_length=16)
    weekdays = fields.JSONField()
    start_time = fields.CharField(max_length=5)
    # The last occurrence day; none for an open-ended series (until ended).
    until = fields.DateField(null=True)
    exceptions = fields.JSONField(default=dict)
    # What each booking of the series is made of, so the rolling horizon can book further
    # occurrences (market.services.series_horizon); none for series made before it existed,
    # which were booked whole at creation.
    template = fields.JSONField(null=True)
    # The last day occurrences have been booked up to (inclusive).
    expanded_through = fields.DateField(null=True)
    created_by_id = fields.UUIDField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "recurring_series"


class Booking(Model):
    id = fields.UUIDField(primary_key=True)
    district_id = fields.UUIDField(db_index=True)
    elder: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "market.User", related_name="bookings", on_delete=fields.RESTRICT
    )
    created_by_id = fields.UUIDField()
    service = fields.CharField(max_length=16)
    emergency = fields.BooleanField(default=False)
    state = fields.CharEnumField(BookingState, max_length=16, default=BookingState.requested)
    # Bumped by every transition: each transition is a conditional UPDATE on (state, version),
    # so two racing actors can never both succeed.
    version = fields.IntField(default=0)
    window_start = fields.DatetimeField()
    window_end = fields.DatetimeField()
    duration_minutes = fields.IntField()
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    notes = fields.TextField(default="")
    needs_lifting = fields.BooleanField(default=False)
    payment = fields.CharEnumField(Payment, max_length=8)
    policy_version = fields.IntField()
    series: fields.ForeignKeyNullableRelation[RecurringSeries] = fields.ForeignKeyField(
        "market.RecurringSeries", null=True, related_name="bookings", on_delete=fields.RESTRICT
    )
    occurrence = fields.DateField(null=True)
    helper: fields.ForeignKeyNullableRelation = fields.ForeignKeyField(
        "market.User", null=True, related_name="jobs", on_delete=fields.RESTRICT
    )
    # Helpers who declined, let an offer lapse or cancelled: never offered this booking again.
    excluded_helpers = fields.JSONField(default=list)
    # The elder side's one-time code (encrypted), read out to the helper at check-out.
    confirm_code_enc = fields.TextField()
    # Wrong codes tried: after a few the code no longer works, so it cannot be guessed.
    code_attempts = fields.IntField(default=0)
    # Who pays in hours (the elder or the linked family member who booked).
    payer_id = fields.UUIDField(null=True)
    checkin_at = fields.DatetimeField(null=True)
    checkin_latitude = fields.FloatField(null=True)
    checkin_longitude = fields.FloatField(null=True)
    checkout_at = fields.DatetimeField(null=True)
    checkout_latitude = fields.FloatField(null=True)
    checkout_longitude = fields.FloatField(null=True)
    served_minutes = fields.IntField(null=True)
    # Check-in or check-out outside the policy's tolerance: reasons given, shown to the centre.
    flagged = fields.BooleanField(default=False)
    flags = fields.JSONField(default=list)
    # Why the last matching round left it without an offer, in the matcher's words and counts.
    match_note = fields.JSONField(null=True)
    confirmed_by_id = fields.UUIDField(null=True)
    confirmed_at = fields.DatetimeField(null=True)
    # free | late (cancellation), dispute_upheld; none while the booking is live.
    outcome = fields.CharField(max_length=24, null=True)
    no_show_side = fields.CharField(max_length=16, null=True)
    dispute_reason = fields.TextField(null=True)
    dispute_decision = fields.CharField(max_length=16, null=True)
    settled_at = fields.DatetimeField(null=True)
    # -- payment (services/payments.py, services/settlement.py) --
    # Minutes held for an `hours` or `pool` booking while it is live, and the chain they are
    # held in (the payer's, or the elder's district for the pool); released when it ends.
    hold_minutes = fields.IntField(null=True)
    hold_chain = fields.CharField(max_length=64, null=True)
    # `self` and `subsidy`: the highest price of the district's providers when booked (fen),
    # and for `subsidy` the voucher share held against the elder's month (local month).
    quote_fen = fields.IntField(null=True)
    voucher_hold_fen = fields.IntField(null=True)
    voucher_month = fields.CharField(max_length=7, null=True)
    # What settled: the serving provider's price, the voucher's share, the elder's part, the
    # minutes moved, and how it was funded (entry ids, transfer id).
    price_fen = fields.IntField(null=True)
    voucher_fen = fields.IntField(null=True)
    copay_fen = fields.IntField(null=True)
    charged_minutes = fields.IntField(null=True)
    settlement: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    # No volunteer took an hours- or pool-paid booking in time: the district buys it from a
    # provider (guaranteed redemption), whose staff may be offered it from then on.
    guaranteed_at = fields.DatetimeField(null=True)
    # Settlement attempts that ended without moving hours (a transfer voided, a refusal), and
    # the latest refusal: a retry uses a new ledger id, so a refused id never succeeds later.
    settle_attempt = fields.IntField(default=0)
    settle_blocked: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    rating = fields.IntField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "booking"
        # Holds are summed per payer and per pool chain, vouchers per elder and month.
        indexes = (
            ("state", "window_start"),
            ("payer_id", "state"),
            ("hold_chain", "payment", "state"),
            ("elder_id", "voucher_month"),
        )


class BookingEvent(Model):
    # The transition log: who moved the booking from which state to which, when and why.

    id = fields.BigIntField(primary_key=True)
    booking: fields.ForeignKeyRelation[Booking] = fields.ForeignKeyField(
        "market.Booking", related_name="events", on_delete=fields.RESTRICT
    )
    action = fields.CharField(max_length=24)
    from_state = fields.CharField(max_length=16)
    to_state = fields.CharField(max_length=16)
    # None when the system acted (matching loop, timers).
    actor_id = fields.UUIDField(null=True)
    actor_role = fields.CharField(max_length=16)
    reason = fields.TextField(default="")
    detail = fields.JSONField(default=dict)
    at = fields.DatetimeField()

    class Meta:
        table = "booking_event"


class Offer(Model):
    id = fields.UUIDField(primary_key=True)
    booking: fields.ForeignKeyRelation[Booking] = fields.ForeignKeyField(
        "market.Booking", related_name="offers", on_delete=fields.RESTRICT
    )
    district_id = fields.UUIDField(db_index=True)
    helper: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "market.User", related_name="offers", on_delete=fields.RESTRICT
    )
    state = fields.CharEnumField(OfferState, max_length=12, default=OfferState.open)
    deadline = fields.DatetimeField()
    planned_start = fields.DatetimeField()
    travel_minutes = fields.IntField(default=0)
    cost = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()
    answered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "offer"
        unique_together = (("booking", "helper"),)
        indexes = (("state", "deadline"),)


class IdempotencyRecord(Model):
    # A replayed POST with the same key and body gets the first response; a different body 409.

    id = fields.UUIDField(primary_key=True)
    user_id = fields.UUIDField()
    key = fields.CharField(max_length=200)
    body_sha256 = fields.CharField(max_length=64)
    status = fields.IntField()
    response = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_record"
        unique_together = (("user_id", "key"),)


class ElderHelperList(Model):
    # An elder's preferred and blocked helpers, kept by the elder, linked family or the centre.

    id = fields.UUIDField(primary_key=True)
    elder: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "market.User", related_name="helper_lists", on_delete=fields.RESTRICT
    )
    helper: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "market.User", related_name="listed_by", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(HelperListKind, max_length=12)
    added_by_id = fields.UUIDField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "elder_helper_list"
        unique_together = (("elder", "helper"),)
