from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Cosignature",
            fields=[
                (
                    "row",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("district", fields.CharField(max_length=64)),
                ("size", fields.BigIntField()),
                ("witness", fields.CharField(max_length=100)),
                ("key_id", fields.CharField(max_length=32)),
                ("public", fields.BinaryField()),
                ("signature", fields.BinaryField()),
                ("at_ms", fields.BigIntField()),
            ],
            options={
                "table": "ledger_cosignature",
                "app": "witnessing",
                "unique_together": (("district", "size", "witness"),),
                "pk_attr": "row",
            },
            bases=["Model"],
        ),
    ]
