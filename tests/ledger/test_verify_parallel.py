"""A chain verified in two parts joins into the same report as one pass, or falls back."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

import ledger.export
from ledger.entries import ISSUANCE, Kind, clearing_account
from ledger.export import (
    _line_blocks,
    _line_start,
    read_export,
    split_offset,
    verify_exported,
)
from ledger.verify import LinkPass, ReplayPass
from tests.ledger.test_export import export
from tests.ledger.test_verify_history import ChainBuilder, random_history


def line_start(path: Path, n: int) -> int:
    """The byte offset where line `n` (0-based) of the file begins."""
    return sum(len(line) + 1 for line in path.read_bytes().split(b"\n")[:n])


def split_at_line(n: int):  # type: ignore[no-untyped-def]
    return lambda path, size: line_start(path, n)


@pytest.fixture(autouse=True)
def split_small_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split even small files, always after entry 31, so the tests below know the boundary."""
    monkeypatch.setattr(ledger.export, "PARALLEL_FROM", 4)
    monkeypatch.setattr(ledger.export, "split_offset", split_at_line(32))


def both_ways(tmp_path: Path, builder: ChainBuilder, tamper=None):  # type: ignore[no-untyped-def]
    path = export(tmp_path, builder)
    if tamper is not None:
        lines = path.read_bytes().split(b"\n")[:-1]
        tamper(lines)
        path.write_bytes(b"".join(line + b"\n" for line in lines))
    chain = read_export(path)
    with ThreadPoolExecutor(1) as pool:
        parallel = verify_exported(chain, pool=pool)
    sequential = verify_exported(chain, workers=1)
    return parallel, sequential


def boundary_chain(tail_steps) -> ChainBuilder:  # type: ignore[no-untyped-def]
    """32 entries before the split point (32 = largest power of two below the size)."""
    builder = ChainBuilder()
    for i in range(32):
        builder.append(Kind.DEPOSIT, ISSUANCE, f"user:u{i % 4}", 30, id=f"d{i}")
    tail_steps(builder)
    return builder


class TestJoin:
    @pytest.mark.parametrize("split", [1, 7, 29, 50, 63, 149])
    def test_any_split_point_gives_the_same_report(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: int
    ) -> None:
        monkeypatch.setattr(ledger.export, "split_offset", split_at_line(split))
        parallel, sequential = both_ways(tmp_path, random_history(split, 150))
        assert parallel.ok, parallel.reason
        assert parallel == sequential

    @pytest.mark.parametrize("at", [1, 2, 137, 5_000, 20_000, 10**9])
    def test_a_split_inside_a_line_moves_to_the_next_one(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: int
    ) -> None:
        monkeypatch.setattr(ledger.export, "split_offset", lambda path, size: min(at, size))
        parallel, sequential = both_ways(tmp_path, random_history(4, 90))
        assert parallel.ok, parallel.reason
        assert parallel == sequential

    @pytest.mark.parametrize("block", [1, 7, 200, 1 << 20])
    def test_each_side_reads_exactly_its_lines(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
    ) -> None:
        monkeypatch.setattr(ledger.export, "BLOCK", block)
        path = export(tmp_path, random_history(5, 40))
        data = path.read_bytes()
        lines = data.split(b"\n")[:-1]
        for split in range(0, len(data) + 1, 1 if block == 200 else 97):
            begin = _line_start(str(path), split)
            head = [line for part in _line_blocks(str(path), 0, begin) for line in part]
            tail = [line for part in _line_blocks(str(path), begin) for line in part]
            assert head + tail == lines
            assert begin == sum(len(line) + 1 for line in head)

    def test_a_last_line_without_its_newline_is_still_read(self, tmp_path: Path) -> None:
        path = tmp_path / "x.jsonl"
        path.write_bytes(b"one\ntwo")
        assert [line for part in _line_blocks(str(path), 0) for line in part] == [b"one", b"two"]

    def test_default_split_is_a_little_past_half(self) -> None:
        assert split_offset(Path("x.jsonl"), 1_000_000) == 520_000  # imported unpatched

    @pytest.mark.parametrize("seed", range(6))
    def test_valid_history_gives_the_same_report(self, tmp_path: Path, seed: int) -> None:
        parallel, sequential = both_ways(tmp_path, random_history(seed, 150))
        assert parallel.ok, parallel.reason
        assert parallel == sequential

    def test_reversal_and_hold_closing_across_the_split(self, tmp_path: Path) -> None:
        def tail(builder: ChainBuilder) -> None:
            builder.append(Kind.REVERSE, "user:u0", ISSUANCE, 30, ref="d0")
            builder.append(Kind.GIFT, "user:u1", "user:u2", 5)

        builder = ChainBuilder()
        for i in range(31):
            builder.append(Kind.DEPOSIT, ISSUANCE, f"user:u{i % 4}", 30, id=f"d{i}")
        hold = builder.append(
            Kind.HOLD_PENDING,
            "user:u3",
            clearing_account("minhang"),
            10,
            meta={"transfer": "t", "counterpart": "minhang"},
        )
        tail(builder)
        builder.append(
            Kind.HOLD_POST,
            "user:u3",
            "clearing:minhang",
            10,
            ref=hold.id,
            meta={"transfer": "t"},
        )
        parallel, sequential = both_ways(tmp_path, builder)
        assert parallel.ok, parallel.reason
        assert parallel == sequential
        assert parallel.transfers[0].state == "posted"

    def test_spending_minutes_earned_before_the_split(self, tmp_path: Path) -> None:
        builder = boundary_chain(lambda b: b.append(Kind.REDEEM, "user:u0", ISSUANCE, 240))
        parallel, sequential = both_ways(tmp_path, builder)
        assert parallel.ok and parallel == sequential


class TestFallbackNamesTheFirstBadSeq:
    def test_overdraft_across_the_split(self, tmp_path: Path) -> None:
        builder = boundary_chain(lambda b: None)
        builder.balances["user:u0"] = 10_000  # let the builder write an overdraft
        builder.append(Kind.REDEEM, "user:u0", ISSUANCE, 241)
        parallel, sequential = both_ways(tmp_path, builder)
        assert parallel.first_bad_seq == sequential.first_bad_seq == 32
        assert "would go to -1" in parallel.reason
        assert parallel == sequential

    def test_repeated_id_across_the_split(self, tmp_path: Path) -> None:
        builder = boundary_chain(lambda b: b.append(Kind.DEPOSIT, ISSUANCE, "user:u0", 30, id="d3"))
        parallel, sequential = both_ways(tmp_path, builder)
        assert parallel.first_bad_seq == 32 and "repeats entry 3" in parallel.reason
        assert parallel == sequential

    def test_reversing_twice_across_the_split(self, tmp_path: Path) -> None:
        def tail(builder: ChainBuilder) -> None:
            builder.append(Kind.REVERSE, "user:u0", ISSUANCE, 30, ref="d0", id="r2")

        builder = ChainBuilder()
        for i in range(31):
            builder.append(Kind.DEPOSIT, ISSUANCE, f"user:u{i % 4}", 30, id=f"d{i}")
        builder.append(Kind.REVERSE, "user:u0", ISSUANCE, 30, ref="d0", id="r1")
        tail(builder)
        parallel, sequential = both_ways(tmp_path, builder)
        assert parallel.first_bad_seq == 32 and "already closed" in parallel.reason
        assert parallel == sequential

    @pytest.mark.parametrize("k", [3, 31, 32, 33, 60])
    def test_byte_change_anywhere(self, tmp_path: Path, k: int) -> None:
        def tamper(lines: list[bytes]) -> None:
            lines[k] = lines[k].replace(b'"policy":1', b'"policy":4')

        parallel, sequential = both_ways(tmp_path, random_history(9, 64), tamper)
        assert parallel.first_bad_seq == sequential.first_bad_seq == k
        assert parallel == sequential

    def test_unreadable_line_at_the_split(self, tmp_path: Path) -> None:
        def tamper(lines: list[bytes]) -> None:
            lines[32] = b"{not an entry}"

        parallel, sequential = both_ways(tmp_path, random_history(9, 64), tamper)
        assert parallel.first_bad_seq == 32 and parallel == sequential

    def test_deleted_line_at_the_split(self, tmp_path: Path) -> None:
        parallel, sequential = both_ways(
            tmp_path, random_history(9, 64), lambda lines: lines.pop(32)
        )
        assert parallel.first_bad_seq == 32 and parallel == sequential


class TestDetachedPasses:
    def test_detached_link_pass_reports_its_first_prev(self) -> None:
        builder = random_history(1, 10)
        links = LinkPass(start=4)
        links.feed(builder.bodies[4:])
        assert links.first_prev == builder.entries[3].hash.hex().encode()
        assert links.broken_at is None

    def test_absorb_refuses_a_gap(self) -> None:
        builder = random_history(1, 10)
        first, later = ReplayPass("xuhui"), ReplayPass("xuhui", start=5)
        first.feed(builder.bodies[:4])
        later.feed(builder.bodies[5:])
        assert not first.absorb(later)


def test_forked_second_process(tmp_path: Path) -> None:
    chain = read_export(export(tmp_path, random_history(3, 200)))
    assert ledger.export._fork_is_safe()
    parallel = verify_exported(chain)
    assert parallel.ok and parallel == verify_exported(chain, workers=1)


def test_spawned_second_process(tmp_path: Path) -> None:
    chain = read_export(export(tmp_path, random_history(3, 200)))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        parallel = verify_exported(chain, pool=pool)
    assert parallel.ok and parallel == verify_exported(chain, workers=1)


def test_forked_child_reports_its_problem(tmp_path: Path) -> None:
    def tamper(lines: list[bytes]) -> None:
        lines[150] = lines[150].replace(b'"policy":1', b'"policy":4')

    path = export(tmp_path, random_history(3, 200))
    lines = path.read_bytes().split(b"\n")[:-1]
    tamper(lines)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    assert verify_exported(read_export(path)).first_bad_seq == 150


class _BrokenPool(Executor):
    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        future: Future = Future()
        future.set_exception(BrokenProcessPool("the child died"))
        return future


def test_a_dead_child_falls_back_to_one_process(tmp_path: Path) -> None:
    chain = read_export(export(tmp_path, random_history(3, 100)))
    report = verify_exported(chain, pool=_BrokenPool())
    assert report.ok and report == verify_exported(chain, workers=1)
