"""Districts (district -> street -> community) and their versioned policies."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class DistrictLevel(StrEnum):
    district = "district"
    street = "street"
    community = "community"


class District(Model):
    id = fields.UUIDField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=100)
    level = fields.CharEnumField(DistrictLevel, max_length=16)
    parent: fields.ForeignKeyNullableRelation[District] = fields.ForeignKeyField(
        "market.District", null=True, related_name="children", on_delete=fields.RESTRICT
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "district"


class DistrictPolicy(Model):
    # One version of a district's rules, content = `market.policy.DistrictPolicy` as JSON.
    # Versions are never edited: a change is a new version with its own effective date, so an
    # event is always judged by the policy that was in force at its time.

    id = fields.UUIDField(primary_key=True)
    district: fields.ForeignKeyRelation[District] = fields.ForeignKeyField(
        "market.District", related_name="policies", on_delete=fields.RESTRICT
    )
    version = fields.IntField()
    effective_from = fields.DatetimeField()
    content = fields.JSONField()
    created_by_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "district_policy"
        unique_together = (("district", "version"),)
