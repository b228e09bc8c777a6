from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields
from tortoise.indexes import Index


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="StoredEvent",
            fields=[
                (
                    "row",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("stream", fields.CharField(max_length=120)),
                ("seq", fields.BigIntField()),
                ("event_id", fields.UUIDField()),
                ("kind", fields.CharField(max_length=64)),
                (
                    "payload",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "realtime_event",
                "app": "realtime",
                "unique_together": (("stream", "seq"),),
                "indexes": [Index(fields=["created_at"])],
                "pk_attr": "row",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="StreamHead",
            fields=[
                (
                    "stream",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=120),
                ),
                ("last_seq", fields.BigIntField(default=0)),
            ],
            options={"table": "realtime_stream", "app": "realtime", "pk_attr": "stream"},
            bases=["Model"],
        ),
    ]
