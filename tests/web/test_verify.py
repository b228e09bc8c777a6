"""static/verify.js checks receipts made by the Python ledger exactly as ledger.receipt does.

Fixtures come from the real `ledger` package (entries, Merkle index, signed checkpoints with a
key rotation); the browser gets them as JSON and must agree with `verify_receipt` on each.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from playwright.sync_api import expect

from ledger.checkpoint import key_history, rotate_key, sign_checkpoint
from ledger.keys import KeyStore
from ledger.merkle import MerkleIndex
from ledger.receipt import build_receipt, verify_receipt
from tests.web.conftest import Server
from tests.web.entries import DISTRICT, deposit_chain

SIZE = 37


def chain(size: int) -> list[Any]:
    # Non-ASCII text checks that the browser hashes the same UTF-8 bytes.
    return deposit_chain(size, holders=5, meta=lambda seq: {"note": f"助浴服务 第{seq}次"})


@pytest.fixture(scope="module")
def receipts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    entries = chain(SIZE)
    index = MerkleIndex.from_leaves([e.hash for e in entries])
    store = KeyStore(tmp_path_factory.mktemp("keys"), "pass", work_factor=2**10)
    store.create(DISTRICT)
    # A rotation at size 20: the statement's checkpoint is signed by the second key.
    rotate_key(store, DISTRICT, size=20, root=index.root(20), at_ms=1_790_000_000_500)
    cp = sign_checkpoint(
        district=DISTRICT,
        size=SIZE,
        root=index.root(),
        at_ms=1_790_000_001_000,
        signer=store.signer(DISTRICT),
    )
    history = key_history(store, DISTRICT)

    def receipt(seq: int) -> dict[str, Any]:
        made = build_receipt(
            body=entries[seq].body,
            index=seq,
            proof=index.inclusion_proof(seq),
            checkpoint=cp,
            keys=history,
        )
        return json.loads(json.dumps(made, ensure_ascii=False))

    good = {f"seq{seq}": receipt(seq) for seq in (0, 13, 31, 36)}
    bad_proof = copy.deepcopy(good["seq13"])
    flipped = bytearray.fromhex(bad_proof["proof"][1])
    flipped[0] ^= 1
    bad_proof["proof"][1] = flipped.hex()
    bad_minutes = copy.deepcopy(good["seq13"])
    bad_minutes["entry"] = bad_minutes["entry"].replace('"minutes":43', '"minutes":430')
    bad_signature = copy.deepcopy(good["seq13"])
    signature = bytearray.fromhex(bad_signature["checkpoint"]["signature"])
    signature[5] ^= 0x40
    bad_signature["checkpoint"]["signature"] = signature.hex()
    bad_rotation = copy.deepcopy(good["seq13"])
    bad_rotation["keys"]["rotations"][0]["root"] = "0" * 64
    wrong_index = copy.deepcopy(good["seq13"])
    wrong_index["index"] = 12
    return {
        **good,
        "bad_proof": bad_proof,
        "bad_minutes": bad_minutes,
        "bad_signature": bad_signature,
        "bad_rotation": bad_rotation,
        "wrong_index": wrong_index,
    }


def verify_in_browser(page: Any, receipt: dict[str, Any]) -> dict[str, Any]:
    return page.evaluate(  # type: ignore[no-any-return]
        "async (r) => (await import('/verify.js')).verifyReceipt(r)", receipt
    )


EXPECTED = {
    "seq0": "verified",
    "seq13": "verified",
    "seq31": "verified",
    "seq36": "verified",
    "bad_proof": "not_verified",
    "bad_minutes": "not_verified",
    "bad_signature": "not_verified",
    "bad_rotation": "not_verified",
    "wrong_index": "not_verified",
}


def test_browser_agrees_with_the_python_verifier(
    page: Any, server: Server, receipts: dict[str, dict[str, Any]]
) -> None:
    page.goto(server.base_url + "/")
    # One page for every case: each check is a few hashes, a fresh page would cost far more.
    for name, expected in EXPECTED.items():
        python_ok, why = verify_receipt(receipts[name])
        assert python_ok is (expected == "verified"), (name, why)
        result = verify_in_browser(page, receipts[name])
        assert result["status"] == expected, (name, result)


def show_marks(page: Any, receipts: dict[str, dict[str, Any]]) -> None:
    """Draw the verified mark of each receipt in <main>, in an item with the receipt's name as
    its id, exactly as a statement line draws it."""
    page.evaluate(
        """async (receipts) => {
            const { verifyMark } = await import('/components/verifymark.js');
            const list = document.createElement('ul');
            list.id = 'marks';
            for (const [id, receipt] of Object.entries(receipts)) {
                const item = document.createElement('li');
                item.id = id;
                item.append(verifyMark(receipt));
                list.append(item);
            }
            document.querySelector('main').replaceChildren(list);
        }""",
        receipts,
    )


def test_marks_show_verified_and_not_verified(
    page: Any, server: Server, receipts: dict[str, dict[str, Any]]
) -> None:
    page.goto(server.base_url + "/")
    show_marks(page, {"good": receipts["seq13"], "bad": receipts["bad_proof"]})
    expect(page.locator("#good .badge")).to_have_text("✓ 已核验")
    expect(page.locator("#good")).to_contain_text("检查点签名有效（Ed25519）")
    expect(page.locator("#bad .badge")).to_have_text("✗ 未通过核验")
    expect(page.locator("#bad")).to_contain_text("默克尔证明与签名的检查点不符")


def test_without_ed25519_the_mark_says_only_the_proof_was_checked(
    page: Any, server: Server, receipts: dict[str, dict[str, Any]]
) -> None:
    page.goto(server.base_url + "/")
    # Simulate an older browser whose WebCrypto lacks Ed25519, before the module loads.
    page.evaluate(
        """() => {
            const importKey = crypto.subtle.importKey.bind(crypto.subtle);
            crypto.subtle.importKey = (format, data, algorithm, ...rest) =>
                algorithm?.name === 'Ed25519'
                    ? Promise.reject(new DOMException('no Ed25519', 'NotSupportedError'))
                    : importKey(format, data, algorithm, ...rest);
        }"""
    )
    result = verify_in_browser(page, receipts["seq13"])
    assert result == {"status": "proof_only", "reason": "sig_unsupported"}
    assert verify_in_browser(page, receipts["bad_proof"])["status"] == "not_verified"
    # The volunteer reads it in words: what was checked, and that this browser cannot do Ed25519.
    show_marks(page, {"partly": receipts["seq13"]})
    expect(page.locator("#partly .badge")).to_have_text("已核对证明，未核对签名")
    expect(page.locator("#partly .verify-note")).to_have_text(
        "此浏览器不支持 Ed25519，只核对了默克尔证明，未核对签名"
    )
