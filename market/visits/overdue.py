"""Overdue visits on the centre's admin feed: each overdue period announced once.

A periodic duty (`announce_overdue`, started in the lifespan) publishes `visit.overdue` on the
admin stream of the elder's district when the elder's visit is overdue. An elder who stays
unvisited is announced again once per further interval of their tier (a weekly tier: every
week), so the feed is reminded without being flooded. The announcement and an `OverdueNotice`
row keyed by (elder, period) commit together: with several server processes ticking at once,
only one inserts the key and publishes; the others find it taken and publish nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.exceptions import IntegrityError

from market.realtime.events import admin_stream, event_transaction
from market.visits import schedule
from market.visits.models import OverdueNotice
from market.visits.schedule import ElderDue

log = logging.getLogger("eldercare.visits")

OVERDUE_EVENT = "visit.overdue"


def period_due_at(due: ElderDue, now: datetime) -> datetime:
    """Where the overdue period `now` falls in begins: the due time, then one tier interval
    later for each whole interval since."""
    interval = timedelta(days=due.interval_days)
    return due.due_at + ((now - due.due_at) // interval) * interval


def overdue_payload(due: ElderDue, period: datetime) -> dict[str, Any]:
    return {
        "elder": str(due.elder_id),
        "district": str(due.district_id),
        "tier": due.tier.value,
        "interval_days": due.interval_days,
        "last_visit_at": due.last_visit_at.isoformat() if due.last_visit_at else None,
        "due_at": due.due_at.isoformat(),
        "period_due_at": period.isoformat(),
        "overdue_minutes": due.overdue_minutes,
    }


async def _announced(elder_ids: list[UUID]) -> set[tuple[UUID, datetime]]:
    keys: set[tuple[UUID, datetime]] = set()
    for chunk in schedule.chunks(elder_ids):
        rows = await OverdueNotice.filter(elder_id__in=chunk).values_list(
            "elder_id", "period_due_at"
        )
        keys.update((UUID(str(elder)), schedule.aware(at)) for elder, at in rows)
    return keys


async def _announce(due: ElderDue, period: datetime, now: datetime) -> bool:
    """Announce one elder's period; False when another process announced it first."""
    try:
        async with event_transaction() as tx:
            await OverdueNotice.create(
                elder_id=due.elder_id,
                district_id=due.district_id,
                period_due_at=period,
                announced_at=now,
                using_db=tx.connection,
            )
            await tx.publish(
                [admin_stream(due.district_id)], OVERDUE_EVENT, overdue_payload(due, period)
            )
    except IntegrityError:
        # The unique (elder, period) key: the other process's announcement stands, with its
        # event; this transaction rolled back, event and all.
        return False
    return True


async def announce_overdue(now: datetime) -> int:
    """One tick of the duty: announce every overdue period not announced yet; returns how
    many this process announced."""
    dues = await schedule.overdue_everywhere(now=now)
    done = await _announced([d.elder_id for d in dues])
    announced = 0
    for due in dues:
        period = period_due_at(due, now)
        if (due.elder_id, period) in done:
            continue
        try:
            announced += await _announce(due, period, now)
        except Exception:
            # One elder whose announcement fails must not keep the others off the feed.
            log.exception("elder %s: the overdue visit could not be announced", due.elder_id)
    if announced:
        log.info("announced %d overdue visits", announced)
    return announced
