"""The service catalogue of a district, read from its policy, and the rules a helper must meet.

The catalogue is not a table of its own: what can be booked, for how long, by whom and with
which cancellation window is district policy (`market.policy.ServiceRules`), so a policy
version changes the catalogue and every refusal names the rule and the version that decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import matching
from market.assessment import Level
from market.policy import (
    CertificateKind,
    DistrictPolicy,
    HelperKind,
    PolicyForbids,
    ServiceCode,
    ServiceRule,
)

NAMES_ZH = {
    ServiceCode.MEAL: "助餐",
    ServiceCode.BATHING: "助浴",
    ServiceCode.CLEANING: "助洁",
    ServiceCode.ESCORT: "助行/陪诊",
    ServiceCode.MEDICAL: "助医",
    ServiceCode.EMERGENCY: "助急",
    ServiceCode.VISIT: "探访关爱",
}
LIFTING_PATH = "services.lifting"
# Genders a helper can declare and an elder can ask for; anything else ("any", unset) binds
# nobody.
GENDERS = ("female", "male")

_GRADES = {
    Level.INTACT: matching.Grade.INTACT,
    Level.MILD: matching.Grade.MILD,
    Level.MODERATE: matching.Grade.MODERATE,
    Level.SEVERE: matching.Grade.SEVERE,
    Level.COMPLETE_LOSS: matching.Grade.COMPLETE_LOSS,
}


def level_of(raw: str | None) -> Level:
    # An elder not yet assessed counts as intact: nothing known says otherwise.
    return Level(raw) if raw else Level.INTACT


def grade_of(level: Level) -> matching.Grade:
    return _GRADES[level]


def who_fulfils(rule: ServiceRule) -> str:
    kinds = rule.allowed_helpers
    if kinds == frozenset(HelperKind):
        return "both"
    return next(iter(kinds)).value


def catalogue_json(version: int, policy: DistrictPolicy) -> dict[str, Any]:
    services = []
    for code in ServiceCode:
        rule = policy.services.rule(code)
        services.append(
            {
                "code": code.value,
                "name_zh": NAMES_ZH[code],
                "default_duration_minutes": rule.default_duration_minutes,
                "fulfilled_by": who_fulfils(rule),
                "certified_only_from": rule.certified_only_from.value
                if rule.certified_only_from
                else None,
                "certificates": sorted(c.value for c in rule.certificates),
                "min_staff": rule.min_staff,
                "certified_min_staff": rule.certified_min_staff,
                "radius_minutes": rule.radius_minutes,
                "cancellation_window_minutes": rule.cancellation_window_minutes,
                "hour_weight": {
                    "numerator": rule.hour_weight.numerator,
                    "denominator": rule.hour_weight.denominator,
                },
                "intimate": rule.intimate,
            }
        )
    lifting = policy.services.lifting
    return {
        "policy_version": version,
        "services": services,
        "lifting": {
            "certified_only_from": lifting.certified_only_from.value,
            "certificates": sorted(c.value for c in lifting.certificates),
        },
    }


def engine_certificates(kinds: frozenset[CertificateKind]) -> frozenset[matching.CertificateKind]:
    return frozenset(matching.CertificateKind(kind.value) for kind in kinds)


def matching_policy(version: int, policy: DistrictPolicy) -> matching.Policy:
    """The district's service rules in the matcher's terms: who may serve, with which
    certificates (any one of the rule's kinds) from which grade, how far away."""
    rules = {}
    for code in ServiceCode:
        rule = policy.services.rule(code)
        certified = rule.certified_only_from
        rules[matching.Service(code.value)] = matching.ServiceRule(
            allowed_kinds=frozenset(matching.HelperKind(k.value) for k in rule.allowed_helpers),
            certified_from_grade=grade_of(certified) if certified else None,
            certified_any_of=engine_certificates(rule.certificates) if certified else frozenset(),
            certified_min_staff=rule.certified_min_staff,
            radius_minutes=rule.radius_minutes,
            intimate=rule.intimate,
            # A helper's day is cut into blocks that hold the usual job with travel both ways.
            block_minutes=rule.default_duration_minutes + 2 * rule.radius_minutes,
        )
    lifting = policy.services.lifting
    return matching.Policy(
        rules=rules,
        lifting_from_grade=grade_of(lifting.certified_only_from),
        lifting_certificates=frozenset(),
        lifting_any_of=engine_certificates(lifting.certificates),
        version=str(version),
    )


def engine_certificate(kind: CertificateKind, expires: date) -> matching.Certificate:
    """Valid through its expiry date: the matcher compares minutes with the window's end, as
    `check_helper` compares the expiry date with the window's end date (both in UTC)."""
    end_of_day = datetime.combine(expires + timedelta(days=1), time.min, UTC)
    return matching.Certificate(
        matching.CertificateKind(kind.value), matching.minutes_since_epoch(end_of_day) - 1
    )


@dataclass(frozen=True)
class HelperFacts:
    kind: HelperKind
    # Verified certificates and their expiry dates.
    certificates: Mapping[CertificateKind, date]
    crew_size: int = 1  # staff sent together under this account
    gender: str | None = None  # as the helper declared it; None if not


def binding_gender(preference: str | None) -> str | None:
    """The helper gender an elder's intimate-care preference asks for, None for no preference."""
    return preference if preference in GENDERS else None


def _valid_kinds(facts: HelperFacts, on: date) -> frozenset[CertificateKind]:
    return frozenset(kind for kind, expires in facts.certificates.items() if expires >= on)


def check_helper(
    facts: HelperFacts,
    *,
    service: ServiceCode,
    level: Level,
    needs_lifting: bool,
    preferred_gender: str | None,
    on: date,
    version: int,
    policy: DistrictPolicy,
) -> None:
    """Raise `PolicyForbids` naming the rule if this helper may not serve this booking: the
    matcher's `kind_permitted`, `crew_sufficient`, `certificates_valid` and `gender_respected`
    for one pair."""
    rule = policy.services.rule(service)
    path = f"services.{service.value}"
    if facts.kind not in rule.allowed_helpers:
        raise PolicyForbids(
            f"{path}.allowed_helpers",
            version,
            f"{service.value} is not served by a {facts.kind.value}",
        )
    if rule.needs_certified_staff(level):
        crew = rule.certified_min_staff
        _check_certified(facts, level, on, version, path, rule.certificates, crew)
    lifting = policy.services.lifting
    if needs_lifting and lifting.needs_certified_staff(level):
        # Lifting is one certified person's work: it asks for no crew of its own.
        _check_certified(facts, level, on, version, LIFTING_PATH, lifting.certificates, 1)
    wanted = binding_gender(preferred_gender)
    if rule.intimate and wanted is not None and facts.gender != wanted:
        raise PolicyForbids(
            f"{path}.intimate",
            version,
            f"{service.value} is intimate care and the elder asked for a {wanted} helper",
        )


def _check_certified(
    facts: HelperFacts,
    level: Level,
    on: date,
    version: int,
    path: str,
    certificates: frozenset[CertificateKind],
    min_staff: int,
) -> None:
    if facts.kind is not HelperKind.PROVIDER:
        raise PolicyForbids(
            f"{path}.certified_only_from",
            version,
            f"for an elder assessed {level.value} only certified provider staff may serve",
        )
    if facts.crew_size < min_staff:
        raise PolicyForbids(
            f"{path}.certified_min_staff",
            version,
            f"this service needs a crew of {min_staff} certified staff; this helper is sent "
            f"as {facts.crew_size}",
        )
    if not (_valid_kinds(facts, on) & certificates):
        wanted = ", ".join(sorted(c.value for c in certificates))
        raise PolicyForbids(
            f"{path}.certificates",
            version,
            f"a valid verified certificate is needed (one of: {wanted})",
        )
