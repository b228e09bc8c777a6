"""Each hard rule on its own: one passing and at least one failing pair per rule."""

from __future__ import annotations

import pytest

from matching import (
    HARD_CONSTRAINTS,
    Certificate,
    CertificateKind,
    Gender,
    Grade,
    HelperKind,
    Policy,
    ReasonCode,
    Service,
    ServiceRule,
    TimeWindow,
    feasible,
    violations,
)
from matching.constraints import (
    Pair,
    available,
    certificate_problem,
    certificates_valid,
    crew_sufficient,
    earliest_start,
    gender_respected,
    has_capacity,
    has_skill,
    kind_permitted,
    not_blacklisted,
    not_excluded_by_elder,
    window_open,
    within_reach,
)
from tests.matching.factories import NOW, certified_bather, helper, near, request

POLICY = Policy()


def pair(req=None, hlp=None, policy: Policy = POLICY, now: int = NOW) -> Pair:
    built = Pair.of(req or request(), hlp or helper(), policy=policy, now=now)
    assert built is not None
    return built


class TestWithinReach:
    def test_helper_500_m_away_is_inside_the_15_minute_circle(self) -> None:
        assert within_reach(pair(hlp=helper(location=near(north_m=500))))

    def test_helper_5_km_away_is_outside(self) -> None:
        assert not within_reach(pair(hlp=helper(location=near(north_m=5000))))

    def test_radius_is_per_service_policy(self) -> None:
        wide = Policy(rules={Service.MEAL: ServiceRule(radius_minutes=40)})
        far = helper(location=near(north_m=5000))
        assert within_reach(pair(hlp=far, policy=wide))


class TestHasSkill:
    def test_helper_offering_the_service(self) -> None:
        assert has_skill(pair(hlp=helper(skills=frozenset({Service.MEAL}))))

    def test_helper_without_the_service(self) -> None:
        assert not has_skill(pair(hlp=helper(skills=frozenset({Service.CLEANING}))))


class TestNotBlacklisted:
    def test_provider_not_listed(self) -> None:
        assert not_blacklisted(pair(hlp=helper(provider_id="good-co")))

    def test_staff_of_a_listed_provider(self) -> None:
        policy = Policy(blacklisted_providers=frozenset({"bad-co"}))
        assert not not_blacklisted(pair(hlp=helper(provider_id="bad-co"), policy=policy))

    def test_listed_individual(self) -> None:
        policy = Policy(blacklisted_providers=frozenset({"h1"}))
        assert not not_blacklisted(pair(policy=policy))


class TestKindPermitted:
    def test_volunteer_may_bring_a_meal_to_a_severe_grade_elder(self) -> None:
        assert kind_permitted(pair(req=request(grade=Grade.SEVERE)))

    def test_volunteer_may_bathe_a_mild_grade_elder(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.MILD)
        assert kind_permitted(pair(req=req))

    def test_volunteer_may_not_bathe_a_moderate_grade_elder(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.MODERATE)
        assert not kind_permitted(pair(req=req))

    def test_volunteer_may_not_give_medical_help_at_severe_grade(self) -> None:
        req = request(service=Service.MEDICAL, grade=Grade.SEVERE)
        assert not kind_permitted(pair(req=req))

    def test_volunteer_may_not_lift_a_moderate_grade_elder(self) -> None:
        req = request(service=Service.ESCORT, grade=Grade.MODERATE, needs_lifting=True)
        assert not kind_permitted(pair(req=req))

    def test_provider_may_bathe_a_moderate_grade_elder(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.MODERATE)
        assert kind_permitted(pair(req=req, hlp=certified_bather()))


class TestCrewSufficient:
    def test_crew_of_two_for_certified_bathing(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.SEVERE)
        assert crew_sufficient(pair(req=req, hlp=certified_bather()))

    def test_single_staff_member_for_certified_bathing(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.SEVERE)
        assert not crew_sufficient(pair(req=req, hlp=certified_bather(crew_size=1)))


class TestCertificatesValid:
    def test_valid_bathing_certificate(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.MODERATE)
        assert certificates_valid(pair(req=req, hlp=certified_bather()))

    def test_missing_certificate(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.MODERATE)
        p = pair(req=req, hlp=certified_bather(certificates=()))
        assert certificate_problem(p) is ReasonCode.CERTIFICATE_MISSING

    def test_certificate_expiring_inside_the_window(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.MODERATE)
        cert = Certificate(CertificateKind.BATHING, req.window.end - 1)
        p = pair(req=req, hlp=certified_bather(certificates=(cert,)))
        assert certificate_problem(p) is ReasonCode.CERTIFICATE_EXPIRED

    def test_a_newer_certificate_of_the_same_kind_counts(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.MODERATE)
        old = Certificate(CertificateKind.BATHING, NOW - 10)
        new = Certificate(CertificateKind.BATHING, NOW + 10_000)
        assert certificates_valid(pair(req=req, hlp=certified_bather(certificates=(old, new))))

    def test_any_of_rule_accepts_either_kind(self) -> None:
        req = request(service=Service.MEDICAL, grade=Grade.SEVERE)
        carer = certified_bather(certificates=(Certificate(CertificateKind.CAREGIVER, NOW + 9999),))
        assert certificates_valid(pair(req=req, hlp=carer))

    def test_any_of_rule_with_only_an_expired_one(self) -> None:
        req = request(service=Service.MEDICAL, grade=Grade.SEVERE)
        nurse = certified_bather(certificates=(Certificate(CertificateKind.NURSE, NOW),))
        assert certificate_problem(pair(req=req, hlp=nurse)) is ReasonCode.CERTIFICATE_EXPIRED

    def test_any_of_rule_with_neither(self) -> None:
        req = request(service=Service.MEDICAL, grade=Grade.SEVERE)
        p = pair(req=req, hlp=certified_bather())
        assert certificate_problem(p) is ReasonCode.CERTIFICATE_MISSING

    def test_no_certificate_needed_for_a_meal(self) -> None:
        assert certificates_valid(pair())


class TestGenderRespected:
    def test_matching_gender_for_bathing(self) -> None:
        req = request(service=Service.BATHING, preferred_gender=Gender.FEMALE)
        assert gender_respected(pair(req=req, hlp=helper(gender=Gender.FEMALE)))

    def test_other_gender_for_bathing(self) -> None:
        req = request(service=Service.BATHING, preferred_gender=Gender.FEMALE)
        assert not gender_respected(pair(req=req, hlp=helper(gender=Gender.MALE)))

    def test_undeclared_gender_does_not_satisfy_a_preference(self) -> None:
        req = request(service=Service.BATHING, preferred_gender=Gender.FEMALE)
        assert not gender_respected(pair(req=req, hlp=helper(gender=None)))

    def test_preference_does_not_bind_for_a_meal(self) -> None:
        req = request(preferred_gender=Gender.FEMALE)
        assert gender_respected(pair(req=req, hlp=helper(gender=Gender.MALE)))


class TestNotExcludedByElder:
    def test_unrelated_helper(self) -> None:
        assert not_excluded_by_elder(pair())

    def test_helper_is_the_elder(self) -> None:
        assert not not_excluded_by_elder(pair(hlp=helper(id="elder1")))

    def test_helper_blocked_by_the_elder(self) -> None:
        req = request(blocked_helpers=frozenset({"h1"}))
        assert not not_excluded_by_elder(pair(req=req))


class TestAvailable:
    def test_earliest_start_is_the_window_start_when_free(self) -> None:
        assert earliest_start(pair()) == NOW + 60

    def test_start_waits_for_the_availability_and_the_trip(self) -> None:
        free = (TimeWindow(NOW + 100, NOW + 600),)
        p = pair(hlp=helper(availability=free))
        assert earliest_start(p) == NOW + 100 + p.travel_minutes

    def test_travel_back_must_fit_the_availability(self) -> None:
        req = request(window=TimeWindow(NOW + 60, NOW + 120))
        free = (TimeWindow(NOW, NOW + 120),)
        assert not available(pair(req=req, hlp=helper(availability=free)))

    def test_second_availability_window_is_used(self) -> None:
        free = (TimeWindow(NOW, NOW + 30), TimeWindow(NOW + 150, NOW + 600))
        p = pair(hlp=helper(availability=free))
        assert earliest_start(p) == NOW + 150 + p.travel_minutes

    def test_no_availability(self) -> None:
        assert not available(pair(hlp=helper(availability=())))

    def test_trip_from_now_must_still_fit(self) -> None:
        req = request(window=TimeWindow(NOW - 60, NOW + 61))
        assert not available(pair(req=req))


class TestHasCapacity:
    def test_free_capacity(self) -> None:
        assert has_capacity(pair(hlp=helper(capacity=2, current_load=1)))

    def test_fully_loaded(self) -> None:
        assert not has_capacity(pair(hlp=helper(capacity=2, current_load=2)))


class TestWindowOpen:
    def test_future_window(self) -> None:
        assert window_open(request(), NOW)

    def test_window_too_short_from_now(self) -> None:
        assert not window_open(request(window=TimeWindow(NOW - 100, NOW + 30)), NOW)


class TestViolations:
    def test_feasible_pair_has_none(self) -> None:
        assert violations(request(), helper(), policy=POLICY, now=NOW) == []
        assert feasible(request(), helper(), policy=POLICY, now=NOW)

    def test_all_broken_rules_are_named(self) -> None:
        req = request(service=Service.BATHING, grade=Grade.SEVERE, preferred_gender=Gender.MALE)
        hlp = helper(kind=HelperKind.VOLUNTEER, gender=Gender.FEMALE, capacity=0)
        assert violations(req, hlp, policy=POLICY, now=NOW) == [
            "kind_permitted",
            "crew_sufficient",
            "certificates_valid",
            "gender_respected",
            "has_capacity",
            "available",  # no capacity left means no free block either
        ]

    def test_unoffered_service(self) -> None:
        policy = Policy(rules={})
        assert violations(request(), helper(), policy=policy, now=NOW) == ["service_offered"]

    def test_closed_window(self) -> None:
        req = request(window=TimeWindow(NOW - 100, NOW))
        assert violations(req, helper(), policy=POLICY, now=NOW) == ["window_open"]


@pytest.mark.parametrize("constraint", HARD_CONSTRAINTS, ids=lambda c: c.name)
def test_every_rule_has_a_distinct_reason(constraint) -> None:
    codes = [c.code for c in HARD_CONSTRAINTS]
    assert codes.count(constraint.code) == 1
