from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('market', '0004_payments')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Booking',
            name='match_note',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='HelperProfile',
            name='crew_size',
            field=fields.IntField(default=1),
        ),
    ]
