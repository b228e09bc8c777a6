"""Entries: field validation, canonical body, hash, strict parsing."""

import hashlib
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import encode
from ledger.entries import (
    ENTRY_VERSION,
    ISSUANCE,
    VERSION_TAG,
    ZERO_HASH,
    AccountType,
    Kind,
    build_entry,
    clearing_account,
    entry_from_bytes,
    entry_hash,
    moves_balance,
    new_entry,
    parse_account,
    user_account,
)
from ledger.errors import InvalidAccount, InvalidEntry, NotCanonical


def fields(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "district": "xuhui",
        "seq": 0,
        "prev": ZERO_HASH,
        "id": "booking-1:deposit",
        "kind": Kind.DEPOSIT,
        "debit": ISSUANCE,
        "credit": "user:v1",
        "minutes": 90,
        "category": "bathing",
        "ref": "booking-1",
        "actor": "centre:xuhui",
        "policy": 3,
        "at_ms": 1_700_000_000_000,
    }
    base.update(overrides)
    return base


class TestBuildEntry:
    def test_body_is_canonical_with_documented_keys(self) -> None:
        entry = build_entry(**fields())
        assert entry.body == (
            b'{"actor":"centre:xuhui","at":1700000000000,"category":"bathing",'
            b'"credit":"user:v1","debit":"issuance","district":"xuhui",'
            b'"id":"booking-1:deposit","kind":"deposit","meta":{},"minutes":90,"policy":3,'
            b'"prev":"' + b"0" * 64 + b'","ref":"booking-1","seq":0,"v":1}'
        )

    def test_hash_is_leaf_hash_of_tagged_body(self) -> None:
        entry = build_entry(**fields())
        expected = hashlib.sha256(b"\x00" + VERSION_TAG + entry.body).digest()
        assert entry.hash == expected == entry_hash(entry.body)

    def test_meta_is_part_of_the_body(self) -> None:
        entry = build_entry(**fields(meta={"transfer": "t-1"}))
        assert b'"meta":{"transfer":"t-1"}' in entry.body
        assert entry.transfer_id == "t-1"

    def test_meta_is_read_only(self) -> None:
        entry = build_entry(**fields(meta={"transfer": "t-1"}))
        with pytest.raises(TypeError):
            entry.meta["transfer"] = "t-2"  # type: ignore[index]

    def test_kind_given_as_string_becomes_kind(self) -> None:
        assert build_entry(**fields(kind="gift")).kind is Kind.GIFT

    @pytest.mark.parametrize(
        ("override", "field"),
        [
            ({"minutes": 0}, "minutes"),
            ({"minutes": -5}, "minutes"),
            ({"minutes": 1.5}, "minutes"),
            ({"minutes": True}, "minutes"),
            ({"seq": -1}, "seq"),
            ({"seq": 1.0}, "seq"),
            ({"prev": b"short"}, "prev"),
            ({"prev": b"\x01" * 32}, "prev"),
            ({"id": ""}, "id"),
            ({"id": 7}, "id"),
            ({"kind": "steal"}, "kind"),
            ({"credit": ISSUANCE}, "credit"),
            ({"actor": ""}, "actor"),
            ({"policy": -1}, "policy"),
            ({"at_ms": -1}, "at_ms"),
            ({"district": "a:b"}, "district"),
            ({"district": ""}, "district"),
            ({"category": ""}, "category"),
            ({"ref": "x" * 300}, "ref"),
            ({"meta": ["x"]}, "meta"),
        ],
    )
    def test_rejects_bad_field(self, override: dict[str, Any], field: str) -> None:
        with pytest.raises(InvalidEntry) as info:
            build_entry(**fields(**override))
        assert info.value.field == field

    def test_rejects_bad_account(self) -> None:
        with pytest.raises(InvalidAccount):
            build_entry(**fields(debit="bank"))

    def test_rejects_float_in_meta(self) -> None:
        with pytest.raises(NotCanonical, match="meta"):
            build_entry(**fields(meta={"rate": 0.5}))

    def test_non_first_entry_links_to_previous(self) -> None:
        first = build_entry(**fields())
        second = build_entry(**fields(seq=1, prev=first.hash, id="x"))
        assert second.prev == first.hash


entry_texts = st.text(max_size=12).map(lambda s: unicodedata.normalize("NFC", s)).filter(bool)


@given(
    st.fixed_dictionaries(
        {
            "id": entry_texts,
            "actor": entry_texts,
            "category": st.none() | entry_texts,
            "ref": st.none() | entry_texts,
            "minutes": st.integers(1, 2**53 - 1),
            "seq": st.integers(1, 2**53 - 1),
            "at_ms": st.integers(0, 2**53 - 1),
            "meta": st.dictionaries(entry_texts, st.none() | st.integers(-5, 5) | entry_texts),
        }
    )
)
def test_body_is_exactly_the_canonical_encoding(values: dict[str, Any]) -> None:
    entry = build_entry(**fields(prev=b"\x07" * 32, **values))
    obj = {
        "v": ENTRY_VERSION,
        "district": entry.district,
        "seq": entry.seq,
        "prev": entry.prev.hex(),
        "id": entry.id,
        "kind": str(entry.kind),
        "debit": entry.debit,
        "credit": entry.credit,
        "minutes": entry.minutes,
        "category": entry.category,
        "ref": entry.ref,
        "actor": entry.actor,
        "policy": entry.policy,
        "at": entry.at_ms,
        "meta": dict(entry.meta),
    }
    assert entry.body == encode(obj)
    assert entry_from_bytes(entry.body) == entry


def test_non_nfc_text_is_refused_with_its_field() -> None:
    with pytest.raises(NotCanonical) as info:
        build_entry(**fields(actor=unicodedata.normalize("NFD", "é")))
    assert info.value.field == "actor"


class TestEntryFromBytes:
    def test_round_trips(self) -> None:
        entry = build_entry(**fields(meta={"transfer": "t", "hold": "ab"}))
        assert entry_from_bytes(entry.body) == entry

    def test_to_json_gives_the_body_object(self) -> None:
        entry = build_entry(**fields())
        assert entry.to_json()["at"] == entry.at_ms
        assert entry.to_json()["v"] == ENTRY_VERSION

    def test_rejects_whitespace(self) -> None:
        body = build_entry(**fields()).body.replace(b'"seq":0', b'"seq": 0')
        with pytest.raises(NotCanonical):
            entry_from_bytes(body)

    def test_rejects_missing_key(self) -> None:
        obj = build_entry(**fields()).to_json()
        del obj["actor"]
        with pytest.raises(InvalidEntry, match="missing keys \\['actor'\\]"):
            entry_from_bytes(encode(obj))

    def test_rejects_extra_key(self) -> None:
        obj = build_entry(**fields()).to_json()
        obj["extra"] = 1
        with pytest.raises(InvalidEntry, match="unexpected keys \\['extra'\\]"):
            entry_from_bytes(encode(obj))

    def test_rejects_other_version(self) -> None:
        obj = build_entry(**fields()).to_json()
        obj["v"] = 2
        with pytest.raises(InvalidEntry, match="version"):
            entry_from_bytes(encode(obj))

    def test_rejects_bool_version(self) -> None:
        obj = build_entry(**fields()).to_json()
        obj["v"] = True
        with pytest.raises(InvalidEntry, match="version"):
            entry_from_bytes(encode(obj))

    def test_rejects_uppercase_prev(self) -> None:
        first = build_entry(**fields())
        obj = build_entry(**fields(seq=1, prev=first.hash, id="x")).to_json()
        obj["prev"] = obj["prev"].upper()
        with pytest.raises(InvalidEntry, match="prev"):
            entry_from_bytes(encode(obj))


class TestAccounts:
    def test_user_account(self) -> None:
        assert user_account("v1") == "user:v1"
        assert parse_account("user:v1").owner == "v1"

    def test_clearing_account(self) -> None:
        account = parse_account(clearing_account("minhang"))
        assert (account.type, account.owner) == (AccountType.CLEARING, "minhang")
        assert account.name == "clearing:minhang"

    @pytest.mark.parametrize("name", ["issuance", "pool", "expired"])
    def test_own_accounts(self, name: str) -> None:
        assert parse_account(name).name == name

    @pytest.mark.parametrize("name", ["user:", "user:a b", "clearing:", "bank", "", "user:é", 3])
    def test_rejects(self, name: object) -> None:
        with pytest.raises(InvalidAccount):
            parse_account(name)

    def test_user_account_rejects_colon(self) -> None:
        with pytest.raises(InvalidAccount):
            user_account("a:b")


def test_only_hold_post_moves_nothing() -> None:
    assert [kind for kind in Kind if not moves_balance(kind)] == [Kind.HOLD_POST]


class TestNewEntry:
    """The append path's constructor gives exactly what `build_entry` gives."""

    @given(
        text=st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40),
        minutes=st.integers(1, 6000),
        meta=st.dictionaries(st.sampled_from(["a", "b", "transfer"]), st.text(max_size=5)),
    )
    def test_same_as_build_entry(self, text: str, minutes: int, meta: dict[str, str]) -> None:
        text = unicodedata.normalize("NFC", text)
        args = fields(id=text, actor=text, ref=text, minutes=minutes, meta=meta, seq=3)
        args["prev"] = b"\x07" * 32
        built = build_entry(**args)
        made = new_entry(
            args["district"], 3, args["prev"], text, Kind.DEPOSIT, args["debit"], args["credit"],
            minutes, args["category"], text, text, args["policy"], args["at_ms"], meta,
        )  # fmt: skip
        assert made == built
        assert (made.body, made.hash, dict(made.meta)) == (built.body, built.hash, meta)
        assert made.kind is Kind.DEPOSIT

    def test_is_frozen(self) -> None:
        made = new_entry(
            "xuhui", 0, ZERO_HASH, "i", Kind.DEPOSIT, ISSUANCE, "user:v", 1, None, None, "a", 0,
            0, None,
        )  # fmt: skip
        with pytest.raises(AttributeError):
            made.minutes = 2  # type: ignore[misc]
        assert dict(made.meta) == {}

    def test_non_nfc_text_is_still_refused(self) -> None:
        with pytest.raises(NotCanonical):
            new_entry(
                "xuhui", 0, ZERO_HASH, "e\u0301", Kind.DEPOSIT, ISSUANCE, "user:v", 1, None,
                None, "a", 0, 0, None,
            )  # fmt: skip
