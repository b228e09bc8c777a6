"""`eldercare ledger verify` and `eldercare ledger export`.

verify: every district chain (or `--district D`) from the database, or from an export
(`--file DIR` or `--file D.jsonl`) with nothing but its files: sequence, links, hashes, Merkle
roots at every checkpoint, checkpoint signatures along the key rotation chain, replayed rules
and balances against the stored balances, no negative holder account, conservation and the
clearing mirrors between chains. `--checkpoint cp.json` adds a checkpoint you trust (e.g. one
you saved earlier, or a receipt's): the chain must still contain the tree it signed. Prints one
line per chain, the first bad seq and why; exits 1 on any failure.

export: writes `D.jsonl` (stored bytes, one per line), `D.checkpoint.json` (latest signed
checkpoint), `D.keys.json` (public keys and rotations) and `D.balances.json` per district.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledger.checkpoint import Checkpoint, KeyHistory, key_history
from ledger.errors import ExportInvalid, InvalidCheckpoint, KeyNotFound
from ledger.export import ENTRIES, read_export, verify_export, write_export
from ledger.verify import MirrorReport, VerifyReport, verify_chain, verify_mirrors
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


def _report(reports: Sequence[VerifyReport], mirrors: MirrorReport | None) -> int:
    failed = False
    for r in reports:
        if r.ok:
            _say(f"{r.district}: ok, {r.entries} entries, {r.checkpoints_verified} checkpoints")
        else:
            failed = True
            where = f"first bad seq {r.first_bad_seq}" if r.first_bad_seq is not None else "chain"
            _say(f"{r.district}: FAILED ({where}): {r.reason}")
    if mirrors is not None:
        for problem in mirrors.problems:
            failed = True
            _say(f"mirrors: FAILED: {problem}")
        if mirrors.ok and len(reports) > 1:
            _say("mirrors: ok")
    return 1 if failed else 0


def _with_trusted(
    checkpoints: list[Checkpoint], trusted: Checkpoint | None, district: str
) -> list[Checkpoint]:
    if trusted is not None and trusted.district == district:
        return [*checkpoints, trusted]
    return checkpoints


def verify_files(path: str, district: str | None, trusted: Checkpoint | None) -> int:
    target = Path(path)
    try:
        if target.is_dir():
            files = sorted(target.glob(f"*{ENTRIES}"))
            if district is not None:
                files = [f for f in files if f.name == f"{district}{ENTRIES}"]
            if not files:
                raise ExportInvalid(f"no {district or '*'}{ENTRIES} file in {target}")
        elif target.exists():
            files = [target]
        else:
            raise ExportInvalid(f"{target} does not exist")
        if trusted is None and district is None:
            report = verify_export(target)
            return _report(report.chains, report.mirrors)
        reports = []
        for file in files:
            chain = read_export(file)
            checkpoints = [chain.checkpoint] if chain.checkpoint else []
            reports.append(
                verify_chain(
                    chain.bodies,
                    district=chain.district,
                    checkpoints=_with_trusted(checkpoints, trusted, chain.district),
                    public_keys=chain.keys,
                    stored_balances=chain.balances,
                )
            )
    except ExportInvalid as error:
        _say(f"FAILED: {error.message}")
        return 1
    return _report(reports, verify_mirrors(reports))


async def verify_database(
    settings: Settings, district: str | None, trusted: Checkpoint | None
) -> int:
    from market.services.checkpoints import all_checkpoints
    from market.services.ledger import LedgerGateway

    gateway = LedgerGateway.open(settings)
    store = gateway.store
    known = sorted(set(await store.districts()) | set(await gateway.local_chains()))
    if district is not None and district not in known:
        _say(f"FAILED: no ledger chain {district!r} in this database")
        return 1
    reports = []
    for chain in [district] if district else known:
        bodies = [body for _, body in await store.raw_bodies(chain)]
        history: KeyHistory | None
        try:
            history = key_history(gateway.keys, chain)
        except KeyNotFound:
            history = None  # a chain that was never checkpointed has no key yet
        checkpoints = await all_checkpoints(chain)
        reports.append(
            verify_chain(
                bodies,
                district=chain,
                checkpoints=_with_trusted(checkpoints, trusted, chain),
                public_keys=history,
                stored_balances=await store.balances(chain),
                max_minutes=gateway.limits.max_minutes,
            )
        )
    return _report(reports, verify_mirrors(reports) if district is None else None)


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
    trusted = _trusted(args.checkpoint)
    if args.file:
        return verify_files(args.file, args.district, trusted)
    from market.cli import with_database

    async def work() -> int:
        return await verify_database(settings, args.district, trusted)

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
    verify.set_defaults(run=cmd_ledger_verify)
    export = ledger.add_parser(
        "export", parents=[common], help="write every chain, its checkpoint and keys to DIR"
    )
    export.add_argument("--out", required=True, help="output directory")
    export.set_defaults(run=cmd_ledger_export)
