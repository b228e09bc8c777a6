"""The demo city behind `eldercare demo`: three Hangzhou districts, their people and providers.

`plan_city(seed)` is pure: every name, flag, score and coordinate is drawn from
`random.Random(seed)`, so one seed always plans the same city. `build_demo_city` writes a plan
into an empty, migrated database in one transaction (all or nothing), reusing the services'
encryption purposes and `create_account`.

Only the showcase accounts (`DemoSummary.logins`) get a password: scrypt costs ~50 ms per
hash, so the other few hundred accounts have none and cannot sign in, like elders registered by
a hotline. Their phone numbers are still encrypted and indexed, so family links and look-ups work.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from tortoise.transactions import in_transaction

from market import assessment as gbt
from market.models import (
    Assessment,
    Certificate,
    District,
    DistrictLevel,
    DistrictPolicy,
    ElderProfile,
    FamilyLink,
    HelperKind,
    HelperProfile,
    LinkStatus,
    ListStatus,
    Provider,
    Role,
    User,
    UserStatus,
    VettingStatus,
)
from market.policy import DEFAULT_POLICY, policy_to_json
from market.schemas.common import normalise_phone
from market.services.auth import PHONE_PURPOSE, create_account, now_utc, phone_index
from market.services.elders import ENCRYPTED, assessment_row
from market.services.helpers import CERTIFICATE_PURPOSE
from market.services.runtime import Runtime

DEMO_PASSWORD = "eldercare-demo"
ELDERS = 300
FAMILY_MEMBERS = 150
VOLUNTEERS = 150
# Ages (and so the very_old flag) are counted in this year, so a seed plans the same city
# whatever the clock says.
AGE_YEAR = 2026
POLICY_EFFECTIVE_FROM = datetime(2025, 1, 1, tzinfo=UTC)

Progress = Callable[[str, int, int], None]


class DemoAlreadyLoaded(RuntimeError):
    """The database already has districts; the demo city only loads into an empty one."""


class DemoLogin(NamedTuple):
    role: str
    phone: str
    password: str
    name: str
    district_code: str


@dataclass(frozen=True)
class DemoSummary:
    districts: int
    streets: int
    communities: int
    policies: int
    centre_admins: int
    auditors: int
    elders: int
    elders_without_phone: int
    assessments: int
    family_members: int
    volunteers: int
    volunteers_pending: int
    providers: int
    provider_staff: int
    certificates: int
    logins: tuple[DemoLogin, ...]


# ---- geography -------------------------------------------------------------------------------
# (district code, name, density, streets); street = (code, name, communities);
# community = (name, centre latitude, centre longitude). Codes follow the national
# 6/9/12-digit division scheme. Density scales how many people live there and how far apart.

_CITY = (
    ("330102", "上城区", "dense", (
        ("330102001", "湖滨街道", (("东坡路社区", 30.2585, 120.1665), ("青年路社区", 30.2610, 120.1712), ("岳王路社区", 30.2560, 120.1690))),  # noqa: E501
        ("330102002", "清波街道", (("清波门社区", 30.2435, 120.1645), ("劳动路社区", 30.2465, 120.1680))),  # noqa: E501
        ("330102003", "小营街道", (("小营巷社区", 30.2600, 120.1780), ("大学路社区", 30.2555, 120.1800), ("茅廊巷社区", 30.2630, 120.1830))),  # noqa: E501
    )),
    ("330106", "西湖区", "medium", (
        ("330106001", "北山街道", (("北山路社区", 30.2590, 120.1480), ("保俶路社区", 30.2660, 120.1500))),  # noqa: E501
        ("330106005", "翠苑街道", (("翠苑一区社区", 30.2850, 120.1320), ("翠苑二区社区", 30.2880, 120.1290), ("翠苑三区社区", 30.2900, 120.1350))),  # noqa: E501
        ("330106009", "留下街道", (("留下社区", 30.2530, 120.0560), ("杨家牌楼社区", 30.2600, 120.0450))),  # noqa: E501
    )),
    ("330108", "滨江区", "sparse", (
        ("330108001", "西兴街道", (("西兴社区", 30.2080, 120.2150), ("江二社区", 30.2150, 120.2220))),  # noqa: E501
        ("330108002", "长河街道", (("长河社区", 30.2000, 120.1980), ("山一社区", 30.1930, 120.2050), ("槐堂社区", 30.1880, 120.1920))),  # noqa: E501
    )),
)  # fmt: skip
# Share of people per community, and the radius (km) they are scattered over.
_DENSITY = {"dense": (1.6, 0.5), "medium": (1.0, 0.8), "sparse": (0.5, 1.2)}

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁沈姚卢钟陆汪范金钱"  # noqa: E501
_OLD_GIVEN = {
    "female": "秀英华兰珍芳玉桂凤梅琴淑翠素月娥",
    "male": "国建明德志福荣伟文海金林军强平庆山根生祥",
}
_YOUNG_GIVEN = {
    "female": "婷静洁敏晨欣怡佳丹雪琳倩颖璐萱雨",
    "male": "磊浩宇俊杰涛鹏辉超洋博凯帆航睿",
}
_HEALTH = (
    "高血压，规律服药",
    "2型糖尿病，饮食控制",
    "冠心病史",
    "听力下降，佩戴助听器",
    "膝关节退行性病变，行走需拐杖",
    "白内障术后",
    "慢性阻塞性肺病",
    "脑卒中后遗症，左侧肢体乏力",
    "骨质疏松",
)
_SLOTS = (("08:00", "11:30"), ("09:00", "12:00"), ("13:30", "17:00"), ("14:00", "18:00"))
_VOLUNTEER_SKILLS = ("meal", "cleaning", "escort", "visit")
# Level weights (intact ... complete loss) by age band: frailty grows with age.
_LEVEL_WEIGHTS = {70: (45, 35, 12, 5, 3), 80: (30, 35, 20, 10, 5), 200: (12, 28, 28, 18, 14)}
_LEVEL_TOTALS = {
    gbt.Level.INTACT: (90, 90),
    gbt.Level.MILD: (66, 89),
    gbt.Level.MODERATE: (46, 65),
    gbt.Level.SEVERE: (30, 45),
    gbt.Level.COMPLETE_LOSS: (5, 29),
}
# Which dimensions lose points first when capability declines.
_DEFICIT_WEIGHT = {
    gbt.Dimension.SELF_CARE: 3.0,
    gbt.Dimension.BASIC_MOBILITY: 3.0,
    gbt.Dimension.MENTAL_STATUS: 1.0,
    gbt.Dimension.PERCEPTION_SOCIAL: 2.0,
}


# ---- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedDistrict:
    code: str
    name: str
    level: DistrictLevel
    parent_code: str | None


@dataclass(frozen=True)
class Community:
    code: str
    name: str
    district_code: str
    latitude: float
    longitude: float
    weight: float
    spread_km: float
    address: str


@dataclass(frozen=True)
class Person:
    role: Role
    name: str
    gender: str
    birth_year: int
    home_code: str
    phone: str | None
    password: str | None = None


@dataclass(frozen=True)
class PlannedAssessment:
    item_scores: tuple[tuple[str, int], ...]
    coma: bool
    dementia: bool
    risk_events_30d: int
    assessors: tuple[str, str]
    informant: str
    days_ago: int


@dataclass(frozen=True)
class PlannedElder:
    person: Person
    flags: tuple[str, ...]
    latitude: float
    longitude: float
    id_number: str
    address: str
    health_notes: str | None
    preferences: tuple[tuple[str, str], ...]
    guardian: str | None
    assessment: PlannedAssessment | None


@dataclass(frozen=True)
class PlannedFamily:
    person: Person
    elder: int
    relation: str


@dataclass(frozen=True)
class PlannedCertificate:
    kind: str
    number: str
    expires_in_days: int
    verified: bool


@dataclass(frozen=True)
class PlannedHelper:
    person: Person
    provider: int | None
    skills: tuple[str, ...]
    availability: tuple[tuple[int, str, str], ...]
    latitude: float
    longitude: float
    capacity_per_day: int
    approved: bool
    certificates: tuple[PlannedCertificate, ...]


@dataclass(frozen=True)
class PlannedProvider:
    name: str
    district_code: str
    prices: tuple[tuple[str, int], ...]
    capacity_per_day: int
    star_grade: int
    list_status: ListStatus
    staff_certificates: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CityPlan:
    districts: tuple[PlannedDistrict, ...]
    admins: tuple[Person, ...]
    auditor: Person
    elders: tuple[PlannedElder, ...]
    families: tuple[PlannedFamily, ...]
    providers: tuple[PlannedProvider, ...]
    helpers: tuple[PlannedHelper, ...]


# (name, district, prices in fen, capacity, stars, list, certificate kinds by skill)
_PROVIDERS = (
    PlannedProvider("湖滨颐乐老年食堂", "330102", (("meal", 1500),), 240, 4, ListStatus.normal,
                    ()),
    PlannedProvider("杭州安康居家养老服务有限公司", "330106",
                    (("bathing", 8000), ("cleaning", 6000), ("medical", 10000)), 40, 5,
                    ListStatus.red,
                    (("bathing", "bathing"), ("cleaning", "caregiver"), ("medical", "nurse"))),
    PlannedProvider("杭州仁和护理服务有限公司", "330108",
                    (("escort", 6000), ("medical", 12000)), 30, 3, ListStatus.normal,
                    (("escort", "caregiver"), ("medical", "nurse"))),
)  # fmt: skip


class _Phones:
    """Generated numbers `1380000xxxx`; the showcase accounts use memorable `1390000000x`."""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"1380000{self.count:04d}"


def _communities(rng: random.Random) -> tuple[list[PlannedDistrict], list[Community]]:
    districts: list[PlannedDistrict] = []
    communities: list[Community] = []
    for code, name, density, streets in _CITY:
        share, spread = _DENSITY[density]
        districts.append(PlannedDistrict(code, name, DistrictLevel.district, None))
        for street_code, street_name, members in streets:
            districts.append(PlannedDistrict(street_code, street_name, DistrictLevel.street, code))
            for number, (c_name, lat, lon) in enumerate(members, start=1):
                c_code = f"{street_code}{number:03d}"
                districts.append(
                    PlannedDistrict(c_code, c_name, DistrictLevel.community, street_code)
                )
                weight = share * rng.uniform(0.6, 1.4)
                address = f"{name}{street_name}{c_name}"
                communities.append(
                    Community(c_code, c_name, code, lat, lon, weight, spread, address)
                )
    return districts, communities


def _scatter(rng: random.Random, place: Community) -> tuple[float, float]:
    # Uniform over a disc: sqrt keeps the centre from being crowded.
    distance = place.spread_km * math.sqrt(rng.random())
    angle = rng.uniform(0, 2 * math.pi)
    lat = place.latitude + distance * math.cos(angle) / 111.0
    lon = place.longitude + distance * math.sin(angle) / (111.0 * math.cos(math.radians(lat)))
    return round(lat, 6), round(lon, 6)


def _name(rng: random.Random, gender: str, *, old: bool, surname: str | None = None) -> str:
    pool = (_OLD_GIVEN if old else _YOUNG_GIVEN)[gender]
    given = "".join(rng.choice(pool) for _ in range(rng.choice((1, 2, 2))))
    return (surname or rng.choice(_SURNAMES)) + given


def _id_number(rng: random.Random, area: str, birth_year: int, gender: str) -> str:
    body = f"{area}{birth_year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    sequence = rng.randrange(1, 999, 2) if gender == "male" else rng.randrange(0, 998, 2)
    body += f"{sequence:03d}"
    # GB 11643 check digit (ISO 7064 MOD 11-2).
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def _item_scores(rng: random.Random, total: int, dementia: bool) -> tuple[tuple[str, int], ...]:
    scores = {item.code: item.max_score for item in gbt.ITEMS}
    weight = dict(_DEFICIT_WEIGHT)
    if dementia:
        weight[gbt.Dimension.MENTAL_STATUS] = 4.0
    for _ in range(gbt.MAX_TOTAL - total):
        open_items = [item for item in gbt.ITEMS if scores[item.code] > 0]
        item = rng.choices(open_items, [weight[i.dimension] for i in open_items])[0]
        scores[item.code] -= 1
    return tuple(sorted(scores.items()))


def _assessment(
    rng: random.Random, age: int, assessors: Sequence[str], level: gbt.Level | None = None
) -> PlannedAssessment:
    band = next(limit for limit in _LEVEL_WEIGHTS if age < limit)
    chosen = level is not None
    level = level or rng.choices(list(_LEVEL_TOTALS), _LEVEL_WEIGHTS[band])[0]
    low, high = _LEVEL_TOTALS[level]
    dementia = not chosen and level is not gbt.Level.INTACT and rng.random() < 0.08
    return PlannedAssessment(
        item_scores=_item_scores(rng, rng.randint(low, high), dementia),
        coma=level is gbt.Level.COMPLETE_LOSS and rng.random() < 0.1,
        dementia=dementia,
        risk_events_30d=rng.choice((2, 3)) if rng.random() < 0.05 else 0,
        assessors=(assessors[0], assessors[1])
        if rng.random() < 0.5
        else (assessors[2], assessors[3]),
        informant="本人" if level <= gbt.Level.MILD else "家属",
        days_ago=rng.randint(10, 170),
    )


def _final_level(planned: PlannedAssessment) -> gbt.Level:
    return gbt.compute_level(
        dict(planned.item_scores),
        coma=planned.coma,
        dementia_or_mental_disorder=planned.dementia,
        risk_events_30d=planned.risk_events_30d,
    ).final_level


def _flags(rng: random.Random, age: int, level: gbt.Level | None) -> tuple[str, ...]:
    flags = []
    if age >= 80:
        flags.append("very_old")
    if rng.random() < (0.3 if age >= 80 else 0.18):
        flags.append("living_alone")
    if rng.random() < 0.1:
        flags.append("economic_hardship")
    if rng.random() < 0.08:
        flags.append("left_behind")
    if rng.random() < 0.03:
        flags.append("lost_only_child")
    if (level is not None and level >= gbt.Level.MODERATE) or rng.random() < 0.02:
        flags.append("disabled")
    if level is not None and level >= gbt.Level.SEVERE and rng.random() < 0.3:
        flags.append("severe_disability")
    return tuple(sorted(flags))


def _plan_elder(
    rng: random.Random,
    place: Community,
    person: Person,
    assessors: Sequence[str],
    *,
    showcase: bool,
) -> PlannedElder:
    age = AGE_YEAR - person.birth_year
    if showcase:
        # The showcase elder signs in alone: mildly impaired and able to consent.
        assessed: PlannedAssessment | None = _assessment(rng, age, assessors, gbt.Level.MILD)
    else:
        assessed = _assessment(rng, age, assessors) if rng.random() < 0.67 else None
    level = _final_level(assessed) if assessed else None
    notes = rng.sample(_HEALTH, rng.randint(1, 2)) if rng.random() < 0.6 else []
    if assessed and assessed.dementia:
        notes.append("阿尔茨海默病（医院诊断）")
    intimate = {"female": ("female", "any"), "male": ("male", "any", "any", "any")}[person.gender]
    lat, lon = _scatter(rng, place)
    return PlannedElder(
        person=person,
        flags=_flags(rng, age, level),
        latitude=lat,
        longitude=lon,
        id_number=_id_number(rng, place.district_code, person.birth_year, person.gender),
        address=f"杭州市{place.address}{rng.randint(1, 40)}幢{rng.randint(1, 4)}单元"
        f"{rng.randint(1, 7)}0{rng.randint(1, 4)}室",
        health_notes="；".join(notes) or None,
        preferences=(
            ("helper_gender_for_intimate_care", rng.choice(intimate)),
            ("language", "zh" if rng.random() < 0.9 else "wuu"),
        ),
        guardian=(
            _name(rng, rng.choice(("female", "male")), old=False, surname=person.name[0])
            if level is not None and level >= gbt.Level.SEVERE
            else None
        ),
        assessment=assessed,
    )


def _plan_elders(
    rng: random.Random, communities: list[Community], phones: _Phones
) -> list[PlannedElder]:
    weights = [c.weight for c in communities]
    assessors = {
        code: [_name(rng, rng.choice(("female", "male")), old=False) for _ in range(4)]
        for code, *_ in _CITY
    }
    elders = []
    for index in range(ELDERS):
        # The showcase elder lives in the first district, where the showcase admin works.
        place = communities[0] if index == 0 else rng.choices(communities, weights)[0]
        gender = "female" if rng.random() < 0.56 else "male"
        birth_year = round(rng.triangular(1930, 1965, 1950))
        has_phone = index == 0 or rng.random() < 0.72
        person = Person(
            Role.elder,
            _name(rng, gender, old=True),
            gender,
            birth_year,
            place.code,
            ("13900000002" if index == 0 else phones.next()) if has_phone else None,
            DEMO_PASSWORD if index == 0 else None,
        )
        elders.append(
            _plan_elder(rng, place, person, assessors[place.district_code], showcase=index == 0)
        )
    return elders


def _plan_families(
    rng: random.Random, elders: list[PlannedElder], phones: _Phones
) -> list[PlannedFamily]:
    # Elder 0 is the showcase elder; the others are drawn without repeats.
    chosen = [0, *rng.sample(range(1, len(elders)), FAMILY_MEMBERS - 1)]
    families = []
    for number, index in enumerate(chosen):
        elder = elders[index].person
        relation = (
            "child"
            if number == 0
            else rng.choices(("child", "spouse", "grandchild", "parent_in_law"), (70, 10, 15, 5))[0]
        )
        gender = rng.choice(("female", "male"))
        if relation == "spouse":
            gender = "male" if elder.gender == "female" else "female"
        born = (
            elder.birth_year
            + {"child": 28, "spouse": 0, "grandchild": 55, "parent_in_law": 28}[relation]
            + rng.randint(-3, 4)
        )
        surname = (
            elder.name[0] if relation in ("child", "grandchild") and rng.random() < 0.7 else None
        )
        person = Person(
            Role.family,
            _name(rng, gender, old=relation == "spouse", surname=surname),
            gender,
            min(born, 2006),
            elder.home_code,
            "13900000003" if number == 0 else phones.next(),
            DEMO_PASSWORD if number == 0 else None,
        )
        families.append(PlannedFamily(person, index, relation))
    return families


def _availability(rng: random.Random, weekdays: Sequence[int]) -> tuple[tuple[int, str, str], ...]:
    days = sorted(rng.sample(list(weekdays), min(len(weekdays), rng.randint(2, 4))))
    return tuple((day, *rng.choice(_SLOTS)) for day in days)


def _certificate(rng: random.Random, kind: str, *, verified: bool) -> PlannedCertificate:
    # One in ten expires within a month, so the demo shows renewal reminders.
    days = rng.randint(7, 30) if rng.random() < 0.1 else rng.randint(180, 1100)
    number = f"{kind[:2].upper()}{rng.randint(10**9, 10**10 - 1)}"
    return PlannedCertificate(kind, number, days, verified)


def _plan_volunteers(
    rng: random.Random, communities: list[Community], phones: _Phones
) -> list[PlannedHelper]:
    weights = [c.weight for c in communities]
    helpers = []
    for index in range(VOLUNTEERS):
        place = communities[1] if index == 0 else rng.choices(communities, weights)[0]
        gender = "female" if rng.random() < 0.6 else "male"
        # Mutual aid: younger healthy elders help older ones; students help at weekends.
        band = rng.choices(((1956, 1966), (1970, 2000), (2001, 2007)), (35, 45, 20))[0]
        birth_year = rng.randint(*band)
        approved = index == 0 or rng.random() < 0.92
        certificates = (
            (_certificate(rng, "first_aid", verified=approved and rng.random() < 0.75),)
            if index == 0 or rng.random() < 0.3
            else ()
        )
        person = Person(
            Role.volunteer,
            _name(rng, gender, old=birth_year < 1967),
            gender,
            birth_year,
            place.code,
            "13900000004" if index == 0 else phones.next(),
            DEMO_PASSWORD if index == 0 else None,
        )
        lat, lon = _scatter(rng, place)
        helpers.append(
            PlannedHelper(
                person=person,
                provider=None,
                skills=tuple(sorted(rng.sample(_VOLUNTEER_SKILLS, rng.randint(1, 3)))),
                availability=_availability(rng, (5, 6) if birth_year > 2000 else range(7)),
                latitude=lat,
                longitude=lon,
                capacity_per_day=rng.randint(2, 4),
                approved=approved,
                certificates=certificates,
            )
        )
    return helpers


def _plan_staff(
    rng: random.Random, communities: list[Community], phones: _Phones
) -> list[PlannedHelper]:
    staff = []
    for number, provider in enumerate(_PROVIDERS):
        services = [code for code, _ in provider.prices]
        places = [c for c in communities if c.district_code == provider.district_code]
        cert_for = dict(provider.staff_certificates)
        for index in range(rng.randint(5, 10)):
            showcase = number == 1 and index == 0
            skills = (
                ("bathing", "cleaning")
                if showcase
                else tuple(sorted(rng.sample(services, rng.randint(1, min(2, len(services))))))
            )
            kinds = sorted({cert_for[s] for s in skills if s in cert_for})
            if not kinds and rng.random() < 0.5:
                kinds = ["first_aid"]
            gender = "female" if showcase or rng.random() < 0.65 else "male"
            place = rng.choice(places)
            lat, lon = _scatter(rng, place)
            person = Person(
                Role.provider_staff,
                _name(rng, gender, old=False),
                gender,
                rng.randint(1968, 2000),
                provider.district_code,
                "13900000005" if showcase else phones.next(),
                DEMO_PASSWORD if showcase else None,
            )
            staff.append(
                PlannedHelper(
                    person=person,
                    provider=number,
                    skills=skills,
                    availability=tuple((day, "08:00", "17:00") for day in range(5)),
                    latitude=lat,
                    longitude=lon,
                    capacity_per_day=rng.randint(4, 6),
                    approved=True,
                    certificates=tuple(_certificate(rng, k, verified=True) for k in kinds),
                )
            )
    return staff


def plan_city(seed: int = 7) -> CityPlan:
    """Everything the demo city contains, drawn from `random.Random(seed)` alone."""
    rng = random.Random(seed)
    phones = _Phones()
    districts, communities = _communities(rng)
    admins = tuple(
        Person(
            Role.centre_admin,
            _name(rng, gender, old=False),
            gender,
            rng.randint(1972, 1990),
            code,
            f"1390000000{digit}",
            DEMO_PASSWORD,
        )
        for (code, *_), digit, gender in zip(
            _CITY, (1, 6, 7), ("female", "male", "female"), strict=True
        )
    )
    auditor = Person(
        Role.auditor,
        _name(rng, "male", old=False),
        "male",
        1980,
        _CITY[0][0],
        "13900000009",
        DEMO_PASSWORD,
    )
    elders = _plan_elders(rng, communities, phones)
    families = _plan_families(rng, elders, phones)
    helpers = _plan_volunteers(rng, communities, phones) + _plan_staff(rng, communities, phones)
    return CityPlan(
        tuple(districts),
        admins,
        auditor,
        tuple(elders),
        tuple(families),
        _PROVIDERS,
        tuple(helpers),
    )


# ---- writing it ------------------------------------------------------------------------------


class _Writer:
    def __init__(self, runtime: Runtime, plan: CityPlan, progress: Progress) -> None:
        self.runtime = runtime
        self.plan = plan
        self.progress = progress
        self.today = now_utc().date()
        self.districts: dict[str, District] = {}
        self.admins: dict[str, User] = {}
        self.top_of: dict[str, str] = {}

    def admin_of(self, code: str) -> User:
        return self.admins[self.top_of[code]]

    async def accounts(
        self, people: Sequence[tuple[Person, UserStatus, User | None]]
    ) -> list[User]:
        """Users for `people`, in order.

        Showcase accounts go through `create_account` (password policy, scrypt). The others are
        built as it builds them (phone encrypted and blind-indexed, no password) and inserted in
        batches: a round trip per account would make the demo slow on PostgreSQL.
        """
        users: list[User] = []
        batch: list[User] = []
        for person, status, created_by in people:
            if person.password is not None and person.phone is not None:
                users.append(
                    await create_account(
                        self.runtime,
                        phone=person.phone,
                        password=person.password,
                        name=person.name,
                        role=person.role,
                        district=self.districts[person.home_code],
                        status=status,
                        created_by=created_by.id if created_by else None,
                        gender=person.gender,
                        birth_year=person.birth_year,
                    )
                )
                continue
            user = User(
                role=person.role,
                status=status,
                name=person.name,
                district_id=self.districts[person.home_code].id,
                gender=person.gender,
                birth_year=person.birth_year,
                created_by_id=created_by.id if created_by else None,
                **self._phone(person.phone),
            )
            users.append(user)
            batch.append(user)
        await User.bulk_create(batch, batch_size=500)
        return users

    def _phone(self, phone: str | None) -> dict[str, str]:
        if phone is None:
            # A hotline-only elder, as `register_elder` creates one: no phone, no login.
            return {}
        return {
            "phone_index": phone_index(self.runtime, phone),
            "phone_enc": self.runtime.crypto.encrypt(normalise_phone(phone), purpose=PHONE_PURPOSE),
        }

    async def write_districts(self) -> None:
        # One by one (a few dozen rows): every later row refers to a saved district object.
        total = len(self.plan.districts)
        for d in self.plan.districts:
            self.districts[d.code] = await District.create(
                code=d.code,
                name=d.name,
                level=d.level,
                parent=self.districts[d.parent_code] if d.parent_code else None,
            )
        self.progress("districts", total, total)
        for d in self.plan.districts:
            self.top_of[d.code] = self.top_of[d.parent_code] if d.parent_code else d.code
        tops = [self.districts[d.code] for d in self.plan.districts if d.parent_code is None]
        await DistrictPolicy.bulk_create(
            DistrictPolicy(
                district=top,
                version=1,
                effective_from=POLICY_EFFECTIVE_FROM,
                content=policy_to_json(DEFAULT_POLICY),
            )
            for top in tops
        )
        self.progress("policies", len(tops), len(tops))

    async def write_staff(self) -> None:
        people = [*self.plan.admins, self.plan.auditor]
        users = await self.accounts([(p, UserStatus.active, None) for p in people])
        admins = zip(self.plan.admins, users[: len(self.plan.admins)], strict=True)
        self.admins = {person.home_code: user for person, user in admins}
        self.progress("centre staff", len(users), len(users))

    def _encrypted(self, elder: PlannedElder) -> dict[str, str]:
        values = {
            "id_number": elder.id_number,
            "address": elder.address,
            "health_notes": elder.health_notes,
        }
        return {
            f"{name.removesuffix('_notes')}_enc": self.runtime.crypto.encrypt(
                value, purpose=purpose
            )
            for name, purpose in ENCRYPTED.items()
            if (value := values[name]) is not None
        }

    def _consents(self, elder: PlannedElder) -> list[dict[str, str | None]]:
        given_by = "guardian" if elder.guardian else "elder"
        stamp = now_utc().isoformat()
        purposes = ("service", "assessment") if elder.assessment else ("service",)
        return [
            {"purpose": p, "given_by": given_by, "guardian_name": elder.guardian, "at": stamp}
            for p in purposes
        ]

    def _assessment(self, user: User, admin: User, planned: PlannedAssessment) -> Assessment:
        result = gbt.compute_level(
            dict(planned.item_scores),
            coma=planned.coma,
            dementia_or_mental_disorder=planned.dementia,
            risk_events_30d=planned.risk_events_30d,
        )
        return assessment_row(
            self.runtime,
            elder_id=user.id,
            result=result,
            scores=dict(planned.item_scores),
            coma=planned.coma,
            dementia_or_mental_disorder=planned.dementia,
            risk_events_30d=planned.risk_events_30d,
            assessors=(planned.assessors[0], planned.assessors[1]),
            informant=planned.informant,
            assessed_on=self.today - timedelta(days=planned.days_ago),
            recorded_by=admin.id,
        )

    async def write_elders(self) -> list[User]:
        users = await self.accounts(
            [
                (e.person, UserStatus.active, self.admin_of(e.person.home_code))
                for e in self.plan.elders
            ]
        )
        self.progress("elders", len(users), len(users))
        profiles, assessments = [], []
        for elder, user in zip(self.plan.elders, users, strict=True):
            admin = self.admin_of(elder.person.home_code)
            record = self._assessment(user, admin, elder.assessment) if elder.assessment else None
            profiles.append(
                ElderProfile(
                    user_id=user.id,
                    birth_year=elder.person.birth_year,
                    gender=elder.person.gender,
                    flags=list(elder.flags),
                    latitude=elder.latitude,
                    longitude=elder.longitude,
                    preferences=dict(elder.preferences),
                    consents=self._consents(elder),
                    capability_level=record.final_level if record else None,
                    **self._encrypted(elder),
                )
            )
            if record is not None:
                assessments.append(record)
        await ElderProfile.bulk_create(profiles, batch_size=200)
        await Assessment.bulk_create(assessments, batch_size=200)
        self.progress("assessments", len(assessments), len(assessments))
        return users

    async def write_families(self, elders: list[User]) -> None:
        users = await self.accounts(
            [(f.person, UserStatus.active, None) for f in self.plan.families]
        )
        links = []
        for family, user in zip(self.plan.families, users, strict=True):
            links.append(
                FamilyLink(
                    family_id=user.id,
                    elder_id=elders[family.elder].id,
                    relation=family.relation,
                    status=LinkStatus.approved,
                    approved_by_id=self.admin_of(family.person.home_code).id,
                    approved_at=now_utc(),
                )
            )
        await FamilyLink.bulk_create(links, batch_size=200)
        self.progress("family members", len(users), len(users))

    async def write_helpers(self) -> None:
        providers = [
            await Provider.create(
                district=self.districts[p.district_code],
                name=p.name,
                services=sorted(code for code, _ in p.prices),
                prices=dict(sorted(p.prices)),
                capacity_per_day=p.capacity_per_day,
                star_grade=p.star_grade,
                list_status=p.list_status,
            )
            for p in self.plan.providers
        ]
        self.progress("providers", len(providers), len(providers))
        users = await self.accounts(
            [
                (h.person, UserStatus.active if h.approved else UserStatus.pending, None)
                for h in self.plan.helpers
            ]
        )
        profiles, certificates = [], []
        for helper, user in zip(self.plan.helpers, users, strict=True):
            admin = self.admin_of(helper.person.home_code)
            profiles.append(self._helper_profile(user, admin, helper, providers))
            certificates += [self._certificate(user, admin, c) for c in helper.certificates]
        await HelperProfile.bulk_create(profiles, batch_size=200)
        await Certificate.bulk_create(certificates, batch_size=200)
        self.progress("helpers", len(users), len(users))

    def _helper_profile(
        self, user: User, admin: User, helper: PlannedHelper, providers: list[Provider]
    ) -> HelperProfile:
        return HelperProfile(
            user_id=user.id,
            kind=HelperKind.volunteer if helper.provider is None else HelperKind.provider,
            provider_id=None if helper.provider is None else providers[helper.provider].id,
            skills=list(helper.skills),
            availability=[{"weekday": d, "start": s, "end": e} for d, s, e in helper.availability],
            latitude=helper.latitude,
            longitude=helper.longitude,
            radius_minutes=15,
            vetting_status=VettingStatus.approved if helper.approved else VettingStatus.pending,
            vetted_by_id=admin.id if helper.approved else None,
            capacity_per_day=helper.capacity_per_day,
            # Provider staff trained for bathing go out in pairs, as certified bathing asks.
            crew_size=2 if helper.provider is not None and "bathing" in helper.skills else 1,
        )

    def _certificate(self, user: User, admin: User, planned: PlannedCertificate) -> Certificate:
        return Certificate(
            helper_id=user.id,
            kind=planned.kind,
            number_enc=self.runtime.crypto.encrypt(planned.number, purpose=CERTIFICATE_PURPOSE),
            expires_on=self.today + timedelta(days=planned.expires_in_days),
            verified_by_id=admin.id if planned.verified else None,
            verified_at=now_utc() if planned.verified else None,
        )


def _logins(plan: CityPlan) -> tuple[DemoLogin, ...]:
    people = [
        *plan.admins,
        plan.auditor,
        *(e.person for e in plan.elders),
        *(f.person for f in plan.families),
        *(h.person for h in plan.helpers),
    ]
    return tuple(
        DemoLogin(p.role.value, p.phone, p.password, p.name, p.home_code)
        for p in people
        if p.password is not None and p.phone is not None
    )


def summarise(plan: CityPlan) -> DemoSummary:
    """The counts of a planned city, as `build_demo_city` reports them once written."""

    def level(name: DistrictLevel) -> int:
        return sum(d.level is name for d in plan.districts)

    volunteers = [h for h in plan.helpers if h.provider is None]
    return DemoSummary(
        districts=level(DistrictLevel.district),
        streets=level(DistrictLevel.street),
        communities=level(DistrictLevel.community),
        policies=level(DistrictLevel.district),
        centre_admins=len(plan.admins),
        auditors=1,
        elders=len(plan.elders),
        elders_without_phone=sum(e.person.phone is None for e in plan.elders),
        assessments=sum(e.assessment is not None for e in plan.elders),
        family_members=len(plan.families),
        volunteers=len(volunteers),
        volunteers_pending=sum(not h.approved for h in volunteers),
        providers=len(plan.providers),
        provider_staff=len(plan.helpers) - len(volunteers),
        certificates=sum(len(h.certificates) for h in plan.helpers),
        logins=_logins(plan),
    )


def _no_progress(stage: str, done: int, total: int) -> None:
    """Progress reports go nowhere unless the caller asks for them."""


async def build_demo_city(
    runtime: Runtime, *, seed: int = 7, progress: Progress | None = None
) -> DemoSummary:
    """Write the city `plan_city(seed)` into an empty, migrated database (Tortoise initialised).

    Raises `DemoAlreadyLoaded` if any district exists. One transaction: a failure leaves the
    database empty, so the command can simply be run again.
    """
    existing = await District.all().count()
    if existing:
        raise DemoAlreadyLoaded(
            f"the database already has {existing} districts; the demo city loads only into an "
            "empty database"
        )
    plan = plan_city(seed)
    writer = _Writer(runtime, plan, progress or _no_progress)
    async with in_transaction():
        await writer.write_districts()
        await writer.write_staff()
        elders = await writer.write_elders()
        await writer.write_families(elders)
        await writer.write_helpers()
    return summarise(plan)


def describe(summary: DemoSummary) -> str:
    """What the CLI prints after a build: the counts and the demo logins."""
    s = summary
    lines = [
        "demo city loaded:",
        f"  places     {s.districts} districts, {s.streets} streets, {s.communities} communities,"
        f" {s.policies} policies",
        f"  elders     {s.elders} ({s.elders_without_phone} hotline only,"
        f" {s.assessments} assessed), {s.family_members} family members",
        f"  helpers    {s.volunteers} volunteers ({s.volunteers_pending} awaiting vetting),"
        f" {s.providers} providers with {s.provider_staff} staff, {s.certificates} certificates",
        f"  centres    {s.centre_admins} centre admins, {s.auditors} auditor",
        "demo logins (only these accounts have a password):",
    ]
    lines += [
        f"  {login.role:<15} {login.phone}  {login.password}  {login.name} ({login.district_code})"
        for login in s.logins
    ]
    return "\n".join(lines)
