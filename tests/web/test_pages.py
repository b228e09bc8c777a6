"""Every main page: an axe-core scan with no serious or critical violation, and screenshots
at a 360 px phone and a 1280 px desktop width saved under tests/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import ROOT, Server, sign_in

AXE = (ROOT / "static" / "vendor" / "axe.min.js").read_text(encoding="utf-8")
WIDTHS = (360, 1280)

# (name, role or None for signed out, hash, heading shown when the page is ready)
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
]


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


@pytest.mark.parametrize(("name", "role", "hash_", "heading"), PAGES, ids=[p[0] for p in PAGES])
def test_page_is_accessible_and_captured(
    page: Any,
    server: Server,
    screenshots: Path,
    name: str,
    role: str | None,
    hash_: str,
    heading: str,
) -> None:
    if role is not None:
        sign_in(page, server, role)
    ids = {"elder": server.account("elder")["id"]}
    ids["pending_volunteer"] = server.account("pending_volunteer")["id"]
    page.goto(server.base_url + "/" + hash_.format(**ids))
    expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    page.wait_for_load_state("networkidle")
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        problems = scan(page)
        assert not problems, problems
        # Nothing may force sideways scrolling on a phone.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} is {overflow}px too wide at {width}px"
        page.screenshot(path=str(screenshots / f"{name}-{width}.png"), full_page=True)
