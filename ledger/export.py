"""Ledger exports: files anyone can verify with nothing else, and their verification.

One directory holds, per district D:

    D.jsonl            one canonical entry body per line, in seq order, exactly the stored
                       bytes, each followed by "\\n" (canonical JSON never contains a raw newline)
    D.checkpoint.json  the latest signed checkpoint (`Checkpoint.to_json`)
    D.keys.json        the district's public keys and rotation checkpoints (`KeyHistory.to_json`)
    D.balances.json    optional: the balances the database holds, to compare with the replay

`verify_export` checks every chain of a directory (or one `.jsonl` file) and the clearing
mirrors between them. A large file is verified in two processes (forked when the caller has a
single thread, spawned otherwise), each reading its own part of the file: the parent the lines
up to a little past half its bytes (`split_offset`), the child the rest, starting from the seq
its first line claims. The child sends back only its ends and the compact range of its Merkle
subtrees (`TailSummary`), its replay detached and packed (`ReplayPass.absorb`). If the parts
do not join cleanly the whole file is replayed in order, which names the first bad seq.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ledger.checkpoint import Checkpoint, KeyHistory
from ledger.entries import check_district
from ledger.errors import ExportInvalid, InvalidCheckpoint, InvalidEntry
from ledger.verify import (
    LinkPass,
    MirrorReport,
    Problem,
    ReplayPass,
    TailSummary,
    VerifyReport,
    combine,
    feed_both,
    verify_mirrors,
)

ENTRIES = ".jsonl"
CHECKPOINT = ".checkpoint.json"
KEYS = ".keys.json"
BALANCES = ".balances.json"
PARALLEL_FROM = 100_000  # below this many entries a second process costs more than it saves
SMALLEST_ENTRY = 150  # bytes: no canonical entry body is shorter, so a file size bounds its count
BLOCK = 1 << 20  # bytes read and verified at a time (`_line_blocks`)


@dataclass(frozen=True)
class ExportedChain:
    district: str
    path: Path
    checkpoint: Checkpoint | None
    keys: KeyHistory | None
    balances: dict[str, int] | None

    @cached_property
    def data(self) -> bytes:
        """The whole .jsonl file, every line ended by a newline (read on first use: a large
        file verified in two processes is read by each process, a part each)."""
        return _read_entries(self.path)

    @cached_property
    def bodies(self) -> list[bytes]:
        return self.data[:-1].split(b"\n") if self.data else []

    @cached_property
    def count(self) -> int:
        """Lines in the file, read a block at a time (never the whole file at once)."""
        lines = 0
        with self.path.open("rb") as handle:
            while block := handle.read(BLOCK):
                lines += block.count(b"\n")
        return lines

    @property
    def size(self) -> int:
        """Bytes in the file."""
        return self.path.stat().st_size


@dataclass(frozen=True)
class ExportReport:
    chains: tuple[VerifyReport, ...]
    mirrors: MirrorReport

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.chains) and self.mirrors.ok

    @property
    def reason(self) -> str:
        for report in self.chains:
            if not report.ok:
                return f"{report.district}: {report.reason}"
        return "; ".join(self.mirrors.problems) or "ok"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, sort_keys=True, indent=1, ensure_ascii=False) + "\n", "utf-8")


def write_export(
    directory: str | os.PathLike[str],
    district: str,
    bodies: Iterable[bytes],
    checkpoint: Checkpoint | None,
    keys: KeyHistory,
    *,
    balances: Mapping[str, int] | None = None,
) -> Path:
    """Write one district's files into `directory`; returns the `.jsonl` path."""
    check_district(district)
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    entries = target / f"{district}{ENTRIES}"
    with entries.open("wb") as handle:
        for body in bodies:
            if b"\n" in body:
                raise ExportInvalid("an entry body contains a newline; it is not canonical")
            handle.write(body)
            handle.write(b"\n")
    if checkpoint is not None:
        _write_json(target / f"{district}{CHECKPOINT}", checkpoint.to_json())
    _write_json(target / f"{district}{KEYS}", keys.to_json())
    if balances is not None:
        _write_json(target / f"{district}{BALANCES}", dict(sorted(balances.items())))
    return entries


def _read_entries(path: Path) -> bytes:
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        raise ExportInvalid(f"{path.name} does not end with a newline: truncated?")
    return data


def _check_ending(path: Path) -> None:
    """A truncated file is refused before anything is verified (without reading it all)."""
    try:
        with path.open("rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return
            handle.seek(-1, os.SEEK_END)
            last = handle.read(1)
    except OSError as exc:
        raise ExportInvalid(f"cannot read {path.name}: {exc}") from exc
    if last != b"\n":
        raise ExportInvalid(f"{path.name} does not end with a newline: truncated?")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportInvalid(f"cannot read {path.name}: {exc}") from exc


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name[: -len(ENTRIES)] + suffix)


def read_export(path: str | os.PathLike[str]) -> ExportedChain:
    """Read one district's export from its `.jsonl` path and the files beside it."""
    entries = Path(path)
    if not entries.name.endswith(ENTRIES):
        raise ExportInvalid(f"{entries.name} is not a {ENTRIES} file")
    district = entries.name[: -len(ENTRIES)]
    try:
        check_district(district)
    except InvalidEntry as exc:
        raise ExportInvalid(f"{entries.name}: {exc.message}") from None
    checkpoint_path, keys_path = _sibling(entries, CHECKPOINT), _sibling(entries, KEYS)
    balances_path = _sibling(entries, BALANCES)
    try:
        checkpoint = (
            Checkpoint.from_json(_read_json(checkpoint_path)) if checkpoint_path.exists() else None
        )
        keys = KeyHistory.from_json(_read_json(keys_path)) if keys_path.exists() else None
    except InvalidCheckpoint as exc:
        raise ExportInvalid(f"{district}: {exc.message}") from None
    balances = _read_json(balances_path) if balances_path.exists() else None
    if balances is not None and not (
        isinstance(balances, dict) and all(type(v) is int for v in balances.values())
    ):
        raise ExportInvalid(f"{balances_path.name} must map accounts to integer minutes")
    _check_ending(entries)
    return ExportedChain(district, entries, checkpoint, keys, balances)


def _ready() -> None:
    """A no-op: submitted first so the pool starts its process while the parent reads."""


def _spawned_pool() -> ProcessPoolExecutor:
    # spawn, not fork: the caller may be a threaded server, and fork copies its locks.
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    pool.submit(_ready)
    return pool


class _ForkedCall:
    """`fn(*args)` in a forked child. The child shares the parent's memory as it was at the
    fork, so nothing (not the file contents) is sent to it; only the result comes back."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        context = multiprocessing.get_context("fork")
        self._receiver, sender = context.Pipe(duplex=False)
        self._process = context.Process(target=_send_result, args=(sender, fn, args), daemon=True)
        self._process.start()
        sender.close()

    def result(self) -> Any:
        try:
            ok, value = self._receiver.recv()
        except EOFError:
            raise BrokenExecutor("the helper process died") from None
        finally:
            self._process.join()
            self._receiver.close()
        if not ok:
            raise value
        return value


def _send_result(sender: Any, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        outcome = (True, fn(*args))
    except Exception as exc:  # handed to the parent, which raises it
        outcome = (False, exc)
    sender.send(outcome)
    sender.close()


class _Fork(Executor):
    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        return _ForkedCall(fn, args)


def _fork_is_safe() -> bool:
    # fork copies only the calling thread; locks held by other threads would stay locked.
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _line_start(path: str, split: int) -> int:
    """Where the first line that begins at or after byte `split` - 1 begins (`split` 0: 0)."""
    if split <= 0:
        return 0
    with open(path, "rb") as handle:
        handle.seek(split - 1)
        handle.readline()
        return handle.tell()


def _line_blocks(path: str, begin: int, end: int | None = None) -> Iterator[list[bytes]]:
    """The lines of bytes [begin, end) of the file (to its end when `end` is None), without
    their newlines, a block of `BLOCK` bytes at a time; `begin` and `end` are line starts.
    A block's lines are verified while they are still in the processor's cache, and the part
    is never held twice (whole, then cut into lines)."""
    with open(path, "rb") as handle:
        handle.seek(begin)
        left = -1 if end is None else end - begin
        partial: list[bytes] = []  # the pieces of a line that runs on into the next block
        while left:
            block = handle.read(BLOCK if left < 0 else min(BLOCK, left))
            if not block:
                break
            left -= len(block) if left > 0 else 0
            lines = block.split(b"\n")
            if len(lines) == 1:  # a line longer than a block: joined once, not block by block
                partial.append(block)
                continue
            if partial:
                partial.append(lines[0])
                lines[0] = b"".join(partial)
            last = lines.pop()
            partial = [last] if last else []
            yield lines
        if partial:  # a last line without its newline (the file changed since `read_export`)
            yield [b"".join(partial)]


def _verify_tail(
    path: str,
    district: str,
    begin: int,
    sizes: list[int],
    max_minutes: int | None,
) -> tuple[TailSummary, ReplayPass] | None:
    """Child process: verify, detached, the lines of the file from byte `begin` (a line start)
    on, from the seq its first line claims (the parent checks that it joins). None when there
    is no such line to start from."""
    blocks = _line_blocks(path, begin)
    first = next(blocks, None)
    start = _claimed_seq(first[0]) if first else None
    if first is None or start is None or start < 1:
        return None
    links, replay = LinkPass(start), ReplayPass(district, max_minutes=max_minutes, start=start)
    feed_both(links, replay, first)
    for lines in blocks:
        feed_both(links, replay, lines)
    replay.pack()  # only what the parent needs to join the parts, cheap to send
    return links.tail_summary(sizes), replay


def _claimed_seq(line: bytes) -> int | None:
    # The last `,"seq":` is the top-level key: only `v` follows it, and a string cannot hold
    # an unescaped quote.
    at = line.rfind(b',"seq":')
    digits = re.match(rb"[0-9]{1,16}", line[at + 7 :]) if at >= 0 else None
    return int(digits.group()) if digits else None


def split_offset(path: Path, size: int) -> int:
    """Where the parent's part of a file of `size` bytes ends: a little past half. Each process
    reads, cuts and hashes its own part and builds its Merkle subtrees; the helper's replay,
    detached, costs it a little more per line, and it then packs and pickles its result. What
    the parent does after the join (unpickling, `absorb`, `combine`) waits for the helper
    whatever the split, so only the work before it is balanced (`_line_start` moves the split
    to the next line start)."""
    del path  # a test splits at a chosen line
    return size * 52 // 100


def _verify_in_two(
    chain: ExportedChain, *, sizes: list[int], max_minutes: int | None, pool: Executor
) -> tuple[LinkPass, ReplayPass] | None:
    """Both parts at once, the later one in `pool`, each process reading its own part of the
    file; None when they do not join cleanly."""
    path = str(chain.path)
    begin = _line_start(path, split_offset(chain.path, chain.size))
    tail = pool.submit(_verify_tail, path, chain.district, begin, sizes, max_minutes)
    links = LinkPass()
    replay = ReplayPass(chain.district, max_minutes=max_minutes)
    for lines in _line_blocks(path, 0, begin):
        feed_both(links, replay, lines)
    links.own_index()  # while the child may still be working
    joined = tail.result()
    if joined is None:
        return None
    summary, later = joined
    if not links.absorb(summary) or not replay.absorb(later):
        return None
    return links, replay


def verify_exported(
    chain: ExportedChain,
    *,
    trusted_key_id: str | None = None,
    max_minutes: int | None = None,
    workers: int = 2,
    pool: Executor | None = None,
    extra_checkpoints: Sequence[Checkpoint] = (),
) -> VerifyReport:
    """Verify one exported chain; with `workers` >= 2 a large one is split in two. The helper
    process is forked when this process has one thread, else taken from `pool` (default: a
    freshly spawned one). A failed helper falls back to verifying in one process.
    `extra_checkpoints` are checked beside the file's own (e.g. one the caller saved)."""
    checkpoints = [chain.checkpoint] if chain.checkpoint is not None else []
    checkpoints += extra_checkpoints
    options: dict[str, Any] = {
        "checkpoints": checkpoints,
        "public_keys": chain.keys,
        "trusted_key_id": trusted_key_id,
        "stored_balances": chain.balances,
    }
    if workers >= 2 and chain.size >= PARALLEL_FROM * SMALLEST_ENTRY:
        if pool is None and _fork_is_safe():
            pool = _Fork()
        own = _spawned_pool() if pool is None else None
        try:
            joined = _verify_in_two(
                chain,
                sizes=sorted({cp.size for cp in checkpoints}),
                max_minutes=max_minutes,
                pool=pool or own,  # type: ignore[arg-type]
            )
        except (BrokenExecutor, OSError):
            joined = None
        finally:
            if own is not None:
                own.shutdown()
        if joined is not None:
            links, replay = joined
            return combine(chain.district, links, replay, **options)
    links, replay = LinkPass(), ReplayPass(chain.district, max_minutes=max_minutes)
    for lines in _line_blocks(str(chain.path), 0):
        feed_both(links, replay, lines)
    return combine(chain.district, links, replay, **options)


def verify_export(
    path: str | os.PathLike[str],
    *,
    trusted_key_ids: Mapping[str, str] | None = None,
    max_minutes: int | None = None,
    workers: int = 2,
    pool: Executor | None = None,
) -> ExportReport:
    """Verify a `.jsonl` file or every chain in a directory, then their clearing mirrors."""
    target = Path(path)
    if target.is_dir():
        files = sorted(target.glob(f"*{ENTRIES}"))
        if not files:
            raise ExportInvalid(f"no {ENTRIES} files in {target}")
    elif target.exists():
        files = [target]
    else:
        raise ExportInvalid(f"{target} does not exist")
    large = any(f.stat().st_size >= PARALLEL_FROM * SMALLEST_ENTRY for f in files)
    spawn = workers >= 2 and pool is None and large and not _fork_is_safe()
    own = _spawned_pool() if spawn else None
    reports: list[VerifyReport] = []
    try:
        for file in files:
            chain = read_export(file)
            if chain.keys is None:
                reports.append(_missing(chain, f"{chain.district}{KEYS} is missing"))
                continue
            trusted = (trusted_key_ids or {}).get(chain.district)
            report = verify_exported(
                chain,
                trusted_key_id=trusted,
                max_minutes=max_minutes,
                workers=workers,
                pool=pool or own,
            )
            reports.append(report)
    finally:
        if own is not None:
            own.shutdown()
    return ExportReport(tuple(reports), verify_mirrors(reports))


def _missing(chain: ExportedChain, reason: str) -> VerifyReport:
    return VerifyReport(
        district=chain.district,
        entries=chain.count,
        problems=(Problem(None, reason),),
        head=b"",
        balances={},
    )


def districts_in(directory: str | os.PathLike[str]) -> Sequence[str]:
    return sorted(p.name[: -len(ENTRIES)] for p in Path(directory).glob(f"*{ENTRIES}"))
