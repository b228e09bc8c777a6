"""Centre admin screens: register an elder, read the record, record an assessment, vet."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in


def register(page: Any, server: Server, name: str) -> str:
    sign_in(page, server, "centre_admin")
    page.get_by_role("link", name="老人档案").click()
    page.get_by_role("link", name="登记新老人").click()
    page.get_by_label("姓名", exact=True).fill(name)
    page.get_by_label("出生年份").fill("1941")
    page.get_by_label("男", exact=True).first.check()
    page.get_by_label("纬度").fill("30.27")
    page.get_by_label("经度").fill("120.15")
    page.get_by_label("独居或空巢").check()
    page.get_by_label("高龄").check()
    page.get_by_label("住址（可选，加密保存）").fill("花园路 8 号 3 单元")
    page.get_by_label("老人（或监护人）同意为提供养老服务而保存上述信息").check()
    page.get_by_role("button", name="登记").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{name} 的档案")
    return page.url.rsplit("/", 1)[-1]


class TestElderRecords:
    def test_admin_registers_an_elder_and_sees_the_record(self, page: Any, server: Server) -> None:
        register(page, server, "孙爷爷")
        expect(page.locator("#notices")).to_contain_text("已登记 孙爷爷。")
        expect(page.locator(".tags")).to_contain_text("独居或空巢")
        expect(page.locator(".tags")).to_contain_text("高龄")
        expect(page.locator(".grade")).to_contain_text("尚未评估")
        # The encrypted address comes back decrypted for the elder's own centre.
        expect(page.locator("main")).to_contain_text("花园路 8 号 3 单元")
        page.get_by_role("link", name="老人档案").click()
        expect(page.locator(".record-list")).to_contain_text("孙爷爷")

    def test_assessment_sets_the_capability_grade(self, page: Any, server: Server) -> None:
        register(page, server, "周奶奶")
        page.get_by_role("link", name="记录能力评估").click()
        expect(page.locator(".total")).to_have_text("合计：90 / 90 分")
        # 90 - 4 (bathing) - 4 (stairs... 3) etc.: drop the total to 60, a moderate grade.
        page.get_by_label("洗澡（0–4 分）").select_option("0")
        page.get_by_label("上下楼梯（0–3 分）").select_option("0")
        page.get_by_label("平地行走（0–4 分）").select_option("0")
        page.get_by_label("记忆（0–4 分）").select_option("0")
        page.get_by_label("社会交往能力（0–4 分）").select_option("0")
        page.get_by_label("使用交通工具外出（0–3 分）").select_option("0")
        page.get_by_label("修饰（0–4 分）").select_option("0")
        expect(page.locator(".total")).to_have_text("合计：64 / 90 分")
        page.get_by_label("评估员一").fill("陈医生")
        page.get_by_label("评估员二").fill("刘护士")
        page.get_by_label("信息提供者").fill("周小明")
        page.get_by_role("button", name="保存评估").click()
        expect(page.locator("#notices")).to_contain_text("能力中度受损（总分 64）")
        expect(page.locator(".grade")).to_contain_text("能力中度受损")
        expect(page.locator("main")).to_contain_text("陈医生、刘护士")


class TestVetting:
    def test_admin_approves_a_pending_volunteer(self, page: Any, server: Server) -> None:
        sign_in(page, server, "centre_admin")
        page.get_by_role("link", name="志愿者审核").click()
        # The district's helpers awaiting vetting are listed: no account number to type.
        pending = page.locator(".pending-helpers")
        pending.get_by_role("link", name="陈新人").click()
        expect(page.locator("main")).to_contain_text("待审核")
        page.get_by_label("审核意见").fill("身份与无犯罪记录已核实")
        page.get_by_role("button", name="通过", exact=True).click()
        expect(page.locator("#notices")).to_contain_text("审核结果已保存：已通过")
        expect(page.locator("main strong")).to_have_text("已通过")
        expect(pending.get_by_role("link", name="陈新人")).to_have_count(0)

    def test_a_helper_opens_by_account_number_too(self, page: Any, server: Server) -> None:
        sign_in(page, server, "centre_admin")
        page.goto(server.base_url + "/#/helpers")
        page.get_by_label("账户编号").fill(server.account("volunteer")["id"])
        page.get_by_role("button", name="查看").click()
        expect(page.locator("main")).to_contain_text("已通过")


class TestQueue:
    def test_an_overdue_visit_is_booked_with_one_click(self, page: Any, server: Server) -> None:
        sign_in(page, server, "centre_admin")
        elder = server.account("elder2")
        item = page.locator(f'[data-queue="visits"] [data-elder="{elder["id"]}"]')
        # Living alone at ninety: visited weekly, registered ten days ago, never visited.
        expect(item).to_contain_text("王爷爷")
        expect(item).to_contain_text("高风险（每周探访）")
        expect(item.locator(".badge")).to_have_text("逾期 3 天")
        item.get_by_role("button", name="预约今天的探访服务").click()
        expect(page.locator("#notices")).to_contain_text("已为 王爷爷 预约今天的探访服务。")
        # Opened again (another admin, another day), the queue knows the visit is booked.
        page.reload()
        expect(item.get_by_role("button", name="预约今天的探访服务")).to_have_count(0)
        item.get_by_role("link", name="已预约探访，查看").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("探访")
        expect(page.locator("main")).to_contain_text("定期探访已逾期（高风险）")

    def test_an_expiring_certificate_is_verified_with_one_click(
        self, page: Any, server: Server
    ) -> None:
        sign_in(page, server, "centre_admin")
        item = page.locator(
            f'[data-queue="certificates"] [data-helper="{server.account("volunteer")["id"]}"]'
        )
        expect(item).to_contain_text("急救")
        expect(item).to_contain_text("即将到期")
        item.get_by_role("button", name="核验这张证书").click()
        expect(page.locator("#notices")).to_contain_text("证书已核验。")
        expect(item.get_by_role("button", name="核验这张证书")).to_have_count(0)
        expect(item).to_contain_text("即将到期")


class TestHotlineBooking:
    def test_admin_books_a_weekly_meal_for_an_elder(self, page: Any, server: Server) -> None:
        sign_in(page, server, "centre_admin")
        page.goto(server.base_url + f"/#/elders/{server.account('elder')['id']}")
        page.get_by_role("link", name="代老人预约（热线）").click()
        expect(page.locator("main")).to_contain_text("热线代订：为 李奶奶 预约")
        page.get_by_role("button", name="助餐").click()
        expect(page.get_by_role("button", name="助餐")).to_have_attribute("aria-pressed", "true")
        page.get_by_text("定期预约（可选）").click()
        page.get_by_label("星期二").check()
        page.get_by_label("星期五").check()
        until = page.evaluate(
            "(() => { const d = new Date(Date.now() + 20 * 86400000);"
            " return d.toISOString().slice(0, 10); })()"
        )
        page.get_by_label("重复到").fill(until)
        page.get_by_role("button", name="确认预约").click()
        expect(page.locator("#notices")).to_contain_text("预约已提交")
        expect(page.get_by_role("heading", level=1)).to_have_text("助餐")
        page.get_by_role("link", name="我的预约").click()
        # One booking per occurrence: several meals appear in the district's list.
        expect(page.locator('.booking-link:text("助餐")').nth(1)).to_be_visible()
