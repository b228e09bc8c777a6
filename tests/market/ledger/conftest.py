"""Fixtures for the ledger-in-the-service tests: the city, funded accounts, signed checkpoints."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import pytest_asyncio

from ledger.entries import Entry
from market.models import District, DistrictLevel, DistrictPolicy, FamilyLink, LinkStatus, Role
from market.policy import DEFAULT_POLICY, policy_to_json
from market.policy import DistrictPolicy as Policy
from market.services import checkpoints
from market.services.ledger import LedgerGateway
from market.services.runtime import Runtime
from tests.market.conftest import Actor, City, make_actor

_ids = itertools.count()


def new_id(prefix: str = "t") -> str:
    return f"{prefix}-{next(_ids)}"


async def fund(gateway: LedgerGateway, user_id: UUID, minutes: int) -> Entry:
    return await gateway.deposit(
        volunteer_id=user_id,
        minutes=minutes,
        entry_id=new_id("deposit"),
        actor="test",
        category="visit",
    )


async def sign(gateway: LedgerGateway) -> None:
    await checkpoints.checkpoint_all(gateway, force=True)


@dataclass
class LedgerCity:
    city: City
    runtime: Runtime
    west_volunteer: Actor
    elder_parent: Actor  # the volunteer's approved linked parent (an elder)

    @property
    def gateway(self) -> LedgerGateway:
        return self.runtime.ledger

    def __getitem__(self, role: str) -> Actor:
        return self.city[role]


async def link(family: Actor, elder: Actor, relation: str, status: LinkStatus) -> FamilyLink:
    return await FamilyLink.create(
        family_id=family.user.id, elder_id=elder.user.id, relation=relation, status=status
    )


async def stop_background(gateway: LedgerGateway) -> None:
    """Stop the lifespan's checkpoint loop so a test decides when checkpoints are signed."""
    if gateway.background is not None:
        gateway.background.cancel()
        await asyncio.gather(gateway.background, return_exceptions=True)
        gateway.background = None


async def set_policy(district: District, policy: Policy, version: int = 1) -> None:
    await DistrictPolicy.create(
        district=district,
        version=version,
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        content=policy_to_json(policy),
    )


def with_rules(**sections: Any) -> Policy:
    return replace(DEFAULT_POLICY, **sections)


async def third_district(client: httpx.AsyncClient, runtime: Runtime) -> tuple[District, Actor]:
    """A third top-level district, so two witnesses can co-sign east's checkpoints."""
    north = await District.create(code="north", name="North", level=DistrictLevel.district)
    return north, await make_actor(client, runtime, Role.volunteer, north)


@pytest_asyncio.fixture
async def lcity(client: httpx.AsyncClient, runtime: Runtime, city: City) -> LedgerCity:
    await stop_background(runtime.ledger)
    west_volunteer = await make_actor(client, runtime, Role.volunteer, city.west)
    parent = await make_actor(client, runtime, Role.elder, city.east_community)
    await link(city["volunteer"], parent, "child", LinkStatus.approved)
    return LedgerCity(city, runtime, west_volunteer, parent)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]
