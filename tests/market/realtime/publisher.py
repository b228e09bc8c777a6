"""A publisher in a process of its own: `python -m tests.market.realtime.publisher URL STREAM
COUNT LABEL [PAUSE]` appends COUNT events to STREAM, one transaction each, PAUSE seconds apart.

Used by the multi-process tests: its commits reach other processes only through the database.
"""

from __future__ import annotations

import asyncio
import sys

from tortoise import Tortoise

from market import db
from market.realtime.events import event_transaction


async def main(url: str, stream: str, count: int, label: str, pause: float) -> None:
    await Tortoise.init(config=db.tortoise_config(url))
    try:
        for n in range(count):
            async with event_transaction() as tx:
                await tx.publish([stream], "tick", {"proc": label, "n": n})
            if pause:
                await asyncio.sleep(pause)
    finally:
        await Tortoise.close_connections()


if __name__ == "__main__":
    url, stream, count, label, *rest = sys.argv[1:]
    asyncio.run(main(url, stream, int(count), label, float(rest[0]) if rest else 0.0))
