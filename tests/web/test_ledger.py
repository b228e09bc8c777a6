"""The ledger explorer pages through entries and checkpoints and exports any seq range; an
export from seq 0 verifies offline with the ledger's own checker."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from ledger.export import verify_export
from tests.web.conftest import Server, sign_in

SHOWING = re.compile(r"第 (\d+)–(\d+) 条，共 (\d+) 条")


def entries_section(page: Any) -> Any:
    return page.locator("section", has=page.get_by_role("heading", name="条目", exact=True))


def history_section(page: Any) -> Any:
    return page.locator("section", has=page.get_by_role("heading", name="检查点记录"))


def showing(section: Any) -> tuple[int, int, int]:
    text = section.locator(".pager [role=status]").text_content()
    match = SHOWING.search(text or "")
    assert match, text
    first, last, size = (int(g) for g in match.groups())
    return first, last, size


def seqs(section: Any) -> list[int]:
    return [
        int(s) for s in section.locator("tbody tr").evaluate_all("rs => rs.map(r => r.dataset.seq)")
    ]


def entries_api(server: Server, start: int, end: int) -> list[str]:
    url = f"{server.base_url}/api/v1/ledger/districts/east/entries?start={start}&end={end}"
    # The read API wants an auditor or admin: sign in as the auditor once.
    login = urllib.request.Request(
        server.base_url + "/api/v1/auth/login",
        json.dumps(
            {"phone": server.account("auditor")["phone"], "password": server.password}
        ).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        token = json.loads(response.read())["token"]
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return [e["body"] for e in json.loads(response.read())["entries"]]


def test_entries_page_back_forth_and_from_any_seq(page: Any, server: Server) -> None:
    sign_in(page, server, "auditor")
    expect(page.get_by_role("heading", level=1)).to_have_text("账本")
    entries = entries_section(page)
    expect(entries.locator(".pager [role=status]")).to_contain_text("共")
    first, last, size = showing(entries)
    # The seeded history alone is 120 entries: the newest page comes first, newest on top.
    assert size >= 120 and (first, last) == (size - 50, size - 1)
    assert seqs(entries) == list(range(size - 1, size - 51, -1))
    entries.get_by_role("button", name="更早").click()
    expect(entries.locator("tbody tr").first).to_have_attribute("data-seq", str(size - 51))
    assert showing(entries) == (size - 100, size - 51, size)
    entries.get_by_role("button", name="更新").click()
    expect(entries.locator("tbody tr").first).to_have_attribute("data-seq", str(size - 1))
    entries.get_by_label("从序号开始查看").fill("0")
    entries.get_by_role("button", name="查看").click()
    expect(entries.locator("tbody tr").last).to_have_attribute("data-seq", "0")
    assert showing(entries) == (0, 49, size)
    expect(entries.get_by_role("button", name="更早")).to_be_disabled()
    # The verify button checks the page on screen, old entries included.
    entries.get_by_role("button", name="在本浏览器中核验这些条目").click()
    expect(entries.locator('tbody tr[data-seq="0"] .verify .badge')).to_have_text("✓ 已核验")


def test_checkpoints_page_back_from_the_latest(page: Any, server: Server) -> None:
    sign_in(page, server, "auditor")
    history = history_section(page)
    rows = history.locator("tbody tr")
    expect(rows).to_have_count(50)
    newest = [int(s) for s in rows.evaluate_all("rs => rs.map(r => r.dataset.size)")]
    latest = int(page.locator("dl.facts dd").first.text_content() or "0")
    assert newest[0] == latest and newest == sorted(newest, reverse=True)
    history.get_by_role("button", name="更早").click()
    expect(rows.first).not_to_have_attribute("data-size", str(newest[0]))
    older = [int(s) for s in rows.evaluate_all("rs => rs.map(r => r.dataset.size)")]
    assert older and max(older) < min(newest)
    history.get_by_role("button", name="更新").click()
    expect(rows.first).to_have_attribute("data-size", str(newest[0]))


def save(page: Any, link_name: str, folder: Path) -> Path:
    with page.expect_download() as download:
        page.get_by_role("link", name=link_name).click()
    target = folder / download.value.suggested_filename
    download.value.save_as(target)
    return target


def test_the_whole_chain_exports_and_verifies_offline(
    page: Any, server: Server, tmp_path: Path
) -> None:
    sign_in(page, server, "centre_admin")
    page.get_by_role("link", name="账本").click()
    form = page.locator("form", has=page.get_by_role("heading", name="导出条目（JSONL）"))
    expect(form.get_by_label("从序号（含）")).to_have_value("0")
    size = int(form.get_by_label("到序号（不含）").input_value())
    form.get_by_role("button", name="导出这个范围").click()
    expect(form.locator("[role=status]")).to_have_text(f"已导出第 0–{size - 1} 条，共 {size} 条。")
    entries = save(page, "保存 east.jsonl", tmp_path)
    save(page, "保存 east.checkpoint.json", tmp_path)
    save(page, "保存 east.keys.json", tmp_path)
    assert entries.read_bytes().count(b"\n") == size
    report = verify_export(tmp_path, workers=1)
    assert report.ok, report.reason


def test_a_range_exports_exactly_its_entries(page: Any, server: Server, tmp_path: Path) -> None:
    sign_in(page, server, "auditor")
    form = page.locator("form", has=page.get_by_role("heading", name="导出条目（JSONL）"))
    form.get_by_label("从序号（含）").fill("10")
    form.get_by_label("到序号（不含）").fill("30")
    form.get_by_role("button", name="导出这个范围").click()
    expect(form.locator("[role=status]")).to_have_text("已导出第 10–29 条，共 20 条。")
    # Not from seq 0: no checkpoint or key file, which only make sense for a whole chain.
    expect(form.get_by_role("link")).to_have_count(1)
    part = save(page, "保存 east-10-30.jsonl", tmp_path)
    assert part.read_text(encoding="utf-8").splitlines() == entries_api(server, 10, 30)
    form.get_by_label("到序号（不含）").fill("5")
    form.get_by_role("button", name="导出这个范围").click()
    expect(form.locator("[role=status]")).to_contain_text("结束要大于开始")
