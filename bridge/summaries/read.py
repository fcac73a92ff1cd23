"""The report's Totals from the summaries: the filters applied to each row's setup identity.

Reads the all-time rows (without --since/--until) or each identity's day rows (whole days), never
the events; the cost grows with setups, projects and days, not with events. A window that starts
or ends inside a day (a timestamp) cannot be answered from days: the report scans.
"""

from __future__ import annotations

from typing import Any, Callable

import orjson

from ..report.attribution import Scope, Totals, outside
from ..report.filters import Filters
from ..report.model import SetupKey
from ..report.collect import collect_sessions
from ..report.decode import OrjsonCodec
from ..report.usage import add_spend
from ..report.score import ABANDONED, SLOT_NAMES, USAGE_SESSIONS
from ..store import SEP, SUMMARISED, ReadView, key
from .identity import SubsetView, encode, session_contribution
from .maintain import current
from .rows import DB, all_time_rows, day_rows

def answerable(view: ReadView, filters: Filters) -> bool:
    """Whether the summaries can answer these filters exactly."""
    if not filters.whole_days():
        return False
    # Nothing recorded yet: no summaries either, and none needed.
    return current(view) or not any(view.count(db) for db in SUMMARISED)


def read_totals(view: ReadView, filters: Filters, group: str | None, by_version: bool = True
                ) -> tuple[Scope, Totals, dict[SetupKey, dict[str, int]]]:
    """(the scope that resolved the setups, the totals, the imported commits and grades per setup)."""
    scope = Scope(view, filters, group, by_version, subagents=False)
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
    if window is not None:
        _cut_trees(view, filters, group, totals, resolve, window, by_version)
    _add_spend(view, filters, group, totals, by_version)
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
    for agent, versions in (get("subagentVersions") or {}).items():
        ran = totals.subagent_versions.setdefault(setup, {}).setdefault(agent, {})
        for version, sessions in versions.items():
            ran[version] = ran.get(version, 0) + sessions
    if "imported.commits" in row or "imported.grades" in row:
        found = imported.setdefault(setup, {"commits": 0, "grades": 0})
        found["commits"] += round(get("imported.commits", 0))
        found["grades"] += round(get("imported.grades", 0))


def _add_spend(view: ReadView, filters: Filters, group: str | None, totals: Totals, by_version: bool) -> None:
    """Spend under the model that produced it (report.usage.add_spend: the report's total and
    usageByModel), read from the session records that have usage. It needs the distinct root
    sessions per model, which no sum of rows can give; this reads sessions, never events, so it
    grows with sessions as the rest of the summaries' answer does."""
    scope = Scope(view, filters, group, by_version)
    window = filters.window()
    for raw in view.raw_values("sessions"):
        if b'"usage"' not in raw:
            continue
        record = orjson.loads(raw)
        if not isinstance(record, dict):
            continue
        usage = record.get("usage")
        if not isinstance(usage, dict) or not usage or outside(window, record.get("createdAt") or ""):
            continue
        commits = record.get("commits")
        add_spend(scope, totals, record.get("sessionID"), usage, record.get("projectPath"),
                  commits if commits.__class__ in (int, float) else 0)


_DISTINCT = (ABANDONED, USAGE_SESSIONS)


def _cut_trees(view: ReadView, filters: Filters, group: str | None, totals: Totals,
               resolve: Callable[[Any], SetupKey | None], window: tuple[str, str], by_version: bool) -> None:
    """A session tree whose sessions began on several days, cut by the window: whether its root
    was abandoned and how many usage sessions it counts depend on which of its sessions are inside
    (the report's rule), which day rows cannot say. Those two numbers are taken from its session
    records, read here with the report's own rule (few trees: subagents started after midnight)."""
    low, high = window
    projects: list[bytes] | None = None
    for _, span in view.scan(DB, "X" + SEP):
        first, last = span["first"], span["last"]
        if not (first < low <= last or first < high <= last):
            continue
        tree = view.get(DB, key("T", span["root"])) or {"members": [span["root"]]}
        sessions = encode(record for record in (view.get("sessions", member) for member in tree["members"])
                          if record is not None)
        for (kind, identity, day), row in session_contribution(view, sessions).items():
            setup = resolve(identity) if kind == "a" and low <= day < high else None
            if setup is not None:
                acc = totals.slot(setup, None, None)
                for slot, name in ((ABANDONED, "abandoned"), (USAGE_SESSIONS, "usageSessions")):
                    acc[slot] -= row.get(name, 0)
        if projects is None:
            projects = list(view.raw_values("projects"))
        subset = SubsetView(view, {"sessions": sessions, "projects": projects})
        exact = Totals()
        collect_sessions(subset, Scope(subset, filters, group, by_version), exact, OrjsonCodec(), None, True)
        for setup, numbers in exact.acc.items():
            if any(numbers[slot] for slot in _DISTINCT) or setup in totals.acc:
                acc = totals.slot(setup, None, None)
                for slot in _DISTINCT:
                    acc[slot] += numbers[slot]
