from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from market.emergency.models import AckVia, CallState, Escalation, StepKind, WebhookState
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='EmergencyCall',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('booking_id', fields.UUIDField(unique=True)),
                ('elder_id', fields.UUIDField()),
                ('district_id', fields.UUIDField()),
                ('state', fields.CharEnumField(default=CallState.open, description='open: open\nacknowledged: acknowledged\nclosed: closed', enum_type=CallState, max_length=16)),
                ('policy_version', fields.IntField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('escalation', fields.IntEnumField(default=Escalation.none, description='none: 0\nduty_feed: 1\nwebhook: 2', enum_type=Escalation, generated=False)),
                ('duty_feed_due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('webhook_due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('webhook_state', fields.CharEnumField(null=True, description='pending: pending\ndelivered: delivered\nfailed: failed\nstopped: stopped\nskipped: skipped', enum_type=WebhookState, max_length=16)),
                ('webhook_delivery_id', fields.UUIDField(null=True)),
                ('webhook_lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('acknowledged_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('acknowledged_by_id', fields.UUIDField(null=True)),
                ('acknowledged_role', fields.CharField(null=True, max_length=32)),
                ('acknowledged_via', fields.CharEnumField(null=True, description='accept: accept\ncentre: centre', enum_type=AckVia, max_length=16)),
                ('handling', fields.BooleanField(default=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_reason', fields.CharField(null=True, max_length=64)),
                ('steps', fields.IntField(default=0)),
            ],
            options={'table': 'emergency_call', 'app': 'emergency', 'indexes': [Index(fields=['state', 'created_at']), Index(fields=['district_id', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EmergencyStep',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('call', fields.ForeignKeyField('emergency.EmergencyCall', source_field='call_id', db_constraint=True, to_field='id', related_name='log', on_delete=OnDelete.RESTRICT)),
                ('seq', fields.IntField()),
                ('kind', fields.CharEnumField(description='created: created\noffered: offered\nno_helper_in_reach: no_helper_in_reach\nduty_feed: duty_feed\nwebhook_started: webhook_started\nwebhook_resumed: webhook_resumed\nwebhook_attempt: webhook_attempt\nwebhook_delivered: webhook_delivered\nwebhook_failed: webhook_failed\nwebhook_stopped: webhook_stopped\nwebhook_skipped: webhook_skipped\nacknowledged: acknowledged\nhelper_accepted: helper_accepted\nclosed: closed', enum_type=StepKind, max_length=32)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor_id', fields.UUIDField(null=True)),
                ('actor_role', fields.CharField(max_length=32)),
                ('detail', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'emergency_step', 'app': 'emergency', 'unique_together': (('call', 'seq'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
