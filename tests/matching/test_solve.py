"""The solver and the urgent fast path on crafted inputs."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import replace

import pytest

import matching
from matching import (
    CapacityWindow,
    Gender,
    Helper,
    HelperKind,
    HelperPool,
    Policy,
    PreviousHelper,
    PriorityGroup,
    Service,
    TimeWindow,
    match,
    urgent,
)
from tests.matching.factories import NOW, helper, near, request

# The package exports the function `solve`, which shadows the module of the same name.
solve_module = importlib.import_module("matching.solve")

POLICY = Policy()


class TestMatch:
    def test_nearest_free_helper_gets_the_job(self) -> None:
        hlps = [helper(id="far", location=near(north_m=900)), helper(id="near")]
        result = match([request()], hlps, policy=POLICY, now=NOW)
        assert [(a.request_id, a.helper_id) for a in result.assignments] == [("r1", "near")]
        assert result.unmatched == ()

    def test_cost_breakdown_and_times(self) -> None:
        result = match([request()], [helper(rating=5.0)], policy=POLICY, now=NOW)
        (a,) = result.assignments
        assert a.start == NOW + 60 and a.end == NOW + 120
        assert a.cost.travel == 10 * a.travel_minutes
        assert a.cost.waiting == 0 and a.cost.rating == 0
        assert result.total_cost == a.cost.total

    def test_well_rated_previous_helper_beats_a_slightly_nearer_stranger(self) -> None:
        req = request(previous_helpers=(PreviousHelper("known", 5.0),))
        hlps = [helper(id="known", location=near(north_m=700)), helper(id="new")]
        (a,) = match([req], hlps, policy=POLICY, now=NOW).assignments
        assert a.helper_id == "known" and a.cost.continuity < 0

    def test_badly_rated_previous_helper_gets_no_bonus(self) -> None:
        req = request(previous_helpers=(PreviousHelper("known", 2.0),))
        hlps = [helper(id="known", location=near(north_m=700)), helper(id="new")]
        (a,) = match([req], hlps, policy=POLICY, now=NOW).assignments
        assert a.helper_id == "new"

    def test_fairness_spreads_work_away_from_busy_helpers(self) -> None:
        hlps = [helper(id="a", recent_minutes=3000), helper(id="b", recent_minutes=0)]
        (a,) = match([request()], hlps, policy=POLICY, now=NOW).assignments
        assert a.helper_id == "b"

    def test_equal_costs_go_to_the_lower_helper_id(self) -> None:
        hlps = [helper(id="b"), helper(id="a")]
        (a,) = match([request()], hlps, policy=POLICY, now=NOW).assignments
        assert a.helper_id == "a"

    def test_priority_elder_wins_the_only_helper(self) -> None:
        near_plain = request(id="r0", elder_id="e0", location=near(north_m=450))
        far_priority = request(
            id="r1",
            elder_id="e1",
            location=near(north_m=-1500),
            priority_groups=frozenset({PriorityGroup.ECONOMIC_HARDSHIP}),
        )
        result = match([near_plain, far_priority], [helper()], policy=POLICY, now=NOW)
        assert [a.request_id for a in result.assignments] == ["r1"]

    def test_helper_with_capacity_two_does_jobs_one_after_another(self) -> None:
        # Capacity two cuts the helper's 10 free hours into two 5-hour blocks.
        wide = TimeWindow(NOW + 60, NOW + 600)
        reqs = [
            request(id="r0", elder_id="e0", window=wide),
            request(id="r1", elder_id="e1", window=wide),
        ]
        result = match(reqs, [helper(capacity=2)], policy=POLICY, now=NOW)
        a, b = result.assignments
        assert a.helper_id == b.helper_id == "h1"
        assert not a.occupied.overlaps(b.occupied)

    def test_capacity_bounds_the_jobs(self) -> None:
        hlp = helper(capacity=3, current_load=1, availability=(TimeWindow(NOW, NOW + 2000),))
        reqs = [
            request(id=f"r{i}", elder_id=f"e{i}", window=TimeWindow(NOW, NOW + 2000))
            for i in range(3)
        ]
        result = match(reqs, [hlp], policy=POLICY, now=NOW)
        assert len(result.assignments) == 2 and len(result.unmatched) == 1

    def test_a_busy_helper_gets_blocks_long_enough_for_the_service(self) -> None:
        # Capacity 20 in 8 hours would cut 24-minute blocks: too short for a 60-minute job
        # with travel, unless the service asks for longer blocks.
        hlp = helper(capacity=20, availability=(TimeWindow(NOW, NOW + 480),))
        reqs = [request(window=TimeWindow(NOW, NOW + 480), duration=60)]
        assert not match(reqs, [hlp], policy=POLICY, now=NOW).assignments
        rules = dict(POLICY.rules)
        rules[reqs[0].service] = replace(rules[reqs[0].service], block_minutes=90)
        longer = replace(POLICY, rules=rules)
        assert len(match(reqs, [hlp], policy=longer, now=NOW).assignments) == 1

    def test_separate_neighbourhoods_are_separate_components(self) -> None:
        reqs = [
            request(id="r0", elder_id="e0"),
            request(id="r1", elder_id="e1", location=near(north_m=20_000)),
        ]
        hlps = [helper(id="a"), helper(id="b", location=near(north_m=20_300))]
        result = match(reqs, hlps, policy=POLICY, now=NOW)
        assert result.stats.components == 2
        assert result.stats.largest_component == 1
        assert len(result.assignments) == 2

    def test_sparse_and_dense_solvers_agree(self, monkeypatch: pytest.MonkeyPatch) -> None:
        reqs = [
            request(id=f"r{i:03}", elder_id=f"e{i}", location=near(north_m=13 * i, east_m=-7 * i))
            for i in range(60)
        ]
        hlps = [
            helper(
                id=f"h{i:03}", location=near(north_m=-11 * i, east_m=9 * i), recent_minutes=60 * i
            )
            for i in range(40)
        ]
        monkeypatch.setattr(solve_module, "DENSE_CELLS", 10**9)
        dense = match(reqs, hlps, policy=POLICY, now=NOW)
        monkeypatch.setattr(solve_module, "DENSE_CELLS", 0)
        sparse = match(reqs, hlps, policy=POLICY, now=NOW)
        assert dense.total_cost == sparse.total_cost
        assert len(dense.assignments) == len(sparse.assignments) == 40

    def test_prebuilt_pool_gives_the_same_result(self) -> None:
        hlps = [helper(id="a"), helper(id="b", location=near(east_m=300))]
        reqs = [request(id="r0", elder_id="e0"), request(id="r1", elder_id="e1")]
        assert match(reqs, hlps, policy=POLICY, now=NOW) == match(
            reqs, HelperPool.build(hlps, policy=POLICY), policy=POLICY, now=NOW
        )

    def test_duplicate_request_ids_are_refused(self) -> None:
        with pytest.raises(ValueError, match="duplicate request id"):
            match([request(), request()], [helper()], policy=POLICY, now=NOW)

    def test_duplicate_helper_ids_are_refused(self) -> None:
        with pytest.raises(ValueError, match="duplicate helper id"):
            match([request()], [helper(), helper()], policy=POLICY, now=NOW)

    def test_nothing_in_nothing_out(self) -> None:
        result = match([], [helper()], policy=POLICY, now=NOW)
        assert result.assignments == () and result.unmatched == () and result.total_cost == 0


def two_local_days(*, midnight: int, jobs: int) -> tuple[Helper, CapacityWindow, CapacityWindow]:
    """A helper free from NOW to the end of tomorrow, `jobs` a day; and the two days."""
    today = CapacityWindow(TimeWindow(midnight - 1440, midnight), jobs=jobs)
    tomorrow = CapacityWindow(TimeWindow(midnight, midnight + 1440), jobs=jobs)
    free = helper(
        availability=(TimeWindow(NOW, midnight + 1440),),
        capacity=2 * jobs,
        capacity_windows=(today, tomorrow),
    )
    return free, today, tomorrow


class TestUrgent:
    def test_best_k_cheapest_first(self) -> None:
        hlps = [helper(id=f"h{i}", location=near(north_m=200 * i)) for i in range(1, 6)]
        best = urgent(request(), hlps, k=3, policy=POLICY, now=NOW)
        assert [a.helper_id for a in best] == ["h1", "h2", "h3"]
        assert [a.cost.total for a in best] == sorted(a.cost.total for a in best)

    def test_only_feasible_helpers(self) -> None:
        req = request(service=Service.BATHING, preferred_gender=Gender.FEMALE)
        hlps = [
            helper(id="m", gender=Gender.MALE),
            helper(id="f", gender=Gender.FEMALE, location=near(north_m=900)),
            helper(id="far", gender=Gender.FEMALE, location=near(north_m=9000)),
        ]
        assert [a.helper_id for a in urgent(req, hlps, k=5, policy=POLICY, now=NOW)] == ["f"]

    def test_ties_go_to_the_lower_id(self) -> None:
        hlps = [helper(id="b"), helper(id="a"), helper(id="c")]
        best = urgent(request(), hlps, k=2, policy=POLICY, now=NOW)
        assert [a.helper_id for a in best] == ["a", "b"]

    def test_same_answer_with_a_prebuilt_pool(self) -> None:
        hlps = [helper(id=f"h{i}", location=near(east_m=150 * i)) for i in range(8)]
        pool = HelperPool.build(hlps, policy=POLICY, one_job=True)
        assert urgent(request(), pool, k=4, policy=POLICY, now=NOW) == urgent(
            request(), hlps, k=4, policy=POLICY, now=NOW
        )

    def test_nobody_offers_the_service(self) -> None:
        hlps = [helper(skills=frozenset({Service.MEAL}), kind=HelperKind.PROVIDER)]
        assert urgent(request(service=Service.VISIT), hlps, k=3, policy=POLICY, now=NOW) == ()

    def test_closed_window(self) -> None:
        req = request(window=TimeWindow(NOW - 100, NOW))
        assert urgent(req, [helper()], k=3, policy=POLICY, now=NOW) == ()

    # A volunteer free for the evening's last 330 minutes with three jobs left: cut for three
    # jobs, her time is three blocks of 110 minutes, and an emergency from minute 61 to 121
    # straddles the first two. Asked for this one job she is free for all of it.
    EVENING = TimeWindow(NOW, NOW + 330)
    EMERGENCY_AT = TimeWindow(NOW + 61, NOW + 121)

    def test_an_emergency_between_the_blocks_of_a_free_evening_finds_the_helper(self) -> None:
        free = helper(availability=(self.EVENING,), capacity=3)
        req = request(window=self.EMERGENCY_AT, service=Service.VISIT)
        assert [a.helper_id for a in urgent(req, [free], k=3, policy=POLICY, now=NOW)] == ["h1"]
        assert match([req], [free], policy=POLICY, now=NOW).assignments == ()  # the cut

    def test_a_daily_capacity_window_with_a_job_left_holds_the_emergency(self) -> None:
        free, today, tomorrow = two_local_days(midnight=NOW + 330, jobs=3)
        req = request(window=self.EMERGENCY_AT, service=Service.VISIT)
        assert len(urgent(req, [free], k=3, policy=POLICY, now=NOW)) == 1
        full_today = replace(free, capacity_windows=(replace(today, jobs=0), tomorrow))
        assert urgent(req, [full_today], k=3, policy=POLICY, now=NOW) == ()
        later = request(window=TimeWindow(NOW + 400, NOW + 460), service=Service.VISIT)
        assert len(urgent(later, [full_today], k=3, policy=POLICY, now=NOW)) == 1

    def test_an_emergency_at_midnight_runs_on_into_a_day_with_room(self) -> None:
        free, today, tomorrow = two_local_days(midnight=NOW + 30, jobs=1)
        req = request(window=TimeWindow(NOW + 10, NOW + 70), service=Service.VISIT)
        assert len(urgent(req, [free], k=3, policy=POLICY, now=NOW)) == 1
        # Conservative on purpose: into a day that is already full the job is not placed,
        # since intervals alone cannot tell a job that started the day before from one that
        # starts on the full day.
        tomorrow_full = replace(free, capacity_windows=(today, replace(tomorrow, jobs=0)))
        assert urgent(req, [tomorrow_full], k=3, policy=POLICY, now=NOW) == ()

    def test_a_helper_with_no_job_left_is_not_asked(self) -> None:
        busy = helper(availability=(self.EVENING,), capacity=2, current_load=2)
        req = request(window=self.EMERGENCY_AT, service=Service.VISIT)
        assert urgent(req, [busy], k=3, policy=POLICY, now=NOW) == ()

    def test_a_pool_cut_for_several_jobs_is_refused(self) -> None:
        with pytest.raises(ValueError, match="one job per helper"):
            urgent(
                request(), HelperPool.build([helper()], policy=POLICY), k=1, policy=POLICY, now=NOW
            )
        with pytest.raises(ValueError, match="several jobs"):
            match(
                [request()],
                HelperPool.build([helper()], policy=POLICY, one_job=True),
                policy=POLICY,
                now=NOW,
            )

    def test_k_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="k must be"):
            urgent(request(), [helper()], k=0, policy=POLICY, now=NOW)


def test_public_api_names_exist() -> None:
    for name in matching.__all__:
        assert hasattr(matching, name), name


@pytest.mark.parametrize("function", [matching.match, matching.urgent])
def test_options_are_keyword_only(function) -> None:
    params = inspect.signature(function).parameters
    assert [p.name for p in params.values() if p.kind is p.POSITIONAL_OR_KEYWORD] == [
        "request" if function is matching.urgent else "requests",
        "helpers",
    ]


def test_pool_built_for_other_blocks_is_refused() -> None:
    pool = HelperPool.build([helper()], policy=Policy(min_block_minutes=60))
    with pytest.raises(ValueError, match="block minutes"):
        match([request()], pool, policy=POLICY, now=NOW)
