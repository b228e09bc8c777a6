"""Periodic duties the lifespan starts beside the matching loop (overdue visits, series horizon).

Every server process runs them; each duty makes itself safe for that (a unique key or a row
lock written in the duty's own transaction), so the loop here only paces and survives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

log = logging.getLogger("eldercare.duties")


async def every(
    interval_seconds: float, tick: Callable[[datetime], Awaitable[object]], *, name: str
) -> None:
    """Call `tick(now)` every `interval_seconds`, the first time one interval after the start
    (a restart wave does not run every duty at once); a failed tick is logged, not fatal."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await tick(datetime.now(UTC))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; trying again in %s s", name, interval_seconds)
