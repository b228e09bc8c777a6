"""Tortoise models of the `visits` app: check-in visit records and major changes.

Its own app and migrations, beside the market's schema (like `realtime`), so the visit tables
migrate without touching the market's migration chain. What was found on a visit is health and
money data: it is stored only as one encrypted JSON blob (`record_enc`). People and districts
are referenced by id, not foreign key: a migration of one app cannot name another app's tables,
so the service checks that they exist before writing.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model

# Encryption purposes of the two encrypted columns (market.security.fieldcrypto).
RECORD_PURPOSE = "visit.record"
CHANGE_PURPOSE = "visit.major_change"


class VisitMethod(StrEnum):
    in_person = "in_person"
    phone = "phone"
    video = "video"
    message = "message"


class ChangeKind(StrEnum):
    hospital_discharge = "hospital_discharge"
    bereavement = "bereavement"
    fall = "fall"
    serious_illness = "serious_illness"
    carer_lost = "carer_lost"
    moved_home = "moved_home"
    other = "other"


class VisitRecord(Model):
    # One check-in: who visited whom, how and when; the findings are encrypted (visit.record).
    id = fields.UUIDField(primary_key=True)
    elder_id = fields.UUIDField()
    # The elder's district when visited: coverage counts by it even if the elder moves later.
    district_id = fields.UUIDField()
    visitor_id = fields.UUIDField()
    method = fields.CharEnumField(VisitMethod, max_length=16)
    visited_at = fields.DatetimeField()
    record_enc = fields.TextField()
    # Booking ids of the requests this visit referred (market.visits.service.refer).
    referral_booking_ids: fields.JSONField[list[str]] = fields.JSONField(default=list)
    created_by_id = fields.UUIDField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "visit_record"
        indexes = (("elder_id", "visited_at"), ("district_id", "visited_at"))


class MajorChange(Model):
    # An event that calls for an early visit (high risk: within the policy's hours).
    id = fields.UUIDField(primary_key=True)
    elder_id = fields.UUIDField()
    kind = fields.CharEnumField(ChangeKind, max_length=24)
    at = fields.DatetimeField()
    # Free text may name a diagnosis: encrypted (visit.major_change), empty when none given.
    note_enc = fields.TextField(null=True)
    recorded_by_id = fields.UUIDField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "visit_major_change"
        indexes = (("elder_id", "at"),)


class OverdueNotice(Model):
    # One row per elder and overdue period announced on the admin feed (`visit.overdue`),
    # written in the event's transaction: the unique key lets only one server process announce
    # a period, and a period already announced is not announced again on the next tick.
    id = fields.UUIDField(primary_key=True)
    elder_id = fields.UUIDField()
    district_id = fields.UUIDField()
    # The due time this period began at: the visit's due time, then one interval later for
    # each further interval the elder stays unvisited.
    period_due_at = fields.DatetimeField()
    announced_at = fields.DatetimeField()

    class Meta:
        table = "visit_overdue_notice"
        unique_together = (("elder_id", "period_due_at"),)
