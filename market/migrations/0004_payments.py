from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from market.models.bookings import Payment
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('market', '0003_drop_plain_assessment_reasons')]

    initial = False

    operations = [
        ops.AlterField(
            model_name='Booking',
            name='payment',
            field=fields.CharEnumField(description='public: public\nhours: hours\nsubsidy: subsidy\nself_paid: self\npool: pool', enum_type=Payment, max_length=8),
        ),
        ops.AddField(
            model_name='Booking',
            name='charged_minutes',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='copay_fen',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='guaranteed_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Booking',
            name='hold_chain',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Booking',
            name='hold_minutes',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='price_fen',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='quote_fen',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='settle_attempt',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='Booking',
            name='settle_blocked',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Booking',
            name='settlement',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Booking',
            name='voucher_fen',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='voucher_hold_fen',
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name='Booking',
            name='voucher_month',
            field=fields.CharField(null=True, max_length=7),
        ),
        ops.AddIndex(
            model_name='Booking',
            index=Index(fields=['payer_id', 'state']),
        ),
        ops.AddIndex(
            model_name='Booking',
            index=Index(fields=['hold_chain', 'payment', 'state']),
        ),
        ops.AddIndex(
            model_name='Booking',
            index=Index(fields=['elder_id', 'voucher_month']),
        ),
    ]
