"""`eldercare ledger verify` and `eldercare ledger export`.

verify: every district chain (or `--district D`) from the database, or from an export
(`--file DIR` or `--file D.jsonl`) with nothing but its files: sequence, links, hashes, Merkle
roots at every checkpoint, checkpoint signatures along the key rotation chain, replayed rules
(minutes below `--max-minutes`, default the ledger's ceiling) and balances against the stored
balances, no negative holder account, conservation and the clearing mirrors between chains.

What a verification proves depends on what it had, so every chain's line says it:
- a chain with no checkpoint has no signature to check: its entries agree with each other,
  but whoever could write them could have rewritten the whole chain ("NOT SIGNED");
  `--require-signature` makes that a failure;
- signatures are checked along the district's key history from its first key, which the
  files themselves supply: pin it with `--trust-key D=KEY_ID` (repeatable; `--trust-key KEY_ID`
  with `--district D`), or the line says the first key was not pinned;
- `--checkpoint cp.json` adds a checkpoint you trust (e.g. one you saved earlier, or a
  receipt's): the chain must still contain the tree it signed.

Prints one line per chain, the first bad seq and why; exits 1 on any failure.

export: writes `D.jsonl` (stored bytes, one per line), `D.checkpoint.json` (latest signed
checkpoint), `D.keys.json` (public keys and rotations) and `D.balances.json` per district.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.checkpoint import Checkpoint, KeyHistory, key_history
from ledger.entries import check_district
from ledger.errors import BadSignature, ExportInvalid, InvalidCheckpoint, InvalidEntry, KeyNotFound
from ledger.export import ENTRIES, read_export, verify_exported, write_export
from ledger.keys import is_key_id
from ledger.service import DEFAULT_LIMITS
from ledger.verify import MirrorReport, Problem, VerifyReport, verify_mirrors
from ledger.verify_db import verify_stored
from market.settings import Settings


def _say(message: str) -> None:
    print(message, flush=True)


def _trusted(path: str | None) -> Checkpoint | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise SystemExit(f"eldercare: cannot read {path}: {error}") from None
    # Accept a bare checkpoint or the API's {"checkpoint": {...}, "cosignatures": ...} form.
    if isinstance(data, dict) and isinstance(data.get("checkpoint"), dict):
        data = data["checkpoint"]
    try:
        return Checkpoint.from_json(data)
    except InvalidCheckpoint as error:
        raise SystemExit(f"eldercare: {path}: {error.message}") from None


def _trusted_keys(values: Sequence[str], district: str | None) -> dict[str, str]:
    """`--trust-key D=KEY_ID` (or a bare KEY_ID with `--district D`) -> {district: key id}."""
    pinned: dict[str, str] = {}
    for value in values:
        chain, sep, key_id = value.rpartition("=")
        if not sep:
            if district is None:
                raise SystemExit(f"eldercare: --trust-key {value}: name the district, D=KEY_ID")
            chain = district
        try:
            check_district(chain)
        except InvalidEntry:
            raise SystemExit(f"eldercare: --trust-key {value}: {chain!r} is no district") from None
        if not is_key_id(key_id):
            raise SystemExit(f"eldercare: --trust-key {value}: {key_id!r} is no key id")
        if pinned.get(chain, key_id) != key_id:
            raise SystemExit(f"eldercare: --trust-key names two keys for {chain}")
        pinned[chain] = key_id
    return pinned


@dataclass(frozen=True)
class Checks:
    """What a verification run was asked to check beyond the entries themselves."""

    trusted: Checkpoint | None = None
    trusted_keys: Mapping[str, str] = field(default_factory=dict)
    max_minutes: int = DEFAULT_LIMITS.max_minutes
    require_signature: bool = False


@dataclass(frozen=True)
class Verified:
    """One chain's report and what the verification had to go on."""

    report: VerifyReport
    checkpoints: tuple[Checkpoint, ...]
    pinned: str | None
    balances_compared: bool


def _key_problems(district: str, keys: KeyHistory | None, pinned: str | None) -> list[Problem]:
    """A pinned first key is checked even when no checkpoint asks for it."""
    if pinned is None:
        return []
    if keys is None:
        return [Problem(None, f"no key history to check the pinned first key {pinned} against")]
    try:
        keys.periods(trusted_key_id=pinned)
    except BadSignature as error:
        return [Problem(None, error.message)]
    return []


def _with_problems(report: VerifyReport, problems: list[Problem]) -> VerifyReport:
    if not problems:
        return report
    return VerifyReport(
        district=report.district,
        entries=report.entries,
        problems=(*report.problems, *problems),
        head=report.head,
        balances=report.balances,
        checkpoints_verified=0,
        transfers=report.transfers,
    )


def _what_was_checked(v: Verified, checks: Checks) -> str:
    report = v.report
    signed = [cp for cp in v.checkpoints if cp.district == report.district]
    if not signed:
        signature = (
            "NOT SIGNED: no checkpoint, so no signature was checked (the entries agree with "
            "each other, but whoever could write them could have rewritten them all)"
        )
    else:
        keys = ", ".join(sorted({cp.key_id for cp in signed}))
        pin = (
            f"first key pinned to {v.pinned}"
            if v.pinned
            else f"first key NOT pinned (--trust-key {report.district}=KEY_ID)"
        )
        latest = max(cp.size for cp in signed)
        signature = f"signed root at size {latest} verified (key {keys}; {pin})"
    balances = "stored balances match" if v.balances_compared else "no stored balances compared"
    return f"{signature}; minutes below {checks.max_minutes}; {balances}"


def _report(verified: Sequence[Verified], mirrors: MirrorReport | None, checks: Checks) -> int:
    failed = False
    for v in verified:
        r = v.report
        if r.ok:
            unsigned = not any(cp.district == r.district for cp in v.checkpoints)
            status = "FAILED (unsigned, --require-signature)" if (
                unsigned and checks.require_signature
            ) else "ok"  # fmt: skip
            failed = failed or status != "ok"
            _say(
                f"{r.district}: {status}, {r.entries} entries, {r.checkpoints_verified} "
                f"checkpoints; {_what_was_checked(v, checks)}"
            )
        else:
            failed = True
            where = f"first bad seq {r.first_bad_seq}" if r.first_bad_seq is not None else "chain"
            _say(f"{r.district}: FAILED ({where}): {r.reason}")
    if mirrors is not None:
        for problem in mirrors.problems:
            failed = True
            _say(f"mirrors: FAILED: {problem}")
        if mirrors.ok and len(verified) > 1:
            _say("mirrors: ok")
    return 1 if failed else 0


def _with_trusted(
    checkpoints: list[Checkpoint], trusted: Checkpoint | None, district: str
) -> list[Checkpoint]:
    if trusted is not None and trusted.district == district:
        return [*checkpoints, trusted]
    return checkpoints


def _export_files(path: str, district: str | None) -> list[Path]:
    target = Path(path)
    if target.is_dir():
        files = sorted(target.glob(f"*{ENTRIES}"))
        if district is not None:
            files = [f for f in files if f.name == f"{district}{ENTRIES}"]
        if not files:
            raise ExportInvalid(f"no {district or '*'}{ENTRIES} file in {target}")
        return files
    if target.exists():
        return [target]
    raise ExportInvalid(f"{target} does not exist")


def verify_files(path: str, district: str | None, checks: Checks) -> int:
    verified = []
    try:
        for file in _export_files(path, district):
            chain = read_export(file)
            pinned = checks.trusted_keys.get(chain.district)
            own = [chain.checkpoint] if chain.checkpoint is not None else []
            extra = _with_trusted([], checks.trusted, chain.district)
            if chain.keys is None:
                report = VerifyReport(
                    chain.district, chain.count, (Problem(None, f"{chain.district}.keys.json is "
                    "missing"),), b"", {},
                )  # fmt: skip
            else:
                report = verify_exported(
                    chain,
                    trusted_key_id=pinned,
                    max_minutes=checks.max_minutes,
                    extra_checkpoints=extra,
                )
            report = _with_problems(report, _key_problems(chain.district, chain.keys, pinned))
            verified.append(Verified(report, (*own, *extra), pinned, chain.balances is not None))
    except ExportInvalid as error:
        _say(f"FAILED: {error.message}")
        return 1
    mirrors = verify_mirrors([v.report for v in verified])
    return _report(verified, mirrors, checks)


async def verify_database(settings: Settings, district: str | None, checks: Checks) -> int:
    from market.services.checkpoints import all_checkpoints
    from market.services.ledger import LedgerGateway

    gateway = LedgerGateway.open(settings)
    store = gateway.store
    known = sorted(set(await store.districts()) | set(await gateway.local_chains()))
    if district is not None and district not in known:
        _say(f"FAILED: no ledger chain {district!r} in this database")
        return 1
    verified = []
    for chain in [district] if district else known:
        history: KeyHistory | None
        try:
            history = key_history(gateway.keys, chain)
        except KeyNotFound:
            history = None  # a chain that was never checkpointed has no key yet
        checkpoints = _with_trusted(await all_checkpoints(chain), checks.trusted, chain)
        pinned = checks.trusted_keys.get(chain)
        # Streamed from the database (COPY on PostgreSQL), two processes for a long chain.
        report = await verify_stored(
            store,
            chain,
            checkpoints=checkpoints,
            public_keys=history,
            trusted_key_id=pinned,
            max_minutes=checks.max_minutes,
        )
        report = _with_problems(report, _key_problems(chain, history, pinned))
        verified.append(Verified(report, tuple(checkpoints), pinned, True))
    mirrors = verify_mirrors([v.report for v in verified]) if district is None else None
    return _report(verified, mirrors, checks)


async def export_database(settings: Settings, out: Path) -> list[tuple[str, int]]:
    from market.services.checkpoints import latest_checkpoint
    from market.services.ledger import LedgerGateway

    gateway = LedgerGateway.open(settings)
    store = gateway.store
    written = []
    for chain in sorted(set(await store.districts()) | set(await gateway.local_chains())):
        gateway.signer(chain)  # publish a key even for a chain that never signed
        bodies = [body for _, body in await store.raw_bodies(chain)]
        write_export(
            out,
            chain,
            bodies,
            await latest_checkpoint(chain),
            key_history(gateway.keys, chain),
            balances=await store.balances(chain),
        )
        written.append((chain, len(bodies)))
    return written


def cmd_ledger_verify(settings: Settings, args: argparse.Namespace) -> int:
    checks = Checks(
        trusted=_trusted(args.checkpoint),
        trusted_keys=_trusted_keys(args.trust_key or [], args.district),
        max_minutes=args.max_minutes,
        require_signature=args.require_signature,
    )
    if args.file:
        return verify_files(args.file, args.district, checks)
    from market.cli import with_database

    async def work() -> int:
        return await verify_database(settings, args.district, checks)

    return int(asyncio.run(with_database(settings, work)))


def cmd_ledger_export(settings: Settings, args: argparse.Namespace) -> int:
    from market.cli import with_database

    out = Path(args.out)

    async def work() -> Any:
        return await export_database(settings, out)

    written = asyncio.run(with_database(settings, work))
    for chain, count in written:
        _say(f"{chain}: {count} entries -> {out / (chain + ENTRIES)}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register `ledger verify` and `ledger export` under the root parser's subcommands."""
    ledger = sub.add_parser("ledger", help="the time-bank ledger").add_subparsers(
        dest="action", required=True
    )
    verify = ledger.add_parser(
        "verify",
        parents=[common],
        help="verify the ledger from the database or an export; exit 1 naming the first bad entry",
    )
    verify.add_argument("--district", help="one district chain (a top-level district code)")
    verify.add_argument("--file", help="an export directory or one D.jsonl file")
    verify.add_argument("--checkpoint", help="a checkpoint JSON file you trust")
    verify.add_argument(
        "--trust-key",
        action="append",
        metavar="D=KEY_ID",
        help="pin district D's first signing key (repeatable; KEY_ID alone with --district)",
    )
    verify.add_argument(
        "--max-minutes",
        type=_positive,
        default=DEFAULT_LIMITS.max_minutes,
        help=f"every entry's minutes must be below this (default {DEFAULT_LIMITS.max_minutes})",
    )
    verify.add_argument(
        "--require-signature",
        action="store_true",
        help="fail a chain that has no signed checkpoint",
    )
    verify.set_defaults(run=cmd_ledger_verify)
    export = ledger.add_parser(
        "export", parents=[common], help="write every chain, its checkpoint and keys to DIR"
    )
    export.add_argument("--out", required=True, help="output directory")
    export.set_defaults(run=cmd_ledger_export)
