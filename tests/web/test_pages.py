"""Every main page: an axe-core scan with no serious or critical violation, and screenshots
at a 360 px phone and a 1280 px desktop width saved under tests/screenshots/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import ROOT, Server, sign_in
from tests.web.rest import book

AXE = (ROOT / "static" / "vendor" / "axe.min.js").read_text(encoding="utf-8")
WIDTHS = (360, 1280)

# (name, role or None for signed out, hash, heading shown when the page is ready); {booking}
# is a meal the family booked for tomorrow, {emergency} an emergency the family raised (its
# call open, waiting for the centre), {elder} the seeded elder.
PAGES = [
    ("signin", None, "#/signin", "登录"),
    ("admin-elders", "centre_admin", "#/elders", "老人档案"),
    ("admin-register", "centre_admin", "#/elders/new", "登记老人"),
    ("admin-record", "centre_admin", "#/elders/{elder}", "李奶奶 的档案"),
    ("admin-assess", "centre_admin", "#/elders/{elder}/assess", "能力评估（GB/T 42195-2022）"),
    ("admin-vetting", "centre_admin", "#/helpers/{pending_volunteer}", "志愿者审核与证书核验"),
    ("policy", "auditor", "#/policy", "区域政策"),
    ("elder-me", "elder", "#/me", "李奶奶 的档案"),
    ("family", "family", "#/family", "我的家人"),
    ("volunteer-profile", "volunteer", "#/helper", "我的服务资料"),
    ("family-book", "family", "#/book", "预约服务"),
    ("family-bookings", "family", "#/bookings", "我的预约"),
    ("elder-book", "elder", "#/book", "预约服务"),
    ("volunteer-offers", "volunteer", "#/offers", "新派单"),
    ("volunteer-jobs", "volunteer", "#/bookings", "我的任务"),
    ("volunteer-hours", "volunteer", "#/hours", "时间银行明细"),
    ("admin-queue", "centre_admin", "#/queue", "待处理"),
    ("admin-ledger", "centre_admin", "#/ledger", "账本"),
    ("admin-dashboard", "centre_admin", "#/dashboard", "数据统计"),
    ("auditor-ledger", "auditor", "#/ledger", "账本"),
    ("admin-booking", "centre_admin", "#/bookings/{booking}", "助餐"),
    ("admin-bookings", "centre_admin", "#/bookings", "我的预约"),
    ("admin-helpers", "centre_admin", "#/helpers", "志愿者审核与证书核验"),
    ("admin-series", "centre_admin", "#/elders/{elder}/series", "定期预约"),
    # The hotline: the centre books on behalf of an elder who phoned.
    ("admin-hotline", "centre_admin", "#/elders/{elder}/book", "预约服务"),
    ("family-booking", "family", "#/bookings/{booking}", "助餐"),
    ("family-hours", "family", "#/hours", "时间银行明细"),
    ("family-series", "family", "#/series", "定期预约"),
    ("elder-booking", "elder", "#/bookings/{booking}", "助餐"),
    ("elder-bookings", "elder", "#/bookings", "我的预约"),
    ("elder-hours", "elder", "#/hours", "时间银行明细"),
    ("elder-series", "elder", "#/series", "定期预约"),
    ("elder-family", "elder", "#/family", "我的家人"),
    ("volunteer-today", "volunteer", "#/today", "今天的任务"),
    ("provider-offers", "provider_staff", "#/offers", "新派单"),
    ("provider-today", "provider_staff", "#/today", "今天的任务"),
    ("family-emergency", "family", "#/bookings/{emergency}", "⚠ 紧急求助"),
    ("elder-emergency", "elder", "#/bookings/{emergency}", "⚠ 紧急求助"),
    ("admin-emergency", "centre_admin", "#/bookings/{emergency}", "⚠ 紧急求助"),
]


@pytest.fixture(scope="module")
def booking(server: Server) -> str:
    """A meal the family booked for their elder tomorrow at ten, through the API."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(hour=2, minute=0, second=0)
    return book(server, "family", service="meal", elder="elder", start=start)


@pytest.fixture(scope="module")
def emergency(server: Server) -> str:
    """An emergency the family raised for their elder: nobody near can take it, so its call
    is open on the centre's queue and its record lists the duty feed alert."""
    start = datetime.now(UTC) + timedelta(minutes=1)
    return book(server, "family", service="emergency", elder="elder", start=start)


def scan(page: Any) -> list[dict[str, Any]]:
    """Run axe in the page (injected here only: production pages never load it)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=AXE)
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


ROLES = list(dict.fromkeys(role for _, role, _, _ in PAGES))

# Elder-facing checks: every visible text at least 18 px, every control at least 48 px tall.
ELDER_CHECKS = """() => {
    const small = [];
    const short = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const el = node.parentElement;
        if (!node.textContent.trim() || !el.offsetParent) continue;
        if (el.closest('svg, .visually-hidden')) continue;
        const size = parseFloat(getComputedStyle(el).fontSize);
        const text = node.textContent.trim().slice(0, 30);
        if (size < 18) small.push(`${el.tagName} ${size}px: ${text}`);
    }
    const controls =
        'button, select, input:not([type=checkbox]):not([type=radio]), nav a, a.button';
    for (const el of document.querySelectorAll(controls)) {
        const box = el.getBoundingClientRect();
        const text = el.textContent.trim().slice(0, 30);
        if (box.width && box.height < 48) short.push(`${el.tagName} ${box.height}px: ${text}`);
    }
    return { small, short };
}"""


@pytest.mark.parametrize("role", ROLES, ids=[str(r) for r in ROLES])
def test_pages_are_accessible_and_captured(
    page: Any,
    server: Server,
    screenshots: Path,
    role: str | None,
    booking: str,
    emergency: str,
) -> None:
    # One sign-in per role, then each of its pages: signing in costs a password hash.
    if role is not None:
        sign_in(page, server, role)
    ids = {"elder": server.account("elder")["id"], "booking": booking, "emergency": emergency}
    ids["pending_volunteer"] = server.account("pending_volunteer")["id"]
    for name, page_role, hash_, heading in PAGES:
        if page_role != role:
            continue
        page.goto(server.base_url + "/" + hash_.format(**ids))
        # A screen is attached only once its data is in, so the heading means "ready".
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        if "{emergency}" in hash_:
            # The call's record is part of the page: its steps so far, the alert among them.
            steps = page.locator(".emergency-record .emergency-steps li")
            expect(steps.filter(has_text="已提醒服务中心值班人员")).to_have_count(1)
        if role in ("elder", "family"):
            checks = page.evaluate(ELDER_CHECKS)
            assert checks == {"small": [], "short": []}, (name, checks)
        # One axe scan per page, at phone width where crowding problems show first.
        page.set_viewport_size({"width": WIDTHS[0], "height": 800})
        problems = scan(page)
        assert not problems, (name, problems)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 800})
            # Nothing may force sideways scrolling on a phone.
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} is {overflow}px too wide at {width}px"
            page.screenshot(path=str(screenshots / f"{name}-{width}.png"), full_page=True)
