"""Elder capability assessment on GB/T 42195-2022 (老年人能力评估规范), as a pure function.

The server computes the level from the raw item scores; a client never sends a level.

Item list: 26 items in 4 dimensions whose maxima are the standard's dimension totals: self-care
32, basic mobility 15, mental status 28, perception and social participation 15 (90 in all).
The per-item maxima below are chosen to add up to those totals, following our reading of the
standard's tables; the exact wording and score anchors of each item must be checked against the
published text before use in a real assessment. Note: the mental-status dimension has 9 items
here (8 + 4 + 9 + 5 = 26); a count of 7 would give only 24 items in all.
"""

from __future__ import annotations

import calendar
import enum
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

STANDARD = "GB/T 42195-2022"
DEFAULT_REASSESSMENT_MONTHS = 6
# Risk events in the last 30 days from which the level is raised by one.
RISK_EVENT_THRESHOLD = 2


class Dimension(enum.Enum):
    SELF_CARE = "self_care"
    BASIC_MOBILITY = "basic_mobility"
    MENTAL_STATUS = "mental_status"
    PERCEPTION_SOCIAL = "perception_social"

    @property
    def name_zh(self) -> str:
        return _DIMENSION_ZH[self]


_DIMENSION_ZH = {
    Dimension.SELF_CARE: "自理能力",
    Dimension.BASIC_MOBILITY: "基础运动能力",
    Dimension.MENTAL_STATUS: "精神状态",
    Dimension.PERCEPTION_SOCIAL: "感知觉与社会参与",
}

DIMENSION_MAXIMA = {
    Dimension.SELF_CARE: 32,
    Dimension.BASIC_MOBILITY: 15,
    Dimension.MENTAL_STATUS: 28,
    Dimension.PERCEPTION_SOCIAL: 15,
}
MAX_TOTAL = 90


class Level(enum.Enum):
    """Capability level, declared from least to most severe; compare with `at_least`."""

    INTACT = "intact"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    COMPLETE_LOSS = "complete_loss"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @property
    def name_zh(self) -> str:
        return _LEVEL_ZH[self]

    def at_least(self, other: Level) -> bool:
        """True if this level is as severe as `other` or more."""
        return self.severity >= other.severity

    def raised(self) -> Level:
        """One level more severe, staying at complete loss."""
        return _BY_SEVERITY[min(self.severity + 1, len(_BY_SEVERITY) - 1)]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.severity < other.severity

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.severity <= other.severity

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.severity > other.severity

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.severity >= other.severity


_BY_SEVERITY = tuple(Level)
_SEVERITY = {level: i for i, level in enumerate(_BY_SEVERITY)}
_LEVEL_ZH = {
    Level.INTACT: "能力完好",
    Level.MILD: "能力轻度受损",
    Level.MODERATE: "能力中度受损",
    Level.SEVERE: "能力重度受损",
    Level.COMPLETE_LOSS: "能力完全丧失",
}
# Lowest total of each level; a total at or above it (and below the next) has that level.
_LEVEL_FLOORS = (
    (90, Level.INTACT),
    (66, Level.MILD),
    (46, Level.MODERATE),
    (30, Level.SEVERE),
    (0, Level.COMPLETE_LOSS),
)


@dataclass(frozen=True)
class Item:
    code: str
    dimension: Dimension
    name_zh: str
    name_en: str
    max_score: int


ITEMS: tuple[Item, ...] = (
    Item("eating", Dimension.SELF_CARE, "进食", "Eating", 4),
    Item("grooming", Dimension.SELF_CARE, "修饰", "Grooming", 4),
    Item("bathing", Dimension.SELF_CARE, "洗澡", "Bathing", 4),
    Item("dressing_upper", Dimension.SELF_CARE, "穿/脱上衣", "Dressing the upper body", 4),
    Item("dressing_lower", Dimension.SELF_CARE, "穿/脱裤子和鞋袜", "Dressing the lower body", 4),
    Item("urine_control", Dimension.SELF_CARE, "小便控制", "Urinary control", 4),
    Item("bowel_control", Dimension.SELF_CARE, "大便控制", "Bowel control", 4),
    Item("toileting", Dimension.SELF_CARE, "如厕", "Toileting", 4),
    Item("bed_mobility", Dimension.BASIC_MOBILITY, "床上体位转移", "Turning in bed", 4),
    Item("bed_chair_transfer", Dimension.BASIC_MOBILITY, "床椅转移", "Bed-chair transfer", 4),
    Item("level_walking", Dimension.BASIC_MOBILITY, "平地行走", "Walking on level ground", 4),
    Item("stairs", Dimension.BASIC_MOBILITY, "上下楼梯", "Going up and down stairs", 3),
    Item("time_orientation", Dimension.MENTAL_STATUS, "时间定向", "Orientation to time", 4),
    Item("place_orientation", Dimension.MENTAL_STATUS, "空间定向", "Orientation to place", 4),
    Item("person_orientation", Dimension.MENTAL_STATUS, "人物定向", "Orientation to people", 4),
    Item("memory", Dimension.MENTAL_STATUS, "记忆", "Memory", 4),
    Item("comprehension", Dimension.MENTAL_STATUS, "理解能力", "Understanding", 4),
    Item("expression", Dimension.MENTAL_STATUS, "表达能力", "Expression", 4),
    Item("aggression", Dimension.MENTAL_STATUS, "攻击行为", "Aggressive behaviour", 1),
    Item("depression", Dimension.MENTAL_STATUS, "抑郁症状", "Depressive symptoms", 1),
    Item("consciousness", Dimension.MENTAL_STATUS, "意识水平", "Level of consciousness", 2),
    Item("vision", Dimension.PERCEPTION_SOCIAL, "视力", "Vision", 2),
    Item("hearing", Dimension.PERCEPTION_SOCIAL, "听力", "Hearing", 2),
    Item("daily_affairs", Dimension.PERCEPTION_SOCIAL, "执行日常事务", "Daily affairs", 4),
    Item("transport", Dimension.PERCEPTION_SOCIAL, "使用交通工具外出", "Going out by transport", 3),
    Item("social_contact", Dimension.PERCEPTION_SOCIAL, "社会交往能力", "Social interaction", 4),
)
ITEMS_BY_CODE = {item.code: item for item in ITEMS}


class AssessmentInvalid(ValueError):
    """The scores cannot be assessed; `problems` lists every problem found, not just the first."""

    code = "assessment.invalid"

    def __init__(self, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class AssessmentResult:
    total: int
    dimension_totals: Mapping[Dimension, int]
    preliminary_level: Level
    final_level: Level
    reasons: tuple[str, ...]
    standard: str = STANDARD


def level_for_total(total: int) -> Level:
    """The preliminary level of a total score (0-90)."""
    if not 0 <= total <= MAX_TOTAL:
        raise ValueError(f"total {total} is outside 0-{MAX_TOTAL}")
    return next(level for floor, level in _LEVEL_FLOORS if total >= floor)


def _pairs(scores: object, problems: list[str]) -> list[tuple[str, object]]:
    # The caller may hand over parsed JSON; nothing about its shape is taken on trust.
    raw = list(scores.items()) if isinstance(scores, Mapping) else list(scores)  # type: ignore[call-overload]
    pairs: list[tuple[str, object]] = []
    for index, entry in enumerate(raw):
        if not (isinstance(entry, tuple) and len(entry) == 2):
            problems.append(f"entry {index} is not a (code, score) pair")
        elif not isinstance(entry[0], str):
            problems.append(f"item code {entry[0]!r} is not a string")
        else:
            pairs.append((entry[0], entry[1]))
    return pairs


def _validated(
    scores: Mapping[str, int] | Iterable[tuple[str, int]],
    *,
    coma: bool,
    dementia_or_mental_disorder: bool,
    risk_events_30d: int,
) -> dict[str, int]:
    problems: list[str] = []
    if isinstance(scores, str | bytes) or not isinstance(scores, Iterable):
        raise AssessmentInvalid(("scores must be a mapping of item code to score",))
    pairs = _pairs(scores, problems)
    counts = Counter(code for code, _ in pairs)
    problems += [f"item {code!r} is given {n} times" for code, n in sorted(counts.items()) if n > 1]
    problems += [f"unknown item {code!r}" for code in sorted(counts) if code not in ITEMS_BY_CODE]
    problems += [f"item {item.code!r} is missing" for item in ITEMS if item.code not in counts]
    valid: dict[str, int] = {}
    for code, score in pairs:
        item = ITEMS_BY_CODE.get(code)
        if item is None:
            continue
        # bool is an int in Python; a True/False score is a client bug, not a 1/0.
        if type(score) is not int:
            problems.append(f"item {code!r} must be an integer, got {score!r}")
        elif not 0 <= score <= item.max_score:
            problems.append(f"item {code!r} must be 0-{item.max_score}, got {score}")
        else:
            valid[code] = score
    if type(risk_events_30d) is not int or risk_events_30d < 0:
        problems.append(f"risk_events_30d must be a non-negative integer, got {risk_events_30d!r}")
    # A string "false" would be truthy; the flags must be real booleans.
    for name, flag in (
        ("coma", coma),
        ("dementia_or_mental_disorder", dementia_or_mental_disorder),
    ):
        if type(flag) is not bool:
            problems.append(f"{name} must be true or false, got {flag!r}")
    if problems:
        raise AssessmentInvalid(tuple(problems))
    return valid


def compute_level(
    scores: Mapping[str, int] | Iterable[tuple[str, int]],
    *,
    coma: bool,
    dementia_or_mental_disorder: bool,
    risk_events_30d: int,
) -> AssessmentResult:
    """Total the 26 item scores, derive the preliminary level and apply the adjustments.

    `scores` may be a mapping or (code, score) pairs; pairs let a repeated item be reported.
    `risk_events_30d` counts care-risk events (fall, choking, self-harm, wandering) in the last
    30 days.
    """
    valid = _validated(
        scores,
        coma=coma,
        dementia_or_mental_disorder=dementia_or_mental_disorder,
        risk_events_30d=risk_events_30d,
    )
    dimension_totals = {
        dimension: sum(valid[i.code] for i in ITEMS if i.dimension is dimension)
        for dimension in Dimension
    }
    total = sum(dimension_totals.values())
    preliminary = level_for_total(total)
    reasons = [
        f"total {total} of {MAX_TOTAL} gives the preliminary level {preliminary.value} "
        f"({preliminary.name_zh})"
    ]
    if coma:
        reasons.append("in a coma: the level is complete loss whatever the scores")
        return AssessmentResult(
            total, dimension_totals, preliminary, Level.COMPLETE_LOSS, tuple(reasons)
        )
    grounds = []
    if dementia_or_mental_disorder:
        grounds.append("a diagnosed dementia or mental disorder")
    if risk_events_30d >= RISK_EVENT_THRESHOLD:
        grounds.append(f"{risk_events_30d} care-risk events in the last 30 days")
    final = preliminary
    if grounds:
        # The standard raises by one level; several grounds still raise only once.
        final = preliminary.raised()
        because = " and ".join(grounds)
        if final is preliminary:
            reasons.append(f"{because}: already at the most severe level, no change")
        else:
            reasons.append(f"{because}: raised one level to {final.value} ({final.name_zh})")
        if len(grounds) > 1:
            reasons.append("the adjustments do not add up: the level is raised once")
    return AssessmentResult(total, dimension_totals, preliminary, final, tuple(reasons))


def reassessment_due(assessed_on: date, *, months: int = DEFAULT_REASSESSMENT_MONTHS) -> date:
    """The date a re-assessment is due: `months` calendar months later (end-of-month clamped)."""
    if months < 1:
        raise ValueError("months must be at least 1")
    month_index = assessed_on.month - 1 + months
    year, month = assessed_on.year + month_index // 12, month_index % 12 + 1
    day = min(assessed_on.day, calendar.monthrange(year, month)[1])
    return date(year, month, day)
