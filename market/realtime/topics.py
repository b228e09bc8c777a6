"""Stream (topic) names and who may read them.

user:<user uuid>        a person's own bookings, offers and ledger entries: that person
elder:<elder uuid>      everything about an elder's bookings: the elder, approved family
admin:<district uuid>   a district's admin feed: centre admins administering the district
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from market.models import FamilyLink, LinkStatus, Role
from market.services.access import is_linked_family
from market.services.scope import Principal

MAX_STREAM_LENGTH = 120


class StreamKind(StrEnum):
    user = "user"
    elder = "elder"
    admin = "admin"


class InvalidStream(ValueError):
    """A stream name that is not `<user|elder|admin>:<uuid>`."""


@dataclass(frozen=True)
class StreamName:
    kind: StreamKind
    key: UUID

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.key}"


def user_stream(user_id: UUID) -> str:
    return f"{StreamKind.user.value}:{user_id}"


def elder_stream(elder_id: UUID) -> str:
    return f"{StreamKind.elder.value}:{elder_id}"


def admin_stream(district_id: UUID) -> str:
    return f"{StreamKind.admin.value}:{district_id}"


def parse_stream(name: object) -> StreamName:
    """The parts of a stream name; the canonical form is lower-case `kind:uuid`."""
    if not isinstance(name, str) or len(name) > MAX_STREAM_LENGTH:
        raise InvalidStream(f"not a stream name: {str(name)[:MAX_STREAM_LENGTH]!r}")
    kind, sep, key = name.partition(":")
    try:
        parsed = StreamName(StreamKind(kind), UUID(key))
    except ValueError:
        raise InvalidStream(f"not a stream name: {name!r}") from None
    if not sep or str(parsed) != name:
        raise InvalidStream(f"not a canonical stream name: {name!r} (expected {parsed})")
    return parsed


async def readable_streams(principal: Principal) -> list[str]:
    """Every stream this principal may read, sorted (own stream first)."""
    streams = [user_stream(principal.user_id)]
    extra: set[str] = set()
    if principal.role is Role.elder:
        extra.add(elder_stream(principal.user_id))
    if principal.role is Role.family:
        elders = await FamilyLink.filter(
            family_id=principal.user_id, status=LinkStatus.approved
        ).values_list("elder_id", flat=True)
        extra.update(elder_stream(elder_id) for elder_id in elders)  # type: ignore[arg-type]
    if principal.role is Role.centre_admin:
        extra.update(admin_stream(district) for district in principal.districts)
    return streams + sorted(extra)


async def may_read(principal: Principal, stream: str) -> bool:
    try:
        parsed = parse_stream(stream)
    except InvalidStream:
        return False
    if parsed.kind is StreamKind.user:
        return parsed.key == principal.user_id
    if parsed.kind is StreamKind.elder:
        if principal.role is Role.elder:
            return parsed.key == principal.user_id
        return await is_linked_family(principal, parsed.key)
    return principal.administers(parsed.key)
