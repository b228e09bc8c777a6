from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from market.visits.models import ChangeKind, VisitMethod
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='MajorChange',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('elder_id', fields.UUIDField()),
                ('kind', fields.CharEnumField(description='hospital_discharge: hospital_discharge\nbereavement: bereavement\nfall: fall\nserious_illness: serious_illness\ncarer_lost: carer_lost\nmoved_home: moved_home\nother: other', enum_type=ChangeKind, max_length=24)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('note_enc', fields.TextField(null=True, unique=False)),
                ('recorded_by_id', fields.UUIDField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'visit_major_change', 'app': 'visits', 'indexes': [Index(fields=['elder_id', 'at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='VisitRecord',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('elder_id', fields.UUIDField()),
                ('district_id', fields.UUIDField()),
                ('visitor_id', fields.UUIDField()),
                ('method', fields.CharEnumField(description='in_person: in_person\nphone: phone\nvideo: video\nmessage: message', enum_type=VisitMethod, max_length=16)),
                ('visited_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('record_enc', fields.TextField(unique=False)),
                ('referral_booking_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_by_id', fields.UUIDField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'visit_record', 'app': 'visits', 'indexes': [Index(fields=['elder_id', 'visited_at']), Index(fields=['district_id', 'visited_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
