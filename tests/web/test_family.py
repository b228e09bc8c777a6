"""The elder's side: gifts to a relative picked from the family links, recurring bookings
(skip, move, end) and the bookings list a page at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in
from tests.web.rest import api, token_of

DAYS = 60


@pytest.fixture(scope="module")
def daily_cleaning(server: Server) -> dict[str, Any]:
    """The son books a cleaning for his father every day for two months, from tomorrow at nine
    (Shanghai). Nobody near the father cleans, so every occurrence stays open."""
    first = datetime.now(UTC).date() + timedelta(days=1)
    start = datetime(first.year, first.month, first.day, 1, 0, tzinfo=UTC)
    body = {
        "service": "cleaning",
        "elder_id": server.account("elder2")["id"],
        "window_start": start.isoformat(),
        "payment": "public",
        "recurrence": {
            "weekdays": list(range(7)),
            "until": (first + timedelta(days=DAYS - 1)).isoformat(),
        },
    }
    created = api(server, "POST", "/api/v1/requests", body, token_of(server, "family2"))
    bookings = created["bookings"]
    assert len(bookings) == DAYS
    return {
        "series_id": bookings[0]["series_id"],
        "first": first,
        "ids": [b["id"] for b in bookings],
    }


class TestGift:
    def test_the_daughter_gifts_an_hour_to_her_mother_picked_from_her_links(
        self, page: Any, server: Server
    ) -> None:
        sign_in(page, server, "family")
        page.get_by_role("link", name="时间银行").click()
        mother = page.get_by_label("李奶奶（父母）")
        # The only relative she may gift to is chosen already; no account number to type.
        expect(mother).to_be_checked()
        expect(page.locator("main")).not_to_contain_text("账户编号")
        page.get_by_label("赠送小时数").fill("1")
        page.get_by_role("button", name="赠送", exact=True).click()
        expect(page.locator("#notices")).to_contain_text("赠送成功。")
        line = page.locator("table.statement tbody tr").last
        expect(line).to_contain_text("赠送")
        expect(line).to_contain_text("-1 小时")

    def test_the_mother_sees_her_daughter_to_gift_back(self, page: Any, server: Server) -> None:
        sign_in(page, server, "elder")
        page.get_by_role("link", name="时间银行").click()
        expect(page.get_by_label("李小红（子女）")).to_be_visible()

    def test_a_volunteer_without_family_links_is_told_so(self, page: Any, server: Server) -> None:
        sign_in(page, server, "volunteer")
        page.get_by_role("link", name="时间银行").click()
        expect(page.locator("main")).to_contain_text("还没有可以赠送的亲属")


class TestSeries:
    def test_skip_move_and_end_a_daily_cleaning(
        self, page: Any, server: Server, daily_cleaning: dict[str, Any]
    ) -> None:
        sign_in(page, server, "family2")
        page.get_by_role("link", name="定期预约").click()
        card = page.locator(f'[data-series="{daily_cleaning["series_id"]}"]')
        expect(card.get_by_role("heading", level=2)).to_contain_text("助洁")
        expect(card.get_by_role("heading", level=2)).to_contain_text("进行中")
        first: date = daily_cleaning["first"]
        one = card.locator(f'[data-occurrence="{first.isoformat()}"]')
        one.get_by_role("button", name="这次不要了").click()
        expect(page.locator("#notices")).to_contain_text(f"{first.isoformat()} 这一次已取消。")
        expect(one.locator("[data-state]")).to_have_text("已取消")
        expect(card).to_contain_text(first.isoformat())

        second = first + timedelta(days=1)
        two = card.locator(f'[data-occurrence="{second.isoformat()}"]')
        two.get_by_text("改时间", exact=True).click()
        two.get_by_label("改到").fill(f"{second.isoformat()}T15:30")
        two.get_by_role("button", name="确认改时间").click()
        expect(page.locator("#notices")).to_contain_text(f"{second.isoformat()} 这一次已改时间")
        expect(two.get_by_role("link")).to_contain_text("15:30")

        card.get_by_text("结束这个定期预约").click()
        card.get_by_role("button", name="结束并取消以后的每一次").click()
        expect(page.locator("#notices")).to_contain_text("正在取消以后的每一次")
        # Fifty-eight occurrences are cancelled one by one: give the server time.
        expect(page.locator("#notices")).to_contain_text("定期预约已结束", timeout=30_000)
        expect(card.get_by_role("heading", level=2)).to_contain_text("已结束")
        expect(card.locator('[data-state="requested"]')).to_have_count(0)

    def test_the_centre_sees_an_elders_series_from_the_record(
        self, page: Any, server: Server, daily_cleaning: dict[str, Any]
    ) -> None:
        sign_in(page, server, "centre_admin")
        page.goto(server.base_url + f"/#/elders/{server.account('elder2')['id']}")
        page.get_by_role("link", name="定期预约").last.click()
        expect(page.get_by_role("heading", level=1)).to_have_text("定期预约")
        expect(page.locator(f'[data-series="{daily_cleaning["series_id"]}"]')).to_be_visible()


class TestBookingList:
    def test_the_list_pages_from_the_latest_window(
        self, page: Any, server: Server, daily_cleaning: dict[str, Any]
    ) -> None:
        sign_in(page, server, "family2")
        page.get_by_role("link", name="我的预约").click()
        items = page.locator(".booking-item")
        expect(items).to_have_count(50)
        # The latest window is on top: the last day of the two months.
        expect(items.first).to_have_attribute("data-booking", daily_cleaning["ids"][-1])
        page.get_by_role("button", name="显示更早的预约").click()
        expect(page.get_by_role("button", name="显示更早的预约")).to_be_hidden()
        # The rest arrives below, the first day's cleaning after the later ones (the queue's
        # visit booked for today, if that test ran, comes last).
        shown = items.evaluate_all("els => els.map(e => e.dataset.booking)")
        assert len(shown) == len(set(shown)) > 50
        assert [i for i in shown if i in set(daily_cleaning["ids"])] == daily_cleaning["ids"][::-1]
