"""A synthetic city for the matching benchmarks: fixed seed, same city every run.

About 20 km across: a dense old town, a few denser estates and a thin, wide suburban and rural
background. Elders cluster where people live; volunteers and provider staff cluster a little
differently (providers near their bases). The service mix, grades, priority flags, preferences
and helper attributes follow the shares below, chosen to look like a district's ordinary day.

    python bench/workload.py   # prints a summary of both scenarios
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from matching import (
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

CENTRE = (30.2741, 120.1551)
KM_LAT = 1 / 111.2
KM_LON = 1 / 96.1
DAY = 29_040_480  # 2025-03-20 00:00 UTC+8 in minutes since the epoch, a Thursday
NOW = DAY + 7 * 60  # the planning run at 07:00

# (share of people, centre offset km north, east, spread km)
AREAS = (
    (0.30, 0.0, 0.0, 1.2),  # old town
    (0.14, 3.5, -2.0, 0.8),  # estate north-west
    (0.12, -2.5, 3.0, 0.9),  # estate south-east
    (0.10, 4.0, 4.5, 1.0),  # new town
    (0.08, -4.0, -4.0, 0.7),  # riverside
    (0.26, 0.0, 0.0, 0.0),  # suburbs and villages: uniform over the whole 20 km square
)
SERVICE_MIX = {
    Service.MEAL: 0.34,
    Service.CLEANING: 0.14,
    Service.ESCORT: 0.14,
    Service.VISIT: 0.16,
    Service.BATHING: 0.11,
    Service.MEDICAL: 0.08,
    Service.EMERGENCY: 0.03,
}
DURATION = {
    Service.MEAL: 30,
    Service.CLEANING: 90,
    Service.ESCORT: 120,
    Service.VISIT: 45,
    Service.BATHING: 60,
    Service.MEDICAL: 60,
    Service.EMERGENCY: 30,
}
GRADE_SHARE = (0.28, 0.30, 0.22, 0.12, 0.08)  # intact .. complete loss
PRIORITY_SHARE = {
    PriorityGroup.VERY_OLD: 0.22,
    PriorityGroup.LIVING_ALONE: 0.18,
    PriorityGroup.ECONOMIC_HARDSHIP: 0.08,
    PriorityGroup.DISABLED: 0.07,
    PriorityGroup.LEFT_BEHIND: 0.03,
    PriorityGroup.LOST_ONLY_CHILD: 0.01,
    PriorityGroup.SEVERE_DISABILITY: 0.02,
}
PROVIDERS = tuple(f"prov{i:02}" for i in range(30))
BLACK_LISTED = frozenset({"prov07"})


@dataclass(frozen=True)
class City:
    requests: list[Request]
    helpers: list[Helper]
    policy: Policy
    now: int


def _places(rng: np.random.Generator, n: int, *, tilt: float = 0.0) -> np.ndarray:
    """(n, 2) lat/lon; `tilt` shifts weight from the old town towards the estates."""
    shares = np.array([a[0] for a in AREAS])
    shares[0] -= tilt
    shares[1:5] += tilt / 4
    area = rng.choice(len(AREAS), size=n, p=shares / shares.sum())
    north = np.empty(n)
    east = np.empty(n)
    for i, (_, dn, de, spread) in enumerate(AREAS):
        mask = area == i
        k = int(mask.sum())
        if spread == 0.0:
            north[mask] = rng.uniform(-10, 10, k)
            east[mask] = rng.uniform(-10, 10, k)
        else:
            north[mask] = dn + rng.normal(0, spread, k)
            east[mask] = de + rng.normal(0, spread, k)
    return np.column_stack((CENTRE[0] + north * KM_LAT, CENTRE[1] + east * KM_LON))


def helpers(rng: np.random.Generator, n: int) -> list[Helper]:
    where = _places(rng, n, tilt=0.08)
    out: list[Helper] = []
    casual = (Service.MEAL, Service.CLEANING, Service.ESCORT, Service.VISIT, Service.EMERGENCY)
    for i in range(n):
        hid = f"h{i:06}"
        provider = rng.random() < 0.30
        gender = Gender.FEMALE if rng.random() < 0.62 else Gender.MALE
        certs: list[Certificate] = []
        if provider:
            skills = {casual[j] for j in rng.choice(len(casual), rng.integers(1, 4), replace=False)}
            role = rng.random()
            if role < 0.40:
                skills.add(Service.BATHING)
                certs.append(Certificate(CertificateKind.BATHING, 0))
            if 0.30 < role < 0.70:
                skills.add(Service.MEDICAL)
                certs.append(Certificate(CertificateKind.NURSE, 0))
            if rng.random() < 0.35:
                certs.append(Certificate(CertificateKind.LIFTING, 0))
            certs.append(Certificate(CertificateKind.CAREGIVER, 0))
            # Some certificates lapsed last month; most are good for another year or more.
            certs = [
                Certificate(c.kind, DAY - 30 * 1440 if rng.random() < 0.05 else DAY + 400 * 1440)
                for c in certs
            ]
            shift = int(rng.choice((7, 8, 9, 12))) * 60
            availability = (TimeWindow(DAY + shift, DAY + shift + 8 * 60),)
            # A shift holds three to five visits; one to three are already booked.
            capacity = int(rng.integers(3, 6))
            load = int(rng.integers(1, 4))
            crew = 2 if Service.BATHING in skills and rng.random() < 0.6 else 1
            provider_id: str | None = str(rng.choice(PROVIDERS))
            kind = HelperKind.PROVIDER
        else:
            skills = {casual[j] for j in rng.choice(len(casual), rng.integers(1, 4), replace=False)}
            if rng.random() < 0.12:
                skills.add(Service.BATHING)  # helps mild-grade elders only
            if rng.random() < 0.08:
                certs.append(Certificate(CertificateKind.FIRST_AID, DAY + 200 * 1440))
            windows = []
            for _ in range(int(rng.integers(1, 3))):
                start = int(rng.integers(8 * 60, 18 * 60) // 30 * 30)
                windows.append(TimeWindow(DAY + start, DAY + start + int(rng.integers(2, 5)) * 60))
            availability = tuple(sorted(windows, key=lambda w: w.start))
            capacity = 1 if rng.random() < 0.7 else 2
            load = int(rng.random() < 0.15)
            crew = 1
            provider_id = None
            kind = HelperKind.VOLUNTEER
        out.append(
            Helper(
                id=hid,
                kind=kind,
                location=Location(float(where[i, 0]), float(where[i, 1])),
                skills=frozenset(skills),
                availability=availability,
                certificates=tuple(certs),
                capacity=capacity,
                current_load=min(load, capacity),
                recent_minutes=int(rng.exponential(600)),
                rating=None if rng.random() < 0.2 else float(np.round(rng.uniform(3.0, 5.0), 1)),
                gender=gender,
                provider_id=provider_id,
                crew_size=crew,
            )
        )
    return out


def requests(rng: np.random.Generator, n: int, helper_list: list[Helper]) -> list[Request]:
    where = _places(rng, n)
    services = list(SERVICE_MIX)
    kinds = rng.choice(len(services), size=n, p=np.array(list(SERVICE_MIX.values())))
    grades = rng.choice(5, size=n, p=np.array(GRADE_SHARE))
    helper_xy = np.array([[h.location.lat, h.location.lon] for h in helper_list])
    near = cKDTree(helper_xy) if helper_list else None
    out: list[Request] = []
    for i in range(n):
        service = services[int(kinds[i])]
        grade = Grade(int(grades[i]))
        duration = DURATION[service]
        groups = frozenset(g for g, share in PRIORITY_SHARE.items() if rng.random() < share)
        if service is Service.EMERGENCY:
            start = NOW + int(rng.integers(0, 60))
            window = TimeWindow(start, start + duration + 30)
            urgency = Urgency.EMERGENCY
        else:
            start = DAY + int(rng.integers(8 * 60, 18 * 60) // 15 * 15)
            slack = int(rng.choice((0, 30, 60, 120, 240), p=(0.15, 0.25, 0.3, 0.2, 0.1)))
            window = TimeWindow(start, start + duration + slack)
            urgency = Urgency.URGENT if rng.random() < 0.04 else Urgency.ROUTINE
        previous: tuple[PreviousHelper, ...] = ()
        if near is not None and rng.random() < 0.3:
            _, idx = near.query(where[i], k=min(12, len(helper_list)))
            pick = helper_list[int(np.atleast_1d(idx)[rng.integers(0, np.size(idx))])]
            previous = (PreviousHelper(pick.id, float(rng.choice((2.0, 4.0, 4.5, 5.0)))),)
        blocked: frozenset[str] = frozenset()
        if helper_list and rng.random() < 0.03:
            blocked = frozenset({helper_list[int(rng.integers(0, len(helper_list)))].id})
        intimate = service in (Service.BATHING, Service.MEDICAL)
        prefers = None
        if intimate and rng.random() < 0.35:
            prefers = Gender.FEMALE if rng.random() < 0.75 else Gender.MALE
        out.append(
            Request(
                id=f"r{i:06}",
                # A few elders are also volunteers: they must never be matched to themselves.
                elder_id=helper_list[i].id if i < len(helper_list) and i % 97 == 0 else f"e{i:06}",
                service=service,
                location=Location(float(where[i, 0]), float(where[i, 1])),
                window=window,
                duration=duration,
                grade=grade,
                priority_groups=groups,
                preferred_gender=prefers,
                previous_helpers=previous,
                blocked_helpers=blocked,
                urgency=urgency,
                needs_lifting=service is Service.ESCORT and rng.random() < 0.15,
            )
        )
    return out


def city(n_requests: int, n_helpers: int, *, seed: int = 20250320) -> City:
    rng = np.random.default_rng(seed)
    helper_list = helpers(rng, n_helpers)
    return City(
        requests=requests(rng, n_requests, helper_list),
        helpers=helper_list,
        policy=Policy(blacklisted_providers=BLACK_LISTED, version="bench-2025"),
        now=NOW,
    )


def plentiful(seed: int = 20250320) -> City:
    """10,000 open requests, 20,000 helpers."""
    return city(10_000, 20_000, seed=seed)


def scarce(seed: int = 20250320) -> City:
    """10,000 open requests, helpers 60% of that."""
    return city(10_000, 6_000, seed=seed)


def main() -> None:
    for name, make in (("plentiful", plentiful), ("scarce", scarce)):
        c = make()
        mix: dict[str, int] = {}
        for r in c.requests:
            mix[r.service.value] = mix.get(r.service.value, 0) + 1
        priority = sum(1 for r in c.requests if r.priority_groups)
        providers = sum(1 for h in c.helpers if h.kind is HelperKind.PROVIDER)
        print(
            f"{name}: {len(c.requests)} requests ({priority} priority), {len(c.helpers)} helpers "
            f"({providers} provider staff); mix {dict(sorted(mix.items()))}"
        )


if __name__ == "__main__":
    main()
