"""Canonical JSON: one byte string per value, everything else refused."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import MAX_SAFE_INTEGER, decode, encode
from ledger.errors import LedgerError, NotCanonical

NFD_E_ACUTE = unicodedata.normalize("NFD", "é")


class TestEncode:
    def test_sorts_keys_and_drops_whitespace(self) -> None:
        assert encode({"b": 1, "a": [1, None, True]}) == b'{"a":[1,null,true],"b":1}'

    def test_writes_non_ascii_as_utf8(self) -> None:
        assert encode({"name": "助浴 é"}) == '{"name":"助浴 é"}'.encode()

    def test_nested_keys_are_sorted_too(self) -> None:
        assert encode({"m": {"z": 1, "a": {"y": 2, "b": 3}}}) == b'{"m":{"a":{"b":3,"y":2},"z":1}}'

    def test_rejects_float(self) -> None:
        with pytest.raises(NotCanonical, match="float"):
            encode({"minutes": 1.5})

    def test_rejects_integral_float(self) -> None:
        with pytest.raises(NotCanonical):
            encode({"minutes": 60.0})

    def test_rejects_nan(self) -> None:
        with pytest.raises(NotCanonical):
            encode({"x": float("nan")})

    def test_rejects_non_nfc_value(self) -> None:
        with pytest.raises(NotCanonical, match="NFC") as info:
            encode({"name": NFD_E_ACUTE})
        assert info.value.field == "name"

    def test_rejects_non_nfc_key(self) -> None:
        with pytest.raises(NotCanonical, match="NFC"):
            encode({NFD_E_ACUTE: 1})

    def test_rejects_non_string_key(self) -> None:
        with pytest.raises(NotCanonical, match="key"):
            encode({1: 1})  # type: ignore[dict-item]

    def test_rejects_huge_integer(self) -> None:
        with pytest.raises(NotCanonical, match="2\\*\\*53"):
            encode({"x": MAX_SAFE_INTEGER + 1})

    def test_rejects_bytes_value(self) -> None:
        with pytest.raises(NotCanonical, match="bytes"):
            encode({"x": b"raw"})

    def test_rejects_lone_surrogate(self) -> None:
        with pytest.raises(NotCanonical, match="surrogate"):
            encode({"x": "\ud800"})

    def test_rejects_non_object_top_level(self) -> None:
        with pytest.raises(NotCanonical, match="object"):
            encode([1, 2])  # type: ignore[arg-type]

    def test_not_canonical_is_a_ledger_error(self) -> None:
        assert issubclass(NotCanonical, LedgerError)
        assert NotCanonical("x").code == "ledger.not_canonical"


class TestDecode:
    def test_round_trips(self) -> None:
        data = encode({"a": "é", "b": [1, {"c": None}], "d": False})
        assert decode(data) == {"a": "é", "b": [1, {"c": None}], "d": False}

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (b'{"a":1,"a":2}', "duplicate"),
            (b'{"a":1.0}', "float"),
            (b'{"a":1e3}', "float"),
            (b'{"a":NaN}', "NaN"),
            (b'{"a":Infinity}', "Infinity"),
            (b'{"a": 1}', "differ"),
            (b'{"b":1,"a":2}', "differ"),
            (b'{"a":1}\n', "differ"),
            (b'{"a":"\\u00e9"}', "differ"),
            (b'{"a":-0}', "differ"),
            (b'\xef\xbb\xbf{"a":1}', "JSON"),
            (b'{"a":"\xff"}', "UTF-8"),
            (b"[1]", "object"),
            (b"", "JSON"),
        ],
    )
    def test_rejects(self, data: bytes, reason: str) -> None:
        with pytest.raises(NotCanonical, match=reason):
            decode(data)

    def test_rejects_non_nfc_text(self) -> None:
        with pytest.raises(NotCanonical, match="NFC"):
            decode(('{"a":"' + NFD_E_ACUTE + '"}').encode())

    def test_rejects_huge_integer(self) -> None:
        with pytest.raises(NotCanonical, match="2\\*\\*53"):
            decode(b'{"a":9007199254740992}')

    def test_rejects_non_bytes(self) -> None:
        with pytest.raises(NotCanonical, match="bytes"):
            decode('{"a":1}')  # type: ignore[arg-type]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.text().map(lambda s: unicodedata.normalize("NFC", s)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text().map(lambda s: unicodedata.normalize("NFC", s)), children, max_size=4
        )
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text().map(lambda s: unicodedata.normalize("NFC", s)), json_values))
def test_decode_inverts_encode(obj: dict) -> None:
    data = encode(obj)
    assert decode(data) == obj
    assert encode(decode(data)) == data
