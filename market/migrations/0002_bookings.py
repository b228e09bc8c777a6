from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from market.models.bookings import BookingState, HelperListKind, OfferState, Payment
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    dependencies = [("market", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ElderHelperList",
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
                        related_name="helper_lists",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "helper",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="helper_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="listed_by",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="preferred: preferred\nblocked: blocked",
                        enum_type=HelperListKind,
                        max_length=12,
                    ),
                ),
                ("added_by_id", fields.UUIDField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "elder_helper_list",
                "app": "market",
                "unique_together": (("elder", "helper"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="IdempotencyRecord",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("user_id", fields.UUIDField()),
                ("key", fields.CharField(max_length=200)),
                ("body_sha256", fields.CharField(max_length=64)),
                ("status", fields.IntField()),
                (
                    "response",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "idempotency_record",
                "app": "market",
                "unique_together": (("user_id", "key"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RecurringSeries",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("district_id", fields.UUIDField(db_index=True)),
                (
                    "elder",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="elder_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="series",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("service", fields.CharField(max_length=16)),
                (
                    "weekdays",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("start_time", fields.CharField(max_length=5)),
                ("until", fields.DateField()),
                (
                    "exceptions",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("created_by_id", fields.UUIDField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "recurring_series", "app": "market", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Booking",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("district_id", fields.UUIDField(db_index=True)),
                (
                    "elder",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="elder_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="bookings",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("created_by_id", fields.UUIDField()),
                ("service", fields.CharField(max_length=16)),
                ("emergency", fields.BooleanField(default=False)),
                (
                    "state",
                    fields.CharEnumField(
                        default=BookingState.requested,
                        description="requested: requested\noffered: offered\naccepted: accepted\nen_route: en_route\nin_service: in_service\ncompleted: completed\nconfirmed: confirmed\nsettled: settled\nrated: rated\ncancelled: cancelled\nexpired: expired\nescalated: escalated\ndeclined: declined\nno_show: no_show\ndisputed: disputed",
                        enum_type=BookingState,
                        max_length=16,
                    ),
                ),
                ("version", fields.IntField(default=0)),
                ("window_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("window_end", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("duration_minutes", fields.IntField()),
                ("latitude", fields.FloatField()),
                ("longitude", fields.FloatField()),
                ("notes", fields.TextField(default="", unique=False)),
                ("needs_lifting", fields.BooleanField(default=False)),
                (
                    "payment",
                    fields.CharEnumField(
                        description="public: public\nhours: hours\nsubsidy: subsidy\nself_paid: self",
                        enum_type=Payment,
                        max_length=8,
                    ),
                ),
                ("policy_version", fields.IntField()),
                (
                    "series",
                    fields.ForeignKeyField(
                        "market.RecurringSeries",
                        source_field="series_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="bookings",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("occurrence", fields.DateField(null=True)),
                (
                    "helper",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="helper_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="jobs",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "excluded_helpers",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("confirm_code_enc", fields.TextField(unique=False)),
                ("code_attempts", fields.IntField(default=0)),
                ("payer_id", fields.UUIDField(null=True)),
                ("checkin_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("checkin_latitude", fields.FloatField(null=True)),
                ("checkin_longitude", fields.FloatField(null=True)),
                (
                    "checkout_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("checkout_latitude", fields.FloatField(null=True)),
                ("checkout_longitude", fields.FloatField(null=True)),
                ("served_minutes", fields.IntField(null=True)),
                ("flagged", fields.BooleanField(default=False)),
                (
                    "flags",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("confirmed_by_id", fields.UUIDField(null=True)),
                (
                    "confirmed_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("outcome", fields.CharField(null=True, max_length=24)),
                ("no_show_side", fields.CharField(null=True, max_length=16)),
                ("dispute_reason", fields.TextField(null=True, unique=False)),
                ("dispute_decision", fields.CharField(null=True, max_length=16)),
                ("settled_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("rating", fields.IntField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "booking",
                "app": "market",
                "indexes": [Index(fields=["state", "window_start"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BookingEvent",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "booking",
                    fields.ForeignKeyField(
                        "market.Booking",
                        source_field="booking_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("action", fields.CharField(max_length=24)),
                ("from_state", fields.CharField(max_length=16)),
                ("to_state", fields.CharField(max_length=16)),
                ("actor_id", fields.UUIDField(null=True)),
                ("actor_role", fields.CharField(max_length=16)),
                ("reason", fields.TextField(default="", unique=False)),
                (
                    "detail",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "booking_event", "app": "market", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Offer",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "booking",
                    fields.ForeignKeyField(
                        "market.Booking",
                        source_field="booking_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="offers",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("district_id", fields.UUIDField(db_index=True)),
                (
                    "helper",
                    fields.ForeignKeyField(
                        "market.User",
                        source_field="helper_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="offers",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "state",
                    fields.CharEnumField(
                        default=OfferState.open,
                        description="open: open\naccepted: accepted\ndeclined: declined\nexpired: expired\nwithdrawn: withdrawn",
                        enum_type=OfferState,
                        max_length=12,
                    ),
                ),
                ("deadline", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("planned_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("travel_minutes", fields.IntField(default=0)),
                (
                    "cost",
                    fields.JSONField(
                        default=dict,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "answered_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "offer",
                "app": "market",
                "unique_together": (("booking", "helper"),),
                "indexes": [Index(fields=["state", "deadline"])],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
