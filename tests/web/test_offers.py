"""A volunteer's offers: declining one, and the countdown running out on one left unanswered.

Each test has its own booking in the third household, so only 孙志愿 is offered it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in
from tests.web.rest import api, book, booking_of, token_of, wait_for_offer


@pytest.fixture
def offered(server: Server) -> Iterator[dict[str, Any]]:
    """A meal for 刘奶奶 tomorrow, offered to 孙志愿; cancelled afterwards, so the centre's
    queue never finds it unmatched."""
    start = datetime.now(UTC) + timedelta(days=1)
    booking_id = book(
        server,
        "family3",
        service="meal",
        elder="elder3",
        start=start,
        end=start + timedelta(hours=3),
    )
    yield wait_for_offer(server, booking_id, token_of(server, "volunteer3"))
    cancel = {"reason": "browser test done"}
    api(
        server, "POST", f"/api/v1/bookings/{booking_id}/cancel", cancel, token_of(server, "family3")
    )


def open_offer_ids(server: Server) -> set[str]:
    offers = api(server, "GET", "/api/v1/offers", token=token_of(server, "volunteer3"))["offers"]
    return {o["id"] for o in offers}


def test_declining_an_offer_removes_it_and_frees_the_booking(
    page: Any, server: Server, offered: dict[str, Any]
) -> None:
    sign_in(page, server, "volunteer3")
    page.get_by_role("link", name="新派单").click()
    card = page.locator(f'[data-offer="{offered["id"]}"]')
    expect(card.get_by_role("timer")).to_contain_text("可以接单")
    card.get_by_role("button", name="不接").click()
    expect(page.locator("#notices")).to_contain_text("已谢绝这个派单。")
    expect(card).to_have_count(0)
    assert offered["id"] not in open_offer_ids(server)
    # Nobody else is offered it, so it waits for the next round (never again for her).
    booking = booking_of(server, offered["booking_id"], token_of(server, "family3"))
    assert booking["state"] == "requested"


def test_an_offer_whose_countdown_runs_out_says_so_and_cannot_be_accepted(
    page: Any, server: Server, offered: dict[str, Any]
) -> None:
    # The page's clock is Playwright's: it runs as usual until the test jumps it forward.
    page.clock.install()
    sign_in(page, server, "volunteer3")
    page.get_by_role("link", name="新派单").click()
    card = page.locator(f'[data-offer="{offered["id"]}"]')
    timer = card.get_by_role("timer")
    expect(timer).to_contain_text("可以接单")
    accept = card.get_by_role("button", name="接单", exact=True)
    expect(accept).to_be_enabled()
    left = datetime.fromisoformat(offered["deadline"]) - datetime.now(UTC)
    page.clock.fast_forward(int(left.total_seconds() * 1000) + 5_000)
    expect(timer).to_have_text("这个派单已过期")
    expect(timer).to_have_class("countdown urgent")
    expect(accept).to_be_disabled()
