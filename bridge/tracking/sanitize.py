"""Making valid JSON that orjson cannot write storable: done once, at intake, before anything reads it.

JSON allows what orjson refuses to encode: a lone surrogate (a cut emoji, ``"s\\ud800"``), an
integer beyond 64 bits, nesting deeper than 254 levels. Such an event is kept with those
values replaced (U+FFFD, the integer's digits as a string, a marker), never dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_NESTING = 200


def encode_params(params: Any) -> tuple[bytes, Any]:
    """(the params as JSON bytes, the params as they will be stored): sanitised only when needed."""
    try:
        return orjson.dumps(params), params
    except TypeError:
        cleaned = sanitize(params)
        return orjson.dumps(cleaned), cleaned


def sanitize(value: Any, depth: int = 0) -> Any:
    """Replace what orjson cannot encode: lone surrogates, integers beyond 64 bits, deep nesting."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth >= MAX_NESTING:
        return "<nested too deep>"
    if isinstance(value, dict):
        return {sanitize(k, depth + 1): sanitize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v, depth + 1) for v in value]
    return value
