"""Helpers and requests as column arrays, the form every vectorised rule works on.

A `HelperPool` depends only on the helpers, so the market can build it once per refresh and
reuse it for many `urgent` calls; a `RequestBatch` depends on the policy and `now`.
Both are sorted by id, which fixes every later order (determinism rests on this).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from matching.cost import unmatched_penalty
from matching.geo import unit_vectors
from matching.policy import Policy, Requirement
from matching.schedule import helper_pieces
from matching.types import (
    CertificateKind,
    Gender,
    Helper,
    HelperKind,
    Request,
    Service,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SERVICES: tuple[Service, ...] = tuple(Service)
CERT_KINDS: tuple[CertificateKind, ...] = tuple(CertificateKind)
KIND_CODE = {HelperKind.VOLUNTEER: 0, HelperKind.PROVIDER: 1}
GENDER_CODE = {None: -1, Gender.FEMALE: 0, Gender.MALE: 1}
NO_CERT = np.int64(-(2**62))  # expiry of a certificate kind the helper does not hold
# Padding for helpers with fewer block pieces than the widest: a piece nobody fits.
NEVER_START = np.int64(2**62)
NEVER_END = np.int64(-(2**62))


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=_HasId)


def _sorted_unique(items: Sequence[Item], what: str) -> list[Item]:
    ordered = sorted(items, key=lambda item: item.id)
    for a, b in pairwise(ordered):
        if a.id == b.id:
            raise ValueError(f"duplicate {what} id {a.id!r}")
    return ordered


@dataclass(frozen=True, slots=True, eq=False)
class ServiceTree:
    """A k-d tree over the helpers who offer one service and still have capacity."""

    tree: cKDTree
    members: IntArray  # pool index of each tree point


@dataclass(frozen=True, slots=True, eq=False)
class HelperPool:
    helpers: tuple[Helper, ...]
    ids: tuple[str, ...]
    index: dict[str, int]
    id_array: npt.NDArray[np.str_]
    provider_array: npt.NDArray[np.str_]  # "" for helpers without a provider
    lat: FloatArray
    lon: FloatArray
    kind: npt.NDArray[np.int8]
    gender: npt.NDArray[np.int8]
    crew: IntArray
    remaining: IntArray
    recent_minutes: IntArray
    rating: FloatArray  # NaN when not yet rated
    skills: BoolArray  # (helpers, services)
    cert_expiry: IntArray  # (helpers, certificate kinds), NO_CERT where not held
    # The helper's free blocks (schedule.py) as pieces: (helpers, most pieces), padded.
    piece_start: IntArray  # NEVER_START where padded
    piece_end: IntArray  # NEVER_END where padded
    piece_block: IntArray  # block index within the helper, -1 where padded
    block_key: tuple[int, ...]  # `Policy.block_key` of the policy the blocks were cut for
    one_job: bool  # blocks cut for placing one job each (`schedule.helper_pieces`)
    all_tree: cKDTree  # every helper, for explaining what is in reach
    trees: dict[Service, ServiceTree]

    @classmethod
    def build(
        cls, helpers: Sequence[Helper], *, policy: Policy, one_job: bool = False
    ) -> HelperPool:
        """Only the policy's block minutes are used; `match` checks them against its policy.
        `one_job`: the pool for `urgent`, each helper's free time cut for one more job."""
        ordered = _sorted_unique(helpers, "helper")
        n = len(ordered)
        cert_col = {kind: col for col, kind in enumerate(CERT_KINDS)}
        service_col = {service: col for col, service in enumerate(SERVICES)}
        # One pass over the dataclasses into plain lists; numpy takes it from there.
        scalars: list[tuple[float, float, int, int, int, int, int, float]] = []
        schedules: list[list[tuple[int, int, int]]] = []
        cert_cells: list[tuple[int, int, int]] = []
        skill_cells: list[tuple[int, int]] = []
        for i, h in enumerate(ordered):
            left = h.remaining_capacity
            scalars.append(
                (
                    h.location.lat,
                    h.location.lon,
                    KIND_CODE[h.kind],
                    GENDER_CODE[h.gender],
                    h.crew_size,
                    left,
                    h.recent_minutes,
                    np.nan if h.rating is None else h.rating,
                )
            )
            schedules.append(helper_pieces(h, policy.block_minutes(h.skills), one_job=one_job))
            cert_cells.extend((i, cert_col[c.kind], c.expires_at) for c in h.certificates)
            skill_cells.extend((i, service_col[s]) for s in h.skills)
        table = np.array(scalars, dtype=np.float64).reshape(n, 8)
        lat, lon = table[:, 0].copy(), table[:, 1].copy()
        cert_expiry = np.full((n, len(CERT_KINDS)), NO_CERT, dtype=np.int64)
        if cert_cells:
            cells = np.array(cert_cells, dtype=np.int64)
            # Several certificates of one kind: the one that lasts longest counts.
            np.maximum.at(cert_expiry, (cells[:, 0], cells[:, 1]), cells[:, 2])
        skills = np.zeros((n, len(SERVICES)), dtype=np.bool_)
        if skill_cells:
            cells = np.array(skill_cells, dtype=np.int64)
            skills[cells[:, 0], cells[:, 1]] = True
        widest = max((len(sched) for sched in schedules), default=0)
        piece_start = np.full((n, max(widest, 1)), NEVER_START, dtype=np.int64)
        piece_end = np.full((n, max(widest, 1)), NEVER_END, dtype=np.int64)
        piece_block = np.full((n, max(widest, 1)), -1, dtype=np.int64)
        flat = [
            (i, col, *piece) for i, sched in enumerate(schedules) for col, piece in enumerate(sched)
        ]
        if flat:
            cells = np.array(flat, dtype=np.int64)
            piece_start[cells[:, 0], cells[:, 1]] = cells[:, 2]
            piece_end[cells[:, 0], cells[:, 1]] = cells[:, 3]
            piece_block[cells[:, 0], cells[:, 1]] = cells[:, 4]
        remaining = table[:, 5].astype(np.int64)
        xyz = unit_vectors(lat, lon) if n else np.zeros((0, 3))
        trees: dict[Service, ServiceTree] = {}
        for service, col in service_col.items():
            bookable = (remaining > 0) & (piece_block[:, 0] >= 0)
            members = np.flatnonzero(skills[:, col] & bookable).astype(np.int64)
            if members.size:
                trees[service] = ServiceTree(cKDTree(xyz[members]), members)
        return cls(
            helpers=tuple(ordered),
            ids=tuple(h.id for h in ordered),
            index={h.id: i for i, h in enumerate(ordered)},
            id_array=np.array([h.id for h in ordered], dtype=np.str_),
            provider_array=np.array([h.provider_id or "" for h in ordered], dtype=np.str_),
            lat=lat,
            lon=lon,
            kind=table[:, 2].astype(np.int8),
            gender=table[:, 3].astype(np.int8),
            crew=table[:, 4].astype(np.int64),
            remaining=remaining,
            recent_minutes=table[:, 6].astype(np.int64),
            rating=table[:, 7].copy(),
            skills=skills,
            cert_expiry=cert_expiry,
            piece_start=piece_start,
            piece_end=piece_end,
            piece_block=piece_block,
            block_key=policy.block_key,
            one_job=one_job,
            all_tree=cKDTree(xyz),
            trees=trees,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def blacklisted(self, policy: Policy) -> BoolArray:
        listed = policy.blacklisted_providers
        if not listed:
            return np.zeros(len(self.ids), dtype=np.bool_)
        names = np.array(sorted(listed - {""}), dtype=np.str_)
        return np.isin(self.id_array, names) | np.isin(self.provider_array, names)


@dataclass(frozen=True, slots=True, eq=False)
class RequestBatch:
    requests: tuple[Request, ...]
    ids: tuple[str, ...]
    requirements: tuple[Requirement | None, ...]
    lat: FloatArray
    lon: FloatArray
    service: npt.NDArray[np.int8]
    offered: BoolArray  # the district has a rule for the service
    window_start: IntArray
    window_end: IntArray
    duration: IntArray
    earliest: IntArray  # max(window start, now): waiting counts from here
    kinds_mask: npt.NDArray[np.int8]  # bit 0 volunteer, bit 1 provider
    # (requests, groups, certificate kinds): one valid certificate needed from each group.
    cert_groups: BoolArray
    min_crew: IntArray
    radius: IntArray  # minutes
    gender: npt.NDArray[np.int8]  # binding preferred gender, -1 when none binds
    penalty: IntArray  # cost of leaving it unmatched
    elder_helper: IntArray  # pool index of the elder as a helper, -1 if not one
    blocked_keys: IntArray  # sorted request * helpers + helper of blocked pairs
    previous_keys: IntArray  # sorted keys of (request, previous helper) pairs
    previous_rating: FloatArray  # aligned with previous_keys

    @classmethod
    def build(
        cls, requests: Sequence[Request], pool: HelperPool, *, policy: Policy, now: int
    ) -> RequestBatch:
        ordered = _sorted_unique(requests, "request")
        n = len(ordered)
        h = len(pool)
        # Few distinct (service, grade, lifting) combinations: derive each requirement once.
        profiles: dict[tuple[Service, int, bool], int] = {}
        profile_req: list[Requirement | None] = []
        service_code = {service: code for code, service in enumerate(SERVICES)}
        weights = policy.weights
        index = pool.index
        requirements: list[Requirement | None] = []
        profile_of: list[int] = []
        scalars: list[tuple[float, float, int, int, int, int, int, int, int]] = []
        blocked: list[int] = []
        previous: dict[int, float] = {}
        for i, r in enumerate(ordered):
            key = (r.service, int(r.grade), r.needs_lifting)
            p = profiles.get(key)
            if p is None:
                p = profiles[key] = len(profile_req)
                profile_req.append(policy.requirement_for(r.service, r.grade, r.needs_lifting))
            req = profile_req[p]
            requirements.append(req)
            profile_of.append(p)
            wanted = -1
            if req is not None and req.gender_binding and r.preferred_gender is not None:
                wanted = GENDER_CODE[r.preferred_gender]
            scalars.append(
                (
                    r.location.lat,
                    r.location.lon,
                    service_code[r.service],
                    r.window.start,
                    r.window.end,
                    r.duration,
                    wanted,
                    unmatched_penalty(weights, r),
                    index.get(r.elder_id, -1),
                )
            )
            for helper_id in r.blocked_helpers:
                j = index.get(helper_id)
                if j is not None:
                    blocked.append(i * h + j)
            for prev in r.previous_helpers:  # the last listed rating wins, as in cost.py
                j = index.get(prev.helper_id)
                if j is not None:
                    previous[i * h + j] = prev.rating
        # Per profile: certificate groups, kinds, crew, radius; spread to requests by index.
        n_profiles = max(len(profile_req), 1)
        most_groups = max(
            (len(q.certificate_groups) for q in profile_req if q is not None), default=0
        )
        groups = np.zeros((n_profiles, max(most_groups, 1), len(CERT_KINDS)), dtype=np.bool_)
        per_profile = np.zeros((n_profiles, 4), dtype=np.int64)
        for p, req in enumerate(profile_req):
            if req is None:
                continue
            for g, group in enumerate(req.certificate_groups):
                for col, kind in enumerate(CERT_KINDS):
                    groups[p, g, col] = kind in group
            per_profile[p, 0] = sum(1 << KIND_CODE[k] for k in req.allowed_kinds)
            per_profile[p, 1] = req.min_crew
            per_profile[p, 2] = req.radius_minutes
            per_profile[p, 3] = 1
        which = np.array(profile_of, dtype=np.int64)
        spread = per_profile[which] if n else per_profile[:0]
        lat_lon = np.array([row[:2] for row in scalars], dtype=np.float64).reshape(n, 2)
        ints = np.array([row[2:] for row in scalars], dtype=np.int64).reshape(n, 7)
        previous_keys = np.array(sorted(previous), dtype=np.int64)
        window_start = ints[:, 1].copy()
        return cls(
            requests=tuple(ordered),
            ids=tuple(r.id for r in ordered),
            requirements=tuple(requirements),
            lat=lat_lon[:, 0].copy(),
            lon=lat_lon[:, 1].copy(),
            service=ints[:, 0].astype(np.int8),
            offered=spread[:, 3].astype(np.bool_),
            window_start=window_start,
            window_end=ints[:, 2].copy(),
            duration=ints[:, 3].copy(),
            earliest=np.maximum(window_start, now),
            kinds_mask=spread[:, 0].astype(np.int8),
            cert_groups=groups[which] if n else groups[:0],
            min_crew=np.where(spread[:, 3] > 0, spread[:, 1], 1),
            radius=spread[:, 2].copy(),
            gender=ints[:, 4].astype(np.int8),
            penalty=ints[:, 5].copy(),
            elder_helper=ints[:, 6].copy(),
            blocked_keys=np.array(sorted(blocked), dtype=np.int64),
            previous_keys=previous_keys,
            previous_rating=np.array([previous[k] for k in previous_keys], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.ids)
