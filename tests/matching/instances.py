"""Hypothesis strategies for small random cities, and an independent rule checker.

The checker restates the domain rules from domain.md directly, without calling
`matching.constraints`, so that a bug shared by the engine's scalar and vectorised paths
still shows up.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from matching import (
    Assignment,
    CapacityWindow,
    Certificate,
    CertificateKind,
    Gender,
    Grade,
    Helper,
    HelperKind,
    Location,
    Policy,
    PreviousHelper,
    PriorityGroup,
    Request,
    Service,
    TimeWindow,
    Urgency,
)
from matching.schedule import blocks
from tests.matching.factories import HOME, NOW

SERVICES = (Service.MEAL, Service.BATHING, Service.MEDICAL, Service.ESCORT)
HELPER_IDS = ("h0", "h1", "h2", "h3", "h4", "h5")
ELDER_IDS = ("e0", "e1", "e2", "e3", "h1")  # "h1" is an elder who also volunteers
BLACK_LIST = frozenset({"bad-co"})


def locations() -> st.SearchStrategy[Location]:
    # About 3 km square around HOME: some pairs inside the 15-minute circle, some not.
    return st.builds(
        lambda dn, de: Location(HOME.lat + dn, HOME.lon + de),
        st.floats(-0.015, 0.015),
        st.floats(-0.015, 0.015),
    )


@st.composite
def windows(draw: st.DrawFn, *, min_len: int, max_len: int) -> TimeWindow:
    start = NOW + draw(st.integers(-60, 300))
    return TimeWindow(start, start + draw(st.integers(min_len, max_len)))


@st.composite
def requests(draw: st.DrawFn, rid: str) -> Request:
    service = draw(st.sampled_from(SERVICES))
    duration = draw(st.sampled_from((30, 45, 60)))
    return Request(
        id=rid,
        elder_id=draw(st.sampled_from(ELDER_IDS)),
        service=service,
        location=draw(locations()),
        window=draw(windows(min_len=duration, max_len=duration + 150)),
        duration=duration,
        grade=draw(st.sampled_from(Grade)),
        priority_groups=draw(st.frozensets(st.sampled_from(PriorityGroup), max_size=2)),
        preferred_gender=draw(st.none() | st.sampled_from(Gender)),
        previous_helpers=tuple(
            PreviousHelper(h, r)
            for h, r in draw(
                st.lists(
                    st.tuples(st.sampled_from(HELPER_IDS), st.sampled_from((2.0, 4.0, 5.0))),
                    max_size=2,
                )
            )
        ),
        blocked_helpers=draw(st.frozensets(st.sampled_from(HELPER_IDS), max_size=1)),
        urgency=draw(st.sampled_from(Urgency)),
        needs_lifting=draw(st.booleans()),
    )


@st.composite
def capacity_windows(draw: st.DrawFn) -> tuple[CapacityWindow, ...]:
    """None, or two "days" split somewhere in the requests' range, each with its own jobs."""
    if not draw(st.booleans()):
        return ()
    split = NOW + draw(st.integers(0, 400))
    return (
        CapacityWindow(TimeWindow(NOW - 60, split), draw(st.integers(0, 2))),
        CapacityWindow(TimeWindow(split, NOW + 1000), draw(st.integers(0, 2))),
    )


@st.composite
def helpers(draw: st.DrawFn, hid: str) -> Helper:
    kinds = draw(
        st.lists(st.sampled_from(CertificateKind), max_size=3, unique=True),
    )
    return Helper(
        id=hid,
        kind=draw(st.sampled_from(HelperKind)),
        location=draw(locations()),
        skills=draw(st.frozensets(st.sampled_from(SERVICES), min_size=1)),
        availability=tuple(draw(st.lists(windows(min_len=60, max_len=480), max_size=2))),
        certificates=tuple(
            Certificate(kind, NOW + draw(st.sampled_from((-10, 200, 100_000)))) for kind in kinds
        ),
        capacity=draw(st.integers(0, 3)),
        current_load=draw(st.integers(0, 1)),
        capacity_windows=draw(capacity_windows()),
        recent_minutes=draw(st.sampled_from((0, 900, 3000))),
        rating=draw(st.none() | st.sampled_from((2.5, 4.0, 5.0))),
        gender=draw(st.none() | st.sampled_from(Gender)),
        provider_id=draw(st.sampled_from((None, "care-co", "bad-co"))),
        crew_size=draw(st.integers(1, 2)),
    )


@st.composite
def instances(
    draw: st.DrawFn, *, max_requests: int = 5, max_helpers: int = 5
) -> tuple[list[Request], list[Helper]]:
    n_req = draw(st.integers(1, max_requests))
    n_help = draw(st.integers(0, max_helpers))
    reqs = [draw(requests(f"r{i}")) for i in range(n_req)]
    hlps = [draw(helpers(HELPER_IDS[i])) for i in range(n_help)]
    return reqs, hlps


# Defaults plus an any-of rule for lifting, so that both kinds of certificate rule are drawn.
POLICY = Policy(
    blacklisted_providers=BLACK_LIST,
    lifting_certificates=frozenset(),
    lifting_any_of=frozenset({CertificateKind.LIFTING, CertificateKind.NURSE}),
)


def travel_minutes(req: Request, hlp: Helper, policy: Policy) -> int:
    p1, p2 = math.radians(req.location.lat), math.radians(hlp.location.lat)
    dl = math.radians(hlp.location.lon - req.location.lon)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    km = 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, a)))
    raw = km * policy.travel.detour_factor * 60 / policy.travel.speed_kmh
    return math.ceil(raw - 1e-9)


def pair_allowed(req: Request, hlp: Helper, policy: Policy) -> bool:
    """Every rule that does not depend on the time: who, what, where."""
    rule = policy.rules.get(req.service)
    if rule is None or req.service not in hlp.skills:
        return False
    if hlp.id == req.elder_id or hlp.id in req.blocked_helpers:
        return False
    if hlp.id in policy.blacklisted_providers or hlp.provider_id in policy.blacklisted_providers:
        return False
    if travel_minutes(req, hlp, policy) > rule.radius_minutes:
        return False
    if hlp.remaining_capacity <= 0:
        return False
    # Each entry: a set of kinds of which the helper must hold one valid certificate.
    needed = [{kind} for kind in rule.required_certificates]
    service_certified = (
        rule.certified_from_grade is not None and req.grade >= rule.certified_from_grade
    )
    lifting = req.needs_lifting and req.grade >= policy.lifting_from_grade
    # Bathing, medical help and lifting at moderate or worse: certified provider staff only.
    if (service_certified or lifting) and hlp.kind is not HelperKind.PROVIDER:
        return False
    if service_certified:
        needed += [{kind} for kind in rule.certified_certificates]
        if rule.certified_any_of:
            needed.append(set(rule.certified_any_of))
        if hlp.crew_size < rule.certified_min_staff:
            return False
    if lifting:
        needed += [{kind} for kind in policy.lifting_certificates]
        if policy.lifting_any_of:
            needed.append(set(policy.lifting_any_of))
    if hlp.kind not in rule.allowed_kinds:
        return False
    for kinds in needed:
        if not any(c.kind in kinds and c.expires_at >= req.window.end for c in hlp.certificates):
            return False
    wanted = req.preferred_gender
    return not (rule.intimate and wanted is not None and hlp.gender is not wanted)


def fits(req: Request, start: int, travel: int, span: TimeWindow, now: int) -> bool:
    end = start + req.duration
    if start < req.window.start or start < now + travel or end > req.window.end:
        return False
    return span.start <= start - travel and end + travel <= span.end


def free_time(hlp: Helper) -> list[TimeWindow]:
    """The helper's availability as disjoint stretches (overlapping windows joined)."""
    out: list[TimeWindow] = []
    for w in sorted(hlp.availability, key=lambda w: w.start):
        if out and w.start <= out[-1].end:
            out[-1] = TimeWindow(out[-1].start, max(out[-1].end, w.end))
        elif w.end > w.start:
            out.append(w)
    return out


def within_availability(req: Request, hlp: Helper, start: int, travel: int, now: int) -> bool:
    return any(fits(req, start, travel, w, now) for w in free_time(hlp))


def block_of(hlp: Helper, start: int, end: int, travel: int, policy: Policy) -> int | None:
    """Index of the helper's block whose windows hold the busy span, if any."""
    for index, block in enumerate(blocks(hlp, policy.block_minutes(hlp.skills))):
        if any(w.start <= start - travel and end + travel <= w.end for w in block):
            return index
    return None


def assignment_violation(
    a: Assignment, req: Request, hlp: Helper, policy: Policy, now: int
) -> str | None:
    travel = travel_minutes(req, hlp, policy)
    if a.travel_minutes != travel:
        return f"travel {a.travel_minutes} != {travel}"
    if a.end != a.start + req.duration:
        return "wrong duration"
    if not pair_allowed(req, hlp, policy):
        return "pair not allowed"
    if not within_availability(req, hlp, a.start, travel, now):
        return "start outside the windows"
    return None


def placements(req: Request, hlp: Helper, policy: Policy, now: int) -> list[tuple[int, int]]:
    """(block, earliest start in it) for each of the helper's blocks that can hold the job."""
    if not pair_allowed(req, hlp, policy):
        return []
    travel = travel_minutes(req, hlp, policy)
    out = []
    for index, block in enumerate(blocks(hlp, policy.block_minutes(hlp.skills))):
        starts = [
            max(req.window.start, now + travel, w.start + travel)
            for w in block
            if fits(req, max(req.window.start, now + travel, w.start + travel), travel, w, now)
        ]
        if starts:
            out.append((index, min(starts)))
    return out
