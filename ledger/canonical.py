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


def _looks_canonical(value: object) -> bool:
    """Fast check without paths: plain dicts, lists, NFC strings, safe ints, bools, None."""
    stack: list[Any] = [value]
    is_normalized = unicodedata.is_normalized
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            if not item.isascii() and not is_normalized("NFC", item):
                return False
        elif kind is int:
            if item > MAX_SAFE_INTEGER or item < -MAX_SAFE_INTEGER:
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str or not (key.isascii() or is_normalized("NFC", key)):
                    return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif item is not None and kind is not bool:
            return False
    return True


def _checked_copy(value: object, path: str) -> Any:
    """Plain-JSON copy of `value` (any Mapping, list or tuple), or NotCanonical naming where."""
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        if not unicodedata.is_normalized("NFC", value):
            raise NotCanonical("string is not in Unicode NFC", path)
        return value
    if isinstance(value, int):
        if type(value) is not int:
            raise NotCanonical(f"integer subclass {type(value).__name__} is not allowed", path)
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise NotCanonical("integer outside +-(2**53 - 1)", path)
        return value
    if isinstance(value, float):
        raise NotCanonical("floats are not allowed (use integer minutes/milliseconds)", path)
    if isinstance(value, Mapping):
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"object key {key!r} is not a string", path)
            if not unicodedata.is_normalized("NFC", key):
                raise NotCanonical("object key is not in Unicode NFC", f"{path}.{key}")
            copy[key] = _checked_copy(item, f"{path}.{key}" if path else key)
        return copy
    if isinstance(value, list | tuple):
        return [_checked_copy(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise NotCanonical(f"type {type(value).__name__} is not allowed", path)


def encode(obj: Mapping[str, Any]) -> bytes:
    """The canonical bytes of a JSON object; raises NotCanonical instead of normalising."""
    if not isinstance(obj, Mapping):
        raise NotCanonical(f"top level must be an object, not {type(obj).__name__}")
    if not _looks_canonical(obj):
        # Other mapping types, tuples, or a real problem: the slow path names the field.
        obj = _checked_copy(obj, "")
    text = _encoder.encode(obj)
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
