"""Doorbells: after a commit, tell whoever fans out events in this process that streams moved.

A doorbell says only "stream S now has events up to seq N" (and may carry the events it knows,
to save a read); the log stays the truth. Rings are fire-and-forget: a doorbell must not block
or raise into the publisher, whose transaction has already committed.

Publishing is reached from deep inside services that hold no request, so the doorbells of a
process live in one registry here, filled and emptied by the app lifespan (the same scope as
Tortoise's own connection registry).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from market.realtime.events import Event

log = logging.getLogger("eldercare.realtime")


class Doorbell(Protocol):
    def ring(self, events: Sequence[Event]) -> None:
        """Called after commit with the committed events of one transaction, in seq order."""


class Doorbells:
    def __init__(self) -> None:
        self._bells: list[Doorbell] = []

    def add(self, bell: Doorbell) -> None:
        self._bells.append(bell)

    def remove(self, bell: Doorbell) -> None:
        if bell in self._bells:
            self._bells.remove(bell)

    def ring(self, events: Sequence[Event]) -> None:
        for bell in tuple(self._bells):
            try:
                bell.ring(events)
            except Exception:  # a broken bell must not fail a committed change
                log.exception("doorbell %r failed", bell)


PROCESS_DOORBELLS = Doorbells()
