"""The centre dashboard's figures: bookings, hours, match rate and time to match per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from market.models import Role
from market.routes.spec import endpoint
from market.schemas.parse import Range, parse_query, path_uuid
from market.services import auth, stats
from market.services.auth import now_utc


@dataclass(frozen=True)
class StatsQuery:
    """The days to report: `days` local days ending with `until` (default today)."""

    days: Annotated[int, Range(1, stats.DAYS_MAX)] = 14
    until: date | None = None


@endpoint(
    summary="Bookings, hours served, match rate and time to match per day (centre admin)",
    tag="districts",
    roles=[Role.centre_admin],
    query=StatsQuery,
    description="Over the district and the districts below it, per local day (Asia/Shanghai) "
    "of the booking's window start, oldest first, and totals. `match_rate_bp` is bookings a "
    "helper accepted over bookings not withdrawn by the elder's side before a match; time to "
    "match runs from the request to the first acceptance in the transition log (median and "
    "90th percentile, nearest rank). `?days=` 1-92 (default 14), `?until=YYYY-MM-DD`.",
)
async def district_stats(request: Request) -> Response:
    query = parse_query(request, StatsQuery)
    district_id = path_uuid(request)
    days = await stats.district_stats(
        auth.current(request), district_id, days=query.days, until=query.until, now=now_utc()
    )
    return JSONResponse(stats.stats_json(district_id, days))


routes = [Route("/api/v1/districts/{id}/stats", district_stats, methods=["GET"])]
