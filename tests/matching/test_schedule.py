"""A helper's free time cut into one block per job."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import CapacityWindow, TimeWindow
from matching.schedule import blocks, pieces
from tests.matching.factories import NOW, helper
from tests.matching.instances import free_time


def spans(block: tuple[TimeWindow, ...]) -> list[tuple[int, int]]:
    return [(w.start - NOW, w.end - NOW) for w in block]


class TestBlocks:
    def test_capacity_one_keeps_the_whole_window(self) -> None:
        hlp = helper(availability=(TimeWindow(NOW, NOW + 240),), capacity=1)
        assert [spans(b) for b in blocks(hlp, 30)] == [[(0, 240)]]

    def test_capacity_splits_a_window_evenly(self) -> None:
        hlp = helper(availability=(TimeWindow(NOW, NOW + 480),), capacity=4, current_load=1)
        assert [spans(b) for b in blocks(hlp, 30)] == [[(0, 160)], [(160, 320)], [(320, 480)]]

    def test_blocks_never_shorter_than_the_minimum(self) -> None:
        hlp = helper(availability=(TimeWindow(NOW, NOW + 90),), capacity=50)
        assert len(blocks(hlp, 30)) == 3

    def test_fewer_jobs_than_windows_groups_whole_windows(self) -> None:
        free = (TimeWindow(NOW, NOW + 120), TimeWindow(NOW + 360, NOW + 480))
        hlp = helper(availability=free, capacity=1)
        assert [spans(b) for b in blocks(hlp, 30)] == [[(0, 120), (360, 480)]]

    def test_more_jobs_than_windows_share_out_by_length(self) -> None:
        free = (TimeWindow(NOW, NOW + 60), TimeWindow(NOW + 100, NOW + 400))
        hlp = helper(availability=free, capacity=3)
        assert [spans(b) for b in blocks(hlp, 30)] == [[(0, 60)], [(100, 250)], [(250, 400)]]

    def test_overlapping_windows_are_merged(self) -> None:
        free = (TimeWindow(NOW + 50, NOW + 200), TimeWindow(NOW, NOW + 100))
        assert [spans(b) for b in blocks(helper(availability=free), 30)] == [[(0, 200)]]

    def test_no_capacity_no_blocks(self) -> None:
        assert blocks(helper(capacity=1, current_load=1), 30) == ()

    def test_no_availability_no_blocks(self) -> None:
        assert blocks(helper(availability=()), 30) == ()

    def test_empty_windows_are_ignored(self) -> None:
        hlp = helper(availability=(TimeWindow(NOW, NOW),))
        assert blocks(hlp, 30) == ()


window_lists = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(0, 300)).map(
        lambda t: TimeWindow(NOW + t[0], NOW + t[0] + t[1])
    ),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(window_lists, st.integers(0, 8), st.integers(1, 90))
def test_blocks_are_disjoint_inside_availability_and_within_capacity(
    free: list[TimeWindow], capacity: int, min_minutes: int
) -> None:
    hlp = helper(availability=tuple(free), capacity=capacity)
    cut = pieces(hlp.availability, capacity, min_minutes)
    assert len({b for _, _, b in cut}) <= capacity
    assert sorted({b for _, _, b in cut}) == list(range(len({b for _, _, b in cut})))
    ordered = sorted((s, e) for s, e, _ in cut)
    for (_, end), (start, _) in itertools.pairwise(ordered):
        assert end <= start
    for s, e, _ in cut:
        assert s < e
        assert any(w.start <= s and e <= w.end for w in free_time(hlp))
    # Nothing is lost when the helper has room for at least one job.
    if capacity > 0 and any(w.end > w.start for w in free):
        assert cut


class TestCapacityWindows:
    """A per-day capacity: each day's availability takes that day's jobs, no more."""

    def day(self, index: int, jobs: int) -> CapacityWindow:
        return CapacityWindow(TimeWindow(NOW + 1440 * index, NOW + 1440 * (index + 1)), jobs)

    def test_each_day_takes_its_own_jobs(self) -> None:
        hlp = helper(
            availability=(TimeWindow(NOW, NOW + 3 * 1440),),
            capacity=9,
            capacity_windows=(self.day(0, 1), self.day(1, 2), self.day(2, 0)),
        )
        assert [spans(b) for b in blocks(hlp, 30)] == [[(0, 1440)], [(1440, 2160)], [(2160, 2880)]]

    def test_a_full_day_leaves_the_others_bookable(self) -> None:
        hlp = helper(
            availability=(TimeWindow(NOW, NOW + 2 * 1440),),
            capacity=6,
            current_load=3,
            capacity_windows=(self.day(0, 0), self.day(1, 3)),
        )
        assert hlp.remaining_capacity == 3
        assert len(blocks(hlp, 30)) == 3
        assert all(w.start >= NOW + 1440 for b in blocks(hlp, 30) for w in b)

    def test_the_overall_capacity_still_bounds_the_days_earliest_first(self) -> None:
        hlp = helper(
            availability=(TimeWindow(NOW, NOW + 2 * 1440),),
            capacity=2,
            capacity_windows=(self.day(1, 2), self.day(0, 1)),
        )
        assert hlp.remaining_capacity == 2
        assert [spans(b) for b in blocks(hlp, 30)] == [[(0, 1440)], [(1440, 2880)]]

    def test_availability_outside_every_window_is_not_bookable(self) -> None:
        hlp = helper(
            availability=(TimeWindow(NOW - 600, NOW + 600),),
            capacity_windows=(CapacityWindow(TimeWindow(NOW, NOW + 1440), 1),),
        )
        assert [spans(b) for b in blocks(hlp, 30)] == [[(0, 600)]]

    def test_no_jobs_left_in_any_window_means_no_capacity(self) -> None:
        hlp = helper(capacity=5, capacity_windows=(self.day(0, 0),))
        assert hlp.remaining_capacity == 0
        assert blocks(hlp, 30) == ()

    def test_negative_jobs_are_refused(self) -> None:
        with pytest.raises(ValueError, match="negative jobs"):
            helper(capacity_windows=(self.day(0, -1),))
