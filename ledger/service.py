"""The append path: validate proposals under the chain lock, link them, commit them with their
balances and Merkle nodes in one transaction.

- `append(store, p)`: one entry, its own transaction.
- `append_batch(store, ps)`: all or nothing, one transaction (group commit of one command that
  needs several entries, or a bulk import). The first refused proposal aborts the batch; only
  that id is then recorded as failed, even when its refusal came from an earlier entry of the
  same (rolled back) batch: it was refused, and a retry must not succeed by surprise.
- `refuse(store, p, code=, message=)`: make an id's refusal final unless it is appended.
- `append_many(store, ps)`: group commit of independent requests in one transaction; each
  proposal gets its own outcome, an `Entry` or the `LedgerError` that refused it.

Idempotency is by (district, id). The same id with the same content (`rules.CONTENT_FIELDS`)
returns the stored entry and writes nothing; with different content it raises
`IdempotencyConflict` naming the first differing field; an id whose first attempt was refused
by a rule is recorded, and every retry raises `IdempotencyFailed` carrying that first refusal,
so it can never succeed later by surprise.

Proof reads (`tree_root`, `inclusion_proof`, `consistency_proof`, `statement_with_proofs`)
fold stored Merkle nodes; `checkpoint_chain` signs and stores a checkpoint when one is due.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ledger import merkle
from ledger.canonical import MAX_SAFE_INTEGER, encode
from ledger.checkpoint import Checkpoint, checkpoint_due, sign_checkpoint
from ledger.entries import (
    Entry,
    Kind,
    account_type,
    check_district,
    check_entry_id,
    check_text,
    new_entry,
)
from ledger.errors import (
    IdempotencyConflict,
    IdempotencyFailed,
    InvalidCheckpoint,
    InvalidEntry,
    LedgerError,
    ProofError,
)
from ledger.keys import Signer
from ledger.rules import (
    CLOSING,
    Limits,
    Proposal,
    check_shape,
    check_state,
    differing_field,
    entry_content,
)
from ledger.storage import nodes as merkle_nodes
from ledger.storage.base import (
    AccountKey,
    ChainStore,
    ChainWriter,
    Conflict,
    EntryKey,
    Failure,
    Head,
    StoredCheckpoint,
    Write,
)

DEFAULT_LIMITS = Limits()


async def append(
    store: ChainStore, proposal: Proposal, *, limits: Limits = DEFAULT_LIMITS
) -> Entry:
    return (await append_batch(store, [proposal], limits=limits))[0]


async def append_batch(
    store: ChainStore, proposals: Sequence[Proposal], *, limits: Limits = DEFAULT_LIMITS
) -> list[Entry]:
    if not proposals:
        return []
    try:
        outcomes = await _commit(store, proposals, limits=limits, atomic=True)
    except _Refused as refused:
        if refused.failure is not None:
            await _record_failure(store, refused.failure)
        raise refused.error from None
    return [o for o in outcomes if isinstance(o, Entry)]


async def append_many(
    store: ChainStore, proposals: Sequence[Proposal], *, limits: Limits = DEFAULT_LIMITS
) -> list[Entry | LedgerError]:
    if not proposals:
        return []
    return await _commit(store, proposals, limits=limits, atomic=False)


class _Refused(Exception):
    """Carries a refusal out of the transaction so the batch rolls back first."""

    def __init__(self, error: LedgerError, failure: Failure | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.failure = failure


def check_request(p: Proposal) -> None:
    """What identifies a request: its district and id. A proposal without a valid pair is
    refused on its own, before any transaction, and never recorded as a failed id: it could not
    be stored, and a retry meets the same refusal."""
    check_district(p.district)
    check_entry_id(p.id)


async def _commit(
    store: ChainStore, proposals: Sequence[Proposal], *, limits: Limits, atomic: bool
) -> list[Entry | LedgerError]:
    outcomes: list[Entry | LedgerError | None] = [None] * len(proposals)
    accepted: list[tuple[int, Proposal]] = []
    for n, p in enumerate(proposals):
        try:
            check_request(p)
        except LedgerError as error:
            if atomic:
                raise _Refused(error, None) from None
            outcomes[n] = error
            continue
        accepted.append((n, p))
    if accepted:
        try:
            await _apply(store, accepted, outcomes, limits, atomic, optimistic=True)
        except Conflict:  # an id of the batch was appended before: read them all this time
            await _apply(store, accepted, outcomes, limits, atomic, optimistic=False)
    return [o for o in outcomes if o is not None]


# From this many proposals on, a transaction does not look up their ids among the entries
# (an index probe each), only among the failed ids: a new id is the rule, and an old one makes
# the write hit the unique key (`Conflict`), after which the batch is redone reading them all.
OPTIMISTIC_FROM = 64


async def _apply(
    store: ChainStore,
    accepted: list[tuple[int, Proposal]],
    outcomes: list[Entry | LedgerError | None],
    limits: Limits,
    atomic: bool,
    *,
    optimistic: bool,
) -> None:
    proposals = [p for _, p in accepted]
    read_ids = not optimistic or len(proposals) < OPTIMISTIC_FROM
    async with store.writer(sorted({p.district for p in proposals})) as writer:
        plan = await Plan.load(writer, proposals, read_ids=read_ids)
        for n, p in accepted:
            try:
                outcomes[n] = plan.apply(p, limits)
            except LedgerError as error:
                if not atomic:
                    outcomes[n] = error
                elif not read_ids:
                    # An earlier proposal may repeat a stored id, whose balances it would not
                    # move again: the refusal is only final once every id was read.
                    raise Conflict("a proposal was refused; decide with every id read") from None
                else:
                    raise _Refused(error, plan.new_failures.get((p.district, p.id))) from None
        await writer.write(plan.to_write())


async def _record_failure(store: ChainStore, failure: Failure) -> Entry | Failure:
    key = (failure.district, failure.entry_id)
    async with store.writer([failure.district]) as writer:
        # A concurrent attempt may have appended or refused the same id meanwhile: first wins.
        snapshot = await writer.snapshot(entries=[key])
        if key in snapshot.entries:
            return snapshot.entries[key]
        if key in snapshot.failures:
            return snapshot.failures[key]
        await writer.write(Write(failures=[failure]))
    return failure


MAX_CODE = 64  # what a failed id's refusal code may hold


async def refuse(
    store: ChainStore, proposal: Proposal, *, code: str, message: str
) -> Entry | Failure:
    """Record `proposal.id` as refused unless it is already appended; return what stands.

    After this, appending the same id raises `IdempotencyFailed`: a final "no" that no later
    retry can turn into a "yes" (used by the serving side of a transfer to abort it).
    """
    check_request(proposal)
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE or not code.isprintable():
        raise InvalidEntry("code", f"must be 1 to {MAX_CODE} printable characters")
    if not isinstance(message, str):
        raise InvalidEntry("message", f"must be a string, got {type(message).__name__}")
    failure = Failure(
        district=proposal.district,
        entry_id=proposal.id,
        code=code,
        message=_storable(message),
        content=_content_json(proposal),
        at_ms=_failure_time(proposal),
    )
    return await _record_failure(store, failure)


def _failure_time(p: Proposal) -> int:
    """The refused proposal's clock reading, or 0 when it is itself what was wrong."""
    at_ms = p.at_ms
    return at_ms if type(at_ms) is int and 0 <= at_ms <= MAX_SAFE_INTEGER else 0


def _content_json(p: Proposal) -> str:
    # ASCII: a refused proposal may carry text no database column could hold as it is.
    return json.dumps(p.content(), sort_keys=True, default=repr)


def _storable(text: str) -> str:
    """`text` with NUL and lone surrogates escaped: a database text column cannot hold them."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _valid_account(name: object) -> bool:
    if type(name) is not str:
        return False
    try:
        account_type(name)
    except InvalidEntry:
        return False
    return True


def valid_accounts(proposals: Sequence[Proposal]) -> list[AccountKey]:
    """(district, account) of every valid account the proposals name, once each, in order."""
    return list(
        dict.fromkeys(
            (p.district, account)
            for p in proposals
            for account in (p.debit, p.credit)
            if _valid_account(account)
        )
    )


def _valid_ref(ref: object) -> bool:
    try:
        check_text("ref", ref)
    except InvalidEntry:
        return False
    return True


@dataclass
class Plan:
    """What the rules need, loaded once per transaction and updated as proposals are applied.

    `Plan.cached` starts one from state a writer kept instead (`committer.GroupCommitter`):
    it knows no stored id, so its write must be checked by the store (`append_if_current`).
    """

    tails: dict[str, tuple[int, bytes]]  # district -> (size, hash of the last entry)
    entries: dict[EntryKey, Entry]
    failures: dict[EntryKey, Failure]
    closers: dict[EntryKey, str]
    balances: dict[AccountKey, int]
    start: dict[str, Head] = field(default_factory=dict)
    frontier: dict[str, dict[merkle.NodeKey, bytes]] = field(default_factory=dict)
    new_entries: list[Entry] = field(default_factory=list)
    new_failures: dict[EntryKey, Failure] = field(default_factory=dict)
    changed: set[AccountKey] = field(default_factory=set)

    @classmethod
    async def load(
        cls, writer: ChainWriter, proposals: Sequence[Proposal], *, read_ids: bool = True
    ) -> Plan:
        """Proposals must have passed `check_request`; their other fields may still be bad
        (they are refused by `apply`), so only valid refs and accounts are looked up. Without
        `read_ids`, the proposals' ids are looked up among the failed ids only."""
        keys = list(dict.fromkeys((p.district, p.id) for p in proposals))
        refs = list(
            dict.fromkeys(
                (p.district, p.ref)
                for p in proposals
                if isinstance(p.kind, str) and p.kind in CLOSING and _valid_ref(p.ref)
            )
        )
        accounts = valid_accounts(proposals)
        heads = await writer.heads()
        wanted = set(keys) if read_ids else set()
        snapshot = await writer.snapshot(
            entries=[*(keys if read_ids else ()), *(r for r in refs if r not in wanted)],
            closers=refs,
            accounts=accounts,
            nodes={d: merkle_nodes.frontier(head.size) for d, head in heads.items()},
            failed=() if read_ids else keys,
        )
        return cls(
            tails={d: (head.size, head.head) for d, head in heads.items()},
            entries=dict(snapshot.entries),
            failures=dict(snapshot.failures),
            closers=dict(snapshot.closers),
            balances=dict(snapshot.balances),
            start=dict(heads),
            frontier=snapshot.nodes,
        )

    @classmethod
    def cached(
        cls,
        heads: Mapping[str, Head],
        frontier: Mapping[str, dict[merkle.NodeKey, bytes]],
        balances: Mapping[AccountKey, int],
    ) -> Plan:
        return cls(
            tails={d: (head.size, head.head) for d, head in heads.items()},
            entries={},
            failures={},
            closers={},
            balances=dict(balances),
            start=dict(heads),
            frontier=dict(frontier),
        )

    def apply(self, p: Proposal, limits: Limits) -> Entry:
        key = (p.district, p.id)
        known = self.entries.get(key)
        if known is not None:
            differs = differing_field(entry_content(known), p.content())
            if differs is not None:
                raise IdempotencyConflict(differs, p.id)
            return known
        failed = self.failures.get(key) or self.new_failures.get(key)
        if failed is not None:
            differs = differing_field(json.loads(failed.content), json.loads(_content_json(p)))
            if differs is not None:
                raise IdempotencyConflict(differs, p.id)
            raise IdempotencyFailed(p.id, f"{failed.code}: {failed.message}")
        try:
            entry = self._build(p, limits)
        except LedgerError as error:
            self.new_failures[key] = Failure(
                district=p.district,
                entry_id=p.id,
                code=error.code,
                message=_storable(str(error)),
                content=_content_json(p),
                at_ms=_failure_time(p),
            )
            raise
        self._record(entry)
        return entry

    def _build(self, p: Proposal, limits: Limits) -> Entry:
        kind = check_shape(p, limits=limits)
        d = p.district
        balances = self.balances
        closing = kind in CLOSING
        ref_key = (d, p.ref or "")
        check_state(
            p,
            kind,
            debit_balance=balances.get((d, p.debit), 0),
            credit_balance=balances.get((d, p.credit), 0),
            target=self.entries.get(ref_key) if closing else None,
            target_closed_by=self.closers.get(ref_key) if closing else None,
            limits=limits,
        )
        size, prev = self.tails[d]
        return new_entry(
            d, size, prev, p.id, kind, p.debit, p.credit, p.minutes, p.category, p.ref,
            p.actor, p.policy, p.at_ms, p.meta,
        )  # fmt: skip

    def _record(self, entry: Entry) -> None:
        d, kind = entry.district, entry.kind
        self.tails[d] = (entry.seq + 1, entry.hash)
        self.entries[(d, entry.id)] = entry
        self.new_entries.append(entry)
        if kind in CLOSING and entry.ref:
            self.closers[(d, entry.ref)] = entry.id
        if kind is not Kind.HOLD_POST:  # a post moves nothing (rules.deltas)
            balances, changed = self.balances, self.changed
            debit, credit = (d, entry.debit), (d, entry.credit)
            balances[debit] = balances.get(debit, 0) - entry.minutes
            balances[credit] = balances.get(credit, 0) + entry.minutes
            changed.add(debit)
            changed.add(credit)

    def to_write(self) -> Write:
        leaves: dict[str, list[bytes]] = {}
        for entry in self.new_entries:
            leaves.setdefault(entry.district, []).append(entry.hash)
        nodes: dict[str, dict[merkle.NodeKey, bytes]] = {}
        heads: dict[str, Head] = {}
        for district, hashes in sorted(leaves.items()):
            heads[district] = Head(*self.tails[district])
            frontier = self.frontier.get(district, {})
            nodes[district] = merkle_nodes.new_nodes(self.start[district].size, frontier, hashes)
        return Write(
            entries=self.new_entries,
            balances={k: self.balances[k] for k in sorted(self.changed)},
            heads=heads,
            failures=list(self.new_failures.values()),
            nodes=nodes,
        )


async def _proof_nodes(
    store: ChainStore, district: str, keys: Sequence[merkle.NodeKey]
) -> dict[merkle.NodeKey, bytes]:
    found = await store.nodes(district, keys)
    missing = [k for k in keys if k not in found]
    if missing:
        raise ProofError(f"{district}: Merkle node {missing[0]} is not stored")
    return found


async def _check_size(store: ChainStore, district: str, size: int) -> None:
    current = (await store.head(district)).size
    if not 0 <= size <= current:
        raise ProofError(f"{district} has {current} entries, no tree of size {size}")


async def tree_root(store: ChainStore, district: str, size: int) -> bytes:
    """RFC 9162 MTH of the first `size` entries of the chain."""
    await _check_size(store, district, size)
    nodes = await _proof_nodes(store, district, merkle.root_nodes(size))
    return merkle.root_from(nodes, size)


async def inclusion_proof(store: ChainStore, district: str, seq: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion path of entry `seq` in the tree of the first `size` entries."""
    await _check_size(store, district, size)
    if not 0 <= seq < size:
        raise ProofError(f"entry {seq} is not in a tree of size {size}")
    nodes = await _proof_nodes(store, district, merkle.inclusion_nodes(seq, size))
    return merkle.inclusion_proof_from(nodes, seq, size)


async def consistency_proof(store: ChainStore, district: str, old: int, new: int) -> list[bytes]:
    """RFC 9162 consistency proof between the trees of `old` and `new` entries."""
    await _check_size(store, district, new)
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to {new}")
    nodes = await _proof_nodes(store, district, merkle.consistency_nodes(old, new))
    return merkle.consistency_proof_from(nodes, old, new)


async def statement_with_proofs(
    store: ChainStore,
    district: str,
    account: str,
    *,
    size: int,
    after_seq: int = -1,
    limit: int = 100,
) -> list[tuple[Entry, list[bytes]]]:
    """Statement lines within the first `size` entries, each with its inclusion proof."""
    lines = await store.statement(district, account, after_seq=after_seq, limit=limit)
    return [
        (entry, await inclusion_proof(store, district, entry.seq, size))
        for entry in lines
        if entry.seq < size
    ]


async def latest_checkpoint(store: ChainStore, district: str) -> Checkpoint | None:
    stored = await store.checkpoints(district)
    return Checkpoint.from_json(decode_checkpoint(stored[-1].body)) if stored else None


def decode_checkpoint(body: bytes) -> dict[str, object]:
    value = json.loads(body)
    if not isinstance(value, dict):
        raise InvalidCheckpoint("stored checkpoint is not a JSON object")
    return value


async def checkpoint_chain(
    store: ChainStore,
    district: str,
    signer: Signer,
    *,
    now_ms: int,
    every_n: int = 1000,
    every_ms: int = 60_000,
    force: bool = False,
) -> Checkpoint | None:
    """Sign and store a checkpoint of the chain's current size if one is due (or `force`)."""
    last = await latest_checkpoint(store, district)
    size = (await store.head(district)).size
    due = checkpoint_due(
        last.size if last else None, last.at_ms if last else None, size, now_ms, every_n, every_ms
    )
    if not (due or (force and size > 0 and (last is None or last.size < size))):
        return None
    root = await tree_root(store, district, size)
    cp = sign_checkpoint(district=district, size=size, root=root, at_ms=now_ms, signer=signer)
    await store.add_checkpoint(StoredCheckpoint(district, size, root, now_ms, encode(cp.to_json())))
    return cp
