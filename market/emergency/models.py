"""Tortoise models of the `emergency` app: the emergency-call record and its step log.

Its own app and migrations (like `visits` and `witnessing`), so these tables migrate without
touching the market's chain. Bookings, people and districts are referenced by id: a migration
of one app cannot name another app's tables, and the record is written in the booking's own
transaction, which has just read the booking.

`EmergencyCall` is the state the escalation timer works from (nothing about a pending step is
kept in memory, so a restarted process carries on where the last one stopped).
`EmergencyStep` is the append-only log of everything that happened to the call: database
triggers refuse UPDATE and DELETE on it (migration 0002), and `seq` numbers a call's steps
without gaps because every step is appended under the call row's lock.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

from tortoise import fields
from tortoise.models import Model


class CallState(StrEnum):
    open = "open"  # nobody has acknowledged it: the timer escalates it
    # A helper accepted or the centre acknowledged: no more escalation, unless the booking
    # goes back to be staffed again (its helper dropped out), which re-opens the call.
    acknowledged = "acknowledged"
    closed = "closed"  # the booking is over (served, cancelled, expired)


class Escalation(IntEnum):
    """How far an unacknowledged call has been escalated; the steps happen in this order."""

    none = 0
    duty_feed = 1  # an alert on the district's admin stream that needs acknowledging
    webhook = 2  # the outbound webhook (e.g. an SMS gateway)


class WebhookState(StrEnum):
    pending = "pending"  # claimed by a process (until `webhook_lease_until`), being sent
    delivered = "delivered"
    failed = "failed"  # every attempt failed, or the gateway refused it for good
    stopped = "stopped"  # acknowledged between two attempts: no more retries
    skipped = "skipped"  # no webhook configured in this deployment


class AckVia(StrEnum):
    accept = "accept"  # a helper accepted the emergency offer
    centre = "centre"  # a centre admin acknowledged it explicitly


class StepKind(StrEnum):
    created = "created"
    offered = "offered"
    no_helper_in_reach = "no_helper_in_reach"
    duty_feed = "duty_feed"
    webhook_started = "webhook_started"
    webhook_resumed = "webhook_resumed"
    webhook_attempt = "webhook_attempt"
    webhook_delivered = "webhook_delivered"
    webhook_failed = "webhook_failed"
    webhook_stopped = "webhook_stopped"
    webhook_skipped = "webhook_skipped"
    acknowledged = "acknowledged"
    helper_accepted = "helper_accepted"  # a helper took it after the centre had acknowledged
    reopened = "reopened"  # the booking went back to be staffed: acknowledged no more
    closed = "closed"


class EmergencyCall(Model):
    id = fields.UUIDField(primary_key=True)
    # One call per emergency booking: a second fan-out of the same booking adds steps.
    booking_id = fields.UUIDField(unique=True)
    elder_id = fields.UUIDField()
    # The booking's district: its centre admins may read and acknowledge the call.
    district_id = fields.UUIDField()
    state = fields.CharEnumField(CallState, max_length=16, default=CallState.open)
    # The policy version whose timings were fixed when the call opened.
    policy_version = fields.IntField()
    created_at = fields.DatetimeField()
    escalation = fields.IntEnumField(Escalation, default=Escalation.none)
    duty_feed_due_at = fields.DatetimeField()
    webhook_due_at = fields.DatetimeField()
    # The delays behind those due times, fixed from `policy_version` when the call opened: a
    # call re-opened (its helper dropped out) escalates again on them, counted from then.
    # 0 (never left by `calls`) would escalate at once: the safe side for an emergency.
    duty_feed_after_seconds = fields.IntField(default=0)
    webhook_after_seconds = fields.IntField(default=0)
    webhook_state = fields.CharEnumField(WebhookState, max_length=16, null=True)
    # The same id on every attempt and after a restart, so the gateway drops repeats.
    webhook_delivery_id = fields.UUIDField(null=True)
    # A process sending the webhook holds it until then; after a crash another one resumes.
    webhook_lease_until = fields.DatetimeField(null=True)
    acknowledged_at = fields.DatetimeField(null=True)
    acknowledged_by_id = fields.UUIDField(null=True)
    acknowledged_role = fields.CharField(max_length=32, null=True)
    acknowledged_via = fields.CharEnumField(AckVia, max_length=16, null=True)
    # The centre said it responds itself ("I'm handling it"), not only that it has seen it.
    handling = fields.BooleanField(default=False)
    closed_at = fields.DatetimeField(null=True)
    closed_reason = fields.CharField(max_length=64, null=True)
    # The number of steps logged so far: the next step's seq is steps + 1.
    steps = fields.IntField(default=0)

    class Meta:
        table = "emergency_call"
        indexes = (("state", "created_at"), ("district_id", "created_at"))


class EmergencyStep(Model):
    id = fields.BigIntField(primary_key=True)
    call: fields.ForeignKeyRelation[EmergencyCall] = fields.ForeignKeyField(
        "emergency.EmergencyCall", related_name="log", on_delete=fields.RESTRICT
    )
    seq = fields.IntField()
    kind = fields.CharEnumField(StepKind, max_length=32)
    at = fields.DatetimeField()
    # Who took the step: a helper or centre admin, or nobody for the timer ("system").
    actor_id = fields.UUIDField(null=True)
    actor_role = fields.CharField(max_length=32)
    detail: fields.JSONField[dict[str, object]] = fields.JSONField(default=dict)

    class Meta:
        table = "emergency_step"
        unique_together = (("call", "seq"),)
