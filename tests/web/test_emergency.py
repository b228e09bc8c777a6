"""The emergency call in the browser, each person in their own context, updates live.

The family raises an emergency nobody near can take: their booking page lists the call's steps
as they happen (raised, nobody nearby, centre alerted). The centre's queue shows the call with
its "I'm handling it" button; one click acknowledges it, it leaves the queue, and the family's
open page says the centre is handling it, without a reload.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in


@pytest.fixture
def people(browser: Any, server: Server) -> Iterator[dict[str, Any]]:
    contexts = []
    pages: dict[str, Any] = {}
    errors: list[str] = []
    for role, width in (("family", 360), ("centre_admin", 1280)):
        ctx = browser.new_context(
            viewport={"width": width, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
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


def raise_emergency(family: Any) -> str:
    family.get_by_role("link", name="预约服务").click()
    family.once("dialog", lambda dialog: dialog.accept())
    # Nobody near 李奶奶 has the emergency skill: the call goes straight to the centre.
    family.get_by_role("button", name="紧急求助").click()
    expect(family.get_by_role("heading", level=1)).to_contain_text("紧急求助")
    return family.url.rsplit("/", 1)[-1]  # type: ignore[no-any-return]


def test_the_centre_acknowledges_from_the_queue_and_the_family_sees_it_live(
    people: dict[str, Any], server: Server, screenshots: Path
) -> None:
    family, admin = people["family"], people["centre_admin"]
    admin.get_by_role("link", name="待处理").click()
    section = admin.locator('[data-queue="emergencies"]')
    expect(section.get_by_role("heading", level=2)).to_contain_text("紧急求助：等待确认")

    booking_id = raise_emergency(family)
    record = family.locator(".emergency-record")
    expect(record.get_by_role("heading", level=2)).to_have_text("紧急求助进展")
    steps = record.locator(".emergency-steps li")
    expect(steps.locator(".step-text")).to_have_text(
        ["已发出紧急求助", "附近暂时没有能前往的服务人员", "已提醒服务中心值班人员"]
    )
    # Each step has its time; none names a helper or staff member (the API gives no ids).
    expect(steps.first.locator("time")).to_have_attribute(
        "datetime", re.compile(r"^\d{4}-\d\d-\d\dT")
    )
    expect(record.locator("[data-emergency-state]")).to_have_text(
        "正在通知，等待服务人员或服务中心确认"
    )
    family.screenshot(path=str(screenshots / "family-emergency-open-360.png"), full_page=True)

    # The queue shows it without a reload, with the one-click acknowledgement.
    item = section.locator(f'[data-booking="{booking_id}"]')
    expect(item).to_contain_text("已提醒值班人员")
    expect(item.get_by_role("link", name="查看老人档案")).to_be_visible()
    admin.screenshot(path=str(screenshots / "admin-queue-emergency-1280.png"), full_page=True)
    item.get_by_role("button", name="我来处理").click()
    expect(admin.locator("#notices")).to_contain_text("已确认：由服务中心处理")
    expect(section.locator(f'[data-booking="{booking_id}"]')).to_have_count(0)

    # The family's open page changes by itself.
    expect(record.locator("[data-emergency-state]")).to_have_text("服务中心已确认，正在处理")
    expect(steps.last).to_contain_text("服务中心已确认，正在处理")
    expect(record).to_have_attribute("data-call-state", "acknowledged")
    assert family.url.endswith(booking_id)
    family.screenshot(
        path=str(screenshots / "family-emergency-acknowledged-360.png"), full_page=True
    )


def test_the_centre_reads_every_step_and_acknowledges_on_the_booking_page(
    people: dict[str, Any], server: Server
) -> None:
    family, admin = people["family"], people["centre_admin"]
    booking_id = raise_emergency(family)
    admin.goto(f"{server.base_url}/#/bookings/{booking_id}")
    record = admin.locator(".emergency-record")
    expect(record.locator(".emergency-steps li")).to_have_count(3)
    record.get_by_role("button", name="我来处理").click()
    expect(record.locator("[data-emergency-state]")).to_have_text("服务中心已确认，正在处理")
    expect(record.get_by_role("button", name="我来处理")).to_have_count(0)
    expect(family.locator(".emergency-record")).to_have_attribute("data-call-state", "acknowledged")

    # A second admin's click (here: the same call acknowledged again) is told it was done.
    answer = admin.evaluate(
        """async (id) => {
            const api = await import('/api.js');
            const { emergency } = await api.get(`/api/v1/bookings/${id}/emergency`);
            return api.request('POST', `/api/v1/emergencies/${emergency.id}/acknowledgement`, {});
        }""",
        booking_id,
    )
    assert answer["acknowledged_now"] is False
