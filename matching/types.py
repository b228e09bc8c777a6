"""Plain, frozen input and output values of the matching engine.

Times are integer minutes since the Unix epoch (UTC), durations integer minutes: the engine
never reads a clock and never compares datetimes, so the market converts once at the rim
(`TimeWindow.from_datetimes`, `minutes_since_epoch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum, StrEnum


class Service(StrEnum):
    MEAL = "meal"  # 助餐
    BATHING = "bathing"  # 助浴
    CLEANING = "cleaning"  # 助洁
    ESCORT = "escort"  # 助行 / 陪诊
    MEDICAL = "medical"  # 助医
    EMERGENCY = "emergency"  # 助急
    VISIT = "visit"  # 探访关爱


class HelperKind(StrEnum):
    VOLUNTEER = "volunteer"
    PROVIDER = "provider"


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"


class Grade(IntEnum):
    """Capability grade on GB/T 42195-2022; a larger value is a frailer elder."""

    INTACT = 0
    MILD = 1
    MODERATE = 2
    SEVERE = 3
    COMPLETE_LOSS = 4


class PriorityGroup(StrEnum):
    ECONOMIC_HARDSHIP = "economic_hardship"  # 经济困难
    DISABLED = "disabled"  # 失能 / 半失能 / 失智
    VERY_OLD = "very_old"  # 高龄
    LIVING_ALONE = "living_alone"  # 独居 / 空巢
    LEFT_BEHIND = "left_behind"  # 留守
    LOST_ONLY_CHILD = "lost_only_child"  # 计划生育特殊家庭
    SEVERE_DISABILITY = "severe_disability"  # 重度残疾


class Urgency(IntEnum):
    ROUTINE = 0
    URGENT = 1
    EMERGENCY = 2


class CertificateKind(StrEnum):
    CAREGIVER = "caregiver"  # 养老护理员
    NURSE = "nurse"  # 护士执业证书
    BATHING = "bathing"  # 助浴员
    LIFTING = "lifting"  # safe transfer and lifting
    FIRST_AID = "first_aid"
    FOOD_HEALTH = "food_health"  # 健康证 for food handling


def minutes_since_epoch(moment: datetime) -> int:
    """Whole minutes since 1970-01-01 UTC, rounded down; `moment` must be timezone-aware."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware datetime")
    return int(moment.astimezone(UTC).timestamp() // 60)


@dataclass(frozen=True, slots=True)
class Location:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"location out of range: {self.lat}, {self.lon}")


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Half-open span [start, end) in minutes since the epoch."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends before it starts: {self.start} > {self.end}")

    @classmethod
    def from_datetimes(cls, start: datetime, end: datetime) -> TimeWindow:
        return cls(minutes_since_epoch(start), minutes_since_epoch(end))

    def overlaps(self, other: TimeWindow) -> bool:
        return self.start < other.end and other.start < self.end

    def covers(self, other: TimeWindow) -> bool:
        return self.start <= other.start and other.end <= self.end


@dataclass(frozen=True, slots=True)
class CapacityWindow:
    """At most `jobs` more jobs in `window`: how a per-day capacity reaches the engine (one
    window per local day, its jobs the day's capacity less what the helper already holds)."""

    window: TimeWindow
    jobs: int


@dataclass(frozen=True, slots=True)
class Certificate:
    kind: CertificateKind
    expires_at: int  # minutes since the epoch; valid while expires_at >= the booked window's end


@dataclass(frozen=True, slots=True)
class PreviousHelper:
    helper_id: str
    rating: float  # the elder's rating of that helper's last service, 0..5


@dataclass(frozen=True, slots=True)
class Request:
    """One open request. `window` is when the service may happen; it lasts `duration`."""

    id: str
    elder_id: str
    service: Service
    location: Location
    window: TimeWindow
    duration: int
    grade: Grade = Grade.INTACT
    priority_groups: frozenset[PriorityGroup] = frozenset()
    preferred_gender: Gender | None = None
    previous_helpers: tuple[PreviousHelper, ...] = ()
    blocked_helpers: frozenset[str] = frozenset()
    urgency: Urgency = Urgency.ROUTINE
    needs_lifting: bool = False  # transfers out of bed or chair, not just the service itself

    def __post_init__(self) -> None:
        if self.duration <= 0:
            raise ValueError(f"request {self.id}: duration must be positive")


@dataclass(frozen=True, slots=True)
class Helper:
    """A volunteer, or a provider's staff member or crew dispatched as one unit."""

    id: str
    kind: HelperKind
    location: Location
    skills: frozenset[Service]
    availability: tuple[TimeWindow, ...]
    certificates: tuple[Certificate, ...] = ()
    capacity: int = 1  # assignments this helper takes in the planning horizon
    current_load: int = 0  # of which already taken
    # Tighter limits on parts of the horizon; when given, only availability inside them counts.
    capacity_windows: tuple[CapacityWindow, ...] = ()
    recent_minutes: int = 0  # service minutes in the recent period, for fairness
    rating: float | None = None  # average rating 0..5; None when not yet rated
    gender: Gender | None = None
    provider_id: str | None = None  # the employing provider, checked against the black list
    crew_size: int = 1  # certified staff sent together (certified bathing needs two)

    def __post_init__(self) -> None:
        if self.capacity < 0 or self.current_load < 0 or self.crew_size < 1:
            raise ValueError(f"helper {self.id}: negative capacity or load, or empty crew")
        if any(w.jobs < 0 for w in self.capacity_windows):
            raise ValueError(f"helper {self.id}: a capacity window with negative jobs")

    @property
    def remaining_capacity(self) -> int:
        left = max(0, self.capacity - self.current_load)
        if self.capacity_windows:
            return min(left, sum(w.jobs for w in self.capacity_windows))
        return left


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """Cost points of one assignment per term; lower is better, 10 points ~ 1 minute's travel."""

    travel: int
    waiting: int
    continuity: int  # negative: a bonus for the elder's well-rated previous helper
    fairness: int
    rating: int

    @property
    def total(self) -> int:
        return self.travel + self.waiting + self.continuity + self.fairness + self.rating


@dataclass(frozen=True, slots=True)
class Assignment:
    request_id: str
    helper_id: str
    start: int  # planned service start, minutes since the epoch
    end: int  # planned service end
    travel_minutes: int
    cost: CostBreakdown

    @property
    def occupied(self) -> TimeWindow:
        """The helper's busy span: travel there, the service, travel back."""
        return TimeWindow(self.start - self.travel_minutes, self.end + self.travel_minutes)


class ReasonCode(StrEnum):
    """Why a request stayed unmatched; the stage of the funnel where its helpers ran out."""

    SERVICE_NOT_OFFERED = "service_not_offered"
    WINDOW_CLOSED = "window_closed"
    NO_HELPER_IN_REACH = "no_helper_in_reach"
    NO_SKILL_IN_REACH = "no_skill_in_reach"
    BLACKLISTED = "blacklisted"
    KIND_NOT_PERMITTED = "kind_not_permitted"
    CREW_TOO_SMALL = "crew_too_small"
    CERTIFICATE_MISSING = "certificate_missing"
    CERTIFICATE_EXPIRED = "certificate_expired"
    GENDER_MISMATCH = "gender_mismatch"
    EXCLUDED_BY_ELDER = "excluded_by_elder"
    NOT_AVAILABLE = "not_available"
    NO_CAPACITY = "no_capacity"
    TAKEN_BY_OTHERS = "taken_by_others"


@dataclass(frozen=True, slots=True)
class FunnelStep:
    """`remaining` helpers in reach still qualify after the check named by `code` removed some."""

    code: ReasonCode
    remaining: int


@dataclass(frozen=True, slots=True)
class Unmatched:
    request_id: str
    code: ReasonCode
    message: str
    penalty: int  # cost points the solver paid for leaving it unmatched
    funnel: tuple[FunnelStep, ...] = ()


@dataclass(frozen=True, slots=True)
class SolveStats:
    requests: int
    helpers: int
    candidate_edges: int
    components: int
    largest_component: int  # requests in the largest connected component
    rounds: int = 1  # solves run: more than one when candidate lists were grown


@dataclass(frozen=True, slots=True)
class MatchResult:
    assignments: tuple[Assignment, ...]  # sorted by request id
    unmatched: tuple[Unmatched, ...]  # sorted by request id
    total_cost: int  # sum of assignment totals plus unmatched penalties: the minimised objective
    stats: SolveStats = field(compare=False)
