"""Verify a district's chain from its stored bytes and name the first bad entry.

Two independent passes over the same bodies, each stopping at its first problem:

- `LinkPass`: entry hashes, prev links, the Merkle roots at checkpoint sizes and truncation
  below a checkpoint. A broken link between entries i-1 and i is blamed on entry i-1 when entry
  i is otherwise in place (right seq) and vouched for by entry i+1 (or by a checkpoint root that
  matches once entry i-1 is given the hash entry i remembers); otherwise on entry i. A root that
  differs while every link holds is blamed on the last covered entry, the only one a single
  change can reach without breaking a link.
- `ReplayPass`: canonical form, fields, seq contiguity, district, per-kind account shapes,
  unique ids, reversals and hold closings against earlier entries, and the replayed balances
  (holder accounts `user:*` and `pool` never below zero; a hold_post moves nothing).

A report's first bad seq is the smallest seq either pass names. Checkpoint signatures and stored
balances are checked at the end and reported without a seq. Every entry's fields are read by
`entries.plain_body_pattern` (canonical ASCII bodies with simple meta); anything else takes the
strict path (`entries.entry_from_bytes`), so the fast path never accepts more.

`feed_both` runs both passes together, 128 lines at a time: a chunk's per-line checks run as
list-wide operations (`ReplayPass._run_chunk`; only balances and the rare holds, credits and
reversals go line by line), and any chunk with something wrong in it is read again line by line,
which names the problem exactly as the two passes alone would (`tests/ledger/test_verify_fused`).

The per-kind account shapes (`_SHAPES`) repeat the table of `ledger.rules` on purpose: the
auditor's check does not import the code it audits. Change both together.
"""

from __future__ import annotations

import hashlib
import operator
import re
from binascii import hexlify
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, count
from json.encoder import encode_basestring as encode_json_string
from typing import Any

from ledger.checkpoint import Checkpoint, KeysArgument, checkpoint_problems
from ledger.entries import (
    CLEARING_PREFIX,
    KIND_VALUES,
    META_COUNTERPART,
    META_HOLD,
    META_TRANSFER,
    VERSION_TAG,
    ZERO_HASH,
    Kind,
    entry_from_bytes,
    plain_body_pattern,
    read_plain_meta,
)
from ledger.errors import ChainBroken, LedgerError, NotCanonical
from ledger.merkle import MerkleIndex, Node, compact_range, range_hashes, root_of_joined
from ledger.merkle import root as merkle_root

LEAF_DATA_PREFIX = b"\x00" + VERSION_TAG
# Account kinds: U user, P pool, I issuance, E expired, C clearing (of another district).
_SHAPES: dict[str, frozenset[tuple[str, str]]] = {
    Kind.DEPOSIT: frozenset({("I", "U"), ("P", "U"), ("U", "U")}),
    Kind.REDEEM: frozenset({("U", "I"), ("U", "U")}),
    Kind.GIFT: frozenset({("U", "U")}),
    Kind.DONATE: frozenset({("U", "P")}),
    Kind.EXPIRE: frozenset({("U", "E")}),
    Kind.HOLD_PENDING: frozenset({("U", "C")}),
    Kind.HOLD_POST: frozenset({("U", "C")}),
    Kind.HOLD_VOID: frozenset({("C", "U")}),
    Kind.TRANSFER_CREDIT: frozenset({("C", "U")}),
}
# The fast path's account names (`entries.plain_body_pattern`: user:*, clearing:*, issuance,
# pool, expired) tell their kind by their first byte, the kind letter in lower case.
_SIMPLE_SHAPES = frozenset(
    (kind.encode(), ord(debit.lower()), ord(credit.lower()))
    for kind in (Kind.DEPOSIT, Kind.REDEEM, Kind.GIFT, Kind.DONATE, Kind.EXPIRE)
    for debit, credit in _SHAPES[kind]
)
_HOLDERS = b"up"  # first bytes of the accounts that may not go below zero: user:*, pool
_TRANSFER_KINDS = frozenset(
    {Kind.HOLD_PENDING, Kind.HOLD_POST, Kind.HOLD_VOID, Kind.TRANSFER_CREDIT}
)
_REVERSIBLE = frozenset({Kind.DEPOSIT, Kind.REDEEM, Kind.GIFT, Kind.DONATE, Kind.EXPIRE})


_OWN_ACCOUNTS = {b"pool": "P", b"issuance": "I", b"expired": "E"}


def _account_kind(name: bytes) -> str:
    if name.startswith(b"user:"):
        return "U"
    if name.startswith(b"clearing:"):
        return "C"
    return _OWN_ACCOUNTS.get(name, "?")


@dataclass(frozen=True)
class Problem:
    seq: int | None
    reason: str


@dataclass(frozen=True)
class TransferRecord:
    """A chain's side of one cross-district transfer, for `verify_mirrors`."""

    transfer: str
    role: str  # "hold" (home chain) or "credit" (serving chain)
    counterpart: str
    minutes: int
    seq: int
    hold_hash: str  # hex: the hold's own hash (role hold) or the hash it cites (role credit)
    state: str  # hold: pending | posted | voided; credit: credited


@dataclass(frozen=True)
class VerifyReport:
    district: str
    entries: int
    problems: tuple[Problem, ...]
    head: bytes
    balances: Mapping[str, int]
    checkpoints_verified: int = 0
    transfers: tuple[TransferRecord, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    @property
    def reason(self) -> str:
        if not self.problems:
            return "ok"
        first = self.first_bad_seq
        for problem in self.problems:
            if problem.seq == first:
                return problem.reason if first is None else f"seq {first}: {problem.reason}"
        return self.problems[0].reason  # pragma: no cover - every branch above returns

    def raise_if_bad(self) -> None:
        if self.problems:
            raise ChainBroken(self.reason, self.first_bad_seq)


def _extract_int(line: bytes, key: bytes) -> int | None:
    at = line.rfind(key)
    if at < 0:
        return None
    digits = re.match(rb"[0-9]{1,16}", line[at + len(key) :])
    return int(digits.group()) if digits else None


def _prev_hex(line: bytes) -> bytes | None:
    # The last `,"prev":"` is the top-level key: only ref, seq and v follow it, and a string
    # cannot hold an unescaped quote.
    at = line.rfind(b',"prev":"')
    return line[at + 9 : at + 73] if at >= 0 else None


class LinkPass:
    """Hashes and links; feed bodies in seq order, then `finish` with the checkpoints.

    A pass may start at `start` > 0 (one part of a file verified in parallel): it then takes
    the first prev on trust and records it in `first_prev` for the caller to check.
    """

    def __init__(self, start: int = 0) -> None:
        self.start = start
        self.hashes: list[bytes] = []
        self.first_prev: bytes | None = None
        self._last_hex: bytes | None = hexlify(ZERO_HASH) if start == 0 else None
        self.broken_at: int | None = None  # seq whose prev does not match
        self._break_in_place = False
        self._break_prev: bytes | None = None
        self._after_break: tuple[bytes | None, int | None] | None = None
        self._tail: TailSummary | None = None
        self._index: MerkleIndex | None = None

    def feed(self, lines: Sequence[bytes]) -> None:
        sha256, prefix, hashes = hashlib.sha256, LEAF_DATA_PREFIX, self.hashes
        if self._last_hex is None and lines:
            self.first_prev = _prev_hex(lines[0])
            self._last_hex = self.first_prev
        last_hex = self._last_hex
        for line in lines:
            digest = sha256(prefix + line).digest()
            if self.broken_at is None:
                at = line.rfind(b',"prev":"')
                if at < 0 or line[at + 9 : at + 73] != last_hex:
                    self._note_break(self.start + len(hashes), line)
            elif self._after_break is None:
                self._after_break = (_prev_hex(line), _extract_int(line, b',"seq":'))
            hashes.append(digest)
            last_hex = hexlify(digest)
        self._last_hex = last_hex

    def _note_break(self, seq: int, line: bytes) -> None:
        self.broken_at = seq
        self._break_in_place = _extract_int(line, b',"seq":') == seq
        prev = _prev_hex(line)
        try:
            self._break_prev = bytes.fromhex(prev.decode()) if prev else None
        except ValueError:
            self._break_prev = None

    def _blame_break(self, checkpoints: Sequence[Checkpoint]) -> Problem:
        seq = self.broken_at
        assert seq is not None and self.start == 0
        if seq == 0:
            return Problem(0, "the first entry must link to 32 zero bytes")
        accused = Problem(seq, f"prev does not match the hash of entry {seq - 1}")
        if not self._break_in_place or self._break_prev is None:
            return accused
        earlier = Problem(seq - 1, f"entry {seq - 1} differs from what entry {seq} links to")
        if self._after_break is not None:
            prev_hex, next_seq = self._after_break
            vouched = next_seq == seq + 1 and prev_hex == hexlify(self.hashes[seq])
            return earlier if vouched else accused
        for cp in checkpoints:
            if seq < cp.size <= len(self.hashes):
                repaired = list(self.hashes[: cp.size])
                repaired[seq - 1] = self._break_prev
                if merkle_root(repaired) == cp.root:
                    return earlier
        return accused

    def tail_summary(self, sizes: Iterable[int]) -> TailSummary:
        """What a detached pass hands back: its ends and, for each checkpoint size S it
        reaches, the compact range of [start, S) (a few subtree hashes)."""
        end = self.start + len(self.hashes)
        wanted = sorted({s for s in sizes if self.start < s <= end})
        return TailSummary(
            first_prev=self.first_prev,
            broken_at=self.broken_at,
            count=len(self.hashes),
            head=self.head,
            ranges={
                s: tuple(range_hashes(self.hashes[: s - self.start], self.start, s)) for s in wanted
            },
        )

    def absorb(self, tail: TailSummary) -> bool:
        """Append a detached pass that started where this one ends."""
        own = len(self.hashes)
        joins = own > 0 and tail.first_prev == hexlify(self.head)
        if self.broken_at is not None or tail.broken_at is not None or not joins:
            return False
        self._tail = tail
        return True

    @property
    def size(self) -> int:
        return self.start + len(self.hashes) + (self._tail.count if self._tail else 0)

    def own_index(self) -> MerkleIndex:
        """The Merkle index of this pass's own entries (built once; callers may build it early,
        e.g. while a helper process is still verifying the rest)."""
        if self._index is None or self._index.size != len(self.hashes):
            self._index = MerkleIndex.from_leaves(self.hashes)
        return self._index

    def _roots(self, sizes: Sequence[int]) -> dict[int, bytes]:
        own = len(self.hashes)
        if self._index is not None and self._index.size == own:
            index = self._index
        else:  # only the leaves the checkpoints cover
            index = MerkleIndex.from_leaves(self.hashes[: min(own, max(sizes))])
        roots = {}
        for size in sizes:
            if size <= index.size:
                roots[size] = index.root(size)
            else:  # join this part's compact range with the tail's
                assert self._tail is not None and index.size == own
                left = [Node(lv, i, index.node(lv, i)) for lv, i in compact_range(0, own)]
                roots[size] = root_of_joined(left, self._tail.ranges[size])
        return roots

    def finish(self, checkpoints: Sequence[Checkpoint]) -> list[Problem]:
        """Link, truncation and root problems (at most one, the first)."""
        size = self.size
        if self.broken_at is not None:
            return [self._blame_break(checkpoints)]
        ordered = sorted(checkpoints, key=lambda c: c.size)
        if ordered and ordered[-1].size > size:
            return [
                Problem(
                    size, f"missing: checkpoint signed size {ordered[-1].size}, chain has {size}"
                )
            ]
        if not ordered:
            return []
        roots = self._roots([cp.size for cp in ordered])
        for cp in ordered:
            if roots[cp.size] != cp.root:
                return [
                    Problem(
                        cp.size - 1,
                        f"the first {cp.size} entries do not hash to the signed root; every link "
                        f"holds, so entry {cp.size - 1} was altered",
                    )
                ]
        return []

    @property
    def head(self) -> bytes:
        if self._tail is not None:
            return self._tail.head
        return self.hashes[-1] if self.hashes else ZERO_HASH


@dataclass(frozen=True)
class TailSummary:
    """A detached LinkPass's result: small enough to send between processes."""

    first_prev: bytes | None
    broken_at: int | None
    count: int
    head: bytes
    ranges: Mapping[int, tuple[Node, ...]]


@dataclass
class _Hold:
    seq: int
    debit: bytes
    credit: bytes
    minutes: int
    transfer: str
    counterpart: str
    hash: str
    closed_by: str | None = None
    state: str = "pending"


@dataclass(frozen=True)
class Closing:
    """A reverse, hold_post or hold_void whose target lies before this part of the chain."""

    seq: int
    kind: str
    ref: bytes
    debit: bytes
    credit: bytes
    minutes: int
    entry_id: bytes
    transfer: str | None


_NO_META: Mapping[str, Any] = {}
_GROUPS = re.Match.groups
_FIRST_BYTE = operator.itemgetter(0)
_CHUNK_FROM = 16  # lines: below this, `_run_chunk`'s list-wide set-up costs more than it saves
# Lines `feed_both` hands `_run_chunk` at a time: the chunk's match objects, fields and hashes
# then stay in the processor's cache (a chunk of 4,096 lines is half again as slow per line).
_CHUNK = 128


def _id_key(text: str) -> bytes:
    """An id or ref as the body writes it, between its quotes: what the fast path reads, and
    never a raw newline (JSON escapes every control character)."""
    return encode_json_string(text)[1:-1].encode()


class _Bad(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


class ReplayPass:
    """Fields, seq, ids, rules and balances; feed bodies in seq order.

    A `detached` pass starts at `start` > 0 with unknown balances: it records each holder
    account's lowest running delta in `lowest` instead of refusing it, and closings of entries
    it has not seen in `closings`; `absorb` later applies it to the pass before it.
    """

    def __init__(
        self,
        district: str,
        *,
        max_minutes: int | None = None,
        start: int = 0,
    ) -> None:
        self.district = district
        self.max_minutes = max_minutes
        self.start = start
        self.detached = start > 0
        self.size = start
        self.problem: Problem | None = None
        # account -> balance (or delta when detached); a flat dict of ints: the fast path
        # reaches a balance without going through a record
        self.balances: dict[bytes, int] = {}
        self.lowest: dict[bytes, int] = {}
        self.closings: list[Closing] = []
        self.ids: dict[bytes, int] = {}  # id as it is written in the body (`_id_key`) -> seq
        self.packed_ids: bytes | None = None  # see `pack`
        self.sealed = False  # it absorbed a packed pass, whose ids it did not copy
        self.lines: list[bytes] = []
        self._closed: dict[bytes, bytes] = {}  # ref -> id of the reverse / post / void
        self._holds: dict[bytes, _Hold] = {}
        self.credits: list[TransferRecord] = []

    def _debited_below_zero(self, seq: int, name: bytes, left: int) -> None:
        if not self.detached:
            raise _Bad(seq, f"{name.decode()} would go to {left} minutes")
        if left < self.lowest.get(name, 0):
            self.lowest[name] = left

    def feed(self, lines: Sequence[bytes]) -> None:
        if self.sealed:
            raise RuntimeError("a pass that absorbed a packed one takes no more entries")
        if self.problem is not None:
            return
        self.lines.extend(lines)  # closings read their targets back from here
        self._run(lines, None)

    def _run(self, lines: Sequence[bytes], links: LinkPass | None) -> int:
        """Replay `lines` (already in `self.lines`); with `links`, also hash and link each
        line as `LinkPass.feed` would, until a link breaks or the replay finds a problem.
        Returns how many lines `links` has taken; `self.size` tells how far the replay got."""
        # With `links`, prev is compared with the hex of the entry before: the pattern need
        # not test its characters (`plain_body_pattern(linked=True)`).
        match = plain_body_pattern(self.district, linked=links is not None).fullmatch
        ids, balances = self.ids, self.balances
        balance = balances.get
        limit, simple_shapes = self.max_minutes, _SIMPLE_SHAPES
        linking = links is not None
        sha256, prefix = hashlib.sha256, LEAF_DATA_PREFIX
        add_hash = links.hashes.append if links is not None else None
        last_hex = links._last_hex if links is not None else None
        linked_before = len(links.hashes) if links is not None else 0
        seq = self.size
        try:
            for line in lines:
                fields = match(line)
                if fields is None:
                    if links is not None:  # hashed and linked the way LinkPass reads any line
                        links._last_hex = last_hex
                        links.feed((line,))
                        last_hex = links._last_hex
                        if links.broken_at is not None:
                            break  # `feed_both` goes on pass by pass
                    self.size = seq
                    self._slow(line)
                    seq += 1
                    continue
                (credit, debit, entry_id, kind, meta_text, minutes_b, prev_hex, ref, seq_b) = (
                    fields.groups()
                )
                if linking:
                    if prev_hex != last_hex:
                        break  # a broken link: `feed_both` goes on pass by pass
                    digest = sha256(prefix + line).digest()
                    add_hash(digest)  # type: ignore[misc]
                    last_hex = hexlify(digest)
                meta = _NO_META if meta_text is None else read_plain_meta(meta_text)
                if meta is None:  # meta keys out of order: the strict path says why
                    self.size = seq
                    self._slow(line)
                    seq += 1
                    continue
                if int(seq_b) != seq:
                    raise _Bad(seq, f"seq is {int(seq_b)}, expected {seq}")
                if entry_id in ids:
                    raise _Bad(seq, f"id {entry_id.decode()} repeats entry {ids[entry_id]}")
                ids[entry_id] = seq
                minutes = int(minutes_b)
                if debit == credit:
                    raise _Bad(seq, f"debit and credit are both {debit.decode()}")
                if limit is not None and minutes >= limit:
                    raise _Bad(seq, f"{minutes} minutes is not below the ceiling {limit}")
                debit_kind = debit[0]
                if (kind, debit_kind, credit[0]) in simple_shapes:
                    left = balance(debit, 0) - minutes
                    balances[debit] = left
                    balances[credit] = balance(credit, 0) + minutes
                    if left < 0 and debit_kind in _HOLDERS:
                        self._debited_below_zero(seq, debit, left)
                else:
                    balances.setdefault(debit, 0)  # listed in the report even if refused
                    balances.setdefault(credit, 0)
                    self.size = seq
                    plain_ref = None if ref == b"null" else ref[1:-1]
                    self._special(
                        kind.decode(), debit, credit, minutes, entry_id, plain_ref, meta, line
                    )
                seq += 1
        except _Bad as bad:
            self.problem = Problem(bad.seq, bad.reason)
        except LedgerError as exc:
            self.problem = Problem(seq, exc.message)
        self.size = seq
        if links is None:
            return len(lines)
        links._last_hex = last_hex
        return len(links.hashes) - linked_before

    def _run_chunk(self, lines: Sequence[bytes], links: LinkPass) -> bool:
        """Replay, hash and link all of `lines` at once: the checks that look at one line
        alone (pattern, prev, seq, id, ceiling, debit against credit, meta key order) run over
        the whole list in C loops; only the balances and the few entries that are not simple
        moves (holds, credits, reversals, refused shapes) go line by line, in seq order.
        False, with nothing changed, when any of those list-wide checks fails or a closing
        names a later line of the list: `_run` then goes line by line and names the problem.
        True when it took every line (the replay may have stopped at a problem)."""
        n, last_hex, start = len(lines), links._last_hex, self.size
        if n < _CHUNK_FROM or last_hex is None:
            return False
        matches = list(map(plain_body_pattern(self.district, linked=True).fullmatch, lines))
        if None in matches:
            return False
        fields = zip(*map(_GROUPS, matches), strict=True)
        credits, debits, entry_ids, kinds, metas, minutes_b, prevs, refs, seqs = fields
        sha256, prefix = hashlib.sha256, LEAF_DATA_PREFIX
        digests = [sha256(prefix + line).digest() for line in lines]
        # every captured prev is 64 bytes long, so the joined strings are equal only when
        # each prev is the hex of the digest before it
        if prevs[0] != last_hex or b"".join(prevs[1:]) != hexlify(b"".join(digests[:-1])):
            return False
        if b",".join(seqs) != ",".join(map(str, range(start, start + n))).encode():
            return False
        minutes = list(map(int, minutes_b))
        if self.max_minutes is not None and max(minutes) >= self.max_minutes:
            return False
        if any(map(operator.eq, debits, credits)):
            return False
        shapes = zip(kinds, map(_FIRST_BYTE, debits), map(_FIRST_BYTE, credits), strict=True)
        special = list(
            compress(count(), map(operator.not_, map(_SIMPLE_SHAPES.__contains__, shapes)))
        )
        meta_of = {}
        for at in compress(count(), metas):
            meta = read_plain_meta(metas[at])
            if meta is None:
                return False
            meta_of[at] = meta
        if not self._take_ids(entry_ids, start, [(refs[at], start + at) for at in special]):
            return False
        links.hashes.extend(digests)
        links._last_hex = hexlify(digests[-1])
        self._replay_chunk(
            start, debits, credits, minutes, special, kinds, entry_ids, refs, meta_of, lines
        )
        return True

    def _take_ids(
        self, entry_ids: Sequence[bytes], start: int, refs: Iterable[tuple[bytes, int]]
    ) -> bool:
        """Record the ids of a chunk starting at seq `start`, unless one repeats or a closing
        (its ref as written, and its seq) names a later entry of the chunk; then leave the ids
        as they were and return False."""
        ids = self.ids
        if not ids.keys().isdisjoint(entry_ids):
            return False
        before = len(ids)
        ids.update(zip(entry_ids, range(start, start + len(entry_ids)), strict=True))
        taken = len(ids) - before == len(entry_ids)
        if taken:
            taken = all(ids.get(ref[1:-1], -1) < seq for ref, seq in refs if ref != b"null")
        if not taken:  # none was there before
            for entry_id in entry_ids:
                ids.pop(entry_id, None)
        return taken

    def _replay_chunk(
        self,
        start: int,
        debits: Sequence[bytes],
        credits: Sequence[bytes],
        minutes: Sequence[int],
        special: Sequence[int],
        kinds: Sequence[bytes],
        entry_ids: Sequence[bytes],
        refs: Sequence[bytes],
        meta_of: Mapping[int, Mapping[str, Any]],
        lines: Sequence[bytes],
    ) -> None:
        """The balances of a chunk `_run_chunk` checked, and its special entries in place."""
        balances = self.balances
        balance = balances.get
        done = 0
        try:
            for stop in (*special, len(debits)):
                part = zip(
                    range(start + done, start + stop),
                    debits[done:stop],
                    credits[done:stop],
                    minutes[done:stop],
                    strict=True,
                )
                for seq, debit, credit, moved in part:
                    left = balance(debit, 0) - moved
                    balances[debit] = left
                    balances[credit] = balance(credit, 0) + moved
                    if left < 0 and debit[0] in _HOLDERS:
                        self._debited_below_zero(seq, debit, left)
                if stop == len(debits):
                    break
                debit, credit = debits[stop], credits[stop]
                balances.setdefault(debit, 0)  # listed in the report even if refused
                balances.setdefault(credit, 0)
                self.size = start + stop
                ref = refs[stop]
                self._special(
                    kinds[stop].decode(),
                    debit,
                    credit,
                    minutes[stop],
                    entry_ids[stop],
                    None if ref == b"null" else ref[1:-1],
                    meta_of.get(stop, _NO_META),
                    lines[stop],
                )
                done = stop + 1
        except _Bad as bad:
            self.problem = Problem(bad.seq, bad.reason)
            self.size = bad.seq
        except LedgerError as exc:
            self.problem = Problem(self.size, exc.message)
        else:
            self.size = start + len(debits)
            return
        # as line by line: the ids of the entries after the bad one were never taken
        for entry_id in entry_ids[self.size - start + 1 :]:
            del self.ids[entry_id]

    def _slow(self, line: bytes) -> None:
        seq = self.size
        entry = entry_from_bytes(line)
        if entry.seq != seq:
            raise _Bad(seq, f"seq is {entry.seq}, expected {seq}")
        if entry.district != self.district:
            raise _Bad(seq, f"district is {entry.district}, expected {self.district}")
        entry_id = _id_key(entry.id)
        if entry_id in self.ids:
            raise _Bad(seq, f"id {entry.id} repeats entry {self.ids[entry_id]}")
        self.ids[entry_id] = seq
        if self.max_minutes is not None and entry.minutes >= self.max_minutes:
            raise _Bad(seq, f"{entry.minutes} minutes is not below the ceiling {self.max_minutes}")
        debit, credit = entry.debit.encode(), entry.credit.encode()
        ref = _id_key(entry.ref) if entry.ref is not None else None
        self._special(
            str(entry.kind), debit, credit, entry.minutes, entry_id, ref, entry.meta, line
        )

    def _special(
        self,
        kind: str,
        debit: bytes,
        credit: bytes,
        minutes: int,
        entry_id: bytes,
        ref: bytes | None,
        meta: Mapping[str, Any],
        line: bytes,
    ) -> None:
        seq = self.size
        if kind not in KIND_VALUES:
            raise _Bad(seq, f"unknown kind {kind!r}")
        if kind != Kind.REVERSE:
            shapes = _SHAPES.get(kind)
            if shapes is None:
                raise _Bad(seq, f"a {kind} entry is not an accounting entry")
            if (_account_kind(debit), _account_kind(credit)) not in shapes:
                raise _Bad(seq, f"a {kind} cannot move {debit.decode()} -> {credit.decode()}")
        transfer = meta.get(META_TRANSFER)
        if kind in _TRANSFER_KINDS and not isinstance(transfer, str):
            raise _Bad(seq, f'a {kind} must carry meta["transfer"]')
        if kind in (Kind.HOLD_PENDING, Kind.TRANSFER_CREDIT):
            self._open_transfer(kind, debit, credit, minutes, entry_id, meta, line)
        elif kind in (Kind.REVERSE, Kind.HOLD_POST, Kind.HOLD_VOID):
            if ref is None:
                raise _Bad(seq, f"a {kind} must name in ref the entry it closes")
            if ref in self._closed:
                raise _Bad(
                    seq, f"{ref.decode()} was already closed by {self._closed[ref].decode()}"
                )
            self._closed[ref] = entry_id
            closing = Closing(seq, kind, ref, debit, credit, minutes, entry_id, transfer)
            if ref in self.ids:
                self.close(closing)
            elif self.detached:
                self.closings.append(closing)
            else:
                raise _Bad(seq, f"a {kind} names {ref.decode()!r}, which is no earlier entry")
        if kind != Kind.HOLD_POST:
            balances = self.balances
            left = balances.get(debit, 0) - minutes
            balances[debit] = left
            balances[credit] = balances.get(credit, 0) + minutes
            if left < 0 and _account_kind(debit) in "UP":
                self._debited_below_zero(seq, debit, left)

    def _open_transfer(
        self,
        kind: str,
        debit: bytes,
        credit: bytes,
        minutes: int,
        entry_id: bytes,
        meta: Mapping[str, Any],
        line: bytes,
    ) -> None:
        seq = self.size
        clearing = (credit if kind == Kind.HOLD_PENDING else debit).decode()
        counterpart = clearing[len(CLEARING_PREFIX) :]
        if counterpart == self.district:
            raise _Bad(seq, "a district cannot clear with itself")
        if meta.get(META_COUNTERPART) != counterpart:
            raise _Bad(seq, f'meta["counterpart"] must be {counterpart}')
        transfer = str(meta[META_TRANSFER])
        if kind == Kind.HOLD_PENDING:
            digest = hashlib.sha256(LEAF_DATA_PREFIX + line).hexdigest()
            self._holds[entry_id] = _Hold(
                seq, debit, credit, minutes, transfer, counterpart, digest
            )
            return
        hold = meta.get(META_HOLD)
        if not isinstance(hold, str) or not re.fullmatch(r"[0-9a-f]{64}", hold):
            raise _Bad(seq, 'a transfer_credit must cite the hold hash in meta["hold"]')
        self.credits.append(
            TransferRecord(transfer, "credit", counterpart, minutes, seq, hold, "credited")
        )

    def _fields_of(self, seq: int) -> tuple[str, bytes, bytes, int]:
        """Kind, debit, credit and minutes of an earlier entry of this pass."""
        line = self.lines[seq - self.start]
        fields = plain_body_pattern(self.district).fullmatch(line)
        if fields is not None:
            credit, debit, _, kind, _, minutes, _, _, _ = fields.groups()
            return kind.decode(), debit, credit, int(minutes)
        entry = entry_from_bytes(line)
        return str(entry.kind), entry.debit.encode(), entry.credit.encode(), entry.minutes

    def close(self, closing: Closing) -> None:
        """Check a closing against the entry it names, which this pass has seen."""
        seq, kind = closing.seq, closing.kind
        target_seq = self.ids[closing.ref]
        target_kind, target_debit, target_credit, target_minutes = self._fields_of(target_seq)
        if kind == Kind.REVERSE:
            if target_kind not in _REVERSIBLE:
                raise _Bad(seq, f"entry {target_seq} is a {target_kind} and cannot be reversed")
            swapped = (target_credit, target_debit, target_minutes)
            if (closing.debit, closing.credit, closing.minutes) != swapped:
                raise _Bad(
                    seq, f"does not swap the accounts and keep the minutes of entry {target_seq}"
                )
            return
        hold = self._holds.get(closing.ref)
        if hold is None:
            raise _Bad(seq, f"entry {target_seq} is not a pending hold")
        if hold.closed_by is not None:
            raise _Bad(seq, f"hold {target_seq} was already closed by {hold.closed_by}")
        same = (hold.debit, hold.credit) if kind == Kind.HOLD_POST else (hold.credit, hold.debit)
        if (closing.debit, closing.credit) != same or closing.minutes != hold.minutes:
            raise _Bad(seq, f"does not match the accounts and minutes of hold {target_seq}")
        if closing.transfer != hold.transfer:
            raise _Bad(seq, f"names transfer {closing.transfer}, the hold is for {hold.transfer}")
        hold.closed_by = closing.entry_id.decode()
        hold.state = "posted" if kind == Kind.HOLD_POST else "voided"

    def pack(self) -> None:
        """Shrink a finished detached pass to what `absorb` needs, for the trip back from a
        helper process: its ids as one byte string in seq order (a dict of half a million ids
        pickles slowly; no id holds a raw newline, see `_id_key`), and no lines (closings of
        entries before the pass carry their own fields)."""
        self.packed_ids = b"\n".join(self.ids)
        self.ids = {}
        self.lines = []

    def _later_ids(self) -> Sequence[bytes] | Mapping[bytes, int]:
        """The ids of this pass, each once, in seq order."""
        if self.packed_ids is None:
            return self.ids
        return self.packed_ids.split(b"\n") if self.packed_ids else []

    def absorb(self, later: ReplayPass) -> bool:
        """Append a detached pass that started where this one ended; False if anything is off
        (the caller then replays everything in order to name the first bad seq)."""
        if self.sealed:
            raise RuntimeError("a pass that absorbed a packed one takes no more entries")
        if self.problem or later.problem or later.start != self.size:
            return False
        later_ids = later._later_ids()
        if not self.ids.keys().isdisjoint(later_ids):
            return False
        balances = self.balances
        for name, lowest in later.lowest.items():
            if balances.get(name, 0) + lowest < 0:
                return False
        try:
            for closing in later.closings:
                if closing.ref not in self.ids or closing.ref in self._closed:
                    return False
                self.close(closing)
        except _Bad:
            return False
        for name, delta in later.balances.items():
            balances[name] = balances.get(name, 0) + delta
        if later.packed_ids is None:
            self.ids.update(later_ids)
        else:  # half a million ids to copy for nothing: this pass takes no more entries
            self.sealed = True
        self._closed.update(later._closed)
        self._holds.update(later._holds)
        self.credits.extend(later.credits)
        self.size = later.size
        return True

    def transfers(self) -> tuple[TransferRecord, ...]:
        holds = [
            TransferRecord(h.transfer, "hold", h.counterpart, h.minutes, h.seq, h.hash, h.state)
            for h in self._holds.values()
        ]
        return tuple(sorted([*holds, *self.credits], key=lambda r: r.seq))

    def balances_by_name(self) -> dict[str, int]:
        return {name.decode(): value for name, value in sorted(self.balances.items())}


def feed_both(links: LinkPass, replay: ReplayPass, lines: Sequence[bytes]) -> None:
    """`links.feed(lines)` and `replay.feed(lines)` together, `_CHUNK` lines at a time: each
    chunk at once (`ReplayPass._run_chunk`) or else in one loop over its lines (one regular
    expression match reads every field, prev included), for as long as every link holds and
    the replay finds nothing wrong; from there on pass by pass, as each would alone."""
    if links._last_hex is None and lines:  # a detached pass trusts its first line's prev
        links.feed(lines[:1])
        replay.feed(lines[:1])
        lines = lines[1:]
    if replay.sealed:  # `feed` says why
        links.feed(lines)
        replay.feed(lines)
        return
    for at in range(0, len(lines), _CHUNK):
        if replay.sealed or replay.problem is not None or links.broken_at is not None:
            rest = lines[at:]
            links.feed(rest)
            replay.feed(rest)
            return
        chunk = lines[at : at + _CHUNK]
        replay.lines.extend(chunk)
        if not replay._run_chunk(chunk, links):
            _run_lines(links, replay, chunk)


def _run_lines(links: LinkPass, replay: ReplayPass, lines: Sequence[bytes]) -> None:
    """Lines already in `replay.lines`, in one loop while both passes go on, then pass by pass."""
    before = replay.size
    linked = replay._run(lines, links)
    if linked < len(lines):
        links.feed(lines[linked:])
    replayed = replay.size - before
    if replay.problem is None and replayed < len(lines):
        replay._run(lines[replayed:], None)


def compare_balances(replayed: Mapping[str, int], stored: Mapping[str, int]) -> list[Problem]:
    problems = []
    total = sum(stored.values())
    if total != 0:
        problems.append(Problem(None, f"stored balances sum to {total}, not 0"))
    for account in sorted(set(replayed) | set(stored)):
        have, want = stored.get(account, 0), replayed.get(account, 0)
        if have != want:
            problems.append(
                Problem(None, f"stored balance of {account} is {have}, replay gives {want}")
            )
    return problems


def combine(
    district: str,
    links: LinkPass,
    replay: ReplayPass,
    *,
    checkpoints: Sequence[Checkpoint],
    public_keys: KeysArgument,
    trusted_key_id: str | None,
    stored_balances: Mapping[str, int] | None,
) -> VerifyReport:
    """The report of two finished passes over one whole chain."""
    problems = list(links.finish(checkpoints))
    if replay.problem is not None:
        problems.append(replay.problem)
    problems.sort(key=lambda p: (p.seq, p is not replay.problem))
    problems = problems[:1]
    problems += [
        Problem(None, reason)
        for reason in checkpoint_problems(
            district, checkpoints, public_keys, trusted_key_id=trusted_key_id
        )
    ]
    balances = replay.balances_by_name()
    if stored_balances is not None and not problems:
        problems += compare_balances(balances, stored_balances)
    return VerifyReport(
        district=district,
        entries=links.size,
        problems=tuple(problems),
        head=links.head,
        balances=balances,
        checkpoints_verified=len(checkpoints) if not problems else 0,
        transfers=replay.transfers(),
    )


def verify_chain(
    entries: Iterable[bytes],
    *,
    district: str,
    checkpoints: Sequence[Checkpoint] = (),
    public_keys: KeysArgument = None,
    trusted_key_id: str | None = None,
    stored_balances: Mapping[str, int] | None = None,
    max_minutes: int | None = None,
    batch: int = 65_536,
) -> VerifyReport:
    """Verify stored bodies in seq order (streamed in batches) against checkpoints and keys."""
    links, replay = LinkPass(), ReplayPass(district, max_minutes=max_minutes)
    if isinstance(entries, list):  # the bodies are all here: hand over slices
        for start in range(0, len(entries), batch):
            chunk = entries[start : start + batch]
            if not set(map(type, chunk)) <= {bytes}:
                chunk = [body if type(body) is bytes else _stored_bytes(body) for body in chunk]
            feed_both(links, replay, chunk)
    else:
        pending: list[bytes] = []
        for body in entries:
            if type(body) is not bytes:
                body = _stored_bytes(body)
            pending.append(body)
            if len(pending) >= batch:
                feed_both(links, replay, pending)
                pending = []
        feed_both(links, replay, pending)
    return combine(
        district,
        links,
        replay,
        checkpoints=checkpoints,
        public_keys=public_keys,
        trusted_key_id=trusted_key_id,
        stored_balances=stored_balances,
    )


def _stored_bytes(body: object) -> bytes:
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    raise NotCanonical(f"stored entry bodies are bytes, not {type(body).__name__}")


@dataclass(frozen=True)
class MirrorReport:
    problems: tuple[str, ...]
    net: Mapping[tuple[str, str], int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_mirrors(reports: Sequence[VerifyReport]) -> MirrorReport:
    """Cross-chain clearing rules between the given chains (pairs with a missing chain skip).

    1. Every transfer_credit in B citing transfer T with counterpart A answers a hold of T in A
       toward B with the same minutes and the hold hash it cites.
    2. A posted hold has exactly one credit; a voided hold has none; an open hold may have
       one (the transfer is in flight).
    3. settled(A, B) = balance of clearing:B in A, less A's open holds toward B, plus A's
       credits answering B's open holds. After these adjustments the clearing accounts mirror:
       settled(A, B) == -settled(B, A). `net[(A, B)]` = settled(A, B): minutes A's members
       spent in B that A owes B (negative: B owes A).
    """
    by_district = {r.district: r for r in reports}
    holds = {(r.district, t.transfer): t for r in reports for t in r.transfers if t.role == "hold"}
    credits: dict[tuple[str, str], list[tuple[str, TransferRecord]]] = {}
    for r in reports:
        for t in r.transfers:
            if t.role == "credit":
                credits.setdefault((t.counterpart, t.transfer), []).append((r.district, t))
    problems: list[str] = []
    for (home, transfer), answers in sorted(credits.items()):
        if home not in by_district:
            continue
        hold = holds.get((home, transfer))
        for serving, credit in answers:
            where = f"{serving} seq {credit.seq}"
            if hold is None or hold.counterpart != serving:
                problems.append(f"{where}: credit for transfer {transfer} has no hold in {home}")
            elif (credit.minutes, credit.hold_hash) != (hold.minutes, hold.hold_hash):
                problems.append(f"{where}: credit differs from {home}'s hold for {transfer}")
            elif hold.state == "voided":
                problems.append(f"{where}: credit for transfer {transfer}, voided in {home}")
        if len(answers) > 1:
            problems.append(f"transfer {transfer} of {home} was credited {len(answers)} times")
    for (home, transfer), hold in sorted(holds.items()):
        serving = hold.counterpart
        if hold.state == "posted" and serving in by_district and not credits.get((home, transfer)):
            problems.append(f"{home} seq {hold.seq}: posted transfer {transfer} has no credit")
    settled: dict[tuple[str, str], int] = {}
    for r in reports:
        for account, value in r.balances.items():
            if account.startswith(CLEARING_PREFIX):
                settled[(r.district, account[len(CLEARING_PREFIX) :])] = value
    for (home, _), hold in holds.items():
        if hold.state == "pending":
            settled[(home, hold.counterpart)] = (
                settled.get((home, hold.counterpart), 0) - hold.minutes
            )
            for serving, credit in credits.get((home, hold.transfer), []):
                settled[(serving, home)] = settled.get((serving, home), 0) + credit.minutes
    for (a, b), value in sorted(settled.items()):
        if b in by_district and a < b and value != -settled.get((b, a), 0):
            problems.append(
                f"clearing:{b} in {a} settles at {value}, clearing:{a} in {b} at "
                f"{settled.get((b, a), 0)}: they must mirror"
            )
    net = {pair: value for pair, value in sorted(settled.items()) if pair[1] in by_district}
    return MirrorReport(tuple(problems), net)
