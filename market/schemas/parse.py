"""Strict parsing of JSON request bodies into frozen dataclasses.

A command is a frozen dataclass whose field types say what is accepted:
`str`, `int`, `float`, `bool`, `UUID`, `date`, `datetime`, enums, `Literal`, nested dataclasses,
`list[T]`, `dict[str, T]`, `T | None`, and `Annotated[T, Text(...)/Range(...)/Items(...)]` for
bounds. Unknown fields, missing fields, wrong types (a bool is not an int, an int is not a
str) and out-of-range values are all collected and reported together as one 422, so a client
fixes everything in one round trip. The same annotations produce the OpenAPI schemas.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
import types
import typing
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin, get_type_hints
from uuid import UUID

from starlette.requests import Request

from market.errors import InvalidInput, MalformedBody, UnsupportedMediaType

T = TypeVar("T")


@dataclass(frozen=True)
class Text:
    """Length and pattern bounds. Text must hold a visible character and no control or
    format characters (zero-width, bidi overrides), except newlines and tabs when multiline."""

    min_length: int = 1
    max_length: int = 200
    pattern: str | None = None
    multiline: bool = False


@dataclass(frozen=True)
class Range:
    minimum: int | float | None = None
    maximum: int | float | None = None


@dataclass(frozen=True)
class Items:
    min_items: int = 0
    max_items: int = 100


@dataclass(frozen=True)
class Problem:
    field: str
    problem: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field or "(body)", "problem": self.problem}


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, problem: str) -> None:
        self.problems.append(Problem(path, problem))


_MISSING = object()


def _join(path: str, name: str | int) -> str:
    if isinstance(name, int):
        return f"{path}[{name}]"
    return f"{path}.{name}" if path else name


def _unwrap(annotation: Any) -> tuple[Any, tuple[Any, ...]]:
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        return base, tuple(meta)
    return annotation, ()


def _is_optional(annotation: Any) -> tuple[bool, Any]:
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) != len(get_args(annotation)):
            inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
            return True, inner
    return False, annotation


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# Datetimes outside these years cannot be meant and overflow date arithmetic downstream.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2200


def _text_problem(value: str, bound: Text) -> str | None:
    allowed = {"\n", "\t"} if bound.multiline else set()
    for ch in value:
        if unicodedata.category(ch) in ("Cc", "Cf") and ch not in allowed:
            return f"must not contain control or invisible characters (U+{ord(ch):04X})"
    if value and not value.strip():
        return "must not be blank"
    return None


def _check_bounds(value: Any, meta: tuple[Any, ...], path: str, out: _Collector) -> bool:
    for bound in meta:
        if isinstance(bound, Text) and isinstance(value, str):
            if problem := _text_problem(value, bound):
                out.add(path, problem)
                return False
            if len(value) < bound.min_length:
                out.add(path, f"must have at least {bound.min_length} characters")
                return False
            if len(value) > bound.max_length:
                out.add(path, f"must have at most {bound.max_length} characters")
                return False
            if bound.pattern and not re.fullmatch(bound.pattern, value):
                out.add(path, f"must match {bound.pattern}")
                return False
        elif isinstance(bound, Range):
            if bound.minimum is not None and value < bound.minimum:
                out.add(path, f"must be at least {bound.minimum}")
                return False
            if bound.maximum is not None and value > bound.maximum:
                out.add(path, f"must be at most {bound.maximum}")
                return False
        elif isinstance(bound, Items) and isinstance(value, list | dict):
            if len(value) < bound.min_items:
                out.add(path, f"must have at least {bound.min_items} items")
                return False
            if len(value) > bound.max_items:
                out.add(path, f"must have at most {bound.max_items} items")
                return False
    return True


def _convert(annotation: Any, value: Any, path: str, out: _Collector) -> Any:
    annotation, meta = _unwrap(annotation)
    optional, annotation = _is_optional(annotation)
    if value is None:
        if not optional:
            out.add(path, "must not be null")
        return None
    annotation, more_meta = _unwrap(annotation)
    meta = meta + more_meta
    converted = _convert_value(annotation, value, path, out)
    if converted is _MISSING:
        return None
    if not _check_bounds(converted, meta, path, out):
        return None
    return converted


def _convert_value(annotation: Any, value: Any, path: str, out: _Collector) -> Any:
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        out.add(path, f"must be a boolean, got {_type_name(value)}")
        return _MISSING
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        out.add(path, f"must be an integer, got {_type_name(value)}")
        return _MISSING
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                out.add(path, "must be a finite number")
                return _MISSING
            return number
        out.add(path, f"must be a number, got {_type_name(value)}")
        return _MISSING
    if annotation is str:
        if isinstance(value, str):
            if "\x00" in value:
                out.add(path, "must not contain NUL characters")
                return _MISSING
            return value
        out.add(path, f"must be a string, got {_type_name(value)}")
        return _MISSING
    if annotation is UUID:
        return _parse_text(value, path, out, UUID, "a UUID")
    if annotation is datetime:
        parsed = _parse_text(value, path, out, datetime.fromisoformat, "an ISO 8601 date-time")
        if parsed is not _MISSING and parsed.tzinfo is None:
            out.add(path, "must include a time zone offset, e.g. 2026-05-01T09:00:00+08:00")
            return _MISSING
        return _within_years(parsed, path, out)
    if annotation is date:
        parsed = _parse_text(value, path, out, date.fromisoformat, "an ISO 8601 date")
        return _within_years(parsed, path, out)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        allowed = [m.value for m in annotation]
        if isinstance(value, str) and value in allowed:
            return annotation(value)
        out.add(path, f"must be one of {', '.join(map(str, allowed))}")
        return _MISSING
    if origin is Literal:
        if value in get_args(annotation) and type(value) in {type(a) for a in get_args(annotation)}:
            return value
        out.add(path, f"must be one of {', '.join(map(str, get_args(annotation)))}")
        return _MISSING
    if origin is list:
        if not isinstance(value, list):
            out.add(path, f"must be an array, got {_type_name(value)}")
            return _MISSING
        (item_type,) = get_args(annotation)
        return [_convert(item_type, item, _join(path, i), out) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            out.add(path, f"must be an object, got {_type_name(value)}")
            return _MISSING
        _, value_type = get_args(annotation)
        return {k: _convert(value_type, v, _join(path, k), out) for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, path, out)
    raise TypeError(f"unsupported annotation {annotation!r} at {path}")


def _within_years(parsed: Any, path: str, out: _Collector) -> Any:
    if parsed is _MISSING:
        return parsed
    if not EARLIEST_YEAR <= parsed.year <= LATEST_YEAR:
        out.add(path, f"must be between the years {EARLIEST_YEAR} and {LATEST_YEAR}")
        return _MISSING
    return parsed


def _parse_text(value: Any, path: str, out: _Collector, parser: Any, what: str) -> Any:
    if not isinstance(value, str):
        out.add(path, f"must be {what} string, got {_type_name(value)}")
        return _MISSING
    try:
        return parser(value)
    except ValueError:
        out.add(path, f"must be {what}, got {value[:60]!r}")
        return _MISSING


def _build(cls: Any, data: Any, path: str, out: _Collector) -> Any:
    if not isinstance(data, dict):
        out.add(path, f"must be an object, got {_type_name(data)}")
        return _MISSING
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for unknown in sorted(set(data) - set(fields)):
        out.add(_join(path, unknown), "is not a known field")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                out.add(_join(path, name), "is required")
            continue
        values[name] = _convert(hints[name], data[name], _join(path, name), out)
    if out.problems:
        return _MISSING
    return cls(**values)


def parse(cls: type[T], data: Any) -> T:
    """`data` as an instance of the dataclass `cls`, or InvalidInput listing every problem."""
    out = _Collector()
    result = _build(cls, data, "", out)
    if out.problems:
        first = out.problems[0]
        more = f" (and {len(out.problems) - 1} more)" if len(out.problems) > 1 else ""
        raise InvalidInput(
            "invalid_input",
            f"{first.field or 'body'} {first.problem}{more}",
            [p.as_json() for p in out.problems],
        )
    return typing.cast(T, result)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedBody("malformed_body", f"duplicate key {key!r} in JSON body")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise MalformedBody("malformed_body", f"{name} is not valid JSON")


async def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object; 415 for other media types, 400 for bad JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType("unsupported_media_type", "Send the body as application/json.")
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
        data = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except UnicodeDecodeError:
        raise MalformedBody("malformed_body", "the body is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            "malformed_body", f"the body is not valid JSON: {exc.msg} at {exc.pos}"
        ) from None
    except RecursionError:
        raise MalformedBody("malformed_body", "the JSON body is nested too deeply") from None
    except ValueError:
        # e.g. an integer literal beyond Python's digit limit for int parsing
        raise MalformedBody("malformed_body", "the body holds a number too long to read") from None
    if not isinstance(data, dict):
        raise MalformedBody("malformed_body", "the body must be a JSON object")
    return data


async def parse_body(request: Request, cls: type[T]) -> T:
    return parse(cls, await json_body(request))


_QUERY_INT = re.compile(r"-?[0-9]{1,16}")


def _query_value(annotation: Any, raw: str) -> Any:
    """Query strings carry text only; integers (ASCII digits only) and booleans (`true`,
    `false`) are read here, the rest goes through the same conversion as JSON strings."""
    base, _ = _unwrap(annotation)
    _, base = _is_optional(base)
    base, _ = _unwrap(base)
    if base is int and _QUERY_INT.fullmatch(raw):
        return int(raw)
    # Only the two words: `?flagged=1` or `?flagged=yes` is refused, not guessed at.
    if base is bool and raw in ("true", "false"):
        return raw == "true"
    return raw


def parse_query(request: Request, cls: type[T]) -> T:
    """The query string as an instance of the dataclass `cls`; repeated or unknown keys are 422."""
    hints = get_type_hints(cls, include_extras=True)
    data: dict[str, Any] = {}
    out = _Collector()
    for key, raw in request.query_params.multi_items():
        if key in data:
            out.add(key, "is given more than once")
        data[key] = _query_value(hints[key], raw) if key in hints else raw
    if out.problems:
        raise InvalidInput(
            "invalid_input",
            f"{out.problems[0].field} {out.problems[0].problem}",
            [p.as_json() for p in out.problems],
        )
    return parse(cls, data)


def path_uuid(request: Request, name: str = "id") -> UUID:
    raw = request.path_params[name]
    try:
        return UUID(raw)
    except ValueError:
        raise InvalidInput(
            "invalid_id",
            f"{name} {raw[:60]!r} is not a UUID",
            [{"field": name, "problem": "must be a UUID"}],
        ) from None
