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
from uuid import UUID

import uvicorn
from tortoise import Tortoise

from market import db
from market.app import create_app
from market.migrate import apply_migrations
from market.models import (
    Certificate,
    District,
    DistrictLevel,
    DistrictPolicy,
    ElderProfile,
    FamilyLink,
    HelperKind,
    HelperProfile,
    LinkStatus,
    Role,
    User,
    UserStatus,
    VettingStatus,
)
from market.services import auth, checkpoints
from market.services.helpers import CERTIFICATE_PURPOSE
from market.services.runtime import Runtime
from market.settings import Settings
from tests.web import centre_seed

PASSWORD = "correct horse 42"


def settings_for(data_dir: Path, port: int) -> Settings:
    return Settings(
        database_url=f"sqlite://{data_dir / 'eldercare.sqlite3'}",
        data_dir=data_dir,
        keys_dir=data_dir / "keys",
        port=port,
        # Offers within a second of a booking, so the two-browser test does not wait long.
        matching_interval_seconds=1,
        # The family's daily series books two months at once, so their bookings list pages.
        series_horizon_days=61,
    )


async def second_household(runtime: Runtime, community: District, accounts: dict[str, Any]) -> None:
    """An elder across town living alone, registered ten days ago and never visited (so the
    weekly check-in visit is overdue), their son, and a first-aider nearby who is still
    awaiting vetting: an emergency there reaches nobody until the centre approves her. Far
    enough from 李奶奶 that nothing booked for her ever reaches this corner."""
    elder = await auth.create_account(
        runtime,
        phone="13900000010",
        password=PASSWORD,
        name="王爷爷",
        role=Role.elder,
        district=community,
        status=UserStatus.active,
    )
    await ElderProfile.create(
        user=elder,
        birth_year=1936,
        gender="male",
        flags=["living_alone"],
        latitude=30.40,
        longitude=120.30,
    )
    await User.filter(id=elder.id).update(created_at=auth.now_utc() - timedelta(days=10))
    son = await auth.create_account(
        runtime,
        phone="13900000009",
        password=PASSWORD,
        name="王小明",
        role=Role.family,
        district=community,
        status=UserStatus.active,
    )
    await FamilyLink.create(
        family=son,
        elder=elder,
        relation="child",
        status=LinkStatus.approved,
        approved_at=auth.now_utc(),
    )
    responder = await auth.create_account(
        runtime,
        phone="13900000011",
        password=PASSWORD,
        name="钱急救",
        role=Role.volunteer,
        district=community,
        status=UserStatus.active,
        birth_year=1975,
    )
    await HelperProfile.create(
        user=responder,
        kind=HelperKind.volunteer,
        vetting_status=VettingStatus.pending,
        skills=["emergency"],
        latitude=30.401,
        longitude=120.301,
    )
    accounts["elder2"] = {"id": str(elder.id), "phone": "13900000010", "name": "王爷爷"}
    accounts["family2"] = {"id": str(son.id), "phone": "13900000009", "name": "王小明"}
    accounts["responder"] = {"id": str(responder.id), "phone": "13900000011", "name": "钱急救"}


# A third corner of the community, far from both others: only its own volunteer serves it.
THIRD_PLACE = (30.10, 120.00)
# The daughter's own time-bank hours, so the payment choice has a balance that is not round.
THIRD_FAMILY_MINUTES = 95


async def third_household(runtime: Runtime, community: District, accounts: dict[str, Any]) -> None:
    """A daughter who books for both her parents, her 95 minutes of time-bank hours, a
    volunteer nearby who is the only one offered their bookings (so the elder-side and
    volunteer tests never touch the other households' offers), and a helper with no location
    (never matched) whose profile the tests edit freely."""
    latitude, longitude = THIRD_PLACE
    elders = []
    for key, phone, name, gender in (
        ("elder3", "13900000013", "刘奶奶", "female"),
        ("elder3b", "13900000014", "刘爷爷", "male"),
    ):
        elder = await centre_seed.account(
            runtime, PASSWORD, community, accounts, key, phone=phone, name=name, role=Role.elder
        )
        await ElderProfile.create(
            user=elder, birth_year=1940, gender=gender, latitude=latitude, longitude=longitude
        )
        elders.append(elder)
    daughter = await centre_seed.account(
        runtime,
        PASSWORD,
        community,
        accounts,
        "family3",
        phone="13900000012",
        name="刘小芳",
        role=Role.family,
    )
    for elder in elders:
        await FamilyLink.create(
            family=daughter,
            elder=elder,
            relation="child",
            status=LinkStatus.approved,
            approved_at=auth.now_utc(),
        )
    volunteer = await centre_seed.account(
        runtime,
        PASSWORD,
        community,
        accounts,
        "volunteer3",
        phone="13900000015",
        name="孙志愿",
        role=Role.volunteer,
        birth_year=1985,
    )
    await HelperProfile.create(
        user=volunteer,
        kind=HelperKind.volunteer,
        vetting_status=VettingStatus.approved,
        skills=["meal", "bathing", "cleaning", "visit"],
        latitude=latitude + 0.002,
        longitude=longitude + 0.001,
        capacity_per_day=10,
    )
    editor = await centre_seed.account(
        runtime,
        PASSWORD,
        community,
        accounts,
        "profile_editor",
        phone="13900000016",
        name="周自填",
        role=Role.volunteer,
        birth_year=1982,
    )
    await HelperProfile.create(
        user=editor,
        kind=HelperKind.volunteer,
        vetting_status=VettingStatus.approved,
        skills=["visit"],
    )
    await runtime.ledger.deposit(
        volunteer_id=daughter.id,
        minutes=THIRD_FAMILY_MINUTES,
        entry_id="web-third:family",
        actor="seed",
        category="visit",
    )
    await checkpoints.sign_now(runtime.ledger, "east")


HISTORY_DEPOSITS = 120
HISTORY_START_MS = 1_735_689_600_000  # 2025-01-01 00:00 UTC


async def ledger_history(runtime: Runtime, volunteer_id: UUID, family_id: UUID) -> None:
    """Months of the volunteer's service in the ledger, signed every two entries: more than one
    page of entries and of checkpoints for the explorer to page through and export."""
    for n in range(HISTORY_DEPOSITS):
        await runtime.ledger.deposit(
            volunteer_id=volunteer_id,
            minutes=30 + n % 4 * 15,
            entry_id=f"web-history:{n}",
            actor="seed",
            category=("meal", "cleaning", "visit")[n % 3],
            ref=f"web-history-booking-{n}",
            at_ms=HISTORY_START_MS + n * 3 * 3_600_000,
        )
        if n % 2 == 1:
            await checkpoints.sign_now(runtime.ledger, "east")
    # The daughter volunteered too: three hours she can gift to her mother.
    await runtime.ledger.deposit(
        volunteer_id=family_id,
        minutes=180,
        entry_id="web-history:family",
        actor="seed",
        category="visit",
        at_ms=HISTORY_START_MS + HISTORY_DEPOSITS * 3 * 3_600_000,
    )
    await checkpoints.sign_now(runtime.ledger, "east")


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
        content = centre_seed.ledger_policy()
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
                # Volunteers earn hours from a policy age: the centre checks the year at vetting.
                birth_year=1980 if role is Role.volunteer else None,
            )
            if role is Role.elder:
                await ElderProfile.create(
                    user=user, birth_year=1938, gender="female", latitude=30.27, longitude=120.15
                )
            if role is Role.volunteer:
                # A few streets from the elder, available any time: matching offers to them.
                # Ten jobs a day, so the tests' bookings never use up their day.
                await HelperProfile.create(
                    user=user,
                    kind=HelperKind.volunteer,
                    vetting_status=VettingStatus.approved,
                    skills=["meal", "bathing", "cleaning", "visit"],
                    latitude=30.272,
                    longitude=120.151,
                    capacity_per_day=10,
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
            birth_year=1990,
        )
        await HelperProfile.create(
            user=pending, kind=HelperKind.volunteer, vetting_status=VettingStatus.pending
        )
        accounts["pending_volunteer"] = {"id": str(pending.id), "phone": "13900000007"}
        await second_household(runtime, community, accounts)
        await ledger_history(runtime, users["volunteer"].id, users["family"].id)
        await third_household(runtime, community, accounts)
        son4 = await centre_seed.fourth_household(runtime, PASSWORD, community, accounts)
        west = await centre_seed.west_district(runtime, PASSWORD, son4, accounts)
        # The volunteer's first-aid certificate runs out in ten days: the queue lists it.
        await Certificate.create(
            helper=users["volunteer"],
            kind="first_aid",
            number_enc=runtime.crypto.encrypt("FA-2024-0042", purpose=CERTIFICATE_PURPOSE),
            expires_on=(auth.now_utc() + timedelta(days=10)).date(),
        )
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
            "districts": {"east": str(east.id), "community": str(community.id), **west},
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
