"""Volunteers and provider staff, their certificates, and provider organisations."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class HelperKind(StrEnum):
    volunteer = "volunteer"
    provider = "provider"


class VettingStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"


class ListStatus(StrEnum):
    normal = "normal"
    red = "red"
    black = "black"


class Provider(Model):
    id = fields.UUIDField(primary_key=True)
    district: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "market.District", related_name="providers", on_delete=fields.RESTRICT
    )
    name = fields.CharField(max_length=100)
    services = fields.JSONField(default=list)
    # Prices in fen (integer), keyed by service code.
    prices = fields.JSONField(default=dict)
    capacity_per_day = fields.IntField()
    star_grade = fields.IntField(default=3)
    list_status = fields.CharEnumField(ListStatus, max_length=8, default=ListStatus.normal)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "provider"


class HelperProfile(Model):
    id = fields.UUIDField(primary_key=True)
    user: fields.OneToOneRelation = fields.OneToOneField(
        "market.User", related_name="helper_profile", on_delete=fields.RESTRICT
    )
    kind = fields.CharEnumField(HelperKind, max_length=16)
    provider: fields.ForeignKeyNullableRelation[Provider] = fields.ForeignKeyField(
        "market.Provider", null=True, related_name="staff", on_delete=fields.RESTRICT
    )
    skills = fields.JSONField(default=list)
    # [{"weekday": 0-6, "start": "HH:MM", "end": "HH:MM"}]
    availability = fields.JSONField(default=list)
    latitude = fields.FloatField(null=True)
    longitude = fields.FloatField(null=True)
    radius_minutes = fields.IntField(default=15)
    vetting_status = fields.CharEnumField(
        VettingStatus, max_length=16, default=VettingStatus.pending
    )
    vetted_by_id = fields.UUIDField(null=True)
    capacity_per_day = fields.IntField(default=3)
    # Provider staff sent together under this account (certified bathing needs two); set by
    # the centre, 1 for volunteers.
    crew_size = fields.IntField(default=1)
    rating_sum = fields.IntField(default=0)
    rating_count = fields.IntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "helper_profile"


class Certificate(Model):
    id = fields.UUIDField(primary_key=True)
    # Keyed by the helper's user id: HelperProfile's primary key is itself a one-to-one.
    helper: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "market.User", related_name="certificates", on_delete=fields.RESTRICT
    )
    kind = fields.CharField(max_length=32)
    number_enc = fields.TextField()
    expires_on = fields.DateField()
    verified_by_id = fields.UUIDField(null=True)
    verified_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "certificate"
