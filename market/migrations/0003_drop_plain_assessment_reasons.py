from tortoise import migrations
from tortoise.migrations import operations as ops

class Migration(migrations.Migration):
    dependencies = [('market', '0002_bookings')]

    initial = False

    operations = [
        ops.RemoveField(model_name='Assessment', name='reasons'),
    ]
