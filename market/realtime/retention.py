"""Retention of the event log: events older than the retention window are deleted.

The stream heads stay, so sequence numbers keep counting up; a client resuming from a purged
position gets a `reset` frame (reload, then continue from the head) instead of a silent gap.
"""

from __future__ import annotations

from datetime import datetime

from market.realtime.models import StoredEvent

PURGE_BATCH = 5000


async def purge_events(*, older_than: datetime, batch: int = PURGE_BATCH) -> int:
    """Delete events created before `older_than`, in bounded batches; returns how many."""
    removed = 0
    while True:
        rows = (
            await StoredEvent.filter(created_at__lt=older_than)
            .limit(batch)
            .values_list("row", flat=True)
        )
        if not rows:
            return removed
        removed += await StoredEvent.filter(row__in=list(rows)).delete()
