"""The hub over an in-memory log: one read per stream, order, coalescing, jumps, catch-up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import uuid4

from market.realtime.events import Event, user_stream
from market.realtime.hub import Hub

STREAM = user_stream(uuid4())


class Log:
    """The event log's two reads, over a dict; counts the reads the hub makes."""

    def __init__(self) -> None:
        self.events: dict[str, list[Event]] = {}
        self.reads = 0

    def append(self, stream: str, count: int = 1) -> list[Event]:
        mine = self.events.setdefault(stream, [])
        new = [
            Event(uuid4(), stream, len(mine) + n + 1, "tick", {}, datetime.now(UTC))
            for n in range(count)
        ]
        mine.extend(new)
        return new

    async def read(self, stream: str, after: int, limit: int) -> list[Event]:
        self.reads += 1
        return [e for e in self.events.get(stream, []) if e.seq > after][:limit]

    async def heads(self, streams: Sequence[str]) -> dict[str, int]:
        return {s: len(self.events.get(s, [])) for s in streams}


class Inbox:
    def __init__(self) -> None:
        self.seqs: list[int] = []

    def deliver(self, event: Event) -> None:
        self.seqs.append(event.seq)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def hub_on(log: Log, fetch_limit: int = 500) -> Hub:
    return Hub(read=log.read, heads=log.heads, fetch_limit=fetch_limit)


class TestFanOut:
    async def test_one_read_serves_every_subscriber_in_order(self) -> None:
        log = Log()
        log.append(STREAM, 3)  # before anyone watched: not delivered
        hub = hub_on(log)
        inboxes = [Inbox() for _ in range(50)]
        for inbox in inboxes:
            await hub.subscribe(STREAM, inbox)
        log.append(STREAM, 4)
        hub.announce(STREAM, 7)
        await settle()
        assert all(inbox.seqs == [4, 5, 6, 7] for inbox in inboxes)
        assert log.reads == 1

    async def test_rings_during_a_read_fold_into_it(self) -> None:
        log = Log()
        hub = hub_on(log, fetch_limit=2)
        inbox = Inbox()
        await hub.subscribe(STREAM, inbox)
        log.append(STREAM, 5)
        for seq in range(1, 6):
            hub.announce(STREAM, seq)
        await settle()
        assert inbox.seqs == [1, 2, 3, 4, 5]
        assert log.reads == 3  # pages of 2, not one read per ring

    async def test_known_events_that_continue_the_stream_need_no_read(self) -> None:
        log = Log()
        hub = hub_on(log)
        inbox = Inbox()
        await hub.subscribe(STREAM, inbox)
        hub.ring(log.append(STREAM, 2))
        await settle()
        assert inbox.seqs == [1, 2] and log.reads == 0

    async def test_stale_and_unknown_rings_are_ignored(self) -> None:
        log = Log()
        hub = hub_on(log)
        inbox = Inbox()
        log.append(STREAM, 2)
        await hub.subscribe(STREAM, inbox)
        hub.announce(STREAM, 2)
        hub.announce(user_stream(uuid4()), 9)
        await settle()
        assert inbox.seqs == [] and log.reads == 0

    async def test_purged_events_make_the_topic_jump_ahead(self) -> None:
        log = Log()
        hub = hub_on(log)
        inbox = Inbox()
        await hub.subscribe(STREAM, inbox)
        log.append(STREAM, 5)
        del log.events[STREAM][:3]  # 1..3 purged before the hub read them
        hub.announce(STREAM, 5)
        await settle()
        assert inbox.seqs == [4, 5]

    async def test_catch_up_finds_what_no_doorbell_announced(self) -> None:
        log = Log()
        hub = hub_on(log)
        inbox = Inbox()
        await hub.subscribe(STREAM, inbox)
        log.append(STREAM, 3)  # committed while the doorbell connection was down
        await hub.catch_up()
        await settle()
        assert inbox.seqs == [1, 2, 3]

    async def test_last_unsubscribe_forgets_the_stream(self) -> None:
        log = Log()
        hub = hub_on(log)
        inbox = Inbox()
        await hub.subscribe(STREAM, inbox)
        hub.unsubscribe(STREAM, inbox)
        assert hub.streams == [] and hub.subscriber_count(STREAM) == 0
        hub.announce(STREAM, 1)
        await settle()
        assert log.reads == 0
