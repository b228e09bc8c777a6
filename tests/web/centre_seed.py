"""What the centre admin's and the auditor's screens need beyond the first households.

- A fourth household (elder, son, a volunteer who alone serves that corner) whose bookings
  the queue tests drive to a dispute, so no other household's offers or lists change; and an
  escort the son booked for his mother that nobody can take (the volunteer does not escort):
  the queue's "waiting for a match" section.
- A second top-level district, 西城区 (`west`), with its own ledger chain, signed, and hours
  paid across districts: the son's time-bank minutes (in `east`) pay a west volunteer through
  the two-phase transfer, so the dashboard's settlement chart has a bar and the auditor's
  explorer has two chains to verify.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from market import policy as policy_rules
from market.models import (
    District,
    DistrictLevel,
    DistrictPolicy,
    ElderProfile,
    FamilyLink,
    HelperKind,
    HelperProfile,
    LinkStatus,
    Payment,
    Role,
    User,
    UserStatus,
    VettingStatus,
)
from market.policy import ServiceCode
from market.schemas.bookings import CreateRequest
from market.services import auth, checkpoints
from market.services.requests import create_request
from market.services.runtime import Runtime
from market.services.scope import Principal

# A fourth corner, far from the other households and their volunteers.
FOURTH_PLACE = (29.95, 119.85)
# A hospital follow-up the day after tomorrow: the queue lists the soonest windows first.
ESCORT_AHEAD = timedelta(days=2)
SON_MINUTES = 240
WEST_DEPOSITS = 6
WEST_START_MS = 1_740_000_000_000  # 2025-02-19
TRANSFER_MINUTES = 90
TRANSFER_ID = "web-west:escort-transfer"


def ledger_policy() -> dict[str, Any]:
    """The default policy, checkpointing after every entry so every line is provable at once."""
    content = policy_rules.policy_to_json(policy_rules.DEFAULT_POLICY)
    content["ledger"].update(checkpoint_every_entries=1, checkpoint_every_seconds=1)
    content["ledger"].update(witness_quorum=0)
    return content


async def account(
    runtime: Runtime,
    password: str,
    district: District,
    accounts: dict[str, Any],
    key: str,
    *,
    phone: str,
    name: str,
    role: Role,
    birth_year: int | None = None,
) -> User:
    """An active account, recorded in `accounts` under `key` for the tests to sign in with."""
    user = await auth.create_account(
        runtime,
        phone=phone,
        password=password,
        name=name,
        role=role,
        district=district,
        status=UserStatus.active,
        birth_year=birth_year,
    )
    accounts[key] = {"id": str(user.id), "phone": phone, "name": name}
    return user


async def fourth_household(
    runtime: Runtime, password: str, community: District, accounts: dict[str, Any]
) -> User:
    """The elder, her son (with hours of his own) and their volunteer; returns the son."""
    latitude, longitude = FOURTH_PLACE
    elder = await account(
        runtime,
        password,
        community,
        accounts,
        "elder4",
        phone="13900000030",
        name="赵奶奶",
        role=Role.elder,
    )
    await ElderProfile.create(
        user=elder, birth_year=1939, gender="female", latitude=latitude, longitude=longitude
    )
    son = await account(
        runtime,
        password,
        community,
        accounts,
        "family4",
        phone="13900000031",
        name="赵小军",
        role=Role.family,
    )
    await FamilyLink.create(
        family=son,
        elder=elder,
        relation="child",
        status=LinkStatus.approved,
        approved_at=auth.now_utc(),
    )
    volunteer = await account(
        runtime,
        password,
        community,
        accounts,
        "volunteer4",
        phone="13900000032",
        name="吴志愿",
        role=Role.volunteer,
        birth_year=1978,
    )
    await HelperProfile.create(
        user=volunteer,
        kind=HelperKind.volunteer,
        vetting_status=VettingStatus.approved,
        skills=["meal", "cleaning", "visit"],
        latitude=latitude + 0.002,
        longitude=longitude + 0.001,
        capacity_per_day=10,
    )
    await waiting_escort(runtime, son, elder)
    return son


async def waiting_escort(runtime: Runtime, son: User, elder: User) -> None:
    principal = Principal(
        user_id=son.id,
        role=Role.family,
        district_id=son.district_id,  # type: ignore[attr-defined]
        token_id="seed",
        districts=frozenset(),
    )
    start = (auth.now_utc() + ESCORT_AHEAD).replace(hour=1, minute=0, second=0, microsecond=0)
    command = CreateRequest(
        service=ServiceCode.ESCORT,
        window_start=start,
        payment=Payment.public,
        elder_id=elder.id,
        notes="复诊陪同",
    )
    await create_request(runtime, principal, command, idempotency_key=None, body_sha256="seed")


async def west_district(
    runtime: Runtime, password: str, payer: User, accounts: dict[str, Any]
) -> dict[str, str]:
    """西城区 with a volunteer, months of their deposits and the son's hours paying them."""
    west = await District.create(code="west", name="西城区", level=DistrictLevel.district)
    street = await District.create(
        code="west-s1", name="长安街道", level=DistrictLevel.street, parent=west
    )
    community = await District.create(
        code="west-s1-c1", name="新街社区", level=DistrictLevel.community, parent=street
    )
    await DistrictPolicy.create(
        district=west,
        version=1,
        effective_from=auth.now_utc() - timedelta(days=1),
        content=ledger_policy(),
    )
    # No location: never matched, so no east booking is ever offered to them.
    volunteer = await account(
        runtime,
        password,
        community,
        accounts,
        "west_volunteer",
        phone="13900000033",
        name="郑志愿",
        role=Role.volunteer,
        birth_year=1983,
    )
    await HelperProfile.create(
        user=volunteer,
        kind=HelperKind.volunteer,
        vetting_status=VettingStatus.approved,
        skills=["visit", "escort"],
    )
    for n in range(WEST_DEPOSITS):
        await runtime.ledger.deposit(
            volunteer_id=volunteer.id,
            minutes=60,
            entry_id=f"web-west:{n}",
            actor="seed",
            category="visit",
            at_ms=WEST_START_MS + n * 86_400_000,
        )
        await checkpoints.sign_now(runtime.ledger, "west")
    await runtime.ledger.deposit(
        volunteer_id=payer.id,
        minutes=SON_MINUTES,
        entry_id="web-west:son",
        actor="seed",
        category="visit",
    )
    await runtime.ledger.transfer(
        payer_id=payer.id,
        payee_id=volunteer.id,
        minutes=TRANSFER_MINUTES,
        transfer_id=TRANSFER_ID,
        actor="seed",
        category="escort",
    )
    for chain in ("east", "west"):
        await checkpoints.sign_now(runtime.ledger, chain)
    return {"west": str(west.id), "west_community": str(community.id)}
