"""The event log: transactional publish, gap-free seqs, replay reads, doorbells."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import uuid4

import pytest

from market.models import District
from market.realtime.bells import Doorbells
from market.realtime.events import (
    Event,
    InvalidEvent,
    elder_stream,
    event_transaction,
    read_stream,
    stream_heads,
    user_stream,
)
from market.realtime.models import StoredEvent
from tests.market.harness import RunningService

pytestmark = pytest.mark.usefixtures("service")


class Recorder:
    def __init__(self) -> None:
        self.rings: list[list[Event]] = []

    def ring(self, events: Sequence[Event]) -> None:
        self.rings.append(list(events))


def recording() -> tuple[Doorbells, Recorder]:
    bells = Doorbells()
    recorder = Recorder()
    bells.add(recorder)
    return bells, recorder


class Boom(Exception):
    pass


class TestPublish:
    async def test_commit_writes_events_and_rings_after(self) -> None:
        bells, recorder = recording()
        a, b = user_stream(uuid4()), elder_stream(uuid4())
        async with event_transaction(doorbells=bells) as tx:
            first = await tx.publish([b, a], "booking.requested", {"booking": "x"})
            second = await tx.publish([a], "booking.offered", {"booking": "x"})
            assert recorder.rings == []  # nothing rings before the commit
        assert [(e.stream, e.seq) for e in first] == sorted([(a, 1), (b, 1)])
        assert [(e.stream, e.seq) for e in second] == [(a, 2)]
        assert [(e.stream, e.seq) for e in recorder.rings[0]] == sorted([(a, 1), (a, 2), (b, 1)])
        ids = {e.stream: e.id for e in first}
        replay = await read_stream(a, 0, 10)
        assert [(e.seq, e.kind, e.id) for e in replay] == [
            (1, "booking.requested", ids[a]),
            (2, "booking.offered", second[0].id),
        ]
        nobody = user_stream(uuid4())
        assert await stream_heads([a, b, nobody]) == {a: 2, b: 1, nobody: 0}

    async def test_rollback_leaves_no_event_and_rings_nothing(self) -> None:
        bells, recorder = recording()
        stream = user_stream(uuid4())
        with pytest.raises(Boom):
            async with event_transaction(doorbells=bells) as tx:
                await District.create(
                    code="gone", name="Gone", level="district", using_db=tx.connection
                )
                await tx.publish([stream], "district.created", {"code": "gone"})
                raise Boom
        assert recorder.rings == []
        assert await StoredEvent.filter(stream=stream).count() == 0
        assert await stream_heads([stream]) == {stream: 0}
        assert not await District.filter(code="gone").exists()
        # The sequence continues at 1: the rolled-back claim left no hole.
        async with event_transaction(doorbells=bells) as tx:
            (event,) = await tx.publish([stream], "district.created", {"code": "kept"})
        assert event.seq == 1

    async def test_change_and_event_commit_together(self) -> None:
        stream = user_stream(uuid4())
        async with event_transaction() as tx:
            district = await District.create(
                code="kept", name="Kept", level="district", using_db=tx.connection
            )
            await tx.publish([stream], "district.created", {"id": str(district.id)})
        (event,) = await read_stream(stream, 0, 10)
        assert event.payload == {"id": str(district.id)}
        assert await District.filter(code="kept").exists()

    async def test_concurrent_publishers_get_gap_free_seqs(self) -> None:
        stream = user_stream(uuid4())

        async def publish(n: int) -> None:
            async with event_transaction() as tx:
                await tx.publish([stream], "tick", {"n": n})

        await asyncio.gather(*(publish(n) for n in range(40)))
        seqs = [e.seq for e in await read_stream(stream, 0, 100)]
        assert seqs == list(range(1, 41))

    async def test_read_stream_pages_after_a_position(self) -> None:
        stream = user_stream(uuid4())
        async with event_transaction() as tx:
            for n in range(5):
                await tx.publish([stream], "tick", {"n": n})
        page = await read_stream(stream, 2, 2)
        assert [(e.seq, e.payload["n"]) for e in page] == [(3, 2), (4, 3)]
        assert await read_stream(stream, 5, 10) == []
        assert await read_stream(stream, 0, 0) == []


class TestPublishRefuses:
    @pytest.mark.parametrize(
        ("streams", "kind", "payload", "problem"),
        [
            ([], "tick", {}, "at least one stream"),
            (["user:not-a-uuid"], "tick", {}, "not a stream name"),
            (["people:" + str(uuid4())], "tick", {}, "not a stream name"),
            ("user:" + str(uuid4()), "tick", {}, "not one string"),
            ([user_stream(uuid4())], "", {}, "kind"),
            ([user_stream(uuid4())], "tick", {"x": float("nan")}, "not JSON"),
            ([user_stream(uuid4())], "tick", {"x": object()}, "not JSON"),
            ([user_stream(uuid4())], "tick", {"x": "y" * 20_000}, "larger than"),
        ],
    )
    async def test_bad_publish_is_refused_and_writes_nothing(
        self, streams: object, kind: str, payload: dict[str, object], problem: str
    ) -> None:
        with pytest.raises(InvalidEvent, match=problem):
            async with event_transaction() as tx:
                await tx.publish(streams, kind, payload)  # type: ignore[arg-type]
        assert await StoredEvent.all().count() == 0

    async def test_nested_event_transaction_is_refused(self, service: RunningService) -> None:
        from tortoise.transactions import in_transaction

        with pytest.raises(RuntimeError, match="outermost"):
            async with in_transaction(), event_transaction():
                pass
