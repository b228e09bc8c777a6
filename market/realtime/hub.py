"""The hub: streams with local subscribers, fed from the log when a doorbell rings.

One topic per stream that someone in this process watches. A topic knows the last seq it fanned
out; a doorbell ("stream S has seq N") makes it read S's log after that position and hand each
event, in order, to every subscriber. One read serves every subscriber of the stream, and rings
that arrive while a read is running fold into it. Rings from this process may carry the
committed events themselves; when they continue the topic exactly, no read is needed.

Subscribers get events through a non-blocking `deliver`; flow control (their bounded queues) is
theirs, so one slow subscriber never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from market.realtime.events import Event, read_stream, stream_heads

log = logging.getLogger("eldercare.realtime")

ReadStream = Callable[[str, int, int], Awaitable[list[Event]]]
Heads = Callable[[Sequence[str]], Awaitable[dict[str, int]]]

FETCH_LIMIT = 500
HEADS_BATCH = 500


class Subscriber(Protocol):
    def deliver(self, event: Event) -> None:
        """Take one event without blocking (queue it or give up on the subscriber)."""


@dataclass
class Topic:
    stream: str
    subscribers: set[Subscriber] = field(default_factory=set)
    last_seq: int = 0
    wanted: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    fetching: asyncio.Task[None] | None = None


class Hub:
    def __init__(
        self,
        *,
        read: ReadStream = read_stream,
        heads: Heads = stream_heads,
        fetch_limit: int = FETCH_LIMIT,
    ) -> None:
        self._read = read
        self._heads = heads
        self._fetch_limit = fetch_limit
        self._topics: dict[str, Topic] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.reads = 0  # log reads made for fan-out (observability and tests)

    @property
    def streams(self) -> list[str]:
        return sorted(self._topics)

    def subscriber_count(self, stream: str) -> int:
        topic = self._topics.get(stream)
        return len(topic.subscribers) if topic else 0

    async def subscribe(self, stream: str, subscriber: Subscriber) -> None:
        """Start delivering `stream`'s events committed after this call returns (at least)."""
        topic = self._topics.get(stream)
        if topic is None:
            topic = self._topics[stream] = Topic(stream)
            topic.subscribers.add(subscriber)
            try:
                head = (await self._heads([stream]))[stream]
            except BaseException:
                self._drop(topic, subscriber)
                topic.ready.set()
                raise
            topic.last_seq = head
            topic.ready.set()
            self._fetch_if_behind(topic)
            return
        topic.subscribers.add(subscriber)
        # A topic still reading its head: returning earlier would let the caller's backlog read
        # end before the topic's starting point, and the events in between would be missed.
        await topic.ready.wait()

    def unsubscribe(self, stream: str, subscriber: Subscriber) -> None:
        topic = self._topics.get(stream)
        if topic is not None:
            self._drop(topic, subscriber)

    def _drop(self, topic: Topic, subscriber: Subscriber) -> None:
        topic.subscribers.discard(subscriber)
        if not topic.subscribers and self._topics.get(topic.stream) is topic:
            del self._topics[topic.stream]

    def ring(self, events: Sequence[Event]) -> None:
        """A local doorbell: committed events of one transaction, in (stream, seq) order."""
        by_stream: dict[str, list[Event]] = {}
        for event in events:
            by_stream.setdefault(event.stream, []).append(event)
        for stream, known in by_stream.items():
            self.announce(stream, known[-1].seq, known)

    def announce(self, stream: str, seq: int, known: Sequence[Event] = ()) -> None:
        """Stream `stream` has committed events up to `seq`; `known` may hold some of them."""
        topic = self._topics.get(stream)
        if topic is None:
            return
        topic.wanted = max(topic.wanted, seq)
        if not topic.ready.is_set() or topic.wanted <= topic.last_seq:
            return
        if topic.fetching is None and known and known[0].seq == topic.last_seq + 1:
            for event in known:
                self._fan_out(topic, event)
        self._fetch_if_behind(topic)

    async def catch_up(self) -> None:
        """Announce every watched stream's head: after a lost doorbell connection, the log
        tells what the missed notifications would have."""
        streams = self.streams
        for start in range(0, len(streams), HEADS_BATCH):
            heads = await self._heads(streams[start : start + HEADS_BATCH])
            for stream, head in heads.items():
                self.announce(stream, head)

    def _fan_out(self, topic: Topic, event: Event) -> None:
        if event.seq != topic.last_seq + 1:
            return
        topic.last_seq = event.seq
        for subscriber in tuple(topic.subscribers):
            subscriber.deliver(event)

    def _fetch_if_behind(self, topic: Topic) -> None:
        if topic.fetching is None and topic.wanted > topic.last_seq:
            task = asyncio.get_running_loop().create_task(self._fetch(topic))
            topic.fetching = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _fetch(self, topic: Topic) -> None:
        try:
            while topic.wanted > topic.last_seq and self._topics.get(topic.stream) is topic:
                self.reads += 1
                batch = await self._read(topic.stream, topic.last_seq, self._fetch_limit)
                if not batch:
                    # Announced but not in the log (purged, or another database): stop here
                    # rather than spin; the next doorbell or catch-up tries again.
                    topic.wanted = topic.last_seq
                    break
                if batch[0].seq > topic.last_seq + 1:
                    # Purged before we read it: skip ahead; subscribers see the jump and
                    # tell their clients to reload.
                    topic.last_seq = batch[0].seq - 1
                for event in batch:
                    self._fan_out(topic, event)
        except Exception:
            log.exception("reading stream %s for fan-out failed", topic.stream)
        finally:
            topic.fetching = None

    async def close(self) -> None:
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._topics.clear()
