"""The issue's must-show flows, each person in their own browser context, updates live.

- A family member books a bath; the volunteer accepts in another context; the family page
  shows "accepted" without reloading; set off, check in, check out, confirm; the volunteer's
  statement shows the new line marked verified.
- An emergency nobody can take is escalated; the centre admin sees it arrive in the queue,
  resolves it, and the family page shows the outcome live.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in

# The seeded elder lives here; the volunteer's phone reports the same place at check-in.
ELDER_PLACE = {"latitude": 30.27, "longitude": 120.15}


@pytest.fixture(scope="module")
def people(browser: Any, server: Server) -> Iterator[dict[str, Any]]:
    """One signed-in page per role, each in its own context (own session storage), shared by
    this module's tests: signing in three people costs more than the flows themselves."""
    contexts = []
    pages: dict[str, Any] = {}
    errors: list[str] = []
    for role, width in (("family", 360), ("volunteer", 1280), ("centre_admin", 1280)):
        ctx = browser.new_context(
            viewport={"width": width, "height": 900},
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
            geolocation=ELDER_PLACE,
            permissions=["geolocation"],
        )
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, server, role)
        pages[role] = page
    yield pages
    for ctx in contexts:
        ctx.close()
    assert not errors, errors


def book_bath(page: Any, server: Server) -> str:
    page.get_by_role("link", name="预约服务").click()
    page.get_by_role("button", name="助浴").click()
    # Ten minutes from now in the page's own clock and time zone (tomorrow just before midnight).
    day, soon = page.evaluate(
        "(() => { const now = new Date(), d = new Date(now.getTime() + 10 * 60000);"
        " const hm = [d.getHours(), d.getMinutes()].map(n => String(n).padStart(2, '0'));"
        " return [d.getDate() === now.getDate() ? '今天' : '明天', hm.join(':')];"
        " })()"
    )
    if soon < "00:20":  # a known limit, said out loud rather than failing at night
        pytest.skip(
            "the matcher cuts a per-day capacity at local midnight, so nobody is matched to a "
            "bath whose trip there would start the day before"
        )
    page.get_by_label(day).check()
    page.get_by_label("具体时间").check()
    page.get_by_label("时间", exact=True).fill(soon)
    page.get_by_role("button", name="确认预约").click()
    expect(page.locator("#notices")).to_contain_text("预约已提交")
    return page.url.rsplit("/", 1)[-1]  # type: ignore[no-any-return]


def test_family_books_a_bath_and_watches_it_live_to_a_verified_statement(
    people: dict[str, Any], server: Server, screenshots: Path
) -> None:
    family, volunteer = people["family"], people["volunteer"]
    booking_id = book_bath(family, server)
    timeline = family.locator(".timeline")
    expect(timeline.locator("li.current")).to_contain_text("已派单")

    volunteer.get_by_role("link", name="新派单").click()
    offer = volunteer.locator(f'[data-booking="{booking_id}"]')
    expect(offer.get_by_role("timer")).to_contain_text("可以接单")
    volunteer.screenshot(path=str(screenshots / "volunteer-offers-1280.png"), full_page=True)
    offer.get_by_role("button", name="接单").click()

    # No reload on the family side: the websocket event redraws the timeline.
    expect(timeline.locator("li.current")).to_contain_text("已接单")
    family.screenshot(path=str(screenshots / "family-booking-360.png"), full_page=True)

    volunteer.get_by_role("button", name="出发").click()
    expect(timeline.locator("li.current")).to_contain_text("在路上")
    volunteer.get_by_role("button", name="到达签到").click()
    expect(timeline.locator("li.current")).to_contain_text("已到达")
    # Ending a bath a few seconds after it began is outside the time tolerance: say why.
    volunteer.get_by_label("说明（位置或时间不符时需要）").fill("测试：提前结束")
    volunteer.get_by_role("button", name="服务结束签退").click()
    confirm = family.get_by_role("button", name="确认服务已完成")
    expect(confirm).to_be_visible()
    confirm.click()
    expect(family.locator("#notices")).to_contain_text("已确认")
    expect(family.locator("main")).to_contain_text("给这次服务评分")

    volunteer.get_by_role("link", name="时间银行").click()
    line = volunteer.locator("table.statement tbody tr").last
    expect(line).to_contain_text("服务存入 · 助浴")
    expect(line.locator(".verify .badge")).to_have_text("✓ 已核验", timeout=20_000)
    expect(line).to_contain_text("检查点签名有效（Ed25519）")
    volunteer.screenshot(path=str(screenshots / "volunteer-hours-1280.png"), full_page=True)

    # The centre's ledger explorer runs the same verification on the district's entries.
    admin = people["centre_admin"]
    admin.get_by_role("link", name="账本").click()
    admin.get_by_role("button", name="在本浏览器中核验这些条目").click()
    expect(admin.locator("tbody .verify .badge").first).to_have_text("✓ 已核验")


def test_admin_resolves_an_escalated_emergency_live(people: dict[str, Any], server: Server) -> None:
    family, admin = people["family"], people["centre_admin"]
    admin.get_by_role("link", name="待处理").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("待处理")
    escalated = admin.locator('[data-queue="escalated"]')
    before = escalated.locator("li").count()

    family.get_by_role("link", name="预约服务").click()
    family.once("dialog", lambda dialog: dialog.accept())
    # Nobody near has the emergency skill, so the call goes straight to the centre.
    family.get_by_role("button", name="紧急求助").click()
    expect(family.get_by_role("heading", level=1)).to_contain_text("紧急求助")
    booking_id = family.url.rsplit("/", 1)[-1]
    expect(family.locator("main")).to_contain_text("转服务中心处理")

    item = escalated.locator(f'[data-booking="{booking_id}"]')
    expect(item).to_be_visible()
    assert escalated.locator("li").count() == before + 1
    item.get_by_role("link").click()
    admin.get_by_label("处理说明").fill("已电话联系家属，由社区医生上门")
    admin.get_by_role("button", name="无法安排").click()
    expect(admin.locator("#notices")).to_contain_text("已标记为无法安排")

    # The family's open page changes by itself.
    expect(family.locator("main [data-state]").first).to_have_text("无法安排")
    admin.get_by_role("link", name="待处理").click()
    expect(escalated.locator(f'[data-booking="{booking_id}"]')).to_have_count(0)


def test_admin_dispatches_a_suggested_helper_with_one_click_live(
    browser: Any, people: dict[str, Any], server: Server, screenshots: Path
) -> None:
    """Across town an emergency reaches nobody: the one first-aider there awaits vetting. The
    centre approves her from the queue, the queue suggests her for the emergency, one click
    sends it to her, and the son's page shows each step and her name without reloading."""
    admin = people["centre_admin"]
    contexts = []
    pages: dict[str, Any] = {}
    errors: list[str] = []
    for role, width in (("family2", 360), ("responder", 1280)):
        ctx = browser.new_context(
            viewport={"width": width, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
        )
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(15_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_in(page, server, role)
        pages[role] = page
    try:
        son, responder = pages["family2"], pages["responder"]
        admin.get_by_role("link", name="待处理").click()
        vetting = admin.locator('[data-queue="vetting"]')
        candidate = vetting.locator(f'[data-helper="{server.account("responder")["id"]}"]')
        expect(candidate).to_contain_text("钱急救")

        son.get_by_role("link", name="预约服务").click()
        son.once("dialog", lambda dialog: dialog.accept())
        son.get_by_role("button", name="紧急求助").click()
        expect(son.get_by_role("heading", level=1)).to_contain_text("紧急求助")
        booking_id = son.url.rsplit("/", 1)[-1]
        expect(son.locator("main")).to_contain_text("转服务中心处理")

        item = admin.locator(f'[data-queue="escalated"] [data-booking="{booking_id}"]')
        expect(item).to_contain_text("现在没有可以接这个单的服务人员")
        candidate.get_by_role("button", name="通过", exact=True).click()
        expect(admin.locator("#notices")).to_contain_text("钱急救：已通过。")
        # Approved, she is the matcher's suggestion: one click offers her the emergency.
        send = item.get_by_role("button", name="派给 钱急救")
        expect(item).to_contain_text("路程约")
        admin.screenshot(path=str(screenshots / "admin-queue-suggestion-1280.png"), full_page=True)
        send.click()
        expect(admin.locator("#notices")).to_contain_text("已派给 钱急救，等待对方接单。")
        expect(
            admin.locator(f'[data-queue="escalated"] [data-booking="{booking_id}"]')
        ).to_have_count(0)

        timeline = son.locator(".timeline")
        expect(timeline.locator("li.current")).to_contain_text("已派单")
        responder.get_by_role("link", name="新派单").click()
        responder.locator(f'[data-booking="{booking_id}"]').get_by_role(
            "button", name="接单"
        ).click()
        expect(timeline.locator("li.current")).to_contain_text("已接单")
        expect(timeline.locator(".helper-name")).to_have_text("服务人员：钱急救")
        expect(son.locator("main")).to_contain_text("钱急救")
        son.screenshot(path=str(screenshots / "family-booking-helper-360.png"), full_page=True)
    finally:
        for ctx in contexts:
            ctx.close()
    assert not errors, errors
