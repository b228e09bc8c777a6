"""The application factory: routes, error handlers, body limit and the lifespan."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from tortoise.contrib.starlette import RegisterTortoise

from market import db
from market.emergency import routes as emergency_routes
from market.emergency.escalation import Escalator
from market.errors import EXCEPTION_HANDLERS
from market.middleware import BodyLimit
from market.realtime import endpoint as realtime_endpoint
from market.realtime.service import RealtimeService
from market.routes import auth, bookings, districts, elders, helpers, meta, offers, people
from market.routes import ledger as ledger_routes
from market.routes import series as series_routes
from market.routes import stats as stats_routes
from market.routes import suggestions as suggestion_routes
from market.services import access, duties, matching_loop, series_horizon
from market.services.checkpoints import start_checkpointer
from market.services.runtime import Runtime
from market.settings import Settings, load_settings
from market.visits import overdue
from market.visits import routes as visit_routes

log = logging.getLogger("eldercare")


def api_routes() -> list[BaseRoute]:
    return [
        *meta.routes,
        *auth.routes,
        *districts.routes,
        *people.routes,
        *elders.routes,
        *helpers.routes,
        *realtime_endpoint.routes,
        *bookings.routes,
        *offers.routes,
        *series_routes.routes,
        *ledger_routes.routes,
        *suggestion_routes.routes,
        *stats_routes.routes,
        *visit_routes.routes,
        *emergency_routes.routes,
    ]


def create_app(settings: Settings | None = None, *, check_migrations: bool = True) -> Starlette:
    settings = settings or load_settings()
    routes = api_routes()
    if settings.static_dir.is_dir():
        routes.append(Mount("/", StaticFiles(directory=settings.static_dir, html=True)))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        # First: a webhook it cannot use stops the start before anything is opened.
        escalator = Escalator.from_settings(settings)
        db.prepare_sqlite_path(settings.database_url)
        async with RegisterTortoise(app, config=db.tortoise_config(settings.database_url)):
            if check_migrations:
                await db.require_migrated()
            runtime = Runtime.start(settings)
            start_checkpointer(runtime.ledger)
            runtime.background(access.purge_access_log_forever())
            runtime.realtime = RealtimeService.start(settings)
            if settings.matching_enabled:
                runtime.background(matching_loop.run_forever(settings.matching_interval_seconds))
                runtime.background(escalator.run_forever())
                runtime.background(
                    duties.every(
                        settings.visit_overdue_interval_seconds,
                        overdue.announce_overdue,
                        name="overdue visits",
                    )
                )
                runtime.background(
                    duties.every(
                        settings.series_interval_seconds,
                        functools.partial(series_horizon.extend_all, runtime),
                        name="series horizon",
                    )
                )
            try:
                yield {"runtime": runtime, "settings": settings}
            finally:
                await runtime.close()

    app = Starlette(
        routes=routes,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=lifespan,
        middleware=[Middleware(BodyLimit, max_bytes=settings.max_body_bytes)],
    )
    app.state.settings = settings
    return app
