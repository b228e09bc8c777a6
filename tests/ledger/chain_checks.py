"""Invariant checks over a whole store, written independently of the append path.

Used after every step of the simulations and at the end of the concurrency and crash tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ledger import merkle
from ledger.entries import (
    META_COUNTERPART,
    ZERO_HASH,
    Entry,
    Kind,
    entry_from_bytes,
    entry_hash,
    moves_balance,
)
from ledger.service import tree_root
from ledger.storage.base import ChainStore


def replay(entries: Sequence[Entry]) -> dict[str, int]:
    balances: Counter[str] = Counter()
    for e in entries:
        if moves_balance(e.kind):
            balances[e.debit] -= e.minutes
            balances[e.credit] += e.minutes
    return dict(balances)


def _nonzero(balances: dict[str, int]) -> dict[str, int]:
    return {a: v for a, v in sorted(balances.items()) if v != 0}


async def check_chain(store: ChainStore, district: str) -> list[Entry]:
    """Sequence, links, hashes, stored balances == replay, conservation, no negative holder,
    closing entries unique and well aimed, stored Merkle root == a root computed from leaves."""
    entries = await store.entries(district)
    prev = ZERO_HASH
    ids: set[str] = set()
    closed: set[str] = set()
    by_id: dict[str, Entry] = {}
    running: Counter[str] = Counter()
    for seq, e in enumerate(entries):
        assert e.seq == seq, f"{district}: seq {e.seq} at position {seq}"
        assert e.prev == prev, f"{district}: broken link at {seq}"
        assert e.hash == entry_hash(e.body), f"{district}: bad hash at {seq}"
        assert entry_from_bytes(e.body) == e
        assert e.id not in ids, f"{district}: id {e.id} twice"
        ids.add(e.id)
        by_id[e.id] = e
        if e.kind in (Kind.REVERSE, Kind.HOLD_POST, Kind.HOLD_VOID):
            assert e.ref in by_id, f"{district}: {e.id} closes unknown {e.ref}"
            assert e.ref not in closed, f"{district}: {e.ref} closed twice"
            closed.add(e.ref)
        if moves_balance(e.kind):
            running[e.debit] -= e.minutes
            running[e.credit] += e.minutes
            for account in (e.debit, e.credit):
                if account.startswith("user:") or account == "pool":
                    assert running[account] >= 0, f"{district}: {account} < 0 at {seq}"
        prev = e.hash
    head = await store.head(district)
    assert (head.size, head.head) == (len(entries), prev)
    replayed = replay(entries)
    assert _nonzero(await store.balances(district)) == _nonzero(replayed)
    assert sum(replayed.values()) == 0
    if entries:
        expected = merkle.root([e.hash for e in entries])
        assert await tree_root(store, district, len(entries)) == expected
    return entries


async def check_store(store: ChainStore) -> dict[str, list[Entry]]:
    chains = {d: await check_chain(store, d) for d in await store.districts()}
    check_mirrors(chains)
    return chains


def check_mirrors(chains: dict[str, list[Entry]]) -> None:
    """clearing:B in A mirrors clearing:A in B, up to holds whose credit is not written yet;
    and no transfer is both credited and voided."""
    credited = {
        (d, e.transfer_id): e
        for d, chain in chains.items()
        for e in chain
        if e.kind == Kind.TRANSFER_CREDIT
    }
    balances = {d: replay(chain) for d, chain in chains.items()}
    in_flight: Counter[tuple[str, str]] = Counter()
    for d, chain in chains.items():
        closers = {e.ref: e for e in chain if e.kind in (Kind.HOLD_POST, Kind.HOLD_VOID)}
        for hold in (e for e in chain if e.kind == Kind.HOLD_PENDING):
            other = hold.meta[META_COUNTERPART]
            closer = closers.get(hold.id)
            credit = credited.get((other, hold.transfer_id))
            if closer is not None and closer.kind == Kind.HOLD_VOID:
                assert credit is None, f"transfer {hold.transfer_id} credited and voided"
            if closer is not None and closer.kind == Kind.HOLD_POST:
                assert credit is not None, f"transfer {hold.transfer_id} posted, not credited"
            if closer is None and credit is None:
                in_flight[(d, other)] += hold.minutes
            if credit is not None:
                assert credit.meta["hold"] == hold.hash.hex()
                assert credit.minutes == hold.minutes
    for a in sorted(chains):
        for b in sorted(chains):
            if a >= b:
                continue
            ab = balances[a].get(f"clearing:{b}", 0)
            ba = balances[b].get(f"clearing:{a}", 0)
            assert ab + ba == in_flight[(a, b)] + in_flight[(b, a)], f"mirror {a}/{b}"
