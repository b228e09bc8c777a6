"""Tortoise models of the realtime app (label `realtime`): the durable event log.

Kept in an app of its own so its migrations never interleave with the market's.
Every key starts with the stream name, whose second part is a user, elder or district id, so
the tables can be distributed by stream (Citus) like the ledger's are by district.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class StreamHead(Model):
    # One row per stream: the last sequence number handed out. Publishers lock this row
    # (an upsert takes the row lock until commit), which makes the per-stream seq gap-free.
    stream = fields.CharField(max_length=120, primary_key=True)
    last_seq = fields.BigIntField(default=0)

    class Meta:
        table = "realtime_stream"


class StoredEvent(Model):
    # An event as written by the transaction that made the change. Tortoise has no composite
    # primary keys: `row` is a surrogate, the real key is (stream, seq).
    row = fields.BigIntField(primary_key=True)
    stream = fields.CharField(max_length=120)
    seq = fields.BigIntField()
    event_id = fields.UUIDField()
    kind = fields.CharField(max_length=64)
    payload: fields.JSONField[dict[str, object]] = fields.JSONField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "realtime_event"
        unique_together = (("stream", "seq"),)
        # The retention purge deletes by age.
        indexes = (("created_at",),)
