"""The centre dashboard draws the server's daily figures and this month's visit coverage."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from playwright.sync_api import expect

from tests.web.centre_seed import TRANSFER_MINUTES
from tests.web.conftest import Server, sign_in


def api_get(server: Server, path: str, role: str) -> Any:
    login = urllib.request.Request(
        server.base_url + "/api/v1/auth/login",
        json.dumps({"phone": server.account(role)["phone"], "password": server.password}).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        token = json.loads(response.read())["token"]
    request = urllib.request.Request(
        server.base_url + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def chart(page: Any, title: str) -> Any:
    return page.locator("figure.chart", has=page.locator("figcaption", has_text=title))


def test_the_dashboard_charts_the_servers_figures(page: Any, server: Server) -> None:
    sign_in(page, server, "centre_admin")
    page.get_by_role("link", name="数据统计").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("数据统计")
    district = server.seed["districts"]["east"]
    stats = api_get(server, f"/api/v1/districts/{district}/stats?days=14", "centre_admin")
    totals = stats["totals"]
    expect(page.locator(".lead")).to_contain_text(f"最近 14 天：{totals['bookings']} 个预约")
    # Each chart carries its numbers in a table for screen readers: one row per day.
    rows = chart(page, "每天的预约数").locator("tbody tr")
    expect(rows).to_have_count(14)
    last = stats["days"][-1]
    month, day = (int(part) for part in last["date"].split("-")[1:])
    expect(rows.last).to_have_text(f"{month}/{day}{last['bookings']}")
    for title in ("每天的服务小时数", "每天的安排率（%）", "每天从预约到接单的中位时间（分钟）"):
        expect(chart(page, title)).to_be_visible()
    # The elder living alone is due weekly visits and was never visited this month.
    coverage = chart(page, "探访覆盖率")
    expect(coverage.locator("tbody")).to_contain_text(re.compile(r"高风险 0/\d+"))
    expect(coverage.locator("svg")).to_have_attribute("aria-label", re.compile("目标 100"))
    expect(coverage.locator(".coverage-note")).to_contain_text("未达到目标")


def test_the_settlement_chart_shows_hours_paid_in_another_district(
    page: Any, server: Server
) -> None:
    """The son's east hours paid a west volunteer (tests/web/centre_seed.py): east owes west."""
    sign_in(page, server, "centre_admin")
    page.get_by_role("link", name="数据统计").click()
    positions = api_get(server, "/api/v1/ledger/settlement", "centre_admin")["positions"]
    owed = [p for p in positions if (p["debtor"], p["creditor"]) == ("east", "west")]
    assert owed and owed[0]["minutes"] >= TRANSFER_MINUTES, positions
    hours = round(owed[0]["minutes"] / 60, 1)
    settlement = chart(page, "跨区通兑：区域间应结算的小时数")
    row = settlement.locator("tbody tr", has_text="east→west")
    expect(row).to_have_text(f"east→west{hours:g} 小时")
    bar = settlement.locator("svg rect", has=page.locator("title", has_text="east→west"))
    expect(bar).to_have_count(1)
    assert float(bar.get_attribute("height") or 0) > 0
    expect(settlement.locator("svg")).to_have_attribute(
        "aria-label", re.compile(f"east→west: {hours:g}")
    )
