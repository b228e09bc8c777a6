"""The escalation timings are district policy: validated, and optional in older stored versions."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import httpx
import pytest

from market.models import DistrictPolicy
from market.policy import (
    DEFAULT_POLICY,
    EMERGENCY_DELAY_LIMIT_SECONDS,
    PolicyInvalid,
    policy_from_json,
    policy_to_json,
)
from market.services.auth import now_utc
from tests.market.conftest import City


def default_json() -> dict[str, Any]:
    return copy.deepcopy(policy_to_json(DEFAULT_POLICY))


def test_defaults_escalate_to_the_duty_feed_then_the_webhook() -> None:
    rules = DEFAULT_POLICY.bookings
    assert rules.emergency_duty_feed_after_seconds == 60
    assert rules.emergency_webhook_after_seconds == 180


def test_a_version_stored_before_the_timings_existed_reads_with_the_defaults() -> None:
    data = default_json()
    del data["bookings"]["emergency_duty_feed_after_seconds"]
    del data["bookings"]["emergency_webhook_after_seconds"]
    assert policy_from_json(data) == DEFAULT_POLICY


def test_other_booking_rules_are_still_required() -> None:
    data = default_json()
    del data["bookings"]["emergency_fanout"]
    with pytest.raises(PolicyInvalid) as info:
        policy_from_json(data)
    assert info.value.problems == (("bookings.emergency_fanout", "missing"),)


def test_timings_round_trip() -> None:
    data = default_json()
    data["bookings"]["emergency_duty_feed_after_seconds"] = 0
    data["bookings"]["emergency_webhook_after_seconds"] = 45
    policy = policy_from_json(data)
    assert policy.bookings.emergency_duty_feed_after_seconds == 0
    assert policy_to_json(policy) == data


@pytest.mark.parametrize(
    ("duty", "webhook", "path"),
    [
        (-1, 180, "bookings.emergency_duty_feed_after_seconds"),
        (120, 60, "bookings.emergency_webhook_after_seconds"),
        (60, 60.5, "bookings.emergency_webhook_after_seconds"),
        (True, 180, "bookings.emergency_duty_feed_after_seconds"),
    ],
)
def test_bad_timings_are_refused_at_their_field(duty: Any, webhook: Any, path: str) -> None:
    data = default_json()
    data["bookings"]["emergency_duty_feed_after_seconds"] = duty
    data["bookings"]["emergency_webhook_after_seconds"] = webhook
    with pytest.raises(PolicyInvalid) as info:
        policy_from_json(data)
    assert info.value.problems[0][0] == path


@pytest.mark.parametrize(
    ("duty", "webhook", "path"),
    [
        (86_401, 86_401, "bookings.emergency_duty_feed_after_seconds"),
        (60, 86_401, "bookings.emergency_webhook_after_seconds"),
        (60, 10**12, "bookings.emergency_webhook_after_seconds"),
        (10**12, 10**12, "bookings.emergency_duty_feed_after_seconds"),
    ],
)
def test_timings_longer_than_a_day_are_refused(duty: int, webhook: int, path: str) -> None:
    data = default_json()
    data["bookings"]["emergency_duty_feed_after_seconds"] = duty
    data["bookings"]["emergency_webhook_after_seconds"] = webhook
    with pytest.raises(PolicyInvalid) as info:
        policy_from_json(data)
    assert info.value.problems[0][0] == path


def test_a_day_is_the_longest_wait_taken() -> None:
    data = default_json()
    data["bookings"]["emergency_duty_feed_after_seconds"] = EMERGENCY_DELAY_LIMIT_SECONDS
    data["bookings"]["emergency_webhook_after_seconds"] = EMERGENCY_DELAY_LIMIT_SECONDS
    rules = policy_from_json(data).bookings
    assert rules.emergency_webhook_after_seconds == 86_400


async def test_the_policy_endpoint_refuses_an_unbounded_timing(
    client: httpx.AsyncClient, city: City
) -> None:
    data = default_json()
    data["bookings"]["emergency_webhook_after_seconds"] = 10**12
    body = {"effective_from": (now_utc() + timedelta(days=1)).isoformat(), "content": data}
    before = await DistrictPolicy.filter(district=city.east).count()
    response = await client.post(
        f"/api/v1/districts/{city.east.id}/policies",
        json=body,
        headers=city["centre_admin"].headers,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "policy_invalid"
    assert error["details"][0]["field"] == "content.bookings.emergency_webhook_after_seconds"
    assert await DistrictPolicy.filter(district=city.east).count() == before
