from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("visits", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="OverdueNotice",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("elder_id", fields.UUIDField()),
                ("district_id", fields.UUIDField()),
                ("period_due_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("announced_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "visit_overdue_notice",
                "app": "visits",
                "unique_together": (("elder_id", "period_due_at"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
