"""A real uvicorn server for the browser tests, on a migrated, seeded SQLite database.

    python -m tests.web.server <data_dir> <port>

Migrates, seeds one district with an account per role, writes `<data_dir>/seed.json` (phones,
ids, the shared password and an already-expired token), then serves until killed. It runs in
its own process so a test can stop it to simulate a network drop.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from tortoise import Tortoise

from market import db
from market import policy as policy_rules
from market.app import create_app
from market.migrate import apply_migrations
from market.models import (
    District,
    DistrictLevel,
    DistrictPolicy,
    ElderProfile,
    FamilyLink,
    HelperKind,
    HelperProfile,
    LinkStatus,
    Role,
    UserStatus,
    VettingStatus,
)
from market.services import auth
from market.services.runtime import Runtime
from market.settings import Settings

PASSWORD = "correct horse 42"


def settings_for(data_dir: Path, port: int) -> Settings:
    return Settings(
        database_url=f"sqlite://{data_dir / 'eldercare.sqlite3'}",
        data_dir=data_dir,
        keys_dir=data_dir / "keys",
        port=port,
        # Offers within a second of a booking, so the two-browser test does not wait long.
        matching_interval_seconds=1,
    )


async def seed(settings: Settings) -> dict[str, Any]:
    await apply_migrations(settings.database_url)
    await Tortoise.init(config=db.tortoise_config(settings.database_url))
    runtime = Runtime.start(settings)
    try:
        east = await District.create(code="east", name="东城区", level=DistrictLevel.district)
        street = await District.create(
            code="east-s1", name="和平街道", level=DistrictLevel.street, parent=east
        )
        community = await District.create(
            code="east-s1-c1", name="花园社区", level=DistrictLevel.community, parent=street
        )
        # The district checkpoints after every entry, so a statement line is provable at once.
        content = policy_rules.policy_to_json(policy_rules.DEFAULT_POLICY)
        content["ledger"].update(checkpoint_every_entries=1, checkpoint_every_seconds=1)
        content["ledger"].update(witness_quorum=0)
        await DistrictPolicy.create(
            district=east,
            version=1,
            effective_from=auth.now_utc() - timedelta(days=1),
            content=content,
        )
        accounts: dict[str, Any] = {}
        users: dict[str, Any] = {}
        people = [
            (Role.centre_admin, "王主任", east, "13900000001"),
            (Role.elder, "李奶奶", community, "13900000002"),
            (Role.family, "李小红", community, "13900000003"),
            (Role.volunteer, "张志愿", community, "13900000004"),
            (Role.provider_staff, "赵护理", community, "13900000005"),
            (Role.auditor, "审计员", east, "13900000006"),
        ]
        # Only the throttling test signs in as this one, so its lockout touches nobody else.
        people.append((Role.family, "周先生", community, "13900000008"))
        for role, name, district, phone in people:
            key = "throttled" if phone == "13900000008" else role.value
            user = await auth.create_account(
                runtime,
                phone=phone,
                password=PASSWORD,
                name=name,
                role=role,
                district=district,
                status=UserStatus.active,
            )
            if role is Role.elder:
                await ElderProfile.create(
                    user=user, birth_year=1938, gender="female", latitude=30.27, longitude=120.15
                )
            if role is Role.volunteer:
                # A few streets from the elder, available any time: matching offers to them.
                await HelperProfile.create(
                    user=user,
                    kind=HelperKind.volunteer,
                    vetting_status=VettingStatus.approved,
                    skills=["meal", "bathing", "cleaning", "visit"],
                    latitude=30.272,
                    longitude=120.151,
                )
            if role is Role.provider_staff:
                # No location: never matched, so the volunteer is the only candidate.
                await HelperProfile.create(
                    user=user,
                    kind=HelperKind.provider,
                    vetting_status=VettingStatus.approved,
                    skills=["meal", "bathing"],
                )
            users[key] = user
            accounts[key] = {"id": str(user.id), "phone": phone, "name": name}
        await FamilyLink.create(
            family=users["family"],
            elder=users["elder"],
            relation="child",
            status=LinkStatus.approved,
            approved_at=auth.now_utc(),
        )
        pending = await auth.create_account(
            runtime,
            phone="13900000007",
            password=PASSWORD,
            name="陈新人",
            role=Role.volunteer,
            district=community,
            status=UserStatus.active,
        )
        await HelperProfile.create(
            user=pending, kind=HelperKind.volunteer, vetting_status=VettingStatus.pending
        )
        accounts["pending_volunteer"] = {"id": str(pending.id), "phone": "13900000007"}
        # Signed with the server's own key but issued a day ago for one second: "expired".
        expired, _ = runtime.tokens.issue(
            accounts["centre_admin"]["id"],
            "centre_admin",
            now=auth.now_utc() - timedelta(days=1),
            ttl=timedelta(seconds=1),
        )
        return {
            "password": PASSWORD,
            "accounts": accounts,
            "districts": {"east": str(east.id), "community": str(community.id)},
            "expired_token": expired,
        }
    finally:
        await runtime.close()
        await Tortoise.close_connections()


def main() -> None:
    data_dir, port = Path(sys.argv[1]), int(sys.argv[2])
    settings = settings_for(data_dir, port)
    facts = asyncio.run(seed(settings))
    (data_dir / "seed.json").write_text(json.dumps(facts, ensure_ascii=False), encoding="utf-8")
    uvicorn.run(create_app(settings), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
