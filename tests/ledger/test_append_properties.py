"""Property: whatever sequence of proposals arrives, the chain stays valid and never overdraws."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.entries import Kind
from ledger.errors import LedgerError
from ledger.rules import Limits, Proposal
from ledger.service import append_many
from ledger.storage.memory import MemoryStore
from tests.ledger.chain_checks import check_store, replay

USERS = [f"user:u{i}" for i in range(4)]
ACCOUNTS = [*USERS, "issuance", "pool", "expired"]
KINDS = [Kind.DEPOSIT, Kind.REDEEM, Kind.GIFT, Kind.DONATE, Kind.EXPIRE, Kind.REVERSE]

proposal_fields = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(ACCOUNTS),
    st.integers(min_value=-5, max_value=700),
    st.integers(min_value=0, max_value=30),  # id: small range, so ids repeat
    st.integers(min_value=0, max_value=30),  # ref of a reversal
)


def to_proposal(fields: tuple[Kind, str, str, int, int, int]) -> Proposal:
    kind, debit, credit, minutes, n, ref = fields
    return Proposal("A", f"p{n}", kind, debit, credit, minutes, "prop", 1, 1, ref=f"p{ref}")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(proposal_fields, min_size=1, max_size=6), min_size=1, max_size=12))
def test_any_history_keeps_every_invariant(batches: list[list[tuple]]) -> None:  # type: ignore[type-arg]
    async def run() -> None:
        store = MemoryStore()
        accepted: dict[str, object] = {}
        for batch in batches:
            outcomes = await append_many(store, [to_proposal(f) for f in batch], limits=Limits(600))
            for outcome in outcomes:
                if not isinstance(outcome, LedgerError):
                    # An id, once written, always stands for the same entry.
                    assert accepted.setdefault(outcome.id, outcome) == outcome
        chains = await check_store(store)
        for chain in chains.values():
            balances = replay(chain)
            assert all(balances.get(u, 0) >= 0 for u in [*USERS, "pool"])

    asyncio.run(run())
