"""Who may act where: district subtrees and the scope checks every service uses."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID

from market.errors import Forbidden
from market.models import District, Role


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. `districts` is where a centre admin may act (own subtree)."""

    user_id: UUID
    role: Role
    district_id: UUID
    token_id: str
    districts: frozenset[UUID]

    def administers(self, district_id: UUID) -> bool:
        return self.role is Role.centre_admin and district_id in self.districts


async def district_subtree(root: UUID) -> frozenset[UUID]:
    """`root` and every district below it (district -> street -> community)."""
    children: dict[UUID, list[UUID]] = defaultdict(list)
    for district_id, parent_id in await District.all().values_list("id", "parent_id"):
        if parent_id is not None:
            children[parent_id].append(district_id)
    seen = {root}
    stack = [root]
    while stack:
        for child in children[stack.pop()]:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return frozenset(seen)


def require_admin_of(principal: Principal, district_id: UUID, action: str) -> None:
    if not principal.administers(district_id):
        raise Forbidden("district_forbidden", f"only a centre admin of this district may {action}")
