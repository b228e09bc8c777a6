"""The verifier's fast body reader never accepts what the strict parser refuses."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.entries import (
    ZERO_HASH,
    Kind,
    build_entry,
    entry_from_bytes,
    plain_body_pattern,
    read_plain_meta,
)
from ledger.errors import LedgerError
from ledger.verify import _account_kind, verify_chain

FAST = plain_body_pattern("xuhui")
ascii_text = st.text(string.printable.replace("\n", ""), min_size=1, max_size=20)
any_text = st.one_of(ascii_text, st.text(min_size=1, max_size=8))
accounts = st.sampled_from(
    ["issuance", "pool", "expired", "user:a", "user:b.c", "user:x@y", "clearing:minhang"]
)


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    debit = draw(accounts)
    credit = draw(accounts.filter(lambda a: a != debit))
    try:
        entry = build_entry(
            district=draw(st.sampled_from(["xuhui", "minhang"])),
            seq=draw(st.integers(0, 2**53 - 1)),
            prev=ZERO_HASH,
            id=draw(any_text),
            kind=draw(st.sampled_from(list(Kind))),
            debit=debit,
            credit=credit,
            minutes=draw(st.integers(1, 2**53 - 1)),
            category=draw(st.none() | any_text),
            ref=draw(st.none() | any_text),
            actor=draw(any_text),
            policy=draw(st.integers(0, 2**53 - 1)),
            at_ms=draw(st.integers(0, 2**53 - 1)),
            meta=draw(st.none() | st.dictionaries(ascii_text, ascii_text, max_size=2)),
        )
    except LedgerError:
        # seq 0 needs a zero prev (always given here); non-NFC text is refused: draw again.
        entry = build_entry(
            district="xuhui",
            seq=0,
            prev=ZERO_HASH,
            id="x",
            kind=Kind.GIFT,
            debit="user:a",
            credit="user:b",
            minutes=1,
            actor="a",
            policy=0,
            at_ms=0,
        )
    return entry.body


@settings(max_examples=400)
@given(bodies())
def test_fast_matches_only_valid_entries_and_reads_the_same_fields(body: bytes) -> None:
    match = FAST.fullmatch(body)
    if match is None:
        return
    assert body.isascii()
    entry = entry_from_bytes(body)
    credit, debit, entry_id, kind, meta, minutes, prev, ref, seq = match.groups()
    assert prev.decode() == entry.prev.hex()
    assert (read_plain_meta(meta) if meta is not None else {}) == dict(entry.meta)
    assert entry.district == "xuhui"
    assert (credit.decode(), debit.decode(), entry_id.decode()) == (
        entry.credit,
        entry.debit,
        entry.id,
    )
    assert (kind.decode(), int(minutes), int(seq)) == (str(entry.kind), entry.minutes, entry.seq)
    assert (None if ref == b"null" else ref[1:-1].decode()) == entry.ref
    # the fast path tells an account's kind by its first byte (`verify._SIMPLE_SHAPES`)
    for account in (debit, credit):
        assert account[0] == ord(_account_kind(account).lower())


@st.composite
def first_entries(draw: st.DrawFn) -> bytes:
    user = draw(st.sampled_from(["user:a", "user:b"]))
    return build_entry(
        district="xuhui",
        seq=0,
        prev=ZERO_HASH,
        id=draw(ascii_text),
        kind=Kind.DEPOSIT,
        debit="issuance",
        credit=user,
        minutes=draw(st.integers(1, 999)),
        category=draw(st.none() | ascii_text),
        ref=draw(st.none() | ascii_text),
        actor=draw(ascii_text),
        policy=1,
        at_ms=draw(st.integers(0, 2**40)),
        meta=draw(st.none() | st.dictionaries(st.sampled_from(["a", "b", "c"]), ascii_text)),
    ).body


@settings(max_examples=800)
@given(first_entries(), st.data())
def test_the_verifier_accepts_no_mutation_the_strict_parser_refuses(
    body: bytes, data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, len(body) - 1))
    value = data.draw(st.integers(0, 255))
    mutated = body[:position] + bytes([value]) + body[position + 1 :]
    if verify_chain([mutated], district="xuhui").ok:
        entry_from_bytes(mutated)  # must not raise


def test_meta_keys_out_of_order_are_left_to_the_strict_path() -> None:
    assert read_plain_meta(b'"a":"1","b":"2"') == {"a": "1", "b": "2"}
    assert read_plain_meta(b'"b":"1","a":"2"') is None
    assert read_plain_meta(b'"a":"1","a":"2"') is None


def test_plain_entries_take_the_fast_path() -> None:
    entry = build_entry(
        district="xuhui",
        seq=5,
        prev=b"\x01" * 32,
        id="booking-1:deposit",
        kind=Kind.DEPOSIT,
        debit="issuance",
        credit="user:v1",
        minutes=90,
        category="bathing",
        ref="booking-1",
        actor="centre:xuhui",
        policy=3,
        at_ms=1_700_000_000_000,
    )
    assert FAST.fullmatch(entry.body) is not None


def test_other_districts_and_escapes_take_the_strict_path() -> None:
    base = dict(
        seq=0,
        prev=ZERO_HASH,
        kind=Kind.DEPOSIT,
        debit="issuance",
        credit="user:v1",
        minutes=90,
        actor="a",
        policy=3,
        at_ms=1,
    )
    other = build_entry(district="minhang", id="x", **base)  # type: ignore[arg-type]
    quoted = build_entry(district="xuhui", id='say "hi"', **base)  # type: ignore[arg-type]
    assert FAST.fullmatch(other.body) is None
    assert FAST.fullmatch(quoted.body) is None
