"""Row shapes shared by the SQLite and PostgreSQL halves of the Tortoise store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ledger.entries import Entry
from ledger.rules import CLOSING
from ledger.storage.base import Write
from ledger.storage.nodes import STORED_FROM

ENTRY_COLUMNS = (
    "district",
    "seq",
    "entry_id",
    "kind",
    "debit",
    "credit",
    "minutes",
    "category",
    "ref",
    "actor",
    "policy",
    "at_ms",
    "settles",
    "hash",
    "body",
)
FAILURE_COLUMNS = "district, entry_id, code, message, content, at_ms"


def entry_row(entry: Entry) -> tuple[Any, ...]:
    settles = entry.ref if entry.kind in CLOSING else None
    return (
        entry.district,
        entry.seq,
        entry.id,
        str(entry.kind),
        entry.debit,
        entry.credit,
        entry.minutes,
        entry.category,
        entry.ref,
        entry.actor,
        entry.policy,
        entry.at_ms,
        settles,
        entry.hash,
        entry.body,
    )


def columns(keys: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [[k[i] for k in keys] for i in range(width)]


def stored_nodes(write: Write) -> list[tuple[str, int, int, bytes]]:
    # Level 0 is each entry's own hash, already in ledger_entry; levels 1 to 3 are recomputed
    # from their leaves when read (`nodes.STORED_FROM`).
    return [
        (district, level, idx, h)
        for district, nodes in sorted((write.nodes or {}).items())
        for (level, idx), h in sorted(nodes.items())
        if level >= STORED_FROM
    ]
