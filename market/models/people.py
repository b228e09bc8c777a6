"""Accounts, elders, families, assessments, tokens and the sensitive-data access log.

Columns ending in `_enc` hold `market.security.fieldcrypto` tokens (AES-GCM, key id inside);
the plain values never reach the database.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class Role(StrEnum):
    elder = "elder"
    family = "family"
    volunteer = "volunteer"
    provider_staff = "provider_staff"
    centre_admin = "centre_admin"
    auditor = "auditor"


class UserStatus(StrEnum):
    pending = "pending"
    active = "active"
    suspended = "suspended"


class User(Model):
    id = fields.UUIDField(primary_key=True)
    role = fields.CharEnumField(Role, max_length=16)
    status = fields.CharEnumField(UserStatus, max_length=16, default=UserStatus.active)
    name = fields.CharField(max_length=100)
    # Login is by phone; the blind index finds the account without storing the number in clear.
    phone_index = fields.CharField(max_length=64, unique=True, null=True)
    phone_enc = fields.TextField(null=True)
    password_hash = fields.CharField(max_length=200, null=True)
    district: fields.ForeignKeyRelation = fields.ForeignKeyField(
        "market.District", related_name="users", on_delete=fields.RESTRICT
    )
    gender = fields.CharField(max_length=8, null=True)
    birth_year = fields.IntField(null=True)
    created_by_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "user"


class ElderProfile(Model):
    id = fields.UUIDField(primary_key=True)
    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "market.User", related_name="elder_profile", on_delete=fields.RESTRICT
    )
    birth_year = fields.IntField()
    gender = fields.CharField(max_length=8)
    flags = fields.JSONField(default=list)
    latitude = fields.FloatField()
    longitude = fields.FloatField()
    preferences = fields.JSONField(default=dict)
    consents = fields.JSONField(default=list)
    id_number_enc = fields.TextField(null=True)
    address_enc = fields.TextField(null=True)
    health_enc = fields.TextField(null=True)
    # Server-computed from the latest assessment; never written by a client.
    capability_level = fields.CharField(max_length=16, null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "elder_profile"


class Assessment(Model):
    # A GB/T 42195 assessment. Item scores and diagnoses are health data, hence `detail_enc`.

    id = fields.UUIDField(primary_key=True)
    elder: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "market.User", related_name="assessments", on_delete=fields.RESTRICT
    )
    standard = fields.CharField(max_length=40)
    detail_enc = fields.TextField()
    total = fields.IntField()
    preliminary_level = fields.CharField(max_length=16)
    final_level = fields.CharField(max_length=16)
    assessor_1 = fields.CharField(max_length=100)
    assessor_2 = fields.CharField(max_length=100)
    informant = fields.CharField(max_length=100)
    assessed_on = fields.DateField()
    recorded_by_id = fields.UUIDField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "assessment"


class LinkStatus(StrEnum):
    pending = "pending"
    approved = "approved"
    revoked = "revoked"


class FamilyLink(Model):
    id = fields.UUIDField(primary_key=True)
    family: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "market.User", related_name="elder_links", on_delete=fields.RESTRICT
    )
    elder: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "market.User", related_name="family_links", on_delete=fields.RESTRICT
    )
    relation = fields.CharField(max_length=32)
    status = fields.CharEnumField(LinkStatus, max_length=16, default=LinkStatus.pending)
    approved_by_id = fields.UUIDField(null=True)
    approved_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "family_link"
        unique_together = (("family", "elder"),)


class AuthToken(Model):
    # Issued bearer tokens by id, so logout and suspension revoke them before expiry.

    jti = fields.CharField(max_length=64, primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "market.User", related_name="tokens", on_delete=fields.RESTRICT
    )
    issued_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auth_token"


class AccessLog(Model):
    # Every read of another person's sensitive fields: who, whose, which fields, why.

    id = fields.BigIntField(primary_key=True)
    actor_id = fields.UUIDField()
    subject_id = fields.UUIDField()
    fields_read = fields.JSONField()
    purpose = fields.CharField(max_length=64)
    at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "access_log"
