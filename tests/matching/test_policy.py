"""Policy data: requirements derived per request, and the weight orderings it enforces."""

from __future__ import annotations

import pytest

from matching import (
    CertificateKind,
    CostWeights,
    Grade,
    HelperKind,
    Policy,
    Service,
    ServiceRule,
)
from tests.matching.factories import request


class TestRequirement:
    def test_mild_bath_is_open_to_volunteers(self) -> None:
        req = Policy().requirement(request(service=Service.BATHING, grade=Grade.MILD))
        assert req is not None
        assert req.allowed_kinds == frozenset(HelperKind)
        assert not req.certified
        assert req.min_crew == 1
        assert req.gender_binding

    def test_moderate_bath_needs_certified_provider_crew_of_two(self) -> None:
        req = Policy().requirement(request(service=Service.BATHING, grade=Grade.MODERATE))
        assert req is not None
        assert req.allowed_kinds == frozenset({HelperKind.PROVIDER})
        assert req.certificate_groups == (frozenset({CertificateKind.BATHING}),)
        assert req.min_crew == 2

    def test_lifting_a_severe_grade_elder_needs_a_lifting_certificate(self) -> None:
        req = Policy().requirement(
            request(service=Service.ESCORT, grade=Grade.SEVERE, needs_lifting=True)
        )
        assert req is not None
        assert req.certificate_groups == (frozenset({CertificateKind.LIFTING}),)
        assert req.allowed_kinds == frozenset({HelperKind.PROVIDER})

    def test_lifting_a_mild_grade_elder_is_open(self) -> None:
        req = Policy().requirement(
            request(service=Service.ESCORT, grade=Grade.MILD, needs_lifting=True)
        )
        assert req is not None and not req.certified

    def test_district_can_lower_the_bathing_threshold(self) -> None:
        strict = Policy(
            rules={Service.BATHING: ServiceRule(certified_from_grade=Grade.MILD, intimate=True)}
        )
        req = strict.requirement(request(service=Service.BATHING, grade=Grade.MILD))
        assert req is not None and req.certified

    def test_unoffered_service_has_no_requirement(self) -> None:
        assert Policy(rules={}).requirement(request()) is None

    def test_certificate_required_at_every_grade(self) -> None:
        rule = ServiceRule(required_certificates=frozenset({CertificateKind.FIRST_AID}))
        req = Policy(rules={Service.MEAL: rule}).requirement(request())
        assert req is not None
        assert req.certificate_groups == (frozenset({CertificateKind.FIRST_AID}),)

    def test_medical_at_moderate_grade_needs_a_nurse_or_caregiver(self) -> None:
        req = Policy().requirement(request(service=Service.MEDICAL, grade=Grade.MODERATE))
        assert req is not None
        assert req.certificate_groups == (
            frozenset({CertificateKind.NURSE, CertificateKind.CAREGIVER}),
        )

    def test_groups_add_up_for_a_certified_bath_with_lifting(self) -> None:
        req = Policy().requirement(
            request(service=Service.BATHING, grade=Grade.SEVERE, needs_lifting=True)
        )
        assert req is not None
        assert req.certificate_groups == (
            frozenset({CertificateKind.BATHING}),
            frozenset({CertificateKind.LIFTING}),
        )


class TestValidation:
    def test_rule_without_any_kind_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least one kind"):
            ServiceRule(allowed_kinds=frozenset())

    def test_negative_radius_is_refused(self) -> None:
        with pytest.raises(ValueError, match="radius"):
            ServiceRule(radius_minutes=-1)

    def test_unmatched_cost_must_exceed_every_assignment(self) -> None:
        with pytest.raises(ValueError, match="unmatched_base"):
            Policy(weights=CostWeights(unmatched_base=100))

    def test_priority_must_outweigh_any_trip(self) -> None:
        with pytest.raises(ValueError, match="priority_group"):
            Policy(weights=CostWeights(priority_group=500))

    def test_huge_radius_breaks_the_ordering(self) -> None:
        with pytest.raises(ValueError):
            Policy(rules={Service.MEAL: ServiceRule(radius_minutes=600)})

    def test_zero_candidates_is_refused(self) -> None:
        with pytest.raises(ValueError, match="candidates_per_request"):
            Policy(candidates_per_request=0)

    def test_default_policy_is_consistent(self) -> None:
        assert Policy().weights.max_assignment_cost(15) < Policy().weights.unmatched_base


class TestBlockMinutes:
    def policy(self) -> Policy:
        rules = dict(Policy().rules)
        rules[Service.MEAL] = ServiceRule(block_minutes=60)
        rules[Service.ESCORT] = ServiceRule(block_minutes=210)
        return Policy(rules=rules, min_block_minutes=30)

    def test_a_helper_gets_the_longest_block_of_the_services_they_offer(self) -> None:
        policy = self.policy()
        assert policy.block_minutes(frozenset({Service.MEAL})) == 60
        assert policy.block_minutes(frozenset({Service.MEAL, Service.ESCORT})) == 210

    def test_the_policy_minimum_is_the_floor(self) -> None:
        assert self.policy().block_minutes(frozenset({Service.VISIT})) == 30
        assert self.policy().block_minutes(frozenset()) == 30

    def test_the_block_key_changes_with_any_service_block(self) -> None:
        assert self.policy().block_key != Policy().block_key

    def test_negative_block_minutes_are_refused(self) -> None:
        with pytest.raises(ValueError, match="block_minutes"):
            ServiceRule(block_minutes=-1)
