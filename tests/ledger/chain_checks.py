"""Invariant checks over a whole store, written independently of the append path.

Used after every step of the simulations and at the end of the concurrency and crash tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ledger import merkle
from ledger.checkpoint import Checkpoint
from ledger.entries import (
    META_COUNTERPART,
    ZERO_HASH,
    Entry,
    Kind,
    entry_from_bytes,
    entry_hash,
    moves_balance,
)
from ledger.keys import Signer
from ledger.service import decode_checkpoint, tree_root
from ledger.storage.base import ChainStore
from ledger.verify import verify_chain, verify_mirrors


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


async def verify_with_core(
    store: ChainStore, signer: Signer | None = None, max_minutes: int | None = None
) -> None:
    """The core's independent verifier (`ledger.verify`) over the stored bytes, checkpoints,
    stored balances and cross-chain mirrors agrees with the append path."""
    reports = []
    keys = {signer.key_id: signer.public} if signer else None
    for d in await store.districts():
        entries = await store.entries(d)
        checkpoints = [
            Checkpoint.from_json(decode_checkpoint(c.body)) for c in await store.checkpoints(d)
        ]
        report = verify_chain(
            [e.body for e in entries],
            district=d,
            checkpoints=checkpoints,
            public_keys=keys,
            stored_balances=await store.balances(d),
            max_minutes=max_minutes,
        )
        assert report.ok, report.reason
        reports.append(report)
    mirrors = verify_mirrors(reports)
    assert mirrors.ok, mirrors.problems


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


class Auditor:
    """Checks every invariant after every step, reading only what was appended since the last
    check (a full replay per step would make long simulations quadratic)."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self.sizes: dict[str, int] = {}
        self.heads: dict[str, bytes] = {}
        self.balances: dict[str, Counter[str]] = {}
        self.holds: dict[tuple[str, str], Entry] = {}  # (home, transfer id) -> hold
        self.closers: dict[tuple[str, str], Entry] = {}  # (home, transfer id) -> post/void
        self.credits: dict[tuple[str, str], Entry] = {}  # (serving, transfer id) -> credit
        self.closed: dict[str, set[str]] = {}

    async def check(self) -> None:
        for district in await self.store.districts():
            await self._advance(district)
        self._check_mirrors()

    async def _advance(self, district: str) -> None:
        size = self.sizes.get(district, 0)
        prev = self.heads.get(district, ZERO_HASH)
        balances = self.balances.setdefault(district, Counter())
        closed = self.closed.setdefault(district, set())
        new = await self.store.entries(district, size)
        for e in new:
            assert e.seq == size and e.prev == prev, f"{district}: bad link at {size}"
            assert e.hash == entry_hash(e.body)
            if e.kind in (Kind.REVERSE, Kind.HOLD_POST, Kind.HOLD_VOID):
                assert e.ref not in closed, f"{district}: {e.ref} closed twice"
                closed.add(str(e.ref))
            if moves_balance(e.kind):
                balances[e.debit] -= e.minutes
                balances[e.credit] += e.minutes
                for account in (e.debit, e.credit):
                    if account.startswith("user:") or account == "pool":
                        assert balances[account] >= 0, f"{district}: {account} < 0 at {e.seq}"
            tid = e.transfer_id
            if tid is not None and e.kind == Kind.HOLD_PENDING:
                self.holds[(district, tid)] = e
            elif tid is not None and e.kind in (Kind.HOLD_POST, Kind.HOLD_VOID):
                self.closers[(district, tid)] = e
            elif tid is not None and e.kind == Kind.TRANSFER_CREDIT:
                self.credits[(district, tid)] = e
            size, prev = size + 1, e.hash
        self.sizes[district], self.heads[district] = size, prev
        head = await self.store.head(district)
        assert (head.size, head.head) == (size, prev), f"{district}: head differs"
        assert _nonzero(await self.store.balances(district)) == _nonzero(dict(balances))
        assert sum(balances.values()) == 0

    def _check_mirrors(self) -> None:
        in_flight: Counter[tuple[str, str]] = Counter()
        for (home, tid), hold in self.holds.items():
            serving = str(hold.meta[META_COUNTERPART])
            credit = self.credits.get((serving, tid))
            closer = self.closers.get((home, tid))
            if closer is not None:
                posted = closer.kind == Kind.HOLD_POST
                assert posted == (credit is not None), f"transfer {tid}: {closer.kind} vs credit"
            elif credit is None:
                in_flight[(home, serving)] += hold.minutes
            if credit is not None:
                assert credit.meta["hold"] == hold.hash.hex()
        districts = sorted(self.balances)
        for i, a in enumerate(districts):
            for b in districts[i + 1 :]:
                ab = self.balances[a].get(f"clearing:{b}", 0)
                ba = self.balances[b].get(f"clearing:{a}", 0)
                assert ab + ba == in_flight[(a, b)] + in_flight[(b, a)], f"mirror {a}/{b}"
