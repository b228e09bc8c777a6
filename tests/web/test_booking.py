"""The elder's side of a booking in the third household (a daughter with two parents, their own
volunteer): the payment choice shows her real balance, a date and the afternoon book the
second parent's window, an elder books with the keyboard alone, and a finished visit shows
the helper's photo placeholder and keeps the stars (and a complaint) once rated; the centre
prints an elder's confirmation card."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in
from tests.web.rest import api, book, booking_of, token_of, wait_for_offer
from tests.web.server import THIRD_FAMILY_MINUTES, THIRD_PLACE

SHANGHAI = ZoneInfo("Asia/Shanghai")
ELDER_PLACE = {"latitude": THIRD_PLACE[0], "longitude": THIRD_PLACE[1]}


@pytest.fixture
def shanghai(browser: Any) -> Iterator[Any]:
    """A phone-sized page whose clock reads Shanghai time, so a picked day and part of the day
    mean known instants."""
    ctx = browser.new_context(
        viewport={"width": 360, "height": 900}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    page = ctx.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    ctx.close()
    assert not errors, errors


def cancel(server: Server, booking_id: str) -> None:
    """Cancel a booking the test left open, so no other test's queue finds it unmatched."""
    body = {"reason": "browser test done"}
    api(server, "POST", f"/api/v1/bookings/{booking_id}/cancel", body, token_of(server, "family3"))


def booked_id(page: Any) -> str:
    expect(page.locator("#notices")).to_contain_text("预约已提交")
    return page.url.rsplit("/", 1)[-1]  # type: ignore[no-any-return]


def duration_words(minutes: int) -> str:
    """static/components/paychoice.js formatDuration, for a positive number of minutes."""
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} 小时 {rest} 分钟"
    return f"{hours} 小时" if hours else f"{rest} 分钟"


class TestPaymentChoice:
    def test_the_hours_balance_beside_the_choice_is_the_bookers_own(
        self, page: Any, server: Server
    ) -> None:
        account = server.account("family3")["id"]
        balance = api(
            server,
            "GET",
            f"/api/v1/ledger/accounts/{account}/balance",
            token=token_of(server, "family3"),
        )["balance_minutes"]
        assert balance == THIRD_FAMILY_MINUTES
        sign_in(page, server, "family3")
        page.get_by_role("link", name="预约服务").click()
        expect(page.locator("#pay-balance")).to_have_text(
            f"时间银行余额：{duration_words(balance)}"
        )


class TestTimeChoice:
    def test_the_daughter_books_her_father_on_a_date_in_the_afternoon(
        self, shanghai: Any, server: Server
    ) -> None:
        day = datetime.now(SHANGHAI).date() + timedelta(days=3)
        sign_in(shanghai, server, "family3")
        shanghai.get_by_role("link", name="预约服务").click()
        elder = shanghai.get_by_label("为哪位老人预约")
        expect(elder.locator("option")).to_have_text(["刘奶奶", "刘爷爷"])
        elder.select_option(label="刘爷爷")
        shanghai.get_by_role("button", name="助洁").click()
        shanghai.get_by_label("选日期").check()
        shanghai.get_by_label("日期", exact=True).fill(day.isoformat())
        shanghai.get_by_label("下午").check()
        shanghai.get_by_role("button", name="确认预约").click()
        booking_id = booked_id(shanghai)
        try:
            booking = booking_of(server, booking_id, token_of(server, "family3"))
            assert booking["elder_id"] == server.account("elder3b")["id"]
            assert booking["service"] == "cleaning"
            assert window_of(booking) == (at(day, 14), at(day, 17))
        finally:
            cancel(server, booking_id)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=SHANGHAI)


def window_of(booking: dict[str, Any]) -> tuple[datetime, datetime]:
    start, end = (datetime.fromisoformat(booking[k]) for k in ("window_start", "window_end"))
    return start, end


def focus_ring(page: Any) -> dict[str, Any]:
    return page.evaluate(  # type: ignore[no-any-return]
        "(() => { const el = document.activeElement; const s = getComputedStyle(el);"
        " return {text: el.textContent, outline: s.outlineStyle,"
        " width: parseFloat(s.outlineWidth)}; })()"
    )


def tab_to(page: Any, target: Any, *, limit: int = 40) -> None:
    """Press Tab until the target has focus; fails if it is never reached."""
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}")


class TestKeyboard:
    def test_an_elder_books_a_visit_with_tab_space_and_enter_only(
        self, page: Any, server: Server
    ) -> None:
        sign_in(page, server, "elder3")
        expect(page.get_by_role("heading", level=1)).to_have_text("预约服务")
        expect(page.get_by_role("heading", level=1)).to_be_focused()
        visit = page.get_by_role("button", name="探访")
        tab_to(page, visit)
        page.keyboard.press("Space")
        expect(visit).to_have_attribute("aria-pressed", "true")
        ring = focus_ring(page)
        assert ring["outline"] == "solid" and ring["width"] >= 3, ring
        submit = page.get_by_role("button", name="确认预约")
        tab_to(page, submit)
        ring = focus_ring(page)
        assert ring["outline"] == "solid" and ring["width"] >= 3, ring
        page.keyboard.press("Enter")
        booking_id = booked_id(page)
        try:
            booking = booking_of(server, booking_id, token_of(server, "elder3"))
            assert booking["elder_id"] == server.account("elder3")["id"]
            assert booking["service"] == "visit"
        finally:
            cancel(server, booking_id)


@pytest.fixture(scope="module")
def finished_visit(server: Server) -> str:
    """A visit to 刘奶奶 booked by her daughter, offered to and served by 孙志愿 (ended early,
    with a reason) and confirmed by the daughter: ready to be rated."""
    start = datetime.now(UTC)
    booking_id = book(
        server,
        "family3",
        service="visit",
        elder="elder3",
        start=start,
        end=start + timedelta(hours=3),
    )
    volunteer = token_of(server, "volunteer3")
    offer = wait_for_offer(server, booking_id, volunteer)
    api(server, "POST", f"/api/v1/offers/{offer['id']}/accept", {}, volunteer)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("start", {}),
        ("check-in", ELDER_PLACE),
        ("check-out", {**ELDER_PLACE, "reason": "测试：提前结束"}),
    ]
    for step, step_body in steps:
        api(server, "POST", f"/api/v1/bookings/{booking_id}/{step}", step_body, volunteer)
    api(server, "POST", f"/api/v1/bookings/{booking_id}/confirm", {}, token_of(server, "family3"))
    return booking_id


class TestFinishedVisit:
    def test_the_timeline_shows_a_labelled_photo_placeholder_for_the_helper(
        self, page: Any, server: Server, finished_visit: str
    ) -> None:
        sign_in(page, server, "family3")
        page.goto(f"{server.base_url}/#/bookings/{finished_visit}")
        card = page.locator(".timeline .helper-card")
        photo = card.get_by_role("img", name="孙志愿 的头像")
        expect(photo).to_have_text("孙")
        expect(card.locator(".helper-name")).to_have_text("服务人员：孙志愿")

    def test_a_complaint_with_stars_is_stored_shown_and_reaches_the_centre(
        self, page: Any, server: Server, finished_visit: str
    ) -> None:
        sign_in(page, server, "family3")
        page.goto(f"{server.base_url}/#/bookings/{finished_visit}")
        stars = page.get_by_role("group", name="给这次服务评分")
        # A complaint without words is stopped in the page, before anything is sent.
        page.get_by_label("这是投诉，请服务中心处理").check()
        stars.get_by_role("button", name="4 星").click()
        expect(page.locator("#notices")).to_contain_text("投诉请先写明发生了什么。")
        assert booking_of(server, finished_visit, token_of(server, "family3"))["rating"] is None
        page.get_by_label("说几句（可不填）").fill("来晚了半小时，也没有打电话说一声")
        stars.get_by_role("button", name="4 星").click()
        expect(page.locator("#notices")).to_contain_text("投诉已提交，服务中心会跟进。")
        expect(stars).to_have_count(0)
        rating = page.locator("dl.facts dt", has_text="您的评分").locator(
            "xpath=following-sibling::dd[1]"
        )
        expect(rating).to_have_text("4 星")
        page.reload()
        expect(rating).to_have_text("4 星")
        booking = booking_of(server, finished_visit, token_of(server, "family3"))
        assert booking["rating"] == 4
        # The complaint reaches the centre's list of flagged bookings, in the daughter's words.
        centre = token_of(server, "centre_admin")
        flagged = api(server, "GET", "/api/v1/bookings?flagged=true&limit=500", token=centre)
        mine = [b for b in flagged["bookings"] if b["id"] == finished_visit]
        assert [f["reason"] for f in mine[0]["flags"] if f.get("step") == "rating"] == [
            "来晚了半小时，也没有打电话说一声"
        ]

    def test_the_centre_marks_the_complaint_looked_at_from_the_queue(
        self, page: Any, server: Server, finished_visit: str
    ) -> None:
        family = token_of(server, "family3")
        if booking_of(server, finished_visit, family)["rating"] is None:  # run on its own
            body = {"stars": 2, "comment": "来晚了半小时，也没有打电话说一声"}
            api(server, "POST", f"/api/v1/bookings/{finished_visit}/rate", body, family)
        sign_in(page, server, "centre_admin")
        page.get_by_role("link", name="待处理").click()
        item = page.locator(f'[data-queue="flagged"] [data-booking="{finished_visit}"]')
        expect(item).to_contain_text("来晚了半小时，也没有打电话说一声")
        # The visit also ended early: the check-out's flag is there with the helper's reason.
        expect(item).to_contain_text("签退超出时间范围。服务人员说明：测试：提前结束")
        item.get_by_label("处理情况").fill("已给女儿回电，服务人员已道歉")
        item.get_by_role("button", name="已处理").click()
        expect(page.locator("#notices")).to_contain_text("已标记为处理完毕。")
        expect(item).to_have_count(0)
        booking = booking_of(server, finished_visit, token_of(server, "centre_admin"))
        assert booking["flagged"] is False
        assert [f["step"] for f in booking["flags"]] == ["check_out", "rating"]


class TestConfirmationCard:
    def test_the_centre_shows_a_printable_card_with_the_elders_code(
        self, page: Any, server: Server
    ) -> None:
        start = datetime.now(UTC) + timedelta(days=3)
        booking_id = book(server, "family3", service="visit", elder="elder3", start=start)
        try:
            sign_in(page, server, "centre_admin")
            page.goto(f"{server.base_url}/#/bookings/{booking_id}")
            page.get_by_role("button", name="确认卡（给没有手机的老人）").click()
            card = page.get_by_role("region", name="服务确认卡")
            code = booking_of(server, booking_id, token_of(server, "family3"))["confirm_code"]
            expect(card.locator(".code")).to_have_text(code)
            expect(card).to_contain_text("刘奶奶")
            expect(card.get_by_role("button", name="打印")).to_be_visible()
        finally:
            cancel(server, booking_id)
