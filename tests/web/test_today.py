"""A volunteer's jobs for today with directions text, from where the phone says they are."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in
from tests.web.rest import api, book, token_of, wait_for_offer

# Where the volunteer stands: a little south-west of the elder's home (30.27, 120.15).
STANDING = {"latitude": 30.262, "longitude": 120.141}
HOME = {"latitude": 30.27, "longitude": 120.15}


@pytest.fixture(scope="module")
def todays_job(server: Server) -> str:
    """A meal for the elder in the next three hours (starting now, so it is today wherever
    the clock stands), offered by the matcher to the volunteer, who accepts it."""
    start = datetime.now(UTC)
    booking_id = book(
        server, "family", service="meal", elder="elder", start=start, end=start + timedelta(hours=3)
    )
    volunteer = token_of(server, "volunteer")
    offer = wait_for_offer(server, booking_id, volunteer)
    api(server, "POST", f"/api/v1/offers/{offer['id']}/accept", {}, volunteer)
    return booking_id


def expected_directions() -> str:
    """The same sums as static/views/today.js, done here to check the page's sentence."""
    lat1, lon1, lat2, lon2 = (
        math.radians(v)
        for v in (STANDING["latitude"], STANDING["longitude"], HOME["latitude"], HOME["longitude"])
    )
    a = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    km = 2 * 6371.0088 * math.asin(math.sqrt(a))
    minutes = max(1, round(km * 1.3 / 4.5 * 60))
    return f"东北方向 {km:.1f} 公里，步行约 {minutes} 分钟"


def test_todays_job_has_directions_and_the_next_step(
    browser: Any, server: Server, todays_job: str
) -> None:
    ctx = browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        geolocation=STANDING,
        permissions=["geolocation"],
    )
    try:
        page = ctx.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, server, "volunteer")
        page.get_by_role("link", name="今天的任务").click()
        card = page.locator(f'.job-card[data-booking="{todays_job}"]')
        expect(card.locator(".directions")).to_have_text(expected_directions())
        expect(card).to_contain_text("住址只对老人、家属和服务中心可见")
        expect(card.get_by_role("link", name="在地图应用中打开")).to_have_attribute(
            "href", "geo:30.27,120.15"
        )
        card.get_by_role("button", name="出发").click()
        expect(page.locator("#notices")).to_contain_text("已出发。")
        expect(card.locator("[data-state]")).to_have_text("在路上")
        expect(card.get_by_role("button", name="到达签到")).to_be_visible()
    finally:
        ctx.close()


def test_without_a_position_the_job_says_why_there_are_no_directions(
    page: Any, server: Server, todays_job: str
) -> None:
    sign_in(page, server, "volunteer")
    page.goto(server.base_url + "/#/today")
    card = page.locator(f'.job-card[data-booking="{todays_job}"]')
    expect(card.locator(".directions")).to_contain_text("无法获取您的位置")
