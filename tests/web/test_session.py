"""Signing in and out, and every way a session or a request can fail, shown in words."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in


class TestSignIn:
    def test_admin_lands_on_the_queue(self, page: Any, server: Server) -> None:
        sign_in(page, server, "centre_admin")
        expect(page.get_by_role("heading", level=1)).to_have_text("待处理")
        expect(page.locator(".who")).to_contain_text("王主任")
        expect(page.get_by_role("navigation")).to_contain_text("志愿者审核")

    def test_wrong_password_says_so(self, page: Any, server: Server) -> None:
        sign_in(page, server, "auditor", password="not the password")
        expect(page.locator("#signin-message")).to_have_text("手机号码或密码不正确，请重新输入。")
        expect(page.get_by_role("heading", level=1)).to_have_text("登录")

    def test_throttled_sign_in_gives_the_wait(self, page: Any, server: Server) -> None:
        for _ in range(6):
            sign_in(page, server, "throttled", password="wrong again")
            expect(page.get_by_role("button", name="登录")).to_be_enabled()
        expect(page.locator("#signin-message")).to_contain_text("登录失败次数太多")
        expect(page.locator("#signin-message")).to_contain_text("秒后再试")

    def test_sign_out_returns_to_sign_in(self, page: Any, server: Server) -> None:
        sign_in(page, server, "volunteer")
        expect(page.get_by_role("heading", level=1)).to_have_text("新派单")
        page.get_by_role("button", name="退出登录").click()
        expect(page.locator("#signin-message")).to_have_text("您已退出登录。")
        assert page.evaluate("sessionStorage.length") == 0


class TestSessionEnded:
    def test_expired_token_sends_back_to_sign_in_with_reason(
        self, page: Any, server: Server
    ) -> None:
        admin = server.account("centre_admin")
        user = {"id": admin["id"], "name": admin["name"], "role": "centre_admin"}
        user["district_id"] = server.seed["districts"]["east"]
        page.goto(server.base_url + "/")
        page.evaluate(
            "([token, user]) => { sessionStorage.setItem('eldercare.token', token);"
            " sessionStorage.setItem('eldercare.user', user); }",
            [server.seed["expired_token"], json.dumps(user)],
        )
        page.reload()
        expect(page.locator("#signin-message")).to_have_text("您的登录已过期，请重新登录。")
        expect(page.get_by_role("heading", level=1)).to_have_text("登录")

    def test_revoked_token_sends_back_to_sign_in(self, page: Any, server: Server) -> None:
        sign_in(page, server, "family")
        expect(page.get_by_role("heading", level=1)).to_have_text("预约服务")
        token = page.evaluate("sessionStorage.getItem('eldercare.token')")
        # Sign the same token out behind the page's back, as another tab would.
        page.request.post(
            server.base_url + "/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}
        )
        page.get_by_role("link", name="我的家人").click()
        expect(page.locator("#signin-message")).to_have_text("您已在别处退出登录，请重新登录。")


class TestFailures:
    def test_network_drop_shows_a_message(self, page: Any, server: Server) -> None:
        sign_in(page, server, "centre_admin")
        expect(page.get_by_role("heading", level=1)).to_have_text("待处理")
        page.route("**/api/v1/**", lambda route: route.abort("internetdisconnected"))
        page.get_by_role("link", name="区域政策").click()
        expect(page.get_by_role("alert")).to_contain_text("无法连接到服务器")
        # The page is never blank: the header and menu stay usable.
        expect(page.get_by_role("navigation")).to_be_visible()
        page.unroute("**/api/v1/**")
        page.get_by_role("button", name="关闭提示").click()
        page.get_by_role("link", name="老人档案").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("老人档案")

    def test_api_error_message_and_field_problems_are_shown(
        self, page: Any, server: Server
    ) -> None:
        sign_in(page, server, "centre_admin")
        page.goto(server.base_url + "/#/elders/new")
        page.get_by_label("姓名", exact=True).fill("孙爷爷")
        page.get_by_label("出生年份").fill("1800")
        page.get_by_label("纬度").fill("30.2")
        page.get_by_label("经度").fill("120.1")
        page.get_by_role("button", name="登记").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("出错了")
        expect(alert).to_contain_text("birth_year")

    def test_unknown_record_shows_the_api_message(self, page: Any, server: Server) -> None:
        sign_in(page, server, "centre_admin")
        expect(page.get_by_role("heading", level=1)).to_have_text("待处理")
        page.goto(server.base_url + "/#/elders/00000000-0000-4000-8000-000000000000")
        expect(page.get_by_role("alert")).to_contain_text("no elder")

    def test_server_error_without_json_still_explains(self, page: Any, server: Server) -> None:
        sign_in(page, server, "auditor")
        page.get_by_role("link", name="区域政策").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("区域政策")
        page.route(
            "**/api/v1/districts",
            lambda route: route.fulfill(status=502, body="<html>bad gateway</html>"),
        )
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("alert")).to_contain_text("The server had a problem (502)")


class TestLanguage:
    def test_switch_to_english_persists_and_sets_lang(self, page: Any, server: Server) -> None:
        sign_in(page, server, "auditor")
        page.get_by_role("link", name="区域政策").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        page.get_by_role("button", name="English").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("District policy")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        page.reload()
        expect(page.get_by_role("heading", level=1)).to_have_text("District policy")
        page.get_by_role("button", name="中文").click()
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


class TestBrokenLoad:
    def test_a_module_that_fails_to_load_still_leaves_a_message(
        self, page: Any, server: Server
    ) -> None:
        page.route("**/views/policy.js", lambda route: route.fulfill(status=500, body="oops"))
        page.goto(server.base_url + "/")
        expect(page.get_by_role("alert")).to_contain_text("页面没有加载成功", timeout=8000)


class TestKeyboard:
    def test_sign_in_with_the_keyboard_alone_and_see_the_focus(
        self, page: Any, server: Server
    ) -> None:
        page.goto(server.base_url + "/#/signin")
        # The phone field has focus on arrival; Tab moves on, Enter submits.
        expect(page.get_by_label("手机号码")).to_be_focused()
        page.keyboard.type(server.account("elder")["phone"])
        page.keyboard.press("Tab")
        expect(page.get_by_label("密码")).to_be_focused()
        page.keyboard.type(server.password)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", level=1)).to_have_text("预约服务")
        # Focus lands on the new screen's heading, then Tab reaches the controls in order.
        expect(page.get_by_role("heading", level=1)).to_be_focused()
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "(() => { const el = document.activeElement; const s = getComputedStyle(el);"
            " return {tag: el.tagName, outline: s.outlineStyle, width: parseFloat(s.outlineWidth)};"
            " })()"
        )
        assert focused["outline"] == "solid" and focused["width"] >= 3, focused


class TestPaymentChoices:
    def test_donated_hours_are_offered_and_a_refusal_names_the_rule(
        self, page: Any, server: Server
    ) -> None:
        # The seeded elder is in none of the pool's priority groups: the API refuses, and the
        # page says so with the rule instead of failing quietly.
        sign_in(page, server, "family")
        page.get_by_role("link", name="预约服务").click()
        page.get_by_role("button", name="助洁").click()
        page.get_by_label("明天").check()
        page.get_by_label("公益时间池（他人捐赠的时间）").check()
        page.get_by_role("button", name="确认预约").click()
        alert = page.locator(".notice-error")
        expect(alert).to_contain_text("出错了")
        expect(alert).to_contain_text("pool serves only its priority elders")
