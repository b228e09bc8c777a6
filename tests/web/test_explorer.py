"""The explorer's verify button runs the real verification in the browser: entry hashes from
the stored bytes, links and seqs, the checkpoint's Merkle root (or inclusion proofs), the
signature, and consistency proofs between successive checkpoints. The auditor sees and
verifies both districts' chains; a response altered on the way names what is wrong."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Server, sign_in

VERIFIED = "✓ 已核验"


def chains(server: Server) -> dict[str, dict[str, Any]]:
    """The chains as the public API lists them (no sign-in needed)."""
    with urllib.request.urlopen(server.base_url + "/api/v1/ledger/districts", timeout=10) as r:
        return {c["district"]: c for c in json.loads(r.read())["districts"]}


def section(page: Any, heading: str) -> Any:
    return page.locator("section", has=page.get_by_role("heading", name=heading, exact=True))


def verify(page: Any) -> tuple[Any, Any]:
    entries, history = section(page, "条目"), section(page, "检查点记录")
    entries.get_by_role("button", name="在本浏览器中核验这些条目").click()
    return entries, history


def open_chain(page: Any, chain: str, size: int) -> None:
    page.get_by_label("区域账本").select_option(chain)
    page.get_by_role("button", name="查看", exact=True).first.click()
    expect(page.locator("dl.facts dd").first).to_have_text(str(size))


@pytest.fixture
def known(server: Server) -> dict[str, dict[str, Any]]:
    return chains(server)


@pytest.fixture
def signed_auditor(page: Any, server: Server) -> Any:
    sign_in(page, server, "auditor")
    expect(page.get_by_role("heading", level=1)).to_have_text("账本")
    return page


def all_rows_verified(rows: Any) -> None:
    expect(rows.first.locator(".verify .badge")).to_have_text(VERIFIED)
    badges = rows.locator(".verify .badge").all_text_contents()
    assert badges and set(badges) == {VERIFIED}, badges


class TestBothDistricts:
    def test_the_auditor_lists_both_chains_and_verifies_east_whole(
        self, signed_auditor: Any, known: dict[str, dict[str, Any]]
    ) -> None:
        page = signed_auditor
        options = page.get_by_label("区域账本").locator("option").all_text_contents()
        assert options == [f"{c} ({known[c]['size']})" for c in ("east", "west")]
        entries, history = verify(page)
        summary = entries.locator(".verify-summary")
        expect(summary).to_contain_text("从序号 0 起重算的默克尔根与检查点")
        expect(summary).to_contain_text("检查点签名有效（Ed25519）")
        all_rows_verified(entries.locator("tbody tr"))
        # The checkpoints on screen: each signed, each extending the one before.
        expect(history.locator(".verify-summary")).to_contain_text("已核验 50 个检查点")
        all_rows_verified(history.locator("tbody tr"))
        expect(history.locator("tbody tr").first).to_contain_text("与相邻检查点一致")

    def test_west_holds_the_hours_paid_from_east_and_verifies(
        self, signed_auditor: Any, known: dict[str, dict[str, Any]]
    ) -> None:
        page = signed_auditor
        size = known["west"]["size"]
        open_chain(page, "west", size)
        entries, history = verify(page)
        # The son's east hours arrived in west as a cross-district credit to its volunteer.
        credit = entries.locator("tbody tr", has_text="跨区存入")
        expect(credit).to_contain_text("clearing:east")
        expect(credit).to_contain_text("90")
        expect(entries.locator(".verify-summary")).to_contain_text(f"已核验第 0–{size - 1} 条")
        all_rows_verified(entries.locator("tbody tr"))
        expect(history.locator(".verify-summary")).to_contain_text("的签名，以及相邻检查点之间")


def alter_entry(seq: int, change: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
    """A route handler passing the server's entries on, with entry `seq` changed."""

    def handle(route: Any) -> None:
        response = route.fetch()
        page = response.json()
        for entry in page["entries"]:
            if entry["seq"] == seq:
                change(entry)
        route.fulfill(response=response, json=page)

    return handle


def more_minutes_in_body(entry: dict[str, Any]) -> None:
    # The stored bytes say more minutes (and so does the column); the hash is the server's.
    minutes = entry["minutes"]
    entry["body"] = entry["body"].replace(f'"minutes":{minutes},', f'"minutes":{minutes + 60},')
    entry["minutes"] = minutes + 60


def more_minutes_shown(entry: dict[str, Any]) -> None:
    # Only the column shown: the bytes and the hash are the server's.
    entry["minutes"] += 60


class TestTampering:
    # Altered bytes change the chain's root, so the rest are proven one by one; an altered
    # column leaves the bytes and so the root as signed.
    @pytest.mark.parametrize(
        ("change", "reason", "neighbours"),
        [
            (more_minutes_in_body, "条目内容与其哈希不符", "默克尔证明有效"),
            (more_minutes_shown, "显示的字段与条目内容不符", "重算的默克尔根与签名的检查点一致"),
        ],
        ids=["bytes", "column"],
    )
    def test_an_altered_entry_is_named_by_its_seq(
        self,
        signed_auditor: Any,
        known: dict[str, dict[str, Any]],
        change: Callable[[dict[str, Any]], None],
        reason: str,
        neighbours: str,
    ) -> None:
        page = signed_auditor
        bad = known["east"]["size"] - 10
        page.route(re.compile(r"/api/v1/ledger/districts/east/entries\?"), alter_entry(bad, change))
        page.reload()
        entries, _ = verify(page)
        expect(entries.locator(".verify-summary")).to_have_text(
            f"✗ 第 {bad} 条未通过核验：{reason}。"
        )
        row = entries.locator(f'tbody tr[data-seq="{bad}"]')
        expect(row.locator(".verify .badge")).to_have_text("✗ 未通过核验")
        expect(row).to_contain_text(reason)
        # Its neighbours still verify: the next one links to the hash the server gave.
        for seq in (bad - 1, bad + 1):
            neighbour = entries.locator(f'tbody tr[data-seq="{seq}"]')
            expect(neighbour.locator(".verify .badge")).to_have_text(VERIFIED)
            expect(neighbour).to_contain_text(neighbours)

    def test_an_altered_consistency_proof_is_named_by_its_checkpoint(
        self, signed_auditor: Any
    ) -> None:
        page = signed_auditor
        history = section(page, "检查点记录")
        sizes = history.locator("tbody tr").evaluate_all("rs => rs.map(r => +r.dataset.size)")
        older, newer = sizes[5], sizes[4]

        def flip_first_byte(route: Any) -> None:
            response = route.fetch()
            body = response.json()
            first = body["proof"][0]
            body["proof"][0] = ("0" if first[0] != "0" else "1") + first[1:]
            route.fulfill(response=response, json=body)

        page.route(
            re.compile(rf"/api/v1/ledger/districts/east/consistency\?old={older}&new={newer}$"),
            flip_first_byte,
        )
        history.get_by_role("button", name="核验这些检查点").click()
        expect(history.locator(".verify-summary")).to_have_text(
            f"✗ 条目数 {newer} 的检查点未通过核验：与相邻检查点之间的一致性证明不成立。"
        )
        row = history.locator(f'tbody tr[data-size="{newer}"]')
        expect(row.locator(".verify .badge")).to_have_text("✗ 未通过核验")
        expect(history.locator(f'tbody tr[data-size="{older}"] .verify .badge')).to_have_text(
            VERIFIED
        )


def test_a_long_chain_is_verified_by_inclusion_proofs(signed_auditor: Any) -> None:
    """Past WHOLE_CHAIN entries the chain is not loaded from seq 0: each entry on screen (and
    the one before, for the first link) is proven against the checkpoint instead."""
    page = signed_auditor
    result = page.evaluate(
        """async () => {
            const check = await import('/views/ledgercheck.js');
            const size = (await (await fetch('/api/v1/ledger/districts/east/checkpoint')).json())
                .checkpoint.size;
            const shown = await check.entryRange('east', size - 20, size);
            const out = await check.verifyEntries('east', shown, { wholeChain: 0 });
            return { whole: out.whole, failed: out.failed,
                     statuses: [...out.rows.values()].map((r) => r.status),
                     notes: [...out.rows.values()][0].notes };
        }"""
    )
    assert result["whole"] is False and result["failed"] is None
    assert result["statuses"] == ["verified"] * 20
    assert result["notes"] == ["verify.proof_ok", "verify.sig_ok"]


def test_a_chain_without_a_signed_checkpoint_checks_its_entries_and_waits(
    signed_auditor: Any,
) -> None:
    """Before the first checkpoint is signed the entries are still checked (bytes, hashes,
    links) and each waits for a checkpoint; no error, no blank rows."""
    page = signed_auditor
    page.route(
        re.compile(r"/api/v1/ledger/districts/east/checkpoint$"),
        lambda route: route.fulfill(
            status=404,
            json={"error": {"code": "ledger.no_checkpoint", "message": "no checkpoint yet"}},
        ),
    )
    entries = section(page, "条目")
    entries.get_by_role("button", name="在本浏览器中核验这些条目").click()
    expect(entries.locator(".verify-summary")).to_contain_text("还没有签名的检查点")
    cells = entries.locator("tbody tr td:last-child").all_text_contents()
    assert cells and set(cells) == {"等待下一个检查点"}, cells
