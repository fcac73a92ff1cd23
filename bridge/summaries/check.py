"""`agent-tracker doctor --summaries`: every summary recomputed from the events and compared with
the stored one; ``--rebuild`` rewrites them (maintain.rebuild, one transaction)."""

from __future__ import annotations

import math
from typing import Any

import attrs

from ..store import ReadView
from .identity import Contribution, Row, whole_contribution
from .maintain import current
from .rows import add_rows, all_time_rows, stored_rollups

ALL_TIME = "(all time)"

REL_TOLERANCE = 1e-9  # sums of money and shares added up in another order differ in the last bits


@attrs.frozen
class Difference:
    row: str      # e.g. 'a ["build","openai/gpt-5","/srv/shop"] 2026-11-20'
    name: str     # the number that differs (a slot, a count, lastUsed, subagents)
    stored: Any
    recomputed: Any

    def to_wire(self) -> dict[str, Any]:
        return {"row": self.row, "name": self.name, "stored": self.stored, "recomputed": self.recomputed}

    def sentence(self) -> str:
        return (f"{self.row}: {self.name} is {_shown(self.stored)} in the summaries, {_shown(self.recomputed)} "
                f"from the events")


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "absent" if value is None else repr(value)


def differences(view: ReadView) -> list[Difference] | None:
    """What differs between the stored and the recomputed day rows (None: no summaries stored)."""
    if not current(view):
        return None
    recomputed = {row_key: row for row_key, row in whole_contribution(view).items() if _holds_something(row)}
    stored = stored_rollups(view)
    for kind, identity, row in all_time_rows(view):
        stored[(kind, identity, ALL_TIME)] = {name: value for name, value in row.items() if name not in ("id", "kind")}
    all_time: Contribution = {}
    for (kind, identity, _), row in recomputed.items():
        add_rows(all_time, {(kind, identity, ALL_TIME): {name: value for name, value in row.items()
                                                         if name != "lastUsedBy"}})
    return compare(stored, {**recomputed, **all_time})


def _holds_something(row: Row) -> bool:
    return any(name != "lastUsed" for name in row)


def compare(stored: Contribution, recomputed: Contribution) -> list[Difference]:
    found = []
    for row_key in sorted(stored.keys() | recomputed.keys(), key=repr):
        kind, identity, day = row_key
        label = f"{kind} {list(identity)} {day or '(no date)'}"  # list: JSON-like, quotes escaped
        mine, theirs = stored.get(row_key, {}), recomputed.get(row_key, {})
        for name in sorted(mine.keys() | theirs.keys()):
            if not same(mine.get(name), theirs.get(name)):
                found.append(Difference(label, name, mine.get(name), theirs.get(name)))
    return found


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[name], b[name]) for name in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=REL_TOLERANCE)
    return bool(a == b)
