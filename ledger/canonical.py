"""Canonical JSON: the one byte string that an entry, a checkpoint or a signed message hashes to.

Rules: object keys sorted, separators `,` and `:` with no whitespace, UTF-8 with non-ASCII text
written as itself (`ensure_ascii=False`), every string (keys too) already in Unicode NFC,
integers only and within +-(2**53 - 1) so that a JavaScript verifier reads the same number,
`true`/`false`/`null`, nested objects and arrays. Floats, NaN and Infinity are refused.

`encode` refuses values it would have to change (it never normalises silently); `decode` refuses
bytes that are not exactly `encode` of what they parse to, which rules out duplicate keys, other
key orders, insignificant whitespace, alternative escapes and a byte-order mark in one check.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from typing import Any

from ledger.errors import NotCanonical

MAX_SAFE_INTEGER = 2**53 - 1

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _check_value(value: object, path: str) -> None:
    # Iterative checks would be faster, but values here are small (entries, checkpoints).
    if value is None or value is True or value is False:
        return
    if isinstance(value, str):
        if not unicodedata.is_normalized("NFC", value):
            raise NotCanonical("string is not in Unicode NFC", path)
        return
    if isinstance(value, int):
        if type(value) is not int:
            raise NotCanonical(f"integer subclass {type(value).__name__} is not allowed", path)
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise NotCanonical("integer outside +-(2**53 - 1)", path)
        return
    if isinstance(value, float):
        raise NotCanonical("floats are not allowed (use integer minutes/milliseconds)", path)
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"object key {key!r} is not a string", path)
            if not unicodedata.is_normalized("NFC", key):
                raise NotCanonical("object key is not in Unicode NFC", f"{path}.{key}")
            _check_value(item, f"{path}.{key}" if path else key)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_value(item, f"{path}[{index}]")
        return
    raise NotCanonical(f"type {type(value).__name__} is not allowed", path)


def encode(obj: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a JSON object; raises NotCanonical instead of normalising."""
    if not isinstance(obj, Mapping):
        raise NotCanonical(f"top level must be an object, not {type(obj).__name__}")
    _check_value(obj, "")
    text = _encoder.encode(dict(obj) if not isinstance(obj, dict) else obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates cannot be UTF-8
        raise NotCanonical("string contains a lone surrogate") from exc


def _reject_float(text: str) -> Any:
    raise NotCanonical(f"float {text} is not allowed")


def _reject_constant(text: str) -> Any:
    raise NotCanonical(f"{text} is not allowed")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise NotCanonical("duplicate key", key)
        obj[key] = value
    return obj


def parse_strict(data: bytes) -> dict[str, Any]:
    """Parse JSON refusing duplicate keys, floats, NaN/Infinity and non-UTF-8; no form check."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise NotCanonical(f"expected bytes, got {type(data).__name__}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotCanonical(f"not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        obj = json.loads(
            text,
            object_pairs_hook=_unique_object,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except json.JSONDecodeError as exc:
        raise NotCanonical(f"not JSON ({exc.msg} at char {exc.pos})") from exc
    if not isinstance(obj, dict):
        raise NotCanonical("top level must be an object")
    return obj


def decode(data: bytes) -> dict[str, Any]:
    """Parse canonical bytes; anything but the exact canonical form raises NotCanonical."""
    obj = parse_strict(data)
    if encode(obj) != bytes(data):
        raise NotCanonical("bytes differ from the canonical encoding (order, spacing or escapes)")
    return obj
