"""A helper saves their skills and weekly availability; the page and the API both keep them.

周自填 has no location, so nothing is ever matched to her whatever the test saves."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in
from tests.web.rest import api, token_of


def test_saved_skills_and_availability_come_back_after_a_reload(page: Any, server: Server) -> None:
    sign_in(page, server, "profile_editor")
    page.get_by_role("link", name="我的服务资料").click()
    bathing, visit = page.get_by_label("助浴"), page.get_by_label("探访")
    expect(visit).to_be_checked()
    bathing.check()
    visit.uncheck()
    page.get_by_role("button", name="添加时间段").click()
    slot = page.locator(".slots li")
    expect(slot).to_have_count(1)
    slot.get_by_label("星期").select_option(label="星期三")
    slot.get_by_label("开始").fill("14:00")
    slot.get_by_label("结束").fill("18:30")
    page.get_by_role("button", name="保存资料").click()
    expect(page.locator("#notices")).to_contain_text("资料已保存。")

    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("我的服务资料")
    expect(bathing).to_be_checked()
    expect(visit).not_to_be_checked()
    expect(slot).to_have_count(1)
    expect(slot.get_by_label("星期")).to_have_value("2")
    expect(slot.get_by_label("开始")).to_have_value("14:00")
    expect(slot.get_by_label("结束")).to_have_value("18:30")

    me = server.account("profile_editor")["id"]
    helper = api(server, "GET", f"/api/v1/helpers/{me}", token=token_of(server, "profile_editor"))
    assert sorted(helper["helper"]["skills"]) == ["bathing"]
    assert helper["helper"]["availability"] == [{"weekday": 2, "start": "14:00", "end": "18:30"}]
