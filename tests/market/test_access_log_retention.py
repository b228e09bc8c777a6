"""The access log is kept for retention.access_log_years of the subject's district, then deleted."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from uuid import UUID

import httpx
import pytest

from market import policy
from market.models import AccessLog, District, DistrictPolicy
from market.services import access
from market.services.access import purge_access_log, years_before
from tests.market.conftest import City

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def read_at(actor: UUID, subject: UUID, when: datetime) -> int:
    row = await AccessLog.create(
        actor_id=actor, subject_id=subject, fields_read=["phone"], purpose="elder_record"
    )
    await AccessLog.filter(id=row.id).update(at=when)
    return int(row.id)


async def keep_for(district: District, years: int) -> None:
    rules = policy.RetentionRules(access_log_years=years)
    content = policy.policy_to_json(dataclasses.replace(policy.DEFAULT_POLICY, retention=rules))
    await DistrictPolicy.create(
        district=district,
        version=1,
        effective_from=datetime(2020, 1, 1, tzinfo=UTC),
        content=content,
    )


async def remaining() -> set[int]:
    return set(await AccessLog.all().values_list("id", flat=True))


def test_years_before_keeps_the_day_or_takes_the_28th() -> None:
    assert years_before(NOW, 3) == datetime(2023, 6, 1, 12, 0, tzinfo=UTC)
    assert years_before(datetime(2028, 2, 29, tzinfo=UTC), 1) == datetime(2027, 2, 28, tzinfo=UTC)


async def test_the_default_three_years(client: httpx.AsyncClient, city: City) -> None:
    admin, elder = city["centre_admin"].user.id, city["elder"].user.id
    old = await read_at(admin, elder, years_before(NOW, 3).replace(hour=11))
    kept = await read_at(admin, elder, years_before(NOW, 3).replace(hour=13))
    recent = await read_at(admin, elder, NOW)
    assert await purge_access_log(now=NOW) == 1
    assert await remaining() == {kept, recent}
    assert old not in await remaining()


async def test_the_subjects_district_policy_decides(client: httpx.AsyncClient, city: City) -> None:
    """East keeps five years (set on the top-level district, inherited by the community where
    the elder lives); west keeps one."""
    await keep_for(city.east, 5)
    await keep_for(city.west, 1)
    west_person = city.west_admin.user.id
    admin, elder = city["centre_admin"].user.id, city["elder"].user.id
    four_years = years_before(NOW, 4)
    two_years = years_before(NOW, 4).replace(year=NOW.year - 2)
    east_kept = await read_at(admin, elder, four_years)
    east_gone = await read_at(admin, elder, years_before(NOW, 6))
    west_gone = await read_at(admin, west_person, two_years)
    west_kept = await read_at(admin, west_person, years_before(NOW, 1).replace(month=12))
    assert await purge_access_log(now=NOW) == 2
    assert await remaining() == {east_kept, west_kept}
    assert {east_gone, west_gone}.isdisjoint(await remaining())


async def test_nothing_to_do_is_harmless(client: httpx.AsyncClient, city: City) -> None:
    await read_at(city["centre_admin"].user.id, city["elder"].user.id, NOW)
    assert await purge_access_log(now=NOW) == 0
    assert await purge_access_log(now=NOW) == 0
    assert await AccessLog.all().count() == 1


async def test_one_districts_failure_does_not_keep_the_others_rows(
    client: httpx.AsyncClient, city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    east_elder, west_elder = city["elder"].user.id, city.west_admin.user.id
    admin = city["centre_admin"].user.id
    await read_at(admin, east_elder, years_before(NOW, 4))
    west_old = await read_at(admin, west_elder, years_before(NOW, 4))
    real = access.policy_in_force

    async def broken_for_east(district_id: UUID, at: datetime) -> object:
        if district_id != city.west.id:
            raise RuntimeError("a broken policy record")
        return await real(district_id, at)

    monkeypatch.setattr(access, "policy_in_force", broken_for_east)
    assert await purge_access_log(now=NOW) == 1
    assert west_old not in await remaining()


def test_retention_years_are_bounded() -> None:
    content = policy.policy_to_json(policy.DEFAULT_POLICY)
    content["retention"]["access_log_years"] = 5000
    with pytest.raises(policy.PolicyInvalid, match="access_log_years"):
        policy.policy_from_json(content)
