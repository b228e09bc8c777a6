"""The centre's dispatch and a helper's acceptance apply every hard rule the matcher applies to
one (booking, helper) pair: a refusal is a 403 naming the rule and writes nothing."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest

from market.models import (
    Booking,
    ElderHelperList,
    ElderProfile,
    HelperKind,
    HelperProfile,
    ListStatus,
    Offer,
    OfferState,
    Provider,
    User,
    VettingStatus,
)
from tests.market.bookings.world import (
    book,
    neighbourhood,
    offer_for,
    place_helper,
    post,
    priced_provider,
    run_round,
    snapshot,
    state_of,
)
from tests.market.conftest import Actor, City


@pytest.fixture
async def town(city: City) -> City:
    return await neighbourhood(city)


async def dispatch(
    client: httpx.AsyncClient, town: City, booking_id: str, helper_id: UUID
) -> httpx.Response:
    path = f"/api/v1/bookings/{booking_id}/dispatch"
    body = {"helper_id": str(helper_id), "reason": "called them"}
    return await post(client, town["centre_admin"], path, body)


def refusal(response: httpx.Response) -> tuple[int, str, Any]:
    error = response.json()["error"]
    return response.status_code, error["code"], error.get("details")


async def block(town: City, helper: Actor) -> None:
    await ElderHelperList.create(
        elder_id=town["elder"].user.id,
        helper_id=helper.user.id,
        kind="blocked",
        added_by_id=town["elder"].user.id,
    )


async def blacklist(provider: Provider) -> None:
    await Provider.filter(id=provider.id).update(list_status=ListStatus.black)


async def prefer_gender(town: City, gender: str) -> None:
    await ElderProfile.filter(user_id=town["elder"].user.id).update(
        preferences={"helper_gender_for_intimate_care": gender}
    )


async def set_gender(helper: Actor, gender: str | None) -> None:
    await User.filter(id=helper.user.id).update(gender=gender)


async def accept(client: httpx.AsyncClient, helper: Actor, booking_id: str) -> httpx.Response:
    offer = await offer_for(client, helper, booking_id)
    return await post(client, helper, f"/api/v1/offers/{offer['id']}/accept")


class TestDispatchRefusals:
    async def test_the_elder_never_serves_their_own_booking(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        # A younger elder may volunteer too (mutual aid), but never for themself.
        elder = town["elder"]
        await HelperProfile.create(
            user=elder.user, kind=HelperKind.volunteer, vetting_status=VettingStatus.approved
        )
        booking = await book(client, elder)
        before = await snapshot()
        response = await dispatch(client, town, booking["id"], elder.user.id)
        assert refusal(response) == (
            403,
            "eligibility.self",
            {"rule": "not_excluded_by_elder"},
        )
        assert await snapshot() == before

    async def test_a_helper_the_elder_blocked_is_refused(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await block(town, town["volunteer"])
        booking = await book(client, town["elder"])
        before = await snapshot()
        response = await dispatch(client, town, booking["id"], town["volunteer"].user.id)
        assert refusal(response) == (
            403,
            "eligibility.blocked_by_elder",
            {"rule": "not_excluded_by_elder"},
        )
        assert await snapshot() == before

    async def test_a_block_by_another_elder_does_not_count(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await ElderHelperList.create(
            elder_id=town["family"].user.id,
            helper_id=town["volunteer"].user.id,
            kind="blocked",
            added_by_id=town["family"].user.id,
        )
        booking = await book(client, town["elder"])
        response = await dispatch(client, town, booking["id"], town["volunteer"].user.id)
        assert response.status_code == 201, response.text

    async def test_staff_of_a_black_listed_provider_are_refused_on_a_public_booking(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await blacklist(await priced_provider(town, cleaning=4500))
        booking = await book(client, town["elder"])
        before = await snapshot()
        response = await dispatch(client, town, booking["id"], town["provider_staff"].user.id)
        assert refusal(response) == (403, "eligibility.blacklisted", {"rule": "not_blacklisted"})
        assert await snapshot() == before

    async def test_staff_of_a_red_listed_provider_may_serve(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        provider = await priced_provider(town, cleaning=4500)
        await Provider.filter(id=provider.id).update(list_status=ListStatus.red)
        booking = await book(client, town["elder"])
        response = await dispatch(client, town, booking["id"], town["provider_staff"].user.id)
        assert response.status_code == 201, response.text

    async def test_intimate_care_honours_the_elders_gender_preference(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await prefer_gender(town, "female")
        await set_gender(town["volunteer"], "male")
        booking = await book(client, town["elder"], service="bathing")
        before = await snapshot()
        response = await dispatch(client, town, booking["id"], town["volunteer"].user.id)
        assert refusal(response) == (
            403,
            "policy.forbids",
            {"rule": "services.bathing.intimate", "policy_version": 0},
        )
        assert "female" in response.json()["error"]["message"]
        assert await snapshot() == before

    async def test_a_helper_who_declared_no_gender_does_not_meet_a_preference(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await prefer_gender(town, "female")
        await set_gender(town["volunteer"], None)
        booking = await book(client, town["elder"], service="medical")
        response = await dispatch(client, town, booking["id"], town["volunteer"].user.id)
        assert refusal(response)[2] == {"rule": "services.medical.intimate", "policy_version": 0}

    async def test_a_helper_of_the_preferred_gender_is_dispatched(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await prefer_gender(town, "female")
        await set_gender(town["volunteer"], "female")
        booking = await book(client, town["elder"], service="bathing")
        response = await dispatch(client, town, booking["id"], town["volunteer"].user.id)
        assert response.status_code == 201, response.text

    async def test_the_preference_does_not_bind_for_other_services(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await prefer_gender(town, "female")
        await set_gender(town["volunteer"], "male")
        booking = await book(client, town["elder"], service="cleaning")
        response = await dispatch(client, town, booking["id"], town["volunteer"].user.id)
        assert response.status_code == 201, response.text

    async def test_no_preference_binds_nobody(self, client: httpx.AsyncClient, town: City) -> None:
        await prefer_gender(town, "any")
        await set_gender(town["volunteer"], "male")
        booking = await book(client, town["elder"], service="bathing")
        response = await dispatch(client, town, booking["id"], town["volunteer"].user.id)
        assert response.status_code == 201, response.text


class TestAcceptRechecks:
    """Rules checked again when the helper accepts: what changed since the offer counts."""

    async def test_a_helper_blocked_after_the_offer_cannot_accept(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        booking = await book(client, town["elder"])
        assert (await dispatch(client, town, booking["id"], town["volunteer"].user.id)).is_success
        await block(town, town["volunteer"])
        response = await accept(client, town["volunteer"], booking["id"])
        assert refusal(response)[:2] == (403, "eligibility.blocked_by_elder")
        assert await state_of(booking["id"]) == "offered"
        assert (await Offer.get(booking_id=booking["id"])).state is OfferState.open

    async def test_staff_black_listed_after_the_offer_cannot_accept(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        provider = await priced_provider(town, cleaning=4500)
        booking = await book(client, town["elder"])
        staff = town["provider_staff"]
        assert (await dispatch(client, town, booking["id"], staff.user.id)).is_success
        await blacklist(provider)
        response = await accept(client, staff, booking["id"])
        assert refusal(response)[:2] == (403, "eligibility.blacklisted")
        assert (await Booking.get(id=booking["id"])).helper_id is None  # type: ignore[attr-defined]

    async def test_a_preference_stated_after_the_offer_binds_at_acceptance(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await set_gender(town["volunteer"], "male")
        booking = await book(client, town["elder"], service="bathing")
        assert await run_round() == 1
        await prefer_gender(town, "female")
        response = await accept(client, town["volunteer"], booking["id"])
        assert refusal(response) == (
            403,
            "policy.forbids",
            {"rule": "services.bathing.intimate", "policy_version": 0},
        )
        assert await state_of(booking["id"]) == "offered"


async def only_provider_in_reach(town: City) -> None:
    """The volunteer is moved out of the city: the provider's staff are the only helper."""
    await place_helper(town["volunteer"], lat=31.0, lon=121.0)


class TestMatchingLoopBlackList:
    async def test_black_listed_staff_never_get_an_offer(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        await blacklist(await priced_provider(town, cleaning=4500))
        await only_provider_in_reach(town)
        booking = await book(client, town["elder"])
        assert await run_round() == 0
        assert await Offer.filter(booking_id=booking["id"]).count() == 0
        note = (await Booking.get(id=booking["id"])).match_note
        assert note is not None and note["code"] == "blacklisted"

    async def test_the_same_staff_get_it_once_the_provider_is_off_the_list(
        self, client: httpx.AsyncClient, town: City
    ) -> None:
        provider = await priced_provider(town, cleaning=4500)
        await blacklist(provider)
        await only_provider_in_reach(town)
        booking = await book(client, town["elder"])
        assert await run_round() == 0
        await Provider.filter(id=provider.id).update(list_status=ListStatus.normal)
        assert await run_round() == 1
        offer = await Offer.get(booking_id=booking["id"])
        assert offer.helper_id == town["provider_staff"].user.id  # type: ignore[attr-defined]
