"""Reading OpenCode's JSON leniently: a field of the wrong type reads as absent, never as an error."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

EMPTY: Mapping[str, Any] = {}


def as_dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else EMPTY


def joined(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def as_int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value:
        return int(value)
    return 0


def as_opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return int(value)


def first_int(value: Any, fallback: Any) -> int:
    found = as_opt_int(value)
    return found if found is not None else int(fallback)


def as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)
