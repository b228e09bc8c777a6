"""A helper's bookable time: availability cut into as many disjoint blocks as jobs they take.

With remaining capacity c, the availability windows are shared out into at most c blocks and
each block holds at most one job (its travel there and back included). Jobs of one helper
therefore never overlap and never exceed the capacity, and the assignment stays a pure
assignment problem that is solved exactly (solve.py), with no side constraints.

- c at least the number of windows: each window is split into equal consecutive blocks, the
  number per window in proportion to its length (largest remainder), none shorter than
  `min_minutes` (so a canteen with capacity 50 does not become 50 ten-minute slivers; it takes
  as many jobs as blocks of that size fit);
- c below the number of windows: whole windows are grouped, in time order, into c blocks of
  about equal total length (a volunteer free 9-11 and 15-17 with capacity 1 has one block made
  of both windows, and takes one job in either).

A helper with capacity windows (a per-day capacity, say) has each window's share of the
availability cut the same way with that window's jobs, earlier windows first while the overall
capacity lasts; availability outside every window is not bookable.

The price of exactness and speed: two short jobs cannot share one block, and a job longer than
a block cannot be placed even if the helper is free around it. Districts tune `min_minutes`
(`Policy.min_block_minutes`, or longer per service with `ServiceRule.block_minutes`).
"""

from __future__ import annotations

from matching.types import CapacityWindow, Helper, TimeWindow

Block = tuple[TimeWindow, ...]


Piece = tuple[int, int, int]  # (start, end, block index)


def _merged(availability: tuple[TimeWindow, ...]) -> list[list[int]]:
    # Overlapping or touching windows are one stretch of free time; merging them keeps blocks
    # disjoint even when the input repeats itself.
    out: list[list[int]] = []
    for w in sorted(availability, key=lambda w: (w.start, w.end)):
        if w.end <= w.start:
            continue
        if out and w.start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], w.end)
        else:
            out.append([w.start, w.end])
    return out


def _counts(lengths: list[int], capacity: int, min_minutes: int) -> list[int]:
    """Blocks per window when capacity covers one per window: proportional to length (largest
    remainder), at least one each, none shorter than `min_minutes` unless the window is."""
    most = [max(1, length // max(1, min_minutes)) for length in lengths]
    wanted = min(capacity, sum(most))
    total = sum(lengths)
    shares = [wanted * length / total for length in lengths]
    count = [min(m, max(1, int(share))) for m, share in zip(most, shares, strict=True)]
    while sum(count) > wanted:  # the one-per-window floor overshot: trim the largest
        i = max(range(len(count)), key=lambda j: (count[j], j))
        count[i] -= 1
    order = sorted(range(len(lengths)), key=lambda i: (-(shares[i] - int(shares[i])), i))
    spare = wanted - sum(count)
    while spare > 0:
        grown = False
        for i in order:
            if spare > 0 and count[i] < most[i]:
                count[i] += 1
                spare -= 1
                grown = True
        if not grown:
            break
    return count


def pieces(availability: tuple[TimeWindow, ...], capacity: int, min_minutes: int) -> list[Piece]:
    """The blocks as (start, end, block) pieces in time order; the array form of `blocks`."""
    if capacity <= 0:
        return []
    if len(availability) == 1:  # the common case, kept cheap
        only = availability[0]
        windows = [[only.start, only.end]] if only.end > only.start else []
    else:
        windows = _merged(availability)
    if not windows:
        return []
    if len(windows) == 1:  # the common case, kept cheap
        start, end = windows[0]
        parts = min(capacity, max(1, (end - start) // max(1, min_minutes)))
        length = end - start
        cuts = [start + (length * k) // parts for k in range(parts + 1)]
        return [(cuts[k], cuts[k + 1], k) for k in range(parts)]
    lengths = [end - start for start, end in windows]
    if capacity < len(windows):
        total = sum(lengths)
        out: list[Piece] = []
        before = 0
        group_of: list[int] = []
        for length in lengths:
            # The group is decided by where the window's middle falls in the helper's day.
            group_of.append(min(capacity - 1, (2 * before + length) * capacity // (2 * total)))
            before += length
        # Renumber so that block indices are 0..n-1 without gaps.
        names = {g: i for i, g in enumerate(sorted(set(group_of)))}
        for (start, end), group in zip(windows, group_of, strict=True):
            out.append((start, end, names[group]))
        return out
    out = []
    block = 0
    for (start, end), parts in zip(windows, _counts(lengths, capacity, min_minutes), strict=True):
        length = end - start
        cuts = [start + (length * k) // parts for k in range(parts + 1)]
        for k in range(parts):
            out.append((cuts[k], cuts[k + 1], block))
            block += 1
    return out


def _clipped(availability: tuple[TimeWindow, ...], limit: TimeWindow) -> tuple[TimeWindow, ...]:
    return tuple(
        TimeWindow(max(w.start, limit.start), min(w.end, limit.end))
        for w in availability
        if w.start < limit.end and limit.start < w.end
    )


def _windowed_pieces(
    availability: tuple[TimeWindow, ...],
    windows: tuple[CapacityWindow, ...],
    budget: int,
    min_minutes: int,
) -> list[Piece]:
    out: list[Piece] = []
    used = 0
    for limit in sorted(windows, key=lambda w: (w.window.start, w.window.end, w.jobs)):
        if used >= budget:
            break
        inside = _clipped(availability, limit.window)
        part = pieces(inside, min(limit.jobs, budget - used), min_minutes)
        out.extend((start, end, block + used) for start, end, block in part)
        used += len({block for _, _, block in part})
    return out


def helper_pieces(helper: Helper, min_minutes: int, *, one_job: bool = False) -> list[Piece]:
    """The helper's blocks as pieces, capacity windows included.

    `one_job`: the blocks for placing a single job (`solve.urgent`), where nothing has to be
    shared out: all the helper's free time is one block, or one per stretch of adjoining
    capacity windows with a job left (so a job may run on past midnight into a day with room),
    and the job fits wherever the helper is free. Cut for several jobs, an evening's last hours
    could split into blocks too short for a 60-minute emergency that starts between them.
    """
    if not helper.capacity_windows:
        left = helper.remaining_capacity
        return pieces(helper.availability, min(left, 1) if one_job else left, min_minutes)
    budget = max(0, helper.capacity - helper.current_load)
    windows = helper.capacity_windows
    if one_job and budget > 0:
        windows = tuple(CapacityWindow(span, 1) for span in _open_stretches(windows))
        budget = len(windows)
    return _windowed_pieces(helper.availability, windows, budget, min_minutes)


def _open_stretches(windows: tuple[CapacityWindow, ...]) -> list[TimeWindow]:
    """The capacity windows with a job left, those that touch or overlap joined."""
    out: list[TimeWindow] = []
    for w in sorted((w.window for w in windows if w.jobs > 0), key=lambda w: (w.start, w.end)):
        if out and w.start <= out[-1].end:
            out[-1] = TimeWindow(out[-1].start, max(out[-1].end, w.end))
        else:
            out.append(w)
    return out


def blocks(helper: Helper, min_minutes: int) -> tuple[Block, ...]:
    grouped: dict[int, list[TimeWindow]] = {}
    for start, end, block in helper_pieces(helper, min_minutes):
        grouped.setdefault(block, []).append(TimeWindow(start, end))
    return tuple(tuple(grouped[b]) for b in sorted(grouped))
