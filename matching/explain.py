"""Why a request stayed unmatched, in words and counts.

For each unmatched request every helper in its service circle is run through the hard rules
in funnel order (`constraints.HARD_CONSTRAINTS`); the count still standing after each rule is
kept, and the rule at which the count reaches zero is the reason. If some helpers passed every
rule, they were all taken by other requests in the same run (or would have had to be in two
places at once).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from matching.candidates import check_pairs
from matching.geo import chord_for_km, unit_vectors
from matching.policy import Policy, Requirement
from matching.pool import SERVICES, HelperPool, RequestBatch
from matching.types import FunnelStep, HelperKind, ReasonCode, Request, Unmatched

IntArray = npt.NDArray[np.int64]


def _circle(requirement: Requirement, policy: Policy) -> str:
    km = policy.travel.reach_km(requirement.radius_minutes)
    return f"within {requirement.radius_minutes} min travel (about {km:.1f} km)"


def _helpers(n: int) -> str:
    return "1 helper" if n == 1 else f"{n} helpers"


def _message(
    code: ReasonCode,
    request: Request,
    requirement: Requirement,
    policy: Policy,
    *,
    before: int,
    expired: int,
) -> str:
    """`before`: helpers still standing when the deciding rule was applied."""
    service = request.service.value
    circle = _circle(requirement, policy)

    def them(single: str, plural: str) -> str:
        return single if before == 1 else f"all {before} {plural}"

    match code:
        case ReasonCode.NO_HELPER_IN_REACH:
            return f"no helper {circle}"
        case ReasonCode.NO_SKILL_IN_REACH:
            return f"{_helpers(before)} {circle}, none offers {service}"
        case ReasonCode.BLACKLISTED:
            listed = them("it is", "are")
            return f"{_helpers(before)} offering {service} {circle}, {listed} black-listed"
        case ReasonCode.KIND_NOT_PERMITTED:
            if requirement.certified and HelperKind.VOLUNTEER not in requirement.allowed_kinds:
                return (
                    f"{_helpers(before)} offering {service} {circle}, "
                    f"{them('it is a volunteer', 'are volunteers')}; "
                    f"{service} for an elder at {request.grade.name.lower()} grade needs "
                    "certified provider staff"
                )
            kinds = ", ".join(sorted(k.value for k in requirement.allowed_kinds)) or "none"
            return (
                f"{_helpers(before)} offering {service} {circle}, none of a kind the district "
                f"allows for it ({kinds})"
            )
        case ReasonCode.CREW_TOO_SMALL:
            return (
                f"{_helpers(before)} permitted for {service} {circle}, none sent "
                f"{requirement.min_crew} staff strong as the policy requires"
            )
        case ReasonCode.CERTIFICATE_EXPIRED | ReasonCode.CERTIFICATE_MISSING:
            kinds = " and ".join(
                " or ".join(sorted(k.value for k in group))
                for group in requirement.certificate_groups
            )
            if expired:
                return (
                    f"{_helpers(before)} permitted for {service} {circle}; {expired} with a "
                    f"{kinds} certificate that expires before the booked window ends, "
                    f"{before - expired} without one"
                )
            return (
                f"{_helpers(before)} permitted for {service} {circle}, "
                f"none holds a {kinds} certificate"
            )
        case ReasonCode.GENDER_MISMATCH:
            wanted = request.preferred_gender.value if request.preferred_gender else "any"
            return (
                f"{_helpers(before)} qualified for {service} {circle}, none {wanted} as the "
                "elder asked for this intimate care"
            )
        case ReasonCode.EXCLUDED_BY_ELDER:
            return (
                f"{_helpers(before)} qualified for {service} {circle}, "
                f"{them('it is', 'are')} blocked by the "
                "elder (or the elder themself)"
            )
        case ReasonCode.NOT_AVAILABLE:
            return (
                f"{_helpers(before)} qualified for {service} {circle}, "
                f"{them('busy', 'busy')} in that "
                "window (travel both ways included)"
            )
        case ReasonCode.NO_CAPACITY:
            return (
                f"{_helpers(before)} qualified for {service} and free in that window {circle}, "
                f"{them('it is', 'are')} fully booked"
            )
        case ReasonCode.TAKEN_BY_OTHERS:
            return (
                f"{_helpers(before)} could serve it, but every block of their time that fits "
                "this window went to other requests in this run (higher priority or lower "
                "total cost)"
            )
        case ReasonCode.SERVICE_NOT_OFFERED:
            return f"the district policy ({policy.version}) has no rule for {service}"
        case ReasonCode.WINDOW_CLOSED:
            return "the booked window no longer fits the service even if someone started now"
    raise AssertionError(f"unhandled reason {code}")


def explain(
    rows: IntArray, batch: RequestBatch, pool: HelperPool, *, policy: Policy, now: int
) -> tuple[Unmatched, ...]:
    """One `Unmatched` per row of `batch` in `rows` (ascending)."""
    out: dict[int, Unmatched] = {}
    open_rows = batch.offered & (batch.earliest + batch.duration <= batch.window_end)
    for row in rows.tolist():
        if not batch.offered[row]:
            code = ReasonCode.SERVICE_NOT_OFFERED
        elif not open_rows[row]:
            code = ReasonCode.WINDOW_CLOSED
        else:
            continue
        request = batch.requests[row]
        message = (
            f"the district policy ({policy.version}) has no rule for {request.service.value}"
            if code is ReasonCode.SERVICE_NOT_OFFERED
            else "the booked window no longer fits the service even if someone started now"
        )
        out[row] = Unmatched(request.id, code, message, int(batch.penalty[row]))
    pending = rows[open_rows[rows]]
    blacklisted = pool.blacklisted(policy)
    xyz = unit_vectors(batch.lat, batch.lon)
    for code_index, _service in enumerate(SERVICES):
        group = pending[batch.service[pending] == code_index]
        if group.size == 0:
            continue
        radius = int(batch.radius[group].max())
        bound = chord_for_km(policy.travel.reach_km(radius)) * (1.0 + 1e-9)
        if len(pool):
            near = pool.all_tree.query_ball_point(xyz[group], bound, workers=-1)
            lengths = np.fromiter((len(n) for n in near), np.int64, group.size)
            h = (
                np.concatenate([np.asarray(n, dtype=np.int64) for n in near])
                if lengths.sum()
                else np.zeros(0, dtype=np.int64)
            )
        else:
            lengths = np.zeros(group.size, dtype=np.int64)
            h = np.zeros(0, dtype=np.int64)
        local = np.repeat(np.arange(group.size), lengths)
        checks = check_pairs(
            batch, pool, group[local], h, policy=policy, now=now, blacklisted=blacklisted
        )
        alive = np.ones(local.size, dtype=np.bool_)
        counts = []
        expired_at_cert = np.zeros(group.size, dtype=np.int64)
        for stage, holds in checks.stages:
            if stage is ReasonCode.CERTIFICATE_MISSING:
                expired_at_cert = np.bincount(
                    local[alive & ~holds & checks.cert_expired], minlength=group.size
                )
            alive &= holds
            counts.append(np.bincount(local[alive], minlength=group.size))
        table = np.stack(counts, axis=1) if counts else np.zeros((group.size, 0), np.int64)
        codes = [stage for stage, _ in checks.stages]
        for i, row in enumerate(group.tolist()):
            out[row] = _unmatched(
                batch, row, table[i], codes, int(expired_at_cert[i]), policy=policy
            )
    return tuple(out[row] for row in rows.tolist())


def _unmatched(
    batch: RequestBatch,
    row: int,
    remaining: IntArray,
    codes: list[ReasonCode],
    expired: int,
    *,
    policy: Policy,
) -> Unmatched:
    request = batch.requests[row]
    requirement = batch.requirements[row]
    assert requirement is not None  # rows without a rule were answered before
    zero = np.flatnonzero(remaining == 0)
    if zero.size:
        stop = int(zero[0])
        code = codes[stop]
        if code is ReasonCode.CERTIFICATE_MISSING and expired:
            code = ReasonCode.CERTIFICATE_EXPIRED
        steps = tuple(FunnelStep(codes[i], int(remaining[i])) for i in range(stop + 1))
        before = int(remaining[stop - 1]) if stop else 0
    else:
        code = ReasonCode.TAKEN_BY_OTHERS
        steps = tuple(FunnelStep(c, int(n)) for c, n in zip(codes, remaining, strict=True))
        before = int(remaining[-1])
    message = _message(
        code,
        request,
        requirement,
        policy,
        before=before,
        expired=expired if code is ReasonCode.CERTIFICATE_EXPIRED else 0,
    )
    return Unmatched(request.id, code, message, int(batch.penalty[row]), steps)
