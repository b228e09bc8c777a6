import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from market.models.districts import DistrictLevel
from market.models.helpers import HelperKind, ListStatus, VettingStatus
from market.models.people import LinkStatus, Role, UserStatus


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="AccessLog",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("actor_id", fields.UUIDField()),
                ("subject_id", fields.UUIDField()),
                (
                    "fields_read",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("purpose", fields.CharField(max_length=64)),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "access_log", "app": "market", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="District",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("code", fields.CharField(unique=True, max_length=32)),
                ("name", fields.CharField(max_length=100)),
                (
                    "level",
                    fields.CharEnumField(
                        description="district: district\nstreet: street\ncommunity: community",
                        enum_type=DistrictLevel,
                        max_length=16,
                    ),
                ),
                (
                    "parent",
                    fields.ForeignKeyField(
                        "market.District",
                        source_field="parent_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="children",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "district", "app": "market", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DistrictPolicy",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "district",
                    fields.ForeignKeyField(
                        "market.District",
                        source_field="district_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="policies",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("version", fields.IntField()),
                ("effective_from", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "content",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_by_id", fields.UUIDField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "district_policy",
                "app": "market",
                "unique_together": (("district", "version"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Provider",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "district",
                    fields.ForeignKeyField(
                        "market.District",
                        source_field="district_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="providers",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                (
                    "services",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "prices",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("capacity_per_day", fields.IntField()),
                ("star_grade", fields.IntField(default=3)),
                (
                    "list_status",
                    fields.CharEnumField(
                        default=ListStatus.normal,
                        description="normal: normal\nred: red\nblack: black",
                        enum_type=ListStatus,
                        max_length=8,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "provider", "app": "market", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="User",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "role",
                    fields.CharEnumField(
                        description="elder: elder\nfamily: family\nvolunteer: volunteer\nprovider_staff: provider_staff\ncentre_admin: centre_admin\nauditor: auditor",
                        enum_type=Role,
                        max_length=16,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=UserStatus.active,
                        description="pending: pending\nactive: active\nsuspended: suspended",
                        enum_type=UserStatus,
                        max_length=16,
                    ),
                ),
                ("name", fields.CharField(max_length=100)),
                ("phone_index", fields.CharField(null=True, unique=True, max_length=64)),
                ("phone_enc", fields.TextField(null=True, unique=False)),
                ("password_hash", fields.CharField(null=True, max_length=200)),
                (
                    "district",
                    fields.ForeignKeyField(
                        "market.District",
                        source_field="district_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="users",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("gender", fields.CharField(null=True, max_length=8)),
                ("birth_year", fields.IntField(null=True)),
                ("created_by_id", fields.UUIDField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "user", "app": "market", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Assessment",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "elder",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="elder_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="assessments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("standard", fields.CharField(max_length=40)),
                ("detail_enc", fields.TextField(unique=False)),
                ("total", fields.IntField()),
                ("preliminary_level", fields.CharField(max_length=16)),
                ("final_level", fields.CharField(max_length=16)),
                (
                    "reasons",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("assessor_1", fields.CharField(max_length=100)),
                ("assessor_2", fields.CharField(max_length=100)),
                ("informant", fields.CharField(max_length=100)),
                ("assessed_on", fields.DateField()),
                ("recorded_by_id", fields.UUIDField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "assessment", "app": "market", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuthToken",
            fields=[
                (
                    "jti",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="tokens",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("issued_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "auth_token", "app": "market", "pk_attr": "jti"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ElderProfile",
            fields=[
                (
                    "user",
                    fields.OneToOneField(
                        "market.User",
                        source_field="user_id",
                        primary_key=True,
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="elder_profile",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("birth_year", fields.IntField()),
                ("gender", fields.CharField(max_length=8)),
                (
                    "flags",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("latitude", fields.FloatField()),
                ("longitude", fields.FloatField()),
                (
                    "preferences",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "consents",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("id_number_enc", fields.TextField(null=True, unique=False)),
                ("address_enc", fields.TextField(null=True, unique=False)),
                ("health_enc", fields.TextField(null=True, unique=False)),
                ("capability_level", fields.CharField(null=True, max_length=16)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "elder_profile", "app": "market", "pk_attr": "user_id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="FamilyLink",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "family",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="family_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="elder_links",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "elder",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="elder_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="family_links",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("relation", fields.CharField(max_length=32)),
                (
                    "status",
                    fields.CharEnumField(
                        default=LinkStatus.pending,
                        description="pending: pending\napproved: approved\nrevoked: revoked",
                        enum_type=LinkStatus,
                        max_length=16,
                    ),
                ),
                ("approved_by_id", fields.UUIDField(null=True)),
                (
                    "approved_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "family_link",
                "app": "market",
                "unique_together": (("family", "elder"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="HelperProfile",
            fields=[
                (
                    "user",
                    fields.OneToOneField(
                        "market.User",
                        source_field="user_id",
                        primary_key=True,
                        db_index=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="helper_profile",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="volunteer: volunteer\nprovider: provider",
                        enum_type=HelperKind,
                        max_length=16,
                    ),
                ),
                (
                    "provider",
                    fields.ForeignKeyField(
                        "market.Provider",
                        source_field="provider_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="staff",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "skills",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "availability",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("latitude", fields.FloatField(null=True)),
                ("longitude", fields.FloatField(null=True)),
                ("radius_minutes", fields.IntField(default=15)),
                (
                    "vetting_status",
                    fields.CharEnumField(
                        default=VettingStatus.pending,
                        description="pending: pending\napproved: approved\nrejected: rejected",
                        enum_type=VettingStatus,
                        max_length=16,
                    ),
                ),
                ("vetted_by_id", fields.UUIDField(null=True)),
                ("capacity_per_day", fields.IntField(default=3)),
                ("rating_sum", fields.IntField(default=0)),
                ("rating_count", fields.IntField(default=0)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "helper_profile", "app": "market", "pk_attr": "user_id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Certificate",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "helper",
                    fields.ForeignKeyField(
                        "market.HelperProfile",
                        source_field="helper_id",
                        db_constraint=True,
                        to_field="user",
                        related_name="certificates",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("kind", fields.CharField(max_length=32)),
                ("number_enc", fields.TextField(unique=False)),
                ("expires_on", fields.DateField()),
                ("verified_by_id", fields.UUIDField(null=True)),
                (
                    "verified_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "certificate", "app": "market", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
