"""The `eldercare` command: serve, migrate, demo, district and admin accounts, key rotation."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TextIO

from tortoise import Tortoise

from market import db, ledger_cli
from market.migrate import apply_migrations
from market.settings import Settings, SettingsError, load_settings


class Reporter:
    """Progress on a terminal, silence in scripts (`--quiet` or output not a TTY)."""

    def __init__(self, *, quiet: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()

    def progress(self, stage: str, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        counted = f"{done}/{total}" if total else str(done)
        self.stream.write(f"\r  {stage}: {counted}\x1b[K")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def say(message: str) -> None:
    print(message, flush=True)


async def with_database(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run `work` with Tortoise initialised on a migrated database."""
    db.prepare_sqlite_path(settings.database_url)
    await Tortoise.init(config=db.tortoise_config(settings.database_url))
    try:
        await db.require_migrated()
        return await work()
    finally:
        await Tortoise.close_connections()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    reporter = Reporter(quiet=args.quiet)

    def progress(event: str, app_label: str, name: str) -> None:
        if reporter.enabled:
            reporter.stream.write(f"  {event} {app_label}.{name}\n")

    asyncio.run(apply_migrations(settings.database_url, progress=progress))
    if not args.quiet:
        say("database is up to date")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    async def nothing_more() -> None:
        return None

    try:
        asyncio.run(with_database(settings, nothing_more))
    except db.DatabaseNotMigrated as exc:
        print(f"eldercare: refusing to start: {exc}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = args.port or settings.port
    say(
        f"eldercare serving on http://{host}:{port}/  (API reference: http://{host}:{port}/api/v1/docs)"
    )
    uvicorn.run(
        "market.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        # The sans-I/O implementation of the websockets library: what the realtime tests and
        # benchmarks run on.
        ws="websockets-sansio",
        log_level="warning" if args.quiet else "info",
    )
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from market import demo
    from market.demo_ledger import build_demo_ledger
    from market.services.runtime import Runtime

    reporter = Reporter(quiet=args.quiet)

    async def build() -> Any:
        runtime = Runtime.start(settings)
        try:
            city = await demo.build_demo_city(runtime, seed=args.seed, progress=reporter.progress)
            await build_demo_ledger(runtime, seed=args.seed)
            return city
        finally:
            await runtime.close()

    asyncio.run(apply_migrations(settings.database_url))
    try:
        summary = asyncio.run(with_database(settings, build))
    except demo.DemoAlreadyLoaded as exc:
        if args.if_empty:
            say(f"demo data already present ({exc}); keeping it")
            return 0
        print(f"eldercare: {exc}", file=sys.stderr)
        return 2
    reporter.done()
    say(demo.describe(summary))
    return 0


def _password(args: argparse.Namespace) -> str:
    supplied = os.environ.get("ELDERCARE_ADMIN_PASSWORD")
    if supplied:
        return supplied
    if not sys.stdin.isatty():
        raise SystemExit("eldercare: set ELDERCARE_ADMIN_PASSWORD or run on a terminal")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("eldercare: the passwords differ")
    return first


def cmd_district_create(settings: Settings, args: argparse.Namespace) -> int:
    from market.models import District, DistrictLevel
    from market.schemas.common import DISTRICT_CODE_PATTERN
    from market.services.districts import CHILD_LEVEL

    if not re.fullmatch(DISTRICT_CODE_PATTERN, args.code):
        raise SystemExit(
            f"eldercare: district code {args.code!r} must be 1-32 ASCII letters, digits, '_', '.'"
            " or '-', starting with a letter or digit"
        )

    async def create() -> District:
        parent = None
        if args.parent:
            parent = await District.get_or_none(code=args.parent)
            if parent is None:
                raise SystemExit(f"eldercare: no district {args.parent!r}")
        if await District.filter(code=args.code).exists():
            raise SystemExit(f"eldercare: district code {args.code!r} is already used")
        level = CHILD_LEVEL.get(parent.level) if parent else DistrictLevel.district
        if level is None:
            raise SystemExit("eldercare: a community cannot have sub-districts")
        return await District.create(code=args.code, name=args.name, level=level, parent=parent)

    district = asyncio.run(with_database(settings, create))
    say(f"created {district.level.value} {district.code} ({district.id})")
    return 0


def cmd_admin_create(settings: Settings, args: argparse.Namespace) -> int:
    from market.errors import ApiError
    from market.models import District, Role, UserStatus
    from market.services.auth import create_account
    from market.services.runtime import Runtime

    password = _password(args)

    async def create() -> Any:
        district = await District.get_or_none(code=args.district)
        if district is None:
            raise SystemExit(f"eldercare: no district {args.district!r}; create it first")
        runtime = Runtime.start(settings)
        try:
            return await create_account(
                runtime,
                phone=args.phone,
                password=password,
                name=args.name,
                role=Role(args.role),
                district=district,
                status=UserStatus.active,
            )
        except ApiError as exc:
            raise SystemExit(f"eldercare: {exc.message}") from None

    user = asyncio.run(with_database(settings, create))
    say(f"created {user.role.value} {user.name} ({user.id})")
    return 0


def cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from market.services.keys import ROTATION_GRACE_SECONDS, rotate_field_key
    from market.services.runtime import Runtime

    reporter = Reporter(quiet=args.quiet)

    async def rotate() -> Any:
        runtime = Runtime.start(settings)
        token_key = runtime.tokens.rotate_key()
        report = await rotate_field_key(
            runtime,
            progress=lambda stage, n: reporter.progress(stage, n),
            grace_seconds=ROTATION_GRACE_SECONDS,
        )
        return token_key, report

    token_key, report = asyncio.run(with_database(settings, rotate))
    reporter.done()
    say(
        f"field key now {report.new_key_id}, {report.reencrypted} values re-encrypted; "
        f"token signing key now {token_key}"
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="eldercare", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--quiet", action="store_true", help="no progress output")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the web service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", parents=[common], help="apply database migrations").set_defaults(
        run=cmd_migrate
    )

    demo = sub.add_parser(
        "demo", parents=[common], help="migrate and load a demo city, then print demo logins"
    )
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--if-empty", action="store_true", help="succeed if demo data exists")
    demo.set_defaults(run=cmd_demo)

    district = sub.add_parser("district", help="districts").add_subparsers(
        dest="action", required=True
    )
    create = district.add_parser(
        "create", parents=[common], help="create a district, street or community"
    )
    create.add_argument("code")
    create.add_argument("name")
    create.add_argument("--parent", help="code of the parent district or street")
    create.set_defaults(run=cmd_district_create)

    admin = sub.add_parser("admin", help="administrator accounts").add_subparsers(
        dest="action", required=True
    )
    admin_create = admin.add_parser(
        "create",
        help="create a centre admin or auditor (password from ELDERCARE_ADMIN_PASSWORD or prompt)",
    )
    admin_create.add_argument("--phone", required=True)
    admin_create.add_argument("--name", required=True)
    admin_create.add_argument("--district", required=True, help="district code")
    admin_create.add_argument("--role", choices=["centre_admin", "auditor"], default="centre_admin")
    admin_create.set_defaults(run=cmd_admin_create)

    keys = sub.add_parser("keys", help="encryption keys").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser(
        "rotate",
        parents=[common],
        help="new field-encryption and token keys; re-encrypt every stored value",
    ).set_defaults(run=cmd_keys_rotate)
    ledger_cli.add_parsers(sub, common)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"eldercare: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.run(settings, args))
    except db.DatabaseNotMigrated as exc:
        print(f"eldercare: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
