"""Client frames of the websocket protocol, parsed and validated into typed commands.

{"type": "auth", "token": "<bearer token>"}
{"type": "subscribe", "streams": ["user:<id>", ...], "resume": {"user:<id>": 41}}
    `streams` omitted: every stream the caller may read. `resume`: the last seq the client
    saw per stream; streams without one start live from their head.
{"type": "unsubscribe", "streams": [...]}
{"type": "ping"}            answered with {"type": "pong"}
{"type": "pong"}            the answer to a server ping (any frame keeps the connection alive)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_FRAME_CHARS = 32 * 1024
MAX_STREAMS_PER_FRAME = 256
MAX_TOKEN_CHARS = 4096
MAX_SEQ = 2**63 - 1


class FrameError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Auth:
    token: str


@dataclass(frozen=True)
class Subscribe:
    streams: tuple[str, ...] | None
    resume: Mapping[str, int]


@dataclass(frozen=True)
class Unsubscribe:
    streams: tuple[str, ...]


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Pong:
    pass


ClientFrame = Auth | Subscribe | Unsubscribe | Ping | Pong

_FIELDS: dict[str, frozenset[str]] = {
    "auth": frozenset({"type", "token"}),
    "subscribe": frozenset({"type", "streams", "resume"}),
    "unsubscribe": frozenset({"type", "streams"}),
    "ping": frozenset({"type"}),
    "pong": frozenset({"type"}),
}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise FrameError("malformed_frame", "the frame repeats a key")
    return dict(pairs)


def _streams(value: object, *, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise FrameError("malformed_frame", f"{field} must be a list of stream names")
    if len(value) > MAX_STREAMS_PER_FRAME:
        raise FrameError("malformed_frame", f"at most {MAX_STREAMS_PER_FRAME} streams per frame")
    return tuple(dict.fromkeys(value))


def _resume(value: object) -> dict[str, int]:
    if not isinstance(value, dict):
        raise FrameError("malformed_frame", "resume must be an object of stream -> last seq")
    if len(value) > MAX_STREAMS_PER_FRAME:
        raise FrameError("malformed_frame", f"at most {MAX_STREAMS_PER_FRAME} resume positions")
    for stream, seq in value.items():
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
            raise FrameError(
                "malformed_frame", f"resume[{stream!r}] must be a non-negative integer seq"
            )
    return dict(value)


def parse_frame(raw: str | bytes | None) -> ClientFrame:
    """One client frame, or FrameError naming what is wrong with it."""
    if not isinstance(raw, str):
        raise FrameError("malformed_frame", "frames are JSON text, not binary")
    if len(raw) > MAX_FRAME_CHARS:
        raise FrameError("frame_too_large", f"frames are at most {MAX_FRAME_CHARS} characters")
    try:
        data = json.loads(raw, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise FrameError("malformed_frame", "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise FrameError("malformed_frame", "a frame is a JSON object with a type")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise FrameError(
            "unknown_type", f"type must be one of {', '.join(sorted(_FIELDS))}; got {kind!r}"
        )
    unknown = sorted(set(data) - _FIELDS[kind])
    if unknown:
        raise FrameError("malformed_frame", f"unknown fields in {kind}: {', '.join(unknown)}")
    if kind == "auth":
        token = data.get("token")
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise FrameError("malformed_frame", "auth needs a token string")
        return Auth(token)
    if kind == "subscribe":
        streams = _streams(data["streams"], field="streams") if "streams" in data else None
        resume = _resume(data.get("resume", {}))
        if streams is not None and (stray := sorted(set(resume) - set(streams))):
            raise FrameError(
                "malformed_frame", f"resume names streams not being subscribed: {stray}"
            )
        return Subscribe(streams, resume)
    if kind == "unsubscribe":
        if "streams" not in data:
            raise FrameError("malformed_frame", "unsubscribe needs streams")
        return Unsubscribe(_streams(data["streams"], field="streams"))
    return Ping() if kind == "ping" else Pong()
