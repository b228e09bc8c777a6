"""The hard constraints, one named rule each, on a single request-helper pair.

These scalar rules are the specification. `candidates.py` evaluates the same rules on whole
arrays of pairs for speed, and the tests check that both agree. `HARD_CONSTRAINTS` is in
funnel order: `explain.py` reports the first rule at which a request's helpers ran out.
A helper's capacity is turned into disjoint time blocks (`schedule.py`), one job per block, so
that the solver never has to police overlaps or counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from matching.geo import haversine_km
from matching.policy import Policy, Requirement
from matching.schedule import blocks
from matching.types import Helper, ReasonCode, Request


@dataclass(frozen=True, slots=True)
class Pair:
    """One request and one helper, with what the policy demands and the trip between them."""

    request: Request
    helper: Helper
    requirement: Requirement
    policy: Policy
    now: int
    travel_minutes: int

    @classmethod
    def of(cls, request: Request, helper: Helper, *, policy: Policy, now: int) -> Pair | None:
        """None when the district does not offer the request's service."""
        requirement = policy.requirement(request)
        if requirement is None:
            return None
        km = haversine_km(
            request.location.lat,
            request.location.lon,
            np.array([helper.location.lat]),
            np.array([helper.location.lon]),
        )
        minutes = int(policy.travel.minutes(km)[0])
        return cls(request, helper, requirement, policy, now, minutes)


def within_reach(pair: Pair) -> bool:
    """The helper is inside the service circle: travel at most the rule's radius."""
    return pair.travel_minutes <= pair.requirement.radius_minutes


def has_skill(pair: Pair) -> bool:
    return pair.request.service in pair.helper.skills


def not_blacklisted(pair: Pair) -> bool:
    """A provider on the district's black list (or a black-listed individual) gets no work."""
    listed = pair.policy.blacklisted_providers
    return pair.helper.id not in listed and (
        pair.helper.provider_id is None or pair.helper.provider_id not in listed
    )


def kind_permitted(pair: Pair) -> bool:
    """Who may do what: certified care (e.g. bathing a moderate-grade elder) is provider-only."""
    return pair.helper.kind in pair.requirement.allowed_kinds


def crew_sufficient(pair: Pair) -> bool:
    return pair.helper.crew_size >= pair.requirement.min_crew


def certificate_problem(pair: Pair) -> ReasonCode | None:
    """For each required group the helper needs one certificate valid to the end of the booked
    window: MISSING if some group has no certificate held at all, EXPIRED if every group has
    one but some only expired ones, else None."""
    expired = False
    for group in pair.requirement.certificate_groups:
        held = [c.expires_at for c in pair.helper.certificates if c.kind in group]
        if not held:
            return ReasonCode.CERTIFICATE_MISSING
        if max(held) < pair.request.window.end:
            expired = True
    return ReasonCode.CERTIFICATE_EXPIRED if expired else None


def certificates_valid(pair: Pair) -> bool:
    return certificate_problem(pair) is None


def gender_respected(pair: Pair) -> bool:
    """For intimate care the elder's preferred gender binds; an undeclared gender does not match."""
    wanted = pair.request.preferred_gender
    return not pair.requirement.gender_binding or wanted is None or pair.helper.gender is wanted


def not_excluded_by_elder(pair: Pair) -> bool:
    """Never serve oneself, and never an elder who blocked this helper."""
    return (
        pair.helper.id != pair.request.elder_id
        and pair.helper.id not in pair.request.blocked_helpers
    )


def placements(pair: Pair) -> list[tuple[int, int]]:
    """(block index, earliest start) for every free block of the helper (`schedule.blocks`)
    that can hold the job: start inside the request's window, reachable from `now`, travel
    both ways inside one of the block's windows."""
    request, travel = pair.request, pair.travel_minutes
    out: list[tuple[int, int]] = []
    minutes = pair.policy.block_minutes(pair.helper.skills)
    for index, block in enumerate(blocks(pair.helper, minutes)):
        best: int | None = None
        for free in block:
            start = max(request.window.start, pair.now + travel, free.start + travel)
            end = start + request.duration
            if end <= request.window.end and end + travel <= free.end:
                best = start if best is None else min(best, start)
        if best is not None:
            out.append((index, best))
    return out


def earliest_start(pair: Pair) -> int | None:
    """The earliest start over all placements, None when the job fits no free block."""
    return min((start for _, start in placements(pair)), default=None)


def available(pair: Pair) -> bool:
    return bool(placements(pair))


def has_capacity(pair: Pair) -> bool:
    return pair.helper.remaining_capacity > 0


def window_open(request: Request, now: int) -> bool:
    """The request can still be served in full if someone starts right now."""
    return max(request.window.start, now) + request.duration <= request.window.end


@dataclass(frozen=True, slots=True)
class Constraint:
    name: str
    code: ReasonCode  # reported when this rule removes a request's last helpers
    holds: Callable[[Pair], bool]


HARD_CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint("within_reach", ReasonCode.NO_HELPER_IN_REACH, within_reach),
    Constraint("has_skill", ReasonCode.NO_SKILL_IN_REACH, has_skill),
    Constraint("not_blacklisted", ReasonCode.BLACKLISTED, not_blacklisted),
    Constraint("kind_permitted", ReasonCode.KIND_NOT_PERMITTED, kind_permitted),
    Constraint("crew_sufficient", ReasonCode.CREW_TOO_SMALL, crew_sufficient),
    Constraint("certificates_valid", ReasonCode.CERTIFICATE_MISSING, certificates_valid),
    Constraint("gender_respected", ReasonCode.GENDER_MISMATCH, gender_respected),
    Constraint("not_excluded_by_elder", ReasonCode.EXCLUDED_BY_ELDER, not_excluded_by_elder),
    Constraint("has_capacity", ReasonCode.NO_CAPACITY, has_capacity),
    Constraint("available", ReasonCode.NOT_AVAILABLE, available),
)


def violations(request: Request, helper: Helper, *, policy: Policy, now: int) -> list[str]:
    """Names of every hard constraint the pair breaks (empty: the pair is feasible)."""
    if not window_open(request, now):
        return ["window_open"]
    pair = Pair.of(request, helper, policy=policy, now=now)
    if pair is None:
        return ["service_offered"]
    return [c.name for c in HARD_CONSTRAINTS if not c.holds(pair)]


def feasible(request: Request, helper: Helper, *, policy: Policy, now: int) -> bool:
    return not violations(request, helper, policy=policy, now=now)
