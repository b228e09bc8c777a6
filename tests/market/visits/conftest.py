"""Helpers of the visits tests: elders by tier, visits and major changes seeded directly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from tortoise.connection import get_connection

from market.models import District, ElderProfile, Role
from market.realtime.models import StoredEvent
from market.services.runtime import Runtime
from market.visits.models import MajorChange, VisitRecord
from tests.market.conftest import Actor, make_actor

HEALTH = "血压偏高 170/100，左腿浮肿"
FINANCES = "低保金未到账"


def now() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime) -> str:
    return at.isoformat()


def visit_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "method": "in_person",
        "visited_at": iso(now() - timedelta(hours=1)),
        "record": {"health": HEALTH, "finances": FINANCES, "needs": "needs a weekly bath"},
    }
    body.update(overrides)
    return body


async def elder_with(
    client: httpx.AsyncClient,
    runtime: Runtime,
    district: District,
    *,
    flags: list[str],
    birth_year: int = 1940,
    registered_days_ago: int = 0,
) -> Actor:
    """An elder in `district` with these flags (1940: in the 80+ age band)."""
    actor = await make_actor(client, runtime, Role.elder, district)
    await ElderProfile.filter(user_id=actor.user.id).update(flags=flags, birth_year=birth_year)
    if registered_days_ago:
        actor.user.created_at = now() - timedelta(days=registered_days_ago)
        await actor.user.save(update_fields=["created_at"])
    return actor


async def seed_visit(elder: Actor, visitor: Actor, at: datetime, runtime: Runtime) -> VisitRecord:
    return await VisitRecord.create(
        elder_id=elder.user.id,
        district_id=elder.user.district_id,  # type: ignore[attr-defined]
        visitor_id=visitor.user.id,
        method="phone",
        visited_at=at,
        record_enc=runtime.crypto.encrypt('{"health": "ok"}', purpose="visit.record"),
        created_by_id=visitor.user.id,
    )


async def seed_change(elder: Actor, at: datetime, by: Actor) -> MajorChange:
    return await MajorChange.create(
        elder_id=elder.user.id, kind="fall", at=at, recorded_by_id=by.user.id
    )


async def visit_rows() -> list[dict[str, Any]]:
    return [dict(r) for r in await VisitRecord.all().values()]


async def change_rows() -> list[dict[str, Any]]:
    return [dict(r) for r in await MajorChange.all().values()]


async def events(kind: str) -> list[StoredEvent]:
    return await StoredEvent.filter(kind=kind).order_by("row")


async def raw_table(table: str) -> str:
    _, rows = await get_connection("default").execute_query(f'SELECT * FROM "{table}"')
    return "\n".join(str(dict(row)) for row in rows)
