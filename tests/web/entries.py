"""A chain of deposits built by the ledger's own code, for the browser checks to read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.entries import ZERO_HASH, Entry, build_entry

DISTRICT = "east"


def deposit_chain(
    size: int,
    *,
    holders: int,
    meta: Callable[[int], dict[str, Any]],
    ref: Callable[[int], str | None] = lambda seq: f"booking-{seq}",
) -> list[Entry]:
    """`size` linked deposits to `holders` volunteers in turn, with `meta(seq)` and `ref(seq)`."""
    entries, prev = [], ZERO_HASH
    for seq in range(size):
        entry = build_entry(
            district=DISTRICT,
            seq=seq,
            prev=prev,
            id=f"deposit-{seq}",
            kind="deposit",
            debit="issuance",
            credit=f"user:volunteer-{seq % holders}",
            minutes=30 + seq,
            category="bathing",
            ref=ref(seq),
            actor="centre",
            policy=1,
            at_ms=1_790_000_000_000 + seq,
            meta=meta(seq),
        )
        entries.append(entry)
        prev = entry.hash
    return entries
