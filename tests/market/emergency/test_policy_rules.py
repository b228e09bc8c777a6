"""The escalation timings are district policy: validated, and optional in older stored versions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from market.policy import DEFAULT_POLICY, PolicyInvalid, policy_from_json, policy_to_json


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
