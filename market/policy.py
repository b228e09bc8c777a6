"""District policy: every threshold the service applies, as versioned data.

Cities differ and change their rules, so nothing here is a constant the code relies on: the
database keeps, per district, policy records (a version, an effective date and the JSON form of
`DistrictPolicy`), and code asks `policy_in_force(...)` for the one that applies at an event's
time. `DEFAULT_POLICY` holds the defaults of the domain notes and seeds a new district.

Units are in the field names: `_minutes`, `_seconds`, `_days`, `_hours`, `_months`, `_years`,
`_metres`, `_fen` (money, 1/100 yuan) and `_bp` (basis points, 1/10000). Integers only.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from market.assessment import Level


class ServiceCode(enum.Enum):
    MEAL = "meal"
    BATHING = "bathing"
    CLEANING = "cleaning"
    ESCORT = "escort"
    MEDICAL = "medical"
    EMERGENCY = "emergency"
    VISIT = "visit"


class HelperKind(enum.Enum):
    VOLUNTEER = "volunteer"
    PROVIDER = "provider"


class CertificateKind(enum.Enum):
    CAREGIVER = "caregiver"  # 养老护理员
    NURSE = "nurse"  # 护士执业证书
    BATHING = "bathing"  # 助浴员 training
    FIRST_AID = "first_aid"
    FOOD_HEALTH = "food_health"  # 健康证 for food handling


class RelationKind(enum.Enum):
    """What one person is to another: a family link says what the family member is to the
    elder; a policy's gift and redemption rules say what the other person is to the giver."""

    SPOUSE = "spouse"
    PARENT = "parent"
    CHILD = "child"
    GRANDPARENT = "grandparent"
    GRANDCHILD = "grandchild"
    SIBLING = "sibling"
    PARENT_IN_LAW = "parent_in_law"
    CHILD_IN_LAW = "child_in_law"  # 儿媳 / 女婿, often the one who books for the elder

    @classmethod
    def parse(cls, value: str) -> RelationKind | None:
        """The kind a stored relation names, None for one this version does not know."""
        try:
            return cls(value)
        except ValueError:
            return None

    @property
    def inverse(self) -> RelationKind:
        """What the other person is to this one (a child's elder is their parent)."""
        return _INVERSE_RELATION[self]


_INVERSE_RELATION = {
    RelationKind.SPOUSE: RelationKind.SPOUSE,
    RelationKind.PARENT: RelationKind.CHILD,
    RelationKind.CHILD: RelationKind.PARENT,
    RelationKind.GRANDPARENT: RelationKind.GRANDCHILD,
    RelationKind.GRANDCHILD: RelationKind.GRANDPARENT,
    RelationKind.SIBLING: RelationKind.SIBLING,
    RelationKind.PARENT_IN_LAW: RelationKind.CHILD_IN_LAW,
    RelationKind.CHILD_IN_LAW: RelationKind.PARENT_IN_LAW,
}


class PriorityFlag(enum.Enum):
    ECONOMIC_HARDSHIP = "economic_hardship"  # 经济困难 (incl. minimum income)
    DISABLED = "disabled"  # 失能/半失能, 失智
    VERY_OLD = "very_old"  # 高龄
    LIVING_ALONE = "living_alone"  # 独居/空巢
    LEFT_BEHIND = "left_behind"  # 留守
    LOST_ONLY_CHILD = "lost_only_child"  # 计划生育特殊家庭
    SEVERE_DISABILITY = "severe_disability"  # 重度残疾
    DISPERSED_DESTITUTE = "dispersed_destitute"  # 分散供养特困


class VisitTier(enum.Enum):
    HIGH_RISK = "high_risk"
    PRIORITY = "priority"
    GENERAL = "general"


# ---- errors ----------------------------------------------------------------------------------


class PolicyError(Exception):
    code = "policy.error"


class PolicyInvalid(PolicyError):
    """A policy document breaks the schema; `problems` holds (path, message) for each fault."""

    code = "policy.invalid"

    def __init__(self, problems: tuple[tuple[str, str], ...]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


class NoPolicyInForce(PolicyError):
    code = "policy.none_in_force"


class PolicyForbids(PolicyError):
    """A refusal by district policy; names the rule (a policy path) and the policy version."""

    code = "policy.forbids"

    def __init__(self, rule: str, version: int, message: str) -> None:
        super().__init__(f"{message} (rule {rule}, policy version {version})")
        self.rule = rule
        self.version = version
        self.message = message


# ---- the policy tree -------------------------------------------------------------------------


class _FieldInvalid(ValueError):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name} {message}")
        self.field_name = field_name
        self.message = message


# Metadata of a field added after policies were first stored: a version written before the
# field existed lacks it and reads with the field's default. Every other field is required.
ADDED_LATER = {"added_later": True}


def _require(condition: bool, field_name: str, message: str) -> None:
    # Raised inside __post_init__; the JSON decoder reports it at the field's path.
    if not condition:
        raise _FieldInvalid(field_name, message)


@dataclass(frozen=True)
class Ratio:
    """An exact fraction, e.g. the hour weight 3/2 for work that earns 1.5 hours per hour."""

    numerator: int
    denominator: int

    def __post_init__(self) -> None:
        _require(self.numerator >= 0, "numerator", "must be 0 or more")
        _require(self.denominator >= 1, "denominator", "must be 1 or more")

    def apply_floor(self, minutes: int) -> int:
        """`minutes` weighted, rounded down to whole minutes (the ledger holds integers)."""
        return minutes * self.numerator // self.denominator


@dataclass(frozen=True)
class Criterion:
    """Matches an elder aged `min_age` or more who has every flag in `flags`."""

    min_age: int
    flags: frozenset[PriorityFlag]

    def __post_init__(self) -> None:
        _require(0 <= self.min_age <= 130, "min_age", "must be 0-130")

    def matches(self, age: int, flags: Iterable[PriorityFlag]) -> bool:
        return age >= self.min_age and self.flags <= frozenset(flags)


@dataclass(frozen=True)
class TimeBankRules:
    deposit_min_age: int = 18
    # Below deposit_min_age only with a guardian's consent or in a supervised group.
    minors_with_guardian: bool = True
    redemption_age: int = 60
    redemption_age_special_difficulty: int = 60
    account_cap_minutes: int = 1500 * 60
    # Hours earned in group volunteering go to the district pool only.
    group_time_donation_only: bool = True
    gift_recipients: frozenset[RelationKind] = frozenset(
        {
            RelationKind.SPOUSE,
            RelationKind.PARENT,
            RelationKind.CHILD,
            RelationKind.GRANDPARENT,
            RelationKind.GRANDCHILD,
        }
    )
    # Who besides the volunteer may redeem the volunteer's hours.
    redeemers: frozenset[RelationKind] = frozenset(
        {
            RelationKind.SPOUSE,
            RelationKind.PARENT,
            RelationKind.CHILD,
            RelationKind.GRANDPARENT,
            RelationKind.GRANDCHILD,
        }
    )
    # The donated pool serves these first, in this order; later ones only after earlier ones.
    pool_priority: tuple[Criterion, ...] = (
        Criterion(min_age=80, flags=frozenset({PriorityFlag.LIVING_ALONE})),
        Criterion(
            min_age=60,
            flags=frozenset(
                {
                    PriorityFlag.ECONOMIC_HARDSHIP,
                    PriorityFlag.DISABLED,
                    PriorityFlag.LIVING_ALONE,
                }
            ),
        ),
    )

    def __post_init__(self) -> None:
        _require(0 <= self.deposit_min_age <= 130, "deposit_min_age", "must be 0-130")
        _require(0 <= self.redemption_age <= 130, "redemption_age", "must be 0-130")
        _require(
            0 <= self.redemption_age_special_difficulty <= 130,
            "redemption_age_special_difficulty",
            "must be 0-130",
        )
        _require(self.account_cap_minutes > 0, "account_cap_minutes", "must be positive")


@dataclass(frozen=True)
class VisitTierRule:
    tier: VisitTier
    interval_days: int
    # Extra visit within this many hours of a major change (0: none required).
    after_major_change_hours: int
    # An elder is in this tier if any criterion matches (tiers are checked in order).
    criteria: tuple[Criterion, ...]

    def __post_init__(self) -> None:
        _require(self.interval_days >= 1, "interval_days", "must be 1 or more")
        _require(
            self.after_major_change_hours >= 0, "after_major_change_hours", "must be 0 or more"
        )


@dataclass(frozen=True)
class VisitRules:
    tiers: tuple[VisitTierRule, ...] = (
        VisitTierRule(
            VisitTier.HIGH_RISK,
            interval_days=7,
            after_major_change_hours=24,
            criteria=(
                Criterion(80, frozenset({PriorityFlag.LIVING_ALONE})),
                Criterion(60, frozenset({PriorityFlag.SEVERE_DISABILITY})),
            ),
        ),
        VisitTierRule(
            VisitTier.PRIORITY,
            interval_days=30,
            after_major_change_hours=0,
            criteria=(
                Criterion(60, frozenset({PriorityFlag.DISABLED})),
                Criterion(60, frozenset({PriorityFlag.DISPERSED_DESTITUTE})),
                Criterion(60, frozenset({PriorityFlag.LOST_ONLY_CHILD})),
            ),
        ),
        VisitTierRule(
            VisitTier.GENERAL,
            interval_days=91,
            after_major_change_hours=0,
            criteria=(Criterion(60, frozenset()),),
        ),
    )
    monthly_rate_target_bp: int = 10_000

    def __post_init__(self) -> None:
        tiers = [rule.tier for rule in self.tiers]
        _require(
            sorted(tiers, key=lambda t: t.value) == sorted(VisitTier, key=lambda t: t.value),
            "tiers",
            "must name each visit tier exactly once",
        )
        _require(
            0 <= self.monthly_rate_target_bp <= 10_000, "monthly_rate_target_bp", "must be 0-10000"
        )

    def tier_rule(self, tier: VisitTier) -> VisitTierRule:
        return next(rule for rule in self.tiers if rule.tier is tier)


@dataclass(frozen=True)
class ServiceRule:
    allowed_helpers: frozenset[HelperKind]
    # From this level on only provider staff holding one of `certificates` may serve.
    certified_only_from: Level | None
    certificates: frozenset[CertificateKind]
    min_staff: int
    # Staff needed when certified staff serve (two for certified bathing).
    certified_min_staff: int
    default_duration_minutes: int
    radius_minutes: int
    cancellation_window_minutes: int
    hour_weight: Ratio
    # Intimate care (bathing, medical help): the elder's preferred helper gender binds, and a
    # helper who declared no gender does not match a preference. A version stored before this
    # field existed reads with the service's default (`ServiceRules`).
    intimate: bool = field(default=False, metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        _require(bool(self.allowed_helpers), "allowed_helpers", "must not be empty")
        if self.certified_only_from is not None:
            _require(
                HelperKind.PROVIDER in self.allowed_helpers,
                "allowed_helpers",
                "must include provider when certified_only_from is set",
            )
            _require(
                bool(self.certificates),
                "certificates",
                "must not be empty when certified_only_from is set",
            )
        _require(1 <= self.min_staff <= 10, "min_staff", "must be 1-10")
        _require(
            self.min_staff <= self.certified_min_staff <= 10,
            "certified_min_staff",
            "must be between min_staff and 10",
        )
        _require(self.default_duration_minutes >= 1, "default_duration_minutes", "must be positive")
        _require(self.radius_minutes >= 1, "radius_minutes", "must be positive")
        _require(
            self.cancellation_window_minutes >= 0,
            "cancellation_window_minutes",
            "must be 0 or more",
        )

    def needs_certified_staff(self, level: Level) -> bool:
        return self.certified_only_from is not None and level.at_least(self.certified_only_from)


def _service(
    *,
    duration: int,
    cancel: int,
    certified_from: Level | None = None,
    certificates: frozenset[CertificateKind] = frozenset(),
    certified_staff: int = 1,
    intimate: bool = False,
) -> ServiceRule:
    return ServiceRule(
        allowed_helpers=frozenset(HelperKind),
        certified_only_from=certified_from,
        certificates=certificates,
        min_staff=1,
        certified_min_staff=certified_staff,
        default_duration_minutes=duration,
        radius_minutes=15,
        cancellation_window_minutes=cancel,
        hour_weight=Ratio(1, 1),
        intimate=intimate,
    )


_DEFAULT_MEAL = _service(duration=30, cancel=120)
_DEFAULT_BATHING = _service(
    duration=60,
    cancel=240,
    certified_from=Level.MODERATE,
    certificates=frozenset({CertificateKind.CAREGIVER, CertificateKind.BATHING}),
    certified_staff=2,
    intimate=True,
)
_DEFAULT_CLEANING = _service(duration=120, cancel=120)
_DEFAULT_ESCORT = _service(duration=180, cancel=120)
_DEFAULT_MEDICAL = _service(
    duration=120,
    cancel=240,
    certified_from=Level.MODERATE,
    certificates=frozenset({CertificateKind.NURSE, CertificateKind.CAREGIVER}),
    intimate=True,
)
# Emergencies cannot be cancelled late: the window is 0.
_DEFAULT_EMERGENCY = _service(duration=60, cancel=0)
_DEFAULT_VISIT = _service(duration=60, cancel=60)


@dataclass(frozen=True)
class LiftingRule:
    """Lifting or transferring an elder, whatever the service: from `certified_only_from` on
    only provider staff holding one of `certificates` may do it (domain rules: lifting for an
    elder at moderate or worse is certified work, never a volunteer's)."""

    certified_only_from: Level
    certificates: frozenset[CertificateKind]

    def __post_init__(self) -> None:
        _require(bool(self.certificates), "certificates", "must not be empty")

    def needs_certified_staff(self, level: Level) -> bool:
        return level.at_least(self.certified_only_from)


# Today's rule, as lifting was first derived from the medical rule's level and certificates.
_DEFAULT_LIFTING = LiftingRule(
    certified_only_from=Level.MODERATE,
    certificates=frozenset({CertificateKind.NURSE, CertificateKind.CAREGIVER}),
)


def lifting_from_medical(medical: ServiceRule) -> LiftingRule:
    """The lifting rule of a version stored before lifting had its own: it was the district's
    medical rule, so a district that tightened medical keeps lifting as tight (never looser
    than the default's level when medical names none)."""
    return LiftingRule(
        certified_only_from=medical.certified_only_from or _DEFAULT_LIFTING.certified_only_from,
        certificates=medical.certificates or _DEFAULT_LIFTING.certificates,
    )


@dataclass(frozen=True)
class ServiceRules:
    """One rule per service code; a field each, so a policy cannot leave a service out; and the
    lifting rule that applies to a booking of any service that needs lifting."""

    meal: ServiceRule = _DEFAULT_MEAL
    bathing: ServiceRule = _DEFAULT_BATHING
    cleaning: ServiceRule = _DEFAULT_CLEANING
    escort: ServiceRule = _DEFAULT_ESCORT
    medical: ServiceRule = _DEFAULT_MEDICAL
    emergency: ServiceRule = _DEFAULT_EMERGENCY
    visit: ServiceRule = _DEFAULT_VISIT
    lifting: LiftingRule = field(default=_DEFAULT_LIFTING, metadata=ADDED_LATER)

    def rule(self, service: ServiceCode) -> ServiceRule:
        rule: ServiceRule = getattr(self, service.value)
        return rule


@dataclass(frozen=True)
class VoucherRules:
    monthly_cap_fen: int = 800 * 100
    share_bp: int = 5_000
    audit_share_bp: int = 100
    eligible_from: Level = Level.MODERATE

    def __post_init__(self) -> None:
        _require(self.monthly_cap_fen >= 0, "monthly_cap_fen", "must be 0 or more")
        _require(0 <= self.share_bp <= 10_000, "share_bp", "must be 0-10000")
        _require(0 <= self.audit_share_bp <= 10_000, "audit_share_bp", "must be 0-10000")


@dataclass(frozen=True)
class LedgerRules:
    # A checkpoint is signed after this many entries or this many seconds, whichever first.
    checkpoint_every_entries: int = 1_000
    checkpoint_every_seconds: int = 300
    # k of m witnesses must co-sign a checkpoint.
    witness_quorum: int = 2
    witness_count: int = 3

    def __post_init__(self) -> None:
        _require(self.checkpoint_every_entries >= 1, "checkpoint_every_entries", "must be positive")
        _require(self.checkpoint_every_seconds >= 1, "checkpoint_every_seconds", "must be positive")
        _require(
            0 <= self.witness_quorum <= self.witness_count,
            "witness_quorum",
            "must be between 0 and witness_count",
        )


# The longest an unacknowledged emergency may wait for either escalation step: a day.
EMERGENCY_DELAY_LIMIT_SECONDS = 86_400


@dataclass(frozen=True)
class BookingRules:
    checkin_distance_tolerance_metres: int = 200
    checkin_time_tolerance_minutes: int = 30
    # Completed services not confirmed or disputed within this period are confirmed.
    auto_confirm_minutes: int = 48 * 60
    offer_timeout_seconds: int = 300
    emergency_fanout: int = 5
    # An emergency nobody acknowledged (no helper accepted it, the centre did not acknowledge
    # it) escalates: to the centre's duty feed, then to the outbound webhook (an SMS gateway),
    # each this long after the call. 0 alerts the duty feed at once; at most a day
    # (`EMERGENCY_DELAY_LIMIT_SECONDS`): a longer wait is no escalation, and a huge one would
    # not fit a date.
    emergency_duty_feed_after_seconds: int = field(default=60, metadata=ADDED_LATER)
    emergency_webhook_after_seconds: int = field(default=180, metadata=ADDED_LATER)
    # An hours- or pool-paid booking cancelled inside its service's cancellation window once a
    # helper has accepted it: this share of the held minutes pays that helper for the time set
    # aside (0: a late cancellation costs nothing). Before the window the hold is released.
    late_cancellation_charge_bp: int = field(default=0, metadata=ADDED_LATER)
    # A rating of this many stars or fewer reaches the centre as a complaint, as does one the
    # elder's side marks as a complaint (0: only those marked).
    complaint_max_stars: int = field(default=2, metadata=ADDED_LATER)

    def __post_init__(self) -> None:
        _require(
            self.checkin_distance_tolerance_metres >= 0,
            "checkin_distance_tolerance_metres",
            "must be 0 or more",
        )
        _require(
            self.checkin_time_tolerance_minutes >= 0,
            "checkin_time_tolerance_minutes",
            "must be 0 or more",
        )
        _require(self.auto_confirm_minutes >= 1, "auto_confirm_minutes", "must be positive")
        _require(self.offer_timeout_seconds >= 1, "offer_timeout_seconds", "must be positive")
        _require(self.emergency_fanout >= 1, "emergency_fanout", "must be positive")
        _require(
            0 <= self.emergency_duty_feed_after_seconds <= EMERGENCY_DELAY_LIMIT_SECONDS,
            "emergency_duty_feed_after_seconds",
            f"must be 0-{EMERGENCY_DELAY_LIMIT_SECONDS}",
        )
        _require(
            self.emergency_webhook_after_seconds >= self.emergency_duty_feed_after_seconds,
            "emergency_webhook_after_seconds",
            "must not come before emergency_duty_feed_after_seconds",
        )
        _require(
            self.emergency_webhook_after_seconds <= EMERGENCY_DELAY_LIMIT_SECONDS,
            "emergency_webhook_after_seconds",
            f"must be at most {EMERGENCY_DELAY_LIMIT_SECONDS}",
        )
        # Five would make every rating a complaint.
        _require(0 <= self.complaint_max_stars <= 4, "complaint_max_stars", "must be 0-4")
        _require(
            0 <= self.late_cancellation_charge_bp <= 10_000,
            "late_cancellation_charge_bp",
            "must be 0-10000",
        )


@dataclass(frozen=True)
class AssessmentRules:
    reassessment_months: int = 6

    def __post_init__(self) -> None:
        _require(1 <= self.reassessment_months <= 60, "reassessment_months", "must be 1-60")


@dataclass(frozen=True)
class RetentionRules:
    access_log_years: int = 3
    # Counted from the end of the service relationship.
    records_years: int = 5

    def __post_init__(self) -> None:
        _require(1 <= self.access_log_years <= 100, "access_log_years", "must be 1-100")
        _require(1 <= self.records_years <= 100, "records_years", "must be 1-100")


@dataclass(frozen=True)
class DistrictPolicy:
    time_bank: TimeBankRules = field(default_factory=TimeBankRules)
    visits: VisitRules = field(default_factory=VisitRules)
    services: ServiceRules = field(default_factory=ServiceRules)
    vouchers: VoucherRules = field(default_factory=VoucherRules)
    ledger: LedgerRules = field(default_factory=LedgerRules)
    bookings: BookingRules = field(default_factory=BookingRules)
    assessment: AssessmentRules = field(default_factory=AssessmentRules)
    retention: RetentionRules = field(default_factory=RetentionRules)


DEFAULT_POLICY = DistrictPolicy()


# ---- JSON form -------------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        # Sorted: the same policy always gives the same JSON.
        return sorted(_encode(item) for item in value)
    if isinstance(value, tuple):
        return [_encode(item) for item in value]
    return value


def policy_to_json(policy: DistrictPolicy) -> dict[str, Any]:
    """The JSON-ready form of `policy`; `policy_from_json` reads it back unchanged."""
    encoded: dict[str, Any] = _encode(policy)
    return encoded


class _Decoder:
    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append((path or "(root)", message))

    def decode(self, tp: Any, value: Any, path: str, fallback: Any = None) -> Any:
        """`value` read as `tp`; `fallback` (the default policy's value at this path) fills
        the added-later fields an object lacks."""
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            if value is None and type(None) in args:
                return None
            (inner,) = [arg for arg in args if arg is not type(None)]
            return self.decode(inner, value, path, fallback)
        if tp is bool:
            if type(value) is not bool:
                self.fail(path, f"must be true or false, got {value!r}")
            return value
        if tp is int:
            # bool is a subclass of int and floats may be inexact: both are refused.
            if type(value) is not int:
                self.fail(path, f"must be an integer, got {value!r}")
            return value
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self._enum(tp, value, path)
        if origin is frozenset:
            return self._set(typing.get_args(tp)[0], value, path)
        if origin is tuple:
            if not isinstance(value, list):
                self.fail(path, "must be a list")
                return ()
            inner = typing.get_args(tp)[0]
            return tuple(self.decode(inner, item, f"{path}[{i}]") for i, item in enumerate(value))
        if dataclasses.is_dataclass(tp):
            return self._object(tp, value, path, fallback)
        raise TypeError(f"policy schema has an unsupported type {tp!r} at {path}")

    def _enum(self, tp: type[enum.Enum], value: Any, path: str) -> Any:
        allowed = ", ".join(member.value for member in tp)
        if not isinstance(value, str):
            self.fail(path, f"must be one of {allowed}, got {value!r}")
            return None
        try:
            return tp(value)
        except ValueError:
            self.fail(path, f"must be one of {allowed}, got {value!r}")
            return None

    def _set(self, inner: Any, value: Any, path: str) -> frozenset[Any]:
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return frozenset()
        items = [self.decode(inner, item, f"{path}[{i}]") for i, item in enumerate(value)]
        if len(set(items)) != len(items):
            self.fail(path, "must not repeat an entry")
        return frozenset(items)

    def _object(self, tp: Any, value: Any, path: str, fallback: Any) -> Any:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp)]
        required = {f.name for f in dataclasses.fields(tp) if not f.metadata.get("added_later")}
        prefix = f"{path}." if path else ""
        for key in sorted(set(value) - set(names), key=str):
            self.fail(f"{prefix}{key}", "unknown field")
        for name in names:
            if name not in value and name in required:
                self.fail(f"{prefix}{name}", "missing")
        before = len(self.problems)
        # A field added later takes the default policy's value at its path, so a service
        # keeps its own default (bathing is intimate care, cleaning is not).
        defaults = fallback if isinstance(fallback, tp) else None
        kwargs = {
            name: self.decode(
                hints[name], value[name], f"{prefix}{name}", getattr(defaults, name, None)
            )
            for name in names
            if name in value
        }
        if defaults is not None:
            later = [n for n in names if n not in value and n not in required]
            kwargs.update({n: getattr(defaults, n) for n in later})
        # None when medical itself was refused: the problem is reported below, not derived from.
        if tp is ServiceRules and "lifting" not in value and kwargs.get("medical") is not None:
            kwargs["lifting"] = lifting_from_medical(kwargs["medical"])
        if len(self.problems) > before or not required <= set(kwargs):
            return None
        try:
            return tp(**kwargs)
        except _FieldInvalid as exc:
            self.fail(f"{prefix}{exc.field_name}", exc.message)
            return None


def policy_from_json(data: Any) -> DistrictPolicy:
    """Read a policy strictly: every field present, no unknown field, exact types, valid values.

    Raises `PolicyInvalid` listing every problem with its path, e.g.
    ``services.bathing.radius_minutes: must be an integer, got 15.0``.
    """
    decoder = _Decoder()
    policy = decoder.decode(DistrictPolicy, data, "", DEFAULT_POLICY)
    if decoder.problems:
        raise PolicyInvalid(tuple(decoder.problems))
    # With no problem recorded, the decoder built every object, so this is a DistrictPolicy.
    return typing.cast(DistrictPolicy, policy)


# ---- versions --------------------------------------------------------------------------------


class PolicyVersion(NamedTuple):
    version: int
    effective_from: datetime
    policy: DistrictPolicy


def policy_in_force(
    versions: Iterable[tuple[int, datetime, DistrictPolicy]], at: datetime
) -> PolicyVersion:
    """The version with the latest effective date not after `at` (higher version on a tie).

    Raises `NoPolicyInForce` if every version takes effect after `at` or there is none.
    """
    if at.tzinfo is None:
        raise ValueError("at", "must be timezone-aware")
    candidates = []
    for version, effective_from, policy in versions:
        if effective_from.tzinfo is None:
            raise ValueError(f"policy version {version} has a naive effective date")
        if effective_from <= at:
            candidates.append(PolicyVersion(version, effective_from, policy))
    if not candidates:
        raise NoPolicyInForce(f"no policy version is in force at {at.isoformat()}")
    return max(candidates, key=lambda pv: (pv.effective_from, pv.version))
