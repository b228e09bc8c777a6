"""The late-cancellation charge is district policy: validated, optional in older stored versions."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from market.policy import DEFAULT_POLICY, PolicyInvalid, policy_from_json, policy_to_json


def default_json() -> dict[str, Any]:
    return copy.deepcopy(policy_to_json(DEFAULT_POLICY))


def test_by_default_a_late_cancellation_costs_nothing() -> None:
    assert DEFAULT_POLICY.bookings.late_cancellation_charge_bp == 0


def test_a_version_stored_before_the_charge_existed_reads_with_the_default() -> None:
    data = default_json()
    del data["bookings"]["late_cancellation_charge_bp"]
    assert policy_from_json(data) == DEFAULT_POLICY


def test_the_charge_round_trips() -> None:
    data = default_json()
    data["bookings"]["late_cancellation_charge_bp"] = 5_000
    policy = policy_from_json(data)
    assert policy.bookings.late_cancellation_charge_bp == 5_000
    assert policy_to_json(policy) == data


@pytest.mark.parametrize("bad", [-1, 10_001, 50.0, True, "5000"])
def test_a_bad_charge_is_refused_at_its_field(bad: Any) -> None:
    data = default_json()
    data["bookings"]["late_cancellation_charge_bp"] = bad
    with pytest.raises(PolicyInvalid) as info:
        policy_from_json(data)
    assert info.value.problems[0][0] == "bookings.late_cancellation_charge_bp"
