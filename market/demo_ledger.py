"""The demo city's ledger history, so a newcomer can explore, verify and export at once.

`build_demo_ledger(runtime, seed=...)` runs after `market.demo.build_demo_city` and writes,
through the same gateway the service uses, for every top-level district: deposits for hours
that vetted volunteers served, family members' volunteer hours gifted to the elder they are
linked to, redemptions, donations to the district pool and pool hours spent on priority
elders, one reversal of a mis-recorded deposit, cross-district transfers (通存通兑) between
the districts, and checkpoints after each phase, signed and co-signed by the other centres.

It writes only into empty chains: when the chains already hold entries it writes nothing.
Amounts and choices come from `random.Random(seed)`; entry times step forward from a fixed
start so the history reads like a few months of service.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from ledger.transfer import State
from market.models import FamilyLink, HelperKind, HelperProfile, LinkStatus, Role, User
from market.services import checkpoints
from market.services.ledger import LedgerGateway
from market.services.runtime import Runtime

START_MS = int(datetime(2025, 9, 1, 8, 0, tzinfo=UTC).timestamp() * 1000)
STEP_MS = 37 * 60 * 1000
CATEGORIES = ("meal", "cleaning", "escort", "visit", "medical")
ACTOR = "demo"
DEADLINE_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class DemoLedgerSummary:
    entries: int
    deposits: int
    redemptions: int
    gifts: int
    donations: int
    reversals: int
    transfers: int
    checkpoints: int


class _Clock:
    def __init__(self) -> None:
        self.at = START_MS

    def tick(self) -> int:
        self.at += STEP_MS
        return self.at


async def _by_chain(gateway: LedgerGateway, users: list[User]) -> dict[str, list[User]]:
    grouped: dict[str, list[User]] = defaultdict(list)
    for user in users:
        grouped[await gateway.chain_of_district(user.district_id)].append(user)  # type: ignore[attr-defined]
    return grouped


async def _volunteers(gateway: LedgerGateway) -> dict[str, list[User]]:
    ids = await HelperProfile.filter(
        kind=HelperKind.volunteer, vetting_status="approved"
    ).values_list("user_id", flat=True)
    users = await User.filter(id__in=list(ids), role=Role.volunteer).order_by("name", "id")
    return await _by_chain(gateway, users)


async def _family_pairs(gateway: LedgerGateway) -> dict[str, list[tuple[UUID, UUID]]]:
    """(family member, elder) pairs of approved child or grandchild links in one chain."""
    links = await FamilyLink.filter(
        status=LinkStatus.approved, relation__in=["child", "grandchild"]
    ).order_by("created_at", "id")
    pairs: dict[str, list[tuple[UUID, UUID]]] = defaultdict(list)
    for link in links:
        family = await gateway.holder(link.family_id)  # type: ignore[attr-defined]
        elder = await gateway.holder(link.elder_id)  # type: ignore[attr-defined]
        if family.chain == elder.chain:
            pairs[family.chain].append((family.user_id, elder.user_id))
    return pairs


async def build_demo_ledger(runtime: Runtime, *, seed: int) -> DemoLedgerSummary:
    gateway = runtime.ledger
    rng = random.Random(f"ledger-{seed}")
    clock = _Clock()
    counts: dict[str, int] = defaultdict(int)
    volunteers = await _volunteers(gateway)
    families = await _family_pairs(gateway)
    elders = await _by_chain(
        gateway, await User.filter(role=Role.elder).order_by("name", "id").limit(400)
    )
    chains = await gateway.local_chains()
    existing = sum([(await gateway.store.head(chain)).size for chain in chains])
    if existing:
        # Loaded before: the history depends on balances, so it is written once, never topped up.
        return DemoLedgerSummary(existing, 0, 0, 0, 0, 0, 0, 0)
    signed = 0

    async def checkpoint() -> None:
        nonlocal signed
        signed += len(await checkpoints.checkpoint_all(gateway, force=True))

    # Served hours: every vetted volunteer earns a few deposits.
    deposits: dict[str, list[tuple[str, UUID, int]]] = defaultdict(list)
    for chain in chains:
        for n, volunteer in enumerate(volunteers.get(chain, [])):
            for k in range(rng.randint(1, 4)):
                entry_id = f"demo:{seed}:deposit:{chain}:{n}:{k}"
                minutes = rng.choice((30, 45, 60, 90, 120, 180))
                await gateway.deposit(
                    volunteer_id=volunteer.id,
                    minutes=minutes,
                    entry_id=entry_id,
                    actor=ACTOR,
                    category=rng.choice(CATEGORIES),
                    ref=f"demo-booking-{chain}-{n}-{k}",
                    at_ms=clock.tick(),
                )
                deposits[chain].append((entry_id, volunteer.id, minutes))
                counts["deposits"] += 1
    await checkpoint()

    # Family members who volunteered gift those hours to the elder they care for.
    for chain in chains:
        for n, (family_id, elder_id) in enumerate(families.get(chain, [])[:12]):
            earned = rng.choice((60, 90, 120))
            await gateway.deposit(
                volunteer_id=family_id,
                minutes=earned,
                entry_id=f"demo:{seed}:family-deposit:{chain}:{n}",
                actor=ACTOR,
                category="visit",
                at_ms=clock.tick(),
            )
            await gateway.gift(
                giver_id=family_id,
                recipient_id=elder_id,
                minutes=earned - rng.choice((0, 30)),
                entry_id=f"demo:{seed}:gift:{chain}:{n}",
                actor=f"user:{family_id}",
                at_ms=clock.tick(),
            )
            counts["deposits"] += 1
            counts["gifts"] += 1

    # Some volunteers spend hours on services for themselves, some donate to the pool.
    for chain in chains:
        for n, volunteer in enumerate(volunteers.get(chain, [])):
            balance = await gateway.store.balance(chain, f"user:{volunteer.id}")
            roll = rng.random()
            if roll < 0.25 and balance >= 30:
                await gateway.redeem(
                    payer_id=volunteer.id,
                    minutes=min(balance, rng.choice((30, 60))),
                    entry_id=f"demo:{seed}:redeem:{chain}:{n}",
                    actor=f"user:{volunteer.id}",
                    category=rng.choice(CATEGORIES),
                    at_ms=clock.tick(),
                )
                counts["redemptions"] += 1
            elif roll < 0.45 and balance >= 30:
                await gateway.donate(
                    donor_id=volunteer.id,
                    minutes=min(balance, rng.choice((30, 45, 60))),
                    entry_id=f"demo:{seed}:donate:{chain}:{n}",
                    actor=f"user:{volunteer.id}",
                    at_ms=clock.tick(),
                )
                counts["donations"] += 1
        # The pool pays for meals of the first elders of the district.
        pool = await gateway.store.balance(chain, "pool")
        for n, elder in enumerate(elders.get(chain, [])[:5]):
            if pool < 30:
                break
            await gateway.deposit(
                volunteer_id=elder.id,
                minutes=30,
                entry_id=f"demo:{seed}:pool:{chain}:{n}",
                actor=ACTOR,
                category="meal",
                from_pool=True,
                at_ms=clock.tick(),
            )
            await gateway.redeem(
                payer_id=elder.id,
                minutes=30,
                entry_id=f"demo:{seed}:pool-meal:{chain}:{n}",
                actor=ACTOR,
                category="meal",
                at_ms=clock.tick(),
            )
            pool -= 30
            counts["redemptions"] += 1
    await checkpoint()

    # A centre corrects a deposit recorded for the wrong booking (one the volunteer still has).
    for entry_id, volunteer_id, minutes in deposits.get(chains[0] if chains else "", []):
        if await gateway.store.balance(chains[0], f"user:{volunteer_id}") >= minutes:
            await gateway.reverse(
                chain=chains[0],
                original_id=entry_id,
                entry_id=f"demo:{seed}:reverse:{chains[0]}",
                actor="centre",
                at_ms=clock.tick(),
            )
            counts["reversals"] += 1
            break

    # 通存通兑: volunteers spend hours on services delivered in another district.
    for i, home in enumerate(chains):
        serving = chains[(i + 1) % len(chains)] if len(chains) > 1 else None
        payers, payees = volunteers.get(home, []), volunteers.get(serving or "", [])
        for n in range(min(3, len(payers), len(payees))):
            payer = payers[-1 - n]
            balance = await gateway.store.balance(home, f"user:{payer.id}")
            if balance < 30:
                continue
            outcome = await gateway.transfer(
                payer_id=payer.id,
                payee_id=payees[n].id,
                minutes=30,
                transfer_id=f"demo-{seed}-{home}-{n}",
                actor=f"user:{payer.id}",
                category="escort",
                # The serving side judges the deadline by the real clock.
                deadline_ms=gateway.clock() + DEADLINE_MS,
                at_ms=clock.tick(),
            )
            counts["transfers"] += outcome.state is State.POSTED
    await checkpoint()
    entries = sum([(await gateway.store.head(chain)).size for chain in chains])
    return DemoLedgerSummary(
        entries=entries,
        deposits=counts["deposits"],
        redemptions=counts["redemptions"],
        gifts=counts["gifts"],
        donations=counts["donations"],
        reversals=counts["reversals"],
        transfers=counts["transfers"],
        checkpoints=signed,
    )
