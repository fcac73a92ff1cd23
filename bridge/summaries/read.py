"""The report's Totals from the summaries: the filters applied to each row's setup identity.

Reads the all-time rows (without --since/--until) or each identity's day rows (whole days), never
the events; the cost grows with setups, projects and days, not with events. A window that starts
or ends inside a day (a timestamp) cannot be answered from days: the report scans.
"""

from __future__ import annotations

from typing import Any

from ..report.attribution import Scope, Totals
from ..report.filters import Filters
from ..report.model import SetupKey
from ..report.score import SLOT_NAMES
from ..store import ReadView
from .maintain import current
from .rows import all_time_rows, day_rows

def answerable(view: ReadView, filters: Filters) -> bool:
    """Whether the summaries can answer these filters exactly."""
    return current(view) and filters.whole_days()


def read_totals(view: ReadView, filters: Filters, group: str | None
                ) -> tuple[Scope, Totals, dict[SetupKey, dict[str, int]]]:
    """(the scope that resolved the setups, the totals, the imported commits and grades per setup)."""
    scope = Scope(view, filters, group, subagents=False)
    totals = Totals()
    imported: dict[SetupKey, dict[str, int]] = {}
    window = filters.window()
    resolved: dict[Any, SetupKey | None] = {}

    def resolve(identity: Any) -> SetupKey | None:
        if identity not in resolved:
            resolved[identity] = scope.resolve_identity(*identity)
        return resolved[identity]

    counts = {"sessions": 0.0, "subagentSessions": 0.0, "commits": 0.0, "grades": 0.0, "bugs": 0.0}
    unattributed = 0.0
    for kind, identity, whole in all_time_rows(view):
        rows = [whole] if window is None else day_rows(view, kind, identity, window[0], window[1])
        for row in rows:
            if kind == "u":
                unattributed += row.get("n.unattributed", 0)
            elif kind == "m":
                if any(resolve(one) is not None for one in identity):
                    counts["sessions"] += row.get("n.sessions", 0)
                    counts["subagentSessions"] += row.get("n.subagentSessions", 0)
            else:
                setup = resolve(identity)
                if setup is not None:
                    _add(totals, imported, counts, setup, row)
    totals.counts.update({name: round(value) for name, value in counts.items()})
    totals.unattributed_bugs = round(unattributed)
    return scope, totals, imported


def _add(totals: Totals, imported: dict[SetupKey, dict[str, int]], counts: dict[str, float], setup: SetupKey,
         row: dict[str, Any]) -> None:
    acc = totals.slot(setup, None, None)
    for name, value in row.items():
        slot = SLOT_NAMES.get(name)
        if slot is not None:
            acc[slot] += value
    get = row.get
    counts["sessions"] += get("n.sessions", 0)
    counts["subagentSessions"] += get("n.subagentSessions", 0)
    counts["grades"] += get("n.grades", 0)
    counts["commits"] += get("commits", 0)
    counts["bugs"] += get("bugs", 0)
    last = get("lastUsed")
    if last is not None and last > totals.last_used.get(setup, ""):
        totals.last_used[setup] = last
    for agent, numbers in (get("subagents") or {}).items():
        mine = totals.subagents.setdefault(setup, {}).setdefault(agent, [0.0] * len(numbers))
        for index, number in enumerate(numbers):
            mine[index] += number
    if "imported.commits" in row or "imported.grades" in row:
        found = imported.setdefault(setup, {"commits": 0, "grades": 0})
        found["commits"] += round(get("imported.commits", 0))
        found["grades"] += round(get("imported.grades", 0))
