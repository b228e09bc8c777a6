"""JSON Schema for the command dataclasses, from the same annotations `parse` enforces."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints
from uuid import UUID

from market.schemas.parse import Items, Range, Text


def _bounds(meta: tuple[Any, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for bound in meta:
        if isinstance(bound, Text):
            out.update(minLength=bound.min_length, maxLength=bound.max_length)
            if bound.pattern:
                out["pattern"] = bound.pattern
        elif isinstance(bound, Range):
            if bound.minimum is not None:
                out["minimum"] = bound.minimum
            if bound.maximum is not None:
                out["maximum"] = bound.maximum
        elif isinstance(bound, Items):
            out.update(minItems=bound.min_items, maxItems=bound.max_items)
    return out


def schema_for(annotation: Any, components: dict[str, Any]) -> dict[str, Any]:
    meta: tuple[Any, ...] = ()
    if get_origin(annotation) is Annotated:
        annotation, *rest = get_args(annotation)
        meta = tuple(rest)
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [schema_for(a, components) for a in get_args(annotation) if a is not type(None)]
        base = options[0] if len(options) == 1 else {"anyOf": options}
        return {**base, **_bounds(meta), "nullable": True}
    simple = {
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
        UUID: {"type": "string", "format": "uuid"},
        datetime: {"type": "string", "format": "date-time"},
        date: {"type": "string", "format": "date"},
        Any: {},
    }
    if annotation in simple:
        return {**simple[annotation], **_bounds(meta)}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"type": "string", "enum": [m.value for m in annotation]}
    if origin is Literal:
        return {"enum": list(get_args(annotation))}
    if origin is list:
        (item,) = get_args(annotation)
        return {"type": "array", "items": schema_for(item, components), **_bounds(meta)}
    if origin is dict:
        _, value = get_args(annotation)
        return {
            "type": "object",
            "additionalProperties": schema_for(value, components),
            **_bounds(meta),
        }
    if dataclasses.is_dataclass(annotation):
        return {"$ref": f"#/components/schemas/{component(annotation, components)}"}
    raise TypeError(f"no JSON schema for {annotation!r}")


def component(cls: Any, components: dict[str, Any]) -> str:
    name = cls.__name__
    if name in components:
        return name
    components[name] = {}
    hints = get_type_hints(cls, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        properties[f.name] = schema_for(hints[f.name], components)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    components[name] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    if cls.__doc__ and not cls.__doc__.startswith(f"{name}("):
        components[name]["description"] = cls.__doc__.strip()
    return name
