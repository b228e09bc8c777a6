"""static/chain.js and verify.js's Merkle root and consistency proofs agree with the Python
ledger on a chain it built (text with escapes and non-ASCII in it), and name what was altered."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ledger.entries import Entry, entry_from_json
from ledger.merkle import MerkleIndex
from ledger.verify import verify_chain
from market.services.ledger_reads import entry_json
from tests.web.conftest import Server
from tests.web.entries import DISTRICT, deposit_chain

SIZE = 13
# Everything the canonical writer escapes, or deliberately does not, in one note.
NOTE = '助浴 "第{n}次" back\\slash\ttab\nline \u2028 \x7f 😀 é'


def chain(size: int) -> list[Entry]:
    return deposit_chain(
        size,
        holders=3,
        ref=lambda seq: None if seq % 2 else f"booking-{seq}",
        meta=lambda seq: {"备注": NOTE.format(n=seq), "nested": {"b": [1, True, None], "a": "x"}},
    )


@pytest.fixture(scope="module")
def entries() -> list[dict[str, Any]]:
    return [entry_json(e) for e in chain(SIZE)]


CHECK = """async ([entries, chain]) => {
    const { checkEntries } = await import('/chain.js');
    const verdicts = await checkEntries(entries, chain);
    return verdicts.map((v) => v.problem && v.problem.code);
}"""


def problems(page: Any, entries: list[dict[str, Any]], chain: str = DISTRICT) -> list[Any]:
    return page.evaluate(CHECK, [entries, chain])  # type: ignore[no-any-return]


def test_a_good_chain_has_no_problem_and_the_root_matches(
    page: Any, server: Server, entries: list[dict[str, Any]]
) -> None:
    page.goto(server.base_url + "/")
    assert problems(page, entries) == [None] * SIZE
    # The same entries offered as another district's chain are not that chain.
    assert problems(page, entries, "west") == ["wrong_district"] * SIZE
    index = MerkleIndex.from_leaves([bytes.fromhex(e["hash"]) for e in entries])
    roots = page.evaluate(
        """async ([entries, sizes]) => {
            const { checkEntries } = await import('/chain.js');
            const { merkleRoot, bytesToHex } = await import('/verify.js');
            const leaves = (await checkEntries(entries, 'east')).map((v) => v.leaf);
            const root = async (n) => bytesToHex(await merkleRoot(leaves.slice(0, n)));
            return Promise.all(sizes.map(root));
        }""",
        [entries, list(range(SIZE + 1))],
    )
    assert roots == [index.root(n).hex() for n in range(SIZE + 1)]


def altered(entries: list[dict[str, Any]], seq: int, **changes: Any) -> list[dict[str, Any]]:
    out = copy.deepcopy(entries)
    out[seq].update(changes)
    return out


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        # Bytes changed, the server's hash kept: that entry only, not the next one.
        ("bytes", {5: "hash_mismatch"}),
        # Bytes and hash changed together: the next entry's link names the break.
        ("bytes_and_hash", {6: "prev_mismatch"}),
        ("column", {5: "fields_differ"}),
        ("whitespace", {5: "not_canonical"}),
        # Entry 5 left out: 6 is where 5 should be, and the count goes on from there.
        ("gap", {6: "seq_gap"}),
    ],
)
def test_an_alteration_is_named_at_its_seq(
    page: Any, server: Server, entries: list[dict[str, Any]], case: str, expected: dict[int, str]
) -> None:
    page.goto(server.base_url + "/")
    body = entries[5]["body"]
    more = body.replace('"minutes":35,', '"minutes":95,')
    forged = entry_from_json({**chain(SIZE)[5].to_json(), "minutes": 95})
    assert forged.body == more.encode()
    variants = {
        "bytes": altered(entries, 5, body=more, minutes=95),
        "bytes_and_hash": altered(entries, 5, body=more, minutes=95, hash=forged.hash.hex()),
        "column": altered(entries, 5, minutes=95),
        "whitespace": altered(entries, 5, body=body.replace('"minutes":', '"minutes": ')),
        "gap": entries[:5] + entries[6:],
    }
    found = problems(page, variants[case])
    seqs = [e["seq"] for e in variants[case]]
    assert {s: p for s, p in zip(seqs, found, strict=True) if p} == expected


def test_a_missing_entry_is_named_where_the_python_verifier_names_it(
    page: Any, server: Server, entries: list[dict[str, Any]]
) -> None:
    page.goto(server.base_url + "/")
    gap = entries[:5] + entries[6:]
    named = page.evaluate(
        """async ([entries, chain]) => {
            const { checkEntries } = await import('/chain.js');
            const broken = (await checkEntries(entries, chain)).find((v) => v.problem);
            return [broken.seq, broken.problem.code, broken.problem.seq];
        }""",
        [gap, DISTRICT],
    )
    report = verify_chain([e["body"].encode() for e in gap], district=DISTRICT)
    assert named == [6, "seq_gap", report.first_bad_seq] == [6, "seq_gap", 5]


def test_consistency_proofs_agree_with_the_python_ledger(page: Any, server: Server) -> None:
    leaves = [e.hash for e in chain(SIZE)]
    index = MerkleIndex.from_leaves(leaves)
    cases = []
    for old in range(0, SIZE + 1):  # from the empty tree, consistent with every tree
        for new in range(old, SIZE + 1):
            proof = [p.hex() for p in index.consistency_proof(old, new)]
            cases.append([old, new, index.root(old).hex(), index.root(new).hex(), proof])
    # A proof against another old root, or another new root, must not hold.
    proof = [p.hex() for p in index.consistency_proof(4, 9)]
    bad = [
        [4, 9, index.root(3).hex(), index.root(9).hex(), proof],
        [4, 9, index.root(4).hex(), index.root(10).hex(), proof],
        [0, 9, index.root(1).hex(), index.root(9).hex(), []],
    ]
    page.goto(server.base_url + "/")
    results = page.evaluate(
        """async (cases) => {
            const { verifyConsistency, hexToBytes } = await import('/verify.js');
            return Promise.all(cases.map(([o, n, a, b, proof]) =>
                verifyConsistency(o, n, hexToBytes(a), hexToBytes(b), proof.map(hexToBytes))));
        }""",
        cases + bad,
    )
    assert results == [True] * len(cases) + [False, False, False]
