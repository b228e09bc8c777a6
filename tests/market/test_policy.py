import copy
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from market.assessment import Level
from market.policy import (
    DEFAULT_POLICY,
    CertificateKind,
    Criterion,
    DistrictPolicy,
    HelperKind,
    NoPolicyInForce,
    PolicyForbids,
    PolicyInvalid,
    PriorityFlag,
    Ratio,
    RelationKind,
    ServiceCode,
    VisitTier,
    policy_from_json,
    policy_in_force,
    policy_to_json,
)


def default_json() -> dict[str, Any]:
    return copy.deepcopy(policy_to_json(DEFAULT_POLICY))


def problems_of(data: Any) -> tuple[tuple[str, str], ...]:
    with pytest.raises(PolicyInvalid) as info:
        policy_from_json(data)
    assert info.value.code == "policy.invalid"
    return info.value.problems


class TestDefaults:
    def test_time_bank_defaults(self) -> None:
        tb = DEFAULT_POLICY.time_bank
        assert (tb.deposit_min_age, tb.redemption_age, tb.redemption_age_special_difficulty) == (
            18,
            60,
            60,
        )
        assert tb.account_cap_minutes == 1500 * 60
        assert RelationKind.SIBLING not in tb.gift_recipients
        assert {RelationKind.SPOUSE, RelationKind.CHILD} <= tb.gift_recipients
        assert tb.pool_priority[0].matches(82, {PriorityFlag.LIVING_ALONE})
        assert not tb.pool_priority[0].matches(79, {PriorityFlag.LIVING_ALONE})

    def test_service_defaults(self) -> None:
        services = DEFAULT_POLICY.services
        bathing = services.rule(ServiceCode.BATHING)
        assert bathing.needs_certified_staff(Level.MODERATE)
        assert not bathing.needs_certified_staff(Level.MILD)
        assert bathing.certified_min_staff == 2
        assert services.rule(ServiceCode.MEDICAL).needs_certified_staff(Level.SEVERE)
        assert not services.rule(ServiceCode.CLEANING).needs_certified_staff(Level.COMPLETE_LOSS)
        for code in ServiceCode:
            rule = services.rule(code)
            assert rule.radius_minutes == 15
            assert rule.hour_weight == Ratio(1, 1)

    def test_other_defaults(self) -> None:
        p = DEFAULT_POLICY
        assert (p.vouchers.monthly_cap_fen, p.vouchers.share_bp, p.vouchers.audit_share_bp) == (
            80_000,
            5_000,
            100,
        )
        assert p.vouchers.eligible_from is Level.MODERATE
        assert p.visits.tier_rule(VisitTier.HIGH_RISK).interval_days == 7
        assert p.visits.tier_rule(VisitTier.HIGH_RISK).after_major_change_hours == 24
        assert p.visits.tier_rule(VisitTier.GENERAL).interval_days == 91
        assert p.assessment.reassessment_months == 6
        assert (p.retention.access_log_years, p.retention.records_years) == (3, 5)
        assert p.ledger.witness_quorum <= p.ledger.witness_count

    def test_ratio_weighs_minutes_exactly(self) -> None:
        assert Ratio(3, 2).apply_floor(45) == 67
        assert Ratio(1, 1).apply_floor(60) == 60


class TestJsonRoundTrip:
    def test_default_round_trip_through_json_text(self) -> None:
        text = json.dumps(policy_to_json(DEFAULT_POLICY), sort_keys=True)
        assert policy_from_json(json.loads(text)) == DEFAULT_POLICY

    def test_output_is_deterministic(self) -> None:
        assert json.dumps(policy_to_json(DEFAULT_POLICY)) == json.dumps(
            policy_to_json(DistrictPolicy())
        )

    def test_changed_values_survive(self) -> None:
        data = default_json()
        data["time_bank"]["redemption_age"] = 65
        data["services"]["bathing"]["hour_weight"] = {"numerator": 3, "denominator": 2}
        data["services"]["escort"]["certified_only_from"] = "severe"
        data["services"]["escort"]["certificates"] = ["first_aid"]
        policy = policy_from_json(data)
        assert policy.time_bank.redemption_age == 65
        assert policy.services.bathing.hour_weight == Ratio(3, 2)
        assert policy.services.escort.certified_only_from is Level.SEVERE
        assert policy.services.escort.certificates == frozenset({CertificateKind.FIRST_AID})
        assert policy_to_json(policy) == data

    @given(
        cap_hours=st.integers(min_value=1, max_value=10_000),
        radius=st.integers(min_value=1, max_value=120),
        share=st.integers(min_value=0, max_value=10_000),
        helpers=st.sets(st.sampled_from(HelperKind), min_size=1),
    )
    def test_round_trip_property(
        self, cap_hours: int, radius: int, share: int, helpers: set[HelperKind]
    ) -> None:
        policy = dataclasses.replace(
            DEFAULT_POLICY,
            time_bank=dataclasses.replace(
                DEFAULT_POLICY.time_bank, account_cap_minutes=cap_hours * 60
            ),
            services=dataclasses.replace(
                DEFAULT_POLICY.services,
                cleaning=dataclasses.replace(
                    DEFAULT_POLICY.services.cleaning,
                    radius_minutes=radius,
                    allowed_helpers=frozenset(helpers),
                ),
            ),
            vouchers=dataclasses.replace(DEFAULT_POLICY.vouchers, share_bp=share),
        )
        assert policy_from_json(json.loads(json.dumps(policy_to_json(policy)))) == policy


class TestStrictJson:
    def test_float_refused_with_path(self) -> None:
        data = default_json()
        data["services"]["bathing"]["radius_minutes"] = 15.0
        assert problems_of(data) == (
            ("services.bathing.radius_minutes", "must be an integer, got 15.0"),
        )

    def test_bool_is_not_an_integer(self) -> None:
        data = default_json()
        data["time_bank"]["deposit_min_age"] = True
        assert problems_of(data)[0][0] == "time_bank.deposit_min_age"

    def test_string_number_refused(self) -> None:
        data = default_json()
        data["vouchers"]["monthly_cap_fen"] = "80000"
        assert problems_of(data)[0][0] == "vouchers.monthly_cap_fen"

    def test_unknown_key_refused(self) -> None:
        data = default_json()
        data["services"]["bathing"]["water_temperature"] = 40
        assert problems_of(data) == (("services.bathing.water_temperature", "unknown field"),)

    def test_unknown_top_level_section_refused(self) -> None:
        data = {**default_json(), "lottery": {}}
        assert problems_of(data) == (("lottery", "unknown field"),)

    def test_missing_key_refused(self) -> None:
        data = default_json()
        del data["services"]["visit"]
        assert problems_of(data) == (("services.visit", "missing"),)

    def test_unknown_enum_value_refused(self) -> None:
        data = default_json()
        data["time_bank"]["gift_recipients"].append("neighbour")
        path, message = problems_of(data)[0]
        assert path == "time_bank.gift_recipients[5]" and "spouse" in message

    def test_repeated_set_entry_refused(self) -> None:
        data = default_json()
        data["services"]["meal"]["allowed_helpers"] = ["volunteer", "volunteer"]
        assert problems_of(data) == (("services.meal.allowed_helpers", "must not repeat an entry"),)

    def test_wrong_container_types_refused(self) -> None:
        data = default_json()
        data["visits"]["tiers"] = {"high_risk": 7}
        data["bookings"] = [1, 2]
        paths = [path for path, _ in problems_of(data)]
        assert paths == ["visits.tiers", "bookings"]

    def test_not_an_object_at_all(self) -> None:
        assert problems_of([]) == (("(root)", "must be an object"),)

    def test_every_problem_is_listed(self) -> None:
        data = default_json()
        data["services"]["bathing"]["radius_minutes"] = 15.0
        data["vouchers"]["share"] = 1
        del data["ledger"]["witness_count"]
        assert len(problems_of(data)) == 3

    def test_invalid_value_reported_at_its_field(self) -> None:
        data = default_json()
        data["services"]["bathing"]["hour_weight"]["denominator"] = 0
        assert problems_of(data) == (
            ("services.bathing.hour_weight.denominator", "must be 1 or more"),
        )

    def test_cross_field_rule_reported(self) -> None:
        data = default_json()
        data["ledger"]["witness_quorum"] = 5
        assert problems_of(data)[0][0] == "ledger.witness_quorum"

    def test_certified_service_needs_provider(self) -> None:
        data = default_json()
        data["services"]["bathing"]["allowed_helpers"] = ["volunteer"]
        assert problems_of(data)[0][0] == "services.bathing.allowed_helpers"

    def test_each_visit_tier_exactly_once(self) -> None:
        data = default_json()
        data["visits"]["tiers"].append(data["visits"]["tiers"][0])
        assert problems_of(data)[0][0] == "visits.tiers"

    def test_share_above_one_hundred_percent_refused(self) -> None:
        data = default_json()
        data["vouchers"]["share_bp"] = 10_001
        assert problems_of(data) == (("vouchers.share_bp", "must be 0-10000"),)

    def test_null_only_where_allowed(self) -> None:
        data = default_json()
        data["services"]["meal"]["certified_only_from"] = None
        data["services"]["meal"]["radius_minutes"] = None
        assert problems_of(data)[0][0] == "services.meal.radius_minutes"

    def test_direct_construction_validates_too(self) -> None:
        with pytest.raises(ValueError):
            Criterion(min_age=-1, flags=frozenset())


class TestPolicyInForce:
    T0 = datetime(2025, 1, 1, tzinfo=UTC)
    OLD = DEFAULT_POLICY
    NEW = dataclasses.replace(
        DEFAULT_POLICY,
        time_bank=dataclasses.replace(DEFAULT_POLICY.time_bank, redemption_age=65),
    )

    def versions(self) -> list[tuple[int, datetime, DistrictPolicy]]:
        # Deliberately out of order: the caller's order must not matter.
        return [(2, self.T0 + timedelta(days=180), self.NEW), (1, self.T0, self.OLD)]

    def test_picks_latest_effective_version(self) -> None:
        picked = policy_in_force(self.versions(), self.T0 + timedelta(days=200))
        assert picked.version == 2 and picked.policy.time_bank.redemption_age == 65

    def test_earlier_event_gets_earlier_version(self) -> None:
        picked = policy_in_force(self.versions(), self.T0 + timedelta(days=179))
        assert picked.version == 1 and picked.effective_from == self.T0

    def test_effective_at_exact_instant(self) -> None:
        assert policy_in_force(self.versions(), self.T0 + timedelta(days=180)).version == 2

    def test_tie_goes_to_higher_version(self) -> None:
        versions = [(3, self.T0, self.NEW), (1, self.T0, self.OLD)]
        assert policy_in_force(versions, self.T0).version == 3

    def test_none_in_force_before_first(self) -> None:
        with pytest.raises(NoPolicyInForce) as info:
            policy_in_force(self.versions(), self.T0 - timedelta(seconds=1))
        assert info.value.code == "policy.none_in_force"

    def test_no_versions_at_all(self) -> None:
        with pytest.raises(NoPolicyInForce):
            policy_in_force([], self.T0)

    def test_naive_time_refused(self) -> None:
        with pytest.raises(ValueError):
            policy_in_force(self.versions(), datetime(2025, 6, 1))


class TestPolicyForbids:
    def test_names_rule_and_version(self) -> None:
        error = PolicyForbids("time_bank.redemption_age", 2, "redemption starts at 65")
        assert (error.rule, error.version, error.code) == (
            "time_bank.redemption_age",
            2,
            "policy.forbids",
        )
        assert "time_bank.redemption_age" in str(error) and "version 2" in str(error)


class TestRelations:
    def test_each_relation_read_from_the_other_side_and_back_is_itself(self) -> None:
        for kind in RelationKind:
            assert kind.inverse.inverse is kind

    def test_a_child_in_laws_elder_is_their_parent_in_law(self) -> None:
        assert RelationKind.CHILD_IN_LAW.inverse is RelationKind.PARENT_IN_LAW
        assert RelationKind.CHILD.inverse is RelationKind.PARENT

    def test_a_stored_relation_this_version_does_not_know_is_none(self) -> None:
        assert RelationKind.parse("neighbour") is None
        assert RelationKind.parse("spouse") is RelationKind.SPOUSE
