"""The transition table itself: who may do what from where, and racing transitions."""

from __future__ import annotations

import pytest

from market import lifecycle
from market.errors import Conflict, Forbidden
from market.lifecycle import TRANSITIONS, Action, Change, NoShowSide, Party
from market.models import Booking, BookingEvent, BookingState
from market.realtime.events import event_transaction
from market.services.bookings import streams_for
from tests.market.bookings.world import book, neighbourhood, now
from tests.market.conftest import City

S = BookingState
BOOKING_ID = __import__("uuid").uuid4()


class TestTable:
    def test_every_state_is_reachable(self) -> None:
        targets = {rule.target for rule in TRANSITIONS.values()} | {S.requested}
        assert targets == set(S)

    def test_terminal_states_have_no_way_out(self) -> None:
        for action, rule in TRANSITIONS.items():
            assert not (rule.sources & lifecycle.TERMINAL), action

    @pytest.mark.parametrize("action", list(Action))
    def test_party_outside_the_rule_is_forbidden(self, action: Action) -> None:
        rule = TRANSITIONS[action]
        source = sorted(rule.sources)[0]
        for party in set(Party) - rule.parties:
            with pytest.raises(Forbidden):
                lifecycle.check(action, party, BOOKING_ID, source)

    @pytest.mark.parametrize("action", list(Action))
    def test_wrong_state_is_409_naming_the_state(self, action: Action) -> None:
        rule = TRANSITIONS[action]
        party = sorted(rule.parties)[0]
        for state in set(S) - rule.sources:
            with pytest.raises(Conflict) as caught:
                lifecycle.check(action, party, BOOKING_ID, state)
            assert caught.value.details["state"] == state.value

    def test_a_helper_cannot_report_the_helper_absent(self) -> None:
        with pytest.raises(Forbidden):
            lifecycle.check_no_show(NoShowSide.helper_absent, Party.helper, BOOKING_ID, S.accepted)

    def test_the_elder_side_cannot_claim_it_was_not_home(self) -> None:
        with pytest.raises(Forbidden):
            lifecycle.check_no_show(
                NoShowSide.elder_not_home, Party.elder_side, BOOKING_ID, S.accepted
            )

    def test_elder_refusal_needs_the_helper_at_the_door(self) -> None:
        with pytest.raises(Conflict):
            lifecycle.check_no_show(NoShowSide.elder_refused, Party.helper, BOOKING_ID, S.accepted)


class TestApply:
    async def test_logs_actor_time_and_reason(self, client, city: City) -> None:
        await neighbourhood(city)
        created = await book(client, city["elder"])
        booking = await Booking.get(id=created["id"])
        at = now()
        async with event_transaction() as tx:
            await lifecycle.apply(
                tx,
                booking,
                Change(Action.escalate, "nobody near"),
                lifecycle.SYSTEM,
                now=at,
                streams=streams_for(booking),
            )
        event = await BookingEvent.filter(booking_id=booking.id).order_by("-id").first()
        assert event is not None
        assert (event.action, event.from_state, event.to_state) == (
            "escalate",
            "requested",
            "escalated",
        )
        assert event.actor_role == "system" and event.reason == "nobody near"
        assert (await Booking.get(id=booking.id)).version == 1

    async def test_a_stale_copy_loses_with_409_and_writes_nothing(self, client, city: City) -> None:
        await neighbourhood(city)
        created = await book(client, city["elder"])
        first = await Booking.get(id=created["id"])
        stale = await Booking.get(id=created["id"])
        async with event_transaction() as tx:
            await lifecycle.apply(
                tx,
                first,
                Change(Action.escalate),
                lifecycle.SYSTEM,
                now=now(),
                streams=streams_for(first),
            )
        events_before = await BookingEvent.filter(booking_id=first.id).count()
        with pytest.raises(Conflict) as caught:
            async with event_transaction() as tx:
                await lifecycle.apply(
                    tx,
                    stale,
                    Change(Action.expire),
                    lifecycle.SYSTEM,
                    now=now(),
                    streams=streams_for(stale),
                )
        assert caught.value.details["state"] == "escalated"
        assert await BookingEvent.filter(booking_id=first.id).count() == events_before
        assert (await Booking.get(id=first.id)).state is S.escalated
