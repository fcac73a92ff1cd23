"""`agent-tracker usage`: spend and work per day, week, month or session, as ccusage shows them.

Each message's usage record (sub-database ``usage``, one per model call) counts at its own time
(``recordedAt``: when OpenCode finished it, or its time in OpenCode's history) under the model
that produced it: a subagent on model A called from a session on B is A's spend here (the
report's setups keep it with B's setup: what that setup cost). Sessions are the root sessions
with a message in the period (a subagent's session is part of its root's); commits, grades and
bugs count at their own time. Periods are days, weeks (from Monday) and months in a time zone
(periods.py).
"""

from __future__ import annotations

from typing import Any, Iterator

import attrs
import orjson

from ..store import ReadView, Store
from ..tracking.setups import model_name
from .filters import ProjectFilter
from .model import ReportError
from .periods import KINDS, TimeZone, parse_stamp, period_of, window

_loads = orjson.loads
# The wire names of the token kinds, as ccusage writes them (cacheWrite is its cacheCreation).
TOKEN_WIRE = (("input", "inputTokens"), ("output", "outputTokens"), ("reasoning", "reasoningTokens"),
              ("cacheWrite", "cacheCreationTokens"), ("cacheRead", "cacheReadTokens"))


@attrs.define
class Spend:
    """What one period (or session, or one model within either) cost and what was done in it."""

    messages: int = 0
    cost: float = 0.0
    tokens: dict[str, int] = attrs.Factory(lambda: {kind: 0 for kind, _ in TOKEN_WIRE})
    sessions: set[str] = attrs.Factory(set)
    commits: int = 0
    grades: int = 0
    bugs: int = 0
    models: dict[str, "Spend"] = attrs.Factory(dict)

    @property
    def total_tokens(self) -> int:
        return sum(self.tokens.values())

    def add_message(self, record: dict[str, Any], root: str) -> None:
        self.messages += 1
        cost = record.get("cost")
        self.cost += cost if cost.__class__ in (int, float) else 0
        tokens = record.get("tokens")
        if isinstance(tokens, dict):
            for kind, _ in TOKEN_WIRE:
                value = tokens.get(kind)
                if value.__class__ in (int, float):
                    self.tokens[kind] += int(value)
        self.sessions.add(root)

    def to_wire(self, breakdown: bool = True) -> dict[str, Any]:
        wire: dict[str, Any] = {wire_name: self.tokens[kind] for kind, wire_name in TOKEN_WIRE}
        wire.update({"totalTokens": self.total_tokens, "totalCost": self.cost, "messages": self.messages,
                     "sessions": len(self.sessions), "commits": self.commits, "grades": self.grades,
                     "bugs": self.bugs, "modelsUsed": sorted(self.models)})
        if breakdown:
            wire["modelBreakdowns"] = [
                {"modelName": name, **{w: part.tokens[k] for k, w in TOKEN_WIRE}, "totalTokens": part.total_tokens,
                 "cost": part.cost, "messages": part.messages, "sessions": len(part.sessions)}
                for name, part in sorted(self.models.items(), key=lambda item: -item[1].cost)]
        return wire


@attrs.define
class SessionInfo:
    title: str | None = None
    project: str | None = None
    agents: set[str] = attrs.Factory(set)
    first: str | None = None
    last: str | None = None


@attrs.define
class UsageView:
    kind: str
    zone: TimeZone
    database: str
    filters: dict[str, Any]
    rows: dict[str, Spend]                 # period name (or root session id) -> its spend
    totals: Spend
    sessions: dict[str, SessionInfo] = attrs.Factory(dict)  # the session view's extra columns

    @property
    def key_name(self) -> str:
        return {"daily": "date", "weekly": "week", "monthly": "month", "session": "sessionId"}[self.kind]

    def to_wire(self) -> dict[str, Any]:
        rows = []
        for name, spend in self.rows.items():
            row = {self.key_name: name, **spend.to_wire()}
            info = self.sessions.get(name)
            if info is not None:
                row.update({"title": info.title, "projectPath": info.project, "agents": sorted(info.agents),
                            "firstActivity": info.first, "lastActivity": info.last})
            rows.append(row)
        list_name = "sessions" if self.kind == "session" else self.kind
        return {"database": self.database, "view": self.kind, "timezone": self.zone.label, "filters": self.filters,
                list_name: rows, "totals": self.totals.to_wire(breakdown=True)}


class _Sessions:
    """The sessions' projects and parents, read once: which root session and project a record is of."""

    def __init__(self, view: ReadView):
        self.records: dict[str, dict[str, Any]] = {}
        for raw in view.raw_values("sessions"):
            try:
                record = _loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("sessionID"), str):
                self.records[record["sessionID"]] = record
        self._roots: dict[str, str] = {}

    def root(self, session_id: str) -> str:
        """The top of the chain of parents (a subagent's session belongs to its root's), cycles cut."""
        found = self._roots.get(session_id)
        if found is None:
            found, seen = session_id, {session_id}
            while True:
                parent = (self.records.get(found) or {}).get("parentID")
                if not isinstance(parent, str) or parent in seen or parent not in self.records:
                    break
                seen.add(parent)
                found = parent
            self._roots[session_id] = found
        return found

    def project(self, session_id: str) -> str | None:
        for candidate in (session_id, self.root(session_id)):
            path = (self.records.get(candidate) or {}).get("projectPath")
            if isinstance(path, str) and path:
                return path
        return None


def _records(view: ReadView, db: str) -> Iterator[dict[str, Any]]:
    for raw in view.raw_values(db):
        try:
            record = _loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            yield record


def build_usage(store: Store, kind: str, *, since: str | None = None, until: str | None = None,
                project: str | None = None, timezone_name: str | None = None) -> UsageView:
    """Spend, tokens, sessions, commits, grades and bugs per ``kind`` (daily, weekly, monthly, session)."""
    if kind not in KINDS:
        raise ReportError(f"usage shows {', '.join(KINDS)}; got {kind!r}.")
    zone = TimeZone.parse(timezone_name)
    bounds = window(since, until, zone)
    wanted = ProjectFilter.parse(project)
    rows: dict[str, Spend] = {}
    totals = Spend()
    infos: dict[str, SessionInfo] = {}

    def inside(stamp: Any) -> bool:
        return isinstance(stamp, str) and (bounds is None or bounds[0] <= stamp < bounds[1])

    def group_of(stamp: str, root: str) -> str | None:
        if kind == "session":
            return root
        moment = parse_stamp(stamp)
        return period_of(moment, kind, zone) if moment is not None else None

    with store.read() as view:
        sessions = _Sessions(view)

        def place(record: dict[str, Any], stamp_field: str) -> tuple[Spend, str] | None:
            """The row a record counts in, or None when the filters leave it out. The session view
            has a row per session with spend; the periods, one per period with anything in it."""
            stamp = record.get(stamp_field)
            if not inside(stamp):
                return None
            session_id = record.get("sessionID")
            root = sessions.root(session_id) if isinstance(session_id, str) else ""
            path = record.get("projectPath") or (sessions.project(session_id) if isinstance(session_id, str) else None)
            if wanted is not None and not (isinstance(path, str) and wanted.matches(path)):
                return None
            if kind == "session" and not root:
                return None
            group = group_of(str(stamp), root)
            if group is None:
                return None
            spend = rows.get(group)
            if spend is None:
                if kind == "session" and stamp_field != "recordedAt":
                    return None
                spend = rows[group] = Spend()
            return spend, root

        for record in _records(view, "usage"):
            found = place(record, "recordedAt")
            if found is None:
                continue
            spend, root = found
            model = model_name(record.get("provider"), record.get("model"))
            for target in (spend, totals):
                target.add_message(record, root)
                part = target.models.get(model)
                if part is None:
                    part = target.models[model] = Spend()
                part.add_message(record, root)
            if kind == "session":
                info = infos.setdefault(root, SessionInfo())
                stamp = str(record.get("recordedAt"))
                info.first = min(info.first or stamp, stamp)
                info.last = max(info.last or stamp, stamp)
                if isinstance(record.get("agentId"), str):
                    info.agents.add(record["agentId"])
        for db, field, wanted_kind in (("commits", "commits", None), ("communication", "grades", None),
                                       ("activities", "bugs", "bug")):
            for record in _records(view, db):
                if wanted_kind is not None and record.get("kind") != wanted_kind:
                    continue
                found = place(record, "createdAt")
                if found is None:
                    continue
                setattr(found[0], field, getattr(found[0], field) + 1)
                setattr(totals, field, getattr(totals, field) + 1)
        for root, info in infos.items():
            record = sessions.records.get(root) or {}
            info.title = record.get("title") if isinstance(record.get("title"), str) else None
            info.project = sessions.project(root)
    if kind == "session":
        ordered = dict(sorted(rows.items(), key=lambda item: (infos[item[0]].last or "", item[0])))
    else:
        ordered = dict(sorted(rows.items()))
    return UsageView(kind, zone, str(store.path),
                     {"since": since, "until": until, "project": wanted.label if wanted else None},
                     ordered, totals, infos)
