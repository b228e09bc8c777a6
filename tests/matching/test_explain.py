"""Unmatched reasons in crafted cases: the code, the counts and the words."""

from __future__ import annotations

from matching import (
    Certificate,
    CertificateKind,
    Gender,
    Grade,
    HelperKind,
    Policy,
    PriorityGroup,
    ReasonCode,
    Service,
    TimeWindow,
    Unmatched,
    match,
)
from tests.matching.factories import NOW, certified_bather, helper, near, request

POLICY = Policy()


def only_unmatched(reqs, hlps, policy: Policy = POLICY) -> Unmatched:
    result = match(reqs, hlps, policy=policy, now=NOW)
    assert result.assignments == () or len(result.unmatched) == 1
    (u,) = [u for u in result.unmatched if u.request_id == "r1"]
    return u


def bath(**changes) -> object:
    return request(service=Service.BATHING, grade=Grade.MODERATE, **changes)


class TestReasons:
    def test_nobody_in_reach(self) -> None:
        u = only_unmatched([request()], [helper(location=near(north_m=8000))])
        assert u.code is ReasonCode.NO_HELPER_IN_REACH
        assert u.message == "no helper within 15 min travel (about 2.3 km)"

    def test_no_skill_nearby(self) -> None:
        cleaners = [helper(id=f"h{i}", skills=frozenset({Service.CLEANING})) for i in range(3)]
        u = only_unmatched([request()], cleaners)
        assert u.code is ReasonCode.NO_SKILL_IN_REACH
        assert u.message.startswith("3 helpers within 15 min travel")
        assert "none offers meal" in u.message
        assert [s.remaining for s in u.funnel] == [3, 0]

    def test_volunteers_not_allowed_for_a_moderate_grade_bath(self) -> None:
        volunteers = [helper(id=f"h{i}", kind=HelperKind.VOLUNTEER) for i in range(2)]
        u = only_unmatched([bath()], volunteers)
        assert u.code is ReasonCode.KIND_NOT_PERMITTED
        assert "all 2 are volunteers" in u.message
        assert "moderate grade needs certified provider staff" in u.message

    def test_expired_certificate(self) -> None:
        stale = (Certificate(CertificateKind.BATHING, NOW - 1),)
        u = only_unmatched([bath()], [certified_bather(certificates=stale)])
        assert u.code is ReasonCode.CERTIFICATE_EXPIRED
        assert "1 with a bathing certificate that expires before" in u.message

    def test_certificate_expiring_during_the_window(self) -> None:
        req = bath()
        late = (Certificate(CertificateKind.BATHING, req.window.end - 1),)
        u = only_unmatched([req], [certified_bather(certificates=late)])
        assert u.code is ReasonCode.CERTIFICATE_EXPIRED

    def test_missing_certificate(self) -> None:
        u = only_unmatched([bath()], [certified_bather(certificates=())])
        assert u.code is ReasonCode.CERTIFICATE_MISSING
        assert "none holds a bathing certificate" in u.message

    def test_any_of_certificate_rule_names_the_alternatives(self) -> None:
        req = request(service=Service.MEDICAL, grade=Grade.SEVERE)
        u = only_unmatched([req], [certified_bather(certificates=())])
        assert u.code is ReasonCode.CERTIFICATE_MISSING
        assert "none holds a caregiver or nurse certificate" in u.message

    def test_gender_preference(self) -> None:
        men = [certified_bather(id=f"h{i}", gender=Gender.MALE) for i in range(2)]
        u = only_unmatched([bath(preferred_gender=Gender.FEMALE)], men)
        assert u.code is ReasonCode.GENDER_MISMATCH
        assert "none female" in u.message

    def test_all_busy_in_that_window(self) -> None:
        busy = (TimeWindow(NOW + 400, NOW + 900),)
        staff = [certified_bather(id=f"h{i}", availability=busy) for i in range(3)]
        u = only_unmatched([bath()], staff)
        assert u.code is ReasonCode.NOT_AVAILABLE
        assert u.message.startswith("3 helpers qualified for bathing within 15 min travel")
        assert "all 3 busy in that window" in u.message

    def test_crew_of_one_for_a_certified_bath(self) -> None:
        u = only_unmatched([bath()], [certified_bather(crew_size=1)])
        assert u.code is ReasonCode.CREW_TOO_SMALL

    def test_black_listed_provider(self) -> None:
        policy = Policy(blacklisted_providers=frozenset({"care-co"}))
        u = only_unmatched([bath()], [certified_bather()], policy=policy)
        assert u.code is ReasonCode.BLACKLISTED

    def test_blocked_by_the_elder(self) -> None:
        u = only_unmatched([request(blocked_helpers=frozenset({"h1"}))], [helper()])
        assert u.code is ReasonCode.EXCLUDED_BY_ELDER

    def test_fully_booked(self) -> None:
        u = only_unmatched([request()], [helper(capacity=1, current_load=1)])
        assert u.code is ReasonCode.NO_CAPACITY

    def test_taken_by_a_priority_elder(self) -> None:
        poor = request(
            id="r0", elder_id="e0", priority_groups=frozenset({PriorityGroup.LIVING_ALONE})
        )
        plain = request(id="r1", elder_id="e1", location=near(north_m=450))
        result = match([poor, plain], [helper()], policy=POLICY, now=NOW)
        assert [a.request_id for a in result.assignments] == ["r0"]
        (u,) = result.unmatched
        assert u.code is ReasonCode.TAKEN_BY_OTHERS
        assert u.message.startswith("1 helper could serve it, but every block")

    def test_service_the_district_does_not_offer(self) -> None:
        u = only_unmatched([request()], [helper()], policy=Policy(rules={}))
        assert u.code is ReasonCode.SERVICE_NOT_OFFERED

    def test_window_already_passed(self) -> None:
        u = only_unmatched([request(window=TimeWindow(NOW - 120, NOW + 10))], [helper()])
        assert u.code is ReasonCode.WINDOW_CLOSED

    def test_no_helpers_at_all(self) -> None:
        u = only_unmatched([request()], [])
        assert u.code is ReasonCode.NO_HELPER_IN_REACH

    def test_first_exhausted_rule_decides(self) -> None:
        # One volunteer (not permitted) and one provider without a certificate: the kind rule
        # leaves one standing, the certificate rule removes it.
        hlps = [helper(id="h1"), certified_bather(id="h2", certificates=())]
        u = only_unmatched([bath()], hlps)
        assert u.code is ReasonCode.CERTIFICATE_MISSING
        assert [(s.code, s.remaining) for s in u.funnel][3:6] == [
            (ReasonCode.KIND_NOT_PERMITTED, 1),
            (ReasonCode.CREW_TOO_SMALL, 1),
            (ReasonCode.CERTIFICATE_MISSING, 0),
        ]

    def test_penalty_is_reported(self) -> None:
        u = only_unmatched([request()], [])
        assert u.penalty == POLICY.weights.unmatched_base
