"""Helpers and requests as column arrays, the form every vectorised rule works on.

A `HelperPool` depends only on the helpers, so the market can build it once per refresh and
reuse it for many `urgent` calls; a `RequestBatch` depends on the policy and `now`.
Both are sorted by id, which fixes every later order (determinism rests on this).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from matching.cost import unmatched_penalty
from matching.geo import unit_vectors
from matching.policy import Policy, Requirement
from matching.schedule import pieces
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


def _sorted_unique(items: Sequence[Helper] | Sequence[Request], what: str) -> list:
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
    min_block_minutes: int
    all_tree: cKDTree  # every helper, for explaining what is in reach
    trees: dict[Service, ServiceTree]

    @classmethod
    def build(cls, helpers: Sequence[Helper], *, policy: Policy) -> HelperPool:
        """Only `policy.min_block_minutes` is used; `match` checks it against its policy."""
        ordered = _sorted_unique(helpers, "helper")
        n = len(ordered)
        lat = np.fromiter((h.location.lat for h in ordered), np.float64, n)
        lon = np.fromiter((h.location.lon for h in ordered), np.float64, n)
        cert_expiry = np.full((n, len(CERT_KINDS)), NO_CERT, dtype=np.int64)
        cert_col = {kind: col for col, kind in enumerate(CERT_KINDS)}
        schedules = [
            pieces(h.availability, h.remaining_capacity, policy.min_block_minutes) for h in ordered
        ]
        widest = max((len(sched) for sched in schedules), default=0)
        piece_start = np.full((n, max(widest, 1)), NEVER_START, dtype=np.int64)
        piece_end = np.full((n, max(widest, 1)), NEVER_END, dtype=np.int64)
        piece_block = np.full((n, max(widest, 1)), -1, dtype=np.int64)
        skills = np.zeros((n, len(SERVICES)), dtype=np.bool_)
        service_col = {service: col for col, service in enumerate(SERVICES)}
        for i, helper in enumerate(ordered):
            for cert in helper.certificates:
                col = cert_col[cert.kind]
                cert_expiry[i, col] = max(cert_expiry[i, col], cert.expires_at)
            for col, (start, end, block) in enumerate(schedules[i]):
                piece_start[i, col] = start
                piece_end[i, col] = end
                piece_block[i, col] = block
            for service in helper.skills:
                skills[i, service_col[service]] = True
        remaining = np.fromiter((h.remaining_capacity for h in ordered), np.int64, n)
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
            lat=lat,
            lon=lon,
            kind=np.fromiter((KIND_CODE[h.kind] for h in ordered), np.int8, n),
            gender=np.fromiter((GENDER_CODE[h.gender] for h in ordered), np.int8, n),
            crew=np.fromiter((h.crew_size for h in ordered), np.int64, n),
            remaining=remaining,
            recent_minutes=np.fromiter((h.recent_minutes for h in ordered), np.int64, n),
            rating=np.fromiter(
                (np.nan if h.rating is None else h.rating for h in ordered), np.float64, n
            ),
            skills=skills,
            cert_expiry=cert_expiry,
            piece_start=piece_start,
            piece_end=piece_end,
            piece_block=piece_block,
            min_block_minutes=policy.min_block_minutes,
            all_tree=cKDTree(xyz),
            trees=trees,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def blacklisted(self, policy: Policy) -> BoolArray:
        listed = policy.blacklisted_providers
        if not listed:
            return np.zeros(len(self.ids), dtype=np.bool_)
        return np.fromiter(
            (
                h.id in listed or (h.provider_id is not None and h.provider_id in listed)
                for h in self.helpers
            ),
            np.bool_,
            len(self.ids),
        )


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
    cert_needed: BoolArray  # (requests, certificate kinds)
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
        cache: dict[tuple[Service, int, bool], Requirement | None] = {}
        requirements: list[Requirement | None] = []
        for r in ordered:
            key = (r.service, int(r.grade), r.needs_lifting)
            if key not in cache:
                cache[key] = policy.requirement_for(r.service, r.grade, r.needs_lifting)
            requirements.append(cache[key])
        cert_needed = np.zeros((n, len(CERT_KINDS)), dtype=np.bool_)
        kinds_mask = np.zeros(n, dtype=np.int8)
        min_crew = np.ones(n, dtype=np.int64)
        radius = np.zeros(n, dtype=np.int64)
        gender = np.full(n, -1, dtype=np.int8)
        elder_helper = np.full(n, -1, dtype=np.int64)
        blocked: list[int] = []
        previous: dict[int, float] = {}
        for i, (r, req) in enumerate(zip(ordered, requirements, strict=True)):
            if req is not None:
                for col, kind in enumerate(CERT_KINDS):
                    cert_needed[i, col] = kind in req.certificates
                kinds_mask[i] = sum(1 << KIND_CODE[k] for k in req.allowed_kinds)
                min_crew[i] = req.min_crew
                radius[i] = req.radius_minutes
                if req.gender_binding and r.preferred_gender is not None:
                    gender[i] = GENDER_CODE[r.preferred_gender]
            elder_helper[i] = pool.index.get(r.elder_id, -1)
            for helper_id in r.blocked_helpers:
                j = pool.index.get(helper_id)
                if j is not None:
                    blocked.append(i * h + j)
            for prev in r.previous_helpers:  # the last listed rating wins, as in cost.py
                j = pool.index.get(prev.helper_id)
                if j is not None:
                    previous[i * h + j] = prev.rating
        previous_keys = np.array(sorted(previous), dtype=np.int64)
        window_start = np.fromiter((r.window.start for r in ordered), np.int64, n)
        return cls(
            requests=tuple(ordered),
            ids=tuple(r.id for r in ordered),
            requirements=tuple(requirements),
            lat=np.fromiter((r.location.lat for r in ordered), np.float64, n),
            lon=np.fromiter((r.location.lon for r in ordered), np.float64, n),
            service=np.fromiter((SERVICES.index(r.service) for r in ordered), np.int8, n),
            offered=np.fromiter((q is not None for q in requirements), np.bool_, n),
            window_start=window_start,
            window_end=np.fromiter((r.window.end for r in ordered), np.int64, n),
            duration=np.fromiter((r.duration for r in ordered), np.int64, n),
            earliest=np.maximum(window_start, now),
            kinds_mask=kinds_mask,
            cert_needed=cert_needed,
            min_crew=min_crew,
            radius=radius,
            gender=gender,
            penalty=np.fromiter(
                (unmatched_penalty(policy.weights, r) for r in ordered), np.int64, n
            ),
            elder_helper=elder_helper,
            blocked_keys=np.array(sorted(blocked), dtype=np.int64),
            previous_keys=previous_keys,
            previous_rating=np.array([previous[k] for k in previous_keys], dtype=np.float64),
        )

    def __len__(self) -> int:
        return len(self.ids)
