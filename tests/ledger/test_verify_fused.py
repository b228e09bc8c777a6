"""`feed_both` (links and replay in one loop) reports exactly what the two passes report when
each reads the lines on its own, whatever is wrong with them and wherever."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.keys import Signer
from ledger.verify import LinkPass, ReplayPass, combine, feed_both
from tests.ledger.test_verify_history import random_history

SIGNER = Signer.generate()
HOW = ["none", "minutes", "prev", "unicode", "drop", "swap", "duplicate", "garbage"]


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


@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    how=st.sampled_from(
        ["none", "minutes", "prev", "unicode", "drop", "swap", "duplicate", "garbage"]
    ),
    where=st.floats(0, 1),
    batch=st.sampled_from([1, 7, 64, 1000]),
    signed=st.booleans(),
)
def test_same_report_as_two_passes(
    seed: int, how: str, where: float, batch: int, signed: bool
) -> None:
    builder = random_history(seed, 120)
    lines = list(builder.bodies)
    if how != "none":
        tamper(lines, how, min(len(lines) - 1, int(where * len(lines))))
    cut = len(builder.bodies) if signed else 0
    fused = report(lines, True, batch, cut, builder)
    separate = report(lines, False, batch, cut, builder)
    assert fused == separate
    if how == "none":
        assert fused.ok  # type: ignore[attr-defined]


@pytest.mark.parametrize("start", [0, 40])
def test_detached_pass_takes_its_first_prev_on_trust(start: int) -> None:
    lines = random_history(3, 90).bodies
    part = lines[start:]
    fused_links, fused_replay = LinkPass(start), ReplayPass("xuhui", start=start)
    feed_both(fused_links, fused_replay, part)
    links, replay = LinkPass(start), ReplayPass("xuhui", start=start)
    links.feed(part)
    replay.feed(part)
    assert fused_links.hashes == links.hashes and fused_links.first_prev == links.first_prev
    assert (fused_replay.size, fused_replay.problem, fused_replay.balances) == (
        replay.size,
        replay.problem,
        replay.balances,
    )


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
