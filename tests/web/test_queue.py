"""The centre's queue: disputes decided with one click (and on the booking page), each change
seen live by the elder's side; and the requests still waiting for a match.

The fourth household (tests/web/centre_seed.py) is used throughout: its volunteer serves only
that corner, so these bookings never reach the other households' volunteers or lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.centre_seed import FOURTH_PLACE
from tests.web.conftest import Server, signed_in_pages
from tests.web.rest import api, booking_of, token_of, wait_for_offer

HOME = {"latitude": FOURTH_PLACE[0], "longitude": FOURTH_PLACE[1]}


def disputed_meal(server: Server, complaint: str) -> str:
    """A meal served today and disputed by the son: booked, offered to and accepted by the
    corner's volunteer, checked in and out at the elder's home, then disputed (by the API)."""
    family, volunteer = token_of(server, "family4"), token_of(server, "volunteer4")
    start = datetime.now(UTC)
    body = {
        "service": "meal",
        "elder_id": server.account("elder4")["id"],
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=3)).isoformat(),
        "payment": "public",
    }
    booking_id = str(api(server, "POST", "/api/v1/requests", body, family)["bookings"][0]["id"])
    offer = wait_for_offer(server, booking_id, volunteer)
    api(server, "POST", f"/api/v1/offers/{offer['id']}/accept", {}, volunteer)
    steps = f"/api/v1/bookings/{booking_id}"
    api(server, "POST", f"{steps}/start", {}, volunteer)
    api(server, "POST", f"{steps}/check-in", HOME, volunteer)
    # Out a moment after in: outside the time tolerance, so a reason is needed.
    api(server, "POST", f"{steps}/check-out", {**HOME, "reason": "测试：提前结束"}, volunteer)
    api(server, "POST", f"{steps}/dispute", {"reason": complaint}, family)
    assert booking_of(server, booking_id, family)["state"] == "disputed"
    return booking_id


@pytest.fixture(scope="module")
def people(browser: Any, server: Server) -> Iterator[dict[str, Any]]:
    """The centre admin and the son, each signed in once in their own context."""
    with signed_in_pages(browser, server, {"centre_admin": 1280, "family4": 360}) as pages:
        yield pages


def open_queue(admin: Any) -> None:
    admin.get_by_role("link", name="待处理").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("待处理")


def state_of(page: Any) -> Any:
    return page.locator("main [data-state]").first


class TestDisputes:
    def test_a_dispute_arrives_live_and_is_upheld_with_one_click(
        self, people: dict[str, Any], server: Server
    ) -> None:
        admin, son = people["centre_admin"], people["family4"]
        open_queue(admin)
        booking_id = disputed_meal(server, "饭菜没有送到，志愿者很快就走了")
        # No reload: the booking event redraws the queue with the complaint and both buttons.
        item = admin.locator(f'[data-queue="disputed"] [data-booking="{booking_id}"]')
        expect(item).to_contain_text("异议：饭菜没有送到，志愿者很快就走了")
        expect(item.get_by_label("处理说明")).to_have_value("已与双方核实")
        son.goto(f"{server.base_url}/#/bookings/{booking_id}")
        expect(state_of(son)).to_have_text("有异议")

        item.get_by_role("button", name="异议成立（不计时长）").click()
        expect(admin.locator("#notices")).to_contain_text("处理结果已保存。")
        expect(item).to_have_count(0)
        # Upheld: the service is cancelled and no hours move; the son sees it without reloading.
        expect(state_of(son)).to_have_text("已取消")
        decided = booking_of(server, booking_id, token_of(server, "centre_admin"))
        assert (decided["state"], decided["dispute_decision"]) == ("cancelled", "upheld")

    def test_the_booking_page_rejects_a_dispute_and_the_son_sees_it_settle(
        self, people: dict[str, Any], server: Server
    ) -> None:
        admin, son = people["centre_admin"], people["family4"]
        booking_id = disputed_meal(server, "志愿者迟到了十分钟")
        son.goto(f"{server.base_url}/#/bookings/{booking_id}")
        expect(state_of(son)).to_have_text("有异议")
        open_queue(admin)
        item = admin.locator(f'[data-queue="disputed"] [data-booking="{booking_id}"]')
        item.get_by_role("link").first.click()
        expect(admin.locator("main")).to_contain_text("异议：志愿者迟到了十分钟")
        admin.get_by_label("处理说明").fill("迟到在允许范围内，服务已完成")
        admin.get_by_role("button", name="异议不成立（确认并结算）").click()
        expect(admin.locator("#notices")).to_contain_text("处理结果已保存。")
        # Rejected: confirmed and settled at once, the volunteer paid; the son's page follows.
        expect(state_of(admin)).to_have_text("已结算")
        expect(state_of(son)).to_have_text("已结算")
        expect(admin.get_by_role("button", name="异议成立（不计时长）")).to_have_count(0)
        decided = booking_of(server, booking_id, token_of(server, "centre_admin"))
        assert decided["dispute_decision"] == "rejected"

    def test_a_decision_without_a_note_is_refused_and_explained(
        self, people: dict[str, Any], server: Server
    ) -> None:
        admin = people["centre_admin"]
        booking_id = disputed_meal(server, "没有按约定打扫厨房")
        open_queue(admin)
        item = admin.locator(f'[data-queue="disputed"] [data-booking="{booking_id}"]')
        item.get_by_label("处理说明").fill("")
        item.get_by_role("button", name="异议不成立（确认并结算）").click()
        expect(admin.locator("#notices")).to_contain_text("请先填写处理说明，再作决定。")
        expect(item.get_by_label("处理说明")).to_be_focused()
        # Nothing was decided: the dispute is still waiting, its buttons usable again.
        expect(item.get_by_role("button", name="异议不成立（确认并结算）")).to_be_enabled()
        admin_token = token_of(server, "centre_admin")
        assert booking_of(server, booking_id, admin_token)["state"] == "disputed"


class TestWaiting:
    def test_a_request_nobody_can_take_waits_with_the_reason(
        self, people: dict[str, Any], server: Server
    ) -> None:
        admin = people["centre_admin"]
        open_queue(admin)
        waiting = admin.locator('[data-queue="requested"]')
        escort = waiting.locator(".booking-item", has_text="助行陪诊")
        expect(escort).to_have_count(1)
        # The matcher's reason in words: a volunteer is near, but none of them escorts.
        expect(escort.locator(".match-note")).to_have_text("附近暂时没有会这项服务的人员")
        escort.get_by_role("button", name="查看建议人选").click()
        expect(escort).to_contain_text("现在没有可以接这个单的服务人员")
