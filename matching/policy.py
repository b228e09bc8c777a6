"""District policy as data: who may serve each service, with which certificates, how far away.

The market loads the policy in force for the district at `now` and passes it in; nothing here
is a constant the district cannot change. `Policy.version` names the record that decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from matching.cost import CostWeights
from matching.geo import TravelModel
from matching.types import CertificateKind, Grade, HelperKind, Request, Service

ANY_KIND = frozenset(HelperKind)
PROVIDER_ONLY = frozenset({HelperKind.PROVIDER})


@dataclass(frozen=True, slots=True)
class ServiceRule:
    """How one service may be served.

    From `certified_from_grade` upwards (e.g. moderate for bathing) only provider staff holding
    every `certified_certificates` kind and at least one `certified_any_of` kind (when that is
    not empty), dispatched at least `certified_min_staff` strong, may serve; volunteers never do.
    """

    allowed_kinds: frozenset[HelperKind] = ANY_KIND
    required_certificates: frozenset[CertificateKind] = frozenset()  # needed at every grade
    certified_from_grade: Grade | None = None
    certified_certificates: frozenset[CertificateKind] = frozenset()  # all of these
    certified_any_of: frozenset[CertificateKind] = frozenset()  # and one of these
    certified_min_staff: int = 1
    radius_minutes: int = 15  # the 15-minute service circle
    intimate: bool = False  # an elder's gender preference binds for intimate care
    # Shortest block (schedule.py) of a helper who offers this service: its usual length and
    # travel both ways, so that a canteen's meals and a volunteer's escorts both fit.
    block_minutes: int = 0

    def __post_init__(self) -> None:
        if not self.allowed_kinds:
            raise ValueError("a service rule must allow at least one kind of helper")
        if self.radius_minutes < 0 or self.certified_min_staff < 1:
            raise ValueError("radius must be non-negative and minimum staff at least 1")
        if self.block_minutes < 0:
            raise ValueError("block_minutes must not be negative")


def default_rules() -> Mapping[Service, ServiceRule]:
    """The national defaults of domain.md; districts override per service."""
    return MappingProxyType(
        {
            Service.MEAL: ServiceRule(),
            Service.BATHING: ServiceRule(
                certified_from_grade=Grade.MODERATE,
                certified_certificates=frozenset({CertificateKind.BATHING}),
                certified_min_staff=2,
                intimate=True,
            ),
            Service.CLEANING: ServiceRule(),
            Service.ESCORT: ServiceRule(),
            Service.MEDICAL: ServiceRule(
                certified_from_grade=Grade.MODERATE,
                certified_any_of=frozenset({CertificateKind.NURSE, CertificateKind.CAREGIVER}),
                intimate=True,
            ),
            Service.EMERGENCY: ServiceRule(),
            Service.VISIT: ServiceRule(),
        }
    )


@dataclass(frozen=True, slots=True)
class Requirement:
    """What one request demands of a helper, derived from its service rule and the elder."""

    service: Service
    allowed_kinds: frozenset[HelperKind]
    # The helper needs a certificate valid to the end of the window from every group.
    certificate_groups: tuple[frozenset[CertificateKind], ...]
    min_crew: int
    radius_minutes: int
    gender_binding: bool
    certified: bool  # certified provider staff only (the grade rule applied)

    @property
    def certificates(self) -> frozenset[CertificateKind]:
        """Every kind named in any group."""
        return frozenset().union(*self.certificate_groups)


@dataclass(frozen=True, slots=True)
class Policy:
    rules: Mapping[Service, ServiceRule] = field(default_factory=default_rules)
    lifting_from_grade: Grade = Grade.MODERATE
    lifting_certificates: frozenset[CertificateKind] = frozenset({CertificateKind.LIFTING})
    lifting_any_of: frozenset[CertificateKind] = frozenset()
    blacklisted_providers: frozenset[str] = frozenset()
    travel: TravelModel = field(default_factory=TravelModel)
    weights: CostWeights = field(default_factory=CostWeights)
    candidates_per_request: int = 16  # the cheapest feasible helpers kept per request
    # Shortest block a helper's day is cut into per job (schedule.py), unless the services
    # they offer ask for longer (`ServiceRule.block_minutes`).
    min_block_minutes: int = 30
    version: str = "default"

    def __post_init__(self) -> None:
        if self.candidates_per_request < 1:
            raise ValueError("candidates_per_request must be at least 1")
        if self.min_block_minutes < 1:
            raise ValueError("min_block_minutes must be at least 1")
        radius = max((rule.radius_minutes for rule in self.rules.values()), default=0)
        self.weights.check(radius)

    def block_minutes(self, skills: frozenset[Service]) -> int:
        """Shortest block for a helper with these skills."""
        longest = max((self.rules[s].block_minutes for s in skills if s in self.rules), default=0)
        return max(self.min_block_minutes, longest)

    @property
    def block_key(self) -> tuple[int, ...]:
        """Everything blocks depend on: a helper pool is only valid for an equal key."""
        per_service = (self.rules[s].block_minutes if s in self.rules else -1 for s in Service)
        return (self.min_block_minutes, *per_service)

    def rule_for(self, service: Service) -> ServiceRule | None:
        return self.rules.get(service)

    def requirement(self, request: Request) -> Requirement | None:
        """None when the district does not offer the service at all."""
        return self.requirement_for(request.service, request.grade, request.needs_lifting)

    def requirement_for(
        self, service: Service, grade: Grade, needs_lifting: bool
    ) -> Requirement | None:
        rule = self.rules.get(service)
        if rule is None:
            return None
        service_certified = rule.certified_from_grade is not None and (
            grade >= rule.certified_from_grade
        )
        lifting_certified = needs_lifting and grade >= self.lifting_from_grade
        groups: list[frozenset[CertificateKind]] = []

        def need(all_of: frozenset[CertificateKind], any_of: frozenset[CertificateKind]) -> None:
            for kind in sorted(all_of):
                if frozenset({kind}) not in groups:
                    groups.append(frozenset({kind}))
            if any_of and any_of not in groups:
                groups.append(any_of)

        need(rule.required_certificates, frozenset())
        if service_certified:
            need(rule.certified_certificates, rule.certified_any_of)
        if lifting_certified:
            need(self.lifting_certificates, self.lifting_any_of)
        certified = service_certified or lifting_certified
        return Requirement(
            service=service,
            allowed_kinds=rule.allowed_kinds & PROVIDER_ONLY if certified else rule.allowed_kinds,
            certificate_groups=tuple(groups),
            min_crew=rule.certified_min_staff if service_certified else 1,
            radius_minutes=rule.radius_minutes,
            gender_binding=rule.intimate,
            certified=certified,
        )
