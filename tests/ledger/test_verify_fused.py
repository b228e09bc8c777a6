"""`feed_both` (links and replay in one loop) reports exactly what the two passes report when
each reads the lines on its own, whatever is wrong with them and wherever."""

from __future__ import annotations

import hashlib
import re
from binascii import hexlify

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.keys import Signer
from ledger.verify import LEAF_DATA_PREFIX, LinkPass, ReplayPass, combine, feed_both
from tests.ledger.test_verify_history import random_history

SIGNER = Signer.generate()
HOW = ["none", "minutes", "prev", "unicode", "drop", "swap", "duplicate", "garbage"]
# Changes a relinked chain still shows only to the replay (every prev is made right again).
REPLAY_HOW = ["id", "near-id", "self", "meta", "ref", "seq", "ceiling", "overdraw"]


def _field(line: bytes, name: str) -> bytes | None:
    found = re.search(b'"' + name.encode() + b'":("[^"]*"|null|[0-9]+)', line)
    return found.group(1) if found else None


def _set_field(line: bytes, name: str, value: bytes) -> bytes:
    pattern = b'"' + name.encode() + b'":("[^"]*"|null|[0-9]+)'
    return re.sub(pattern, lambda _: b'"' + name.encode() + b'":' + value, line, count=1)


def relink(lines: list[bytes]) -> None:
    """Make every prev the hash of the line before, whatever those lines now hold."""
    for at in range(1, len(lines)):
        digest = hashlib.sha256(LEAF_DATA_PREFIX + lines[at - 1]).digest()
        lines[at] = _set_field(lines[at], "prev", b'"' + hexlify(digest) + b'"')


def tamper(lines: list[bytes], how: str, at: int) -> None:
    line = lines[at]
    if how == "minutes":
        lines[at] = line.replace(b'"minutes":', b'"minutes":9', 1)
    elif how == "prev":
        cut = line.index(b'"prev":"') + 8
        lines[at] = line[:cut] + (b"0" if line[cut : cut + 1] != b"0" else b"1") + line[cut + 1 :]
    elif how == "unicode":  # still canonical, but only the strict reader takes it
        lines[at] = line.replace(b'"actor":"', b'"actor":"\xc3\xa9', 1)
    elif how == "drop":
        del lines[at]
    elif how == "swap" and at + 1 < len(lines):
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
    elif how == "duplicate":
        lines.insert(at, line)
    elif how == "garbage":
        lines[at] = b"{not an entry}"
    elif how in ("id", "near-id") and at > 0:  # the id of an earlier entry, or of the one before
        earlier = lines[at // 2 if how == "id" else at - 1]
        lines[at] = _set_field(line, "id", _field(earlier, "id") or b'"x"')
    elif how == "self":  # credit the account it debits
        lines[at] = _set_field(line, "credit", _field(line, "debit") or b'"x"')
    elif how == "meta":  # meta keys out of order (a meta of one key: an extra key first)
        meta = re.search(rb'"meta":\{([^}]*)\}', line)
        pairs = meta.group(1).split(b",") if meta and meta.group(1) else []
        shuffled = b",".join(pairs[::-1]) if len(pairs) > 1 else b'"zz":"1",' + b",".join(pairs)
        lines[at] = line.replace(
            b'"meta":{' + (meta.group(1) if meta else b""), b'"meta":{' + shuffled, 1
        )
    elif how == "ref" and at + 1 < len(lines):  # name a later entry (a closing may not)
        lines[at] = _set_field(line, "ref", _field(lines[at + 1], "id") or b'"x"')
    elif how == "ceiling":  # `report` verifies with a ceiling of 6000 minutes
        lines[at] = _set_field(line, "minutes", b"6000")
    elif how == "overdraw":
        lines[at] = _set_field(line, "minutes", b"5999")
    elif how == "seq":
        lines[at] = _set_field(line, "seq", b"%d" % (at + 1))


def report(lines: list[bytes], fused: bool, batch: int, cut: int, builder) -> object:  # type: ignore[no-untyped-def]
    links, replay = LinkPass(), ReplayPass("xuhui", max_minutes=6000)
    for start in range(0, len(lines), batch):
        part = lines[start : start + batch]
        if fused:
            feed_both(links, replay, part)
        else:
            links.feed(part)
            replay.feed(part)
    checkpoints = [builder.checkpoint(SIGNER, cut)] if cut else []
    return combine(
        "xuhui",
        links,
        replay,
        checkpoints=checkpoints,
        public_keys={SIGNER.key_id: SIGNER.public},
        trusted_key_id=None,
        stored_balances=None,
    )


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    how=st.sampled_from(HOW + REPLAY_HOW),
    where=st.floats(0, 1),
    batch=st.sampled_from([1, 7, 64, 1000]),
    signed=st.booleans(),
    relinked=st.booleans(),
)
def test_same_report_as_two_passes(
    seed: int, how: str, where: float, batch: int, signed: bool, relinked: bool
) -> None:
    builder = random_history(seed, 400)
    lines = list(builder.bodies)
    if how != "none":
        tamper(lines, how, min(len(lines) - 1, int(where * len(lines))))
    if relinked:  # only the replay can see the change: the fused pass must reach it
        relink(lines)
    cut = len(builder.bodies) if signed else 0
    fused = report(lines, True, batch, cut, builder)
    separate = report(lines, False, batch, cut, builder)
    assert fused == separate
    if how == "none":
        assert fused.ok  # type: ignore[attr-defined]


def test_a_sound_chain_is_read_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    def line_by_line(*_: object) -> int:
        raise AssertionError("a sound chunk went line by line")

    lines = list(random_history(11, 1000).bodies)
    monkeypatch.setattr(ReplayPass, "_run", line_by_line)
    assert report(lines, True, 1000, len(lines), random_history(11, 1000)).ok  # type: ignore[attr-defined]


def _first_after(lines: list[bytes], at: int, pattern: bytes) -> int:
    return next(i for i in range(at, len(lines) - 1) if re.search(pattern, lines[i]))


@pytest.mark.parametrize("how", REPLAY_HOW)
def test_a_chunk_with_a_bad_line_names_it_as_the_line_by_line_passes_do(how: str) -> None:
    builder = random_history(13, 600)
    lines = list(builder.bodies)
    at = 200
    if how == "ref":
        at = _first_after(lines, at, rb'"kind":"(reverse|hold_post|hold_void)"')
    elif how == "overdraw":
        at = _first_after(lines, at, rb'"debit":"user:')
    tamper(lines, how, at)
    relink(lines)
    fused = report(lines, True, 1000, 0, builder)
    assert fused == report(lines, False, 1000, 0, builder)
    assert fused.first_bad_seq == at, fused.reason  # type: ignore[attr-defined]
    chunked, line_by_line = (
        ReplayPass("xuhui", max_minutes=6000),
        ReplayPass("xuhui", max_minutes=6000),
    )
    feed_both(LinkPass(), chunked, lines)
    line_by_line.feed(lines)
    assert list(chunked.ids.items()) == list(line_by_line.ids.items())


def test_a_sealed_pass_refuses_even_no_lines() -> None:
    first, later = ReplayPass("xuhui"), ReplayPass("xuhui", start=20)
    lines = random_history(3, 40).bodies
    first.feed(lines[:20])
    later.feed(lines[20:])
    later.pack()
    assert first.absorb(later)
    with pytest.raises(RuntimeError, match="takes no more entries"):
        feed_both(LinkPass(), first, [])


@pytest.mark.parametrize("start", [0, 40, 190])
def test_detached_pass_takes_its_first_prev_on_trust(start: int) -> None:
    lines = random_history(3, 400).bodies
    part = lines[start:]
    fused_links, fused_replay = LinkPass(start), ReplayPass("xuhui", start=start)
    feed_both(fused_links, fused_replay, part)
    links, replay = LinkPass(start), ReplayPass("xuhui", start=start)
    links.feed(part)
    replay.feed(part)
    assert fused_links.hashes == links.hashes and fused_links.first_prev == links.first_prev
    fused_state = [fused_replay.size, fused_replay.problem, fused_replay.balances]
    fused_state += [fused_replay.lowest, fused_replay.closings, fused_replay.ids]
    state = [replay.size, replay.problem, replay.balances, replay.lowest, replay.closings]
    assert fused_state == [*state, replay.ids]


def test_packed_pass_joins_like_the_unpacked_one() -> None:
    lines = random_history(5, 200).bodies
    results = []
    for pack in (False, True):
        first, later = ReplayPass("xuhui"), ReplayPass("xuhui", start=100)
        first.feed(lines[:100])
        later.feed(lines[100:])
        if pack:
            later.pack()
        assert first.absorb(later)
        results.append((first.size, first.balances_by_name(), first.transfers()))
        assert first.sealed == pack  # the packed ids were checked, not copied
    assert results[0] == results[1]
    first, later = ReplayPass("xuhui"), ReplayPass("xuhui", start=100)
    first.feed(lines[:100])
    later.feed(lines[100:])
    later.ids[next(iter(first.ids))] = 199  # an id of the first part again
    later.pack()
    assert not first.absorb(later)
