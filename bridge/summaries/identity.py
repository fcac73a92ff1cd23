"""What a set of records contributes to the report, by setup identity and day.

The report's own collectors run over a SubsetView (just the given records, lookups in the whole
database) with an IdentityScope, which attributes exactly as the report's Scope does but stops
before the stack and the filters: a setup identity is (agent, provider/model, project path,
configuration version or None; Scope.resolve_identity makes None the version "unknown").
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator

import orjson

from ..report.attribution import Scope, Totals
from ..report.bugs import UNATTRIBUTED, collect_bugs
from ..report.collect import collect_commits, collect_grades, collect_sessions, imported_setup
from ..report.decode import OrjsonCodec
from ..report.filters import Filters
from ..report.score import SLOT_NAMES
from ..store import ReadView

Identity = tuple[Any, ...]
RowKey = tuple[str, Identity, str]  # (kind, identity, day): kind "a" a setup identity, "m" several, "u" unattributed
Row = dict[str, Any]
Contribution = dict[RowKey, Row]

_CODEC = OrjsonCodec()
_dumps = orjson.dumps


def day_of(created: Any) -> str:
    """A record's day: its createdAt cut to YYYY-MM-DD ("" without one). A --since/--until of whole
    days compares the same way on the day as on the whole timestamp (prefix order)."""
    return created[:10] if isinstance(created, str) else ""


class _ListCursor:
    def __init__(self, values: list[bytes]):
        self._values = values

    def iternext(self, keys: bool = True, values: bool = True) -> Iterator[bytes]:
        return iter(self._values)

    def close(self) -> None:
        pass


class SubsetView(ReadView):
    """A ReadView whose scans see only ``records`` (db -> encoded values); lookups by key see the
    whole database (a grade's commit, a bug's session)."""

    def __init__(self, base: ReadView, records: dict[str, list[bytes]]):
        super().__init__(base._txn, base._dbs)  # noqa: SLF001 - the same transaction
        self._records = records
        # The sessions given are the ones to read (the state before a change, when computing that).
        self._sessions: dict[Any, dict[str, Any]] = {}
        for raw in records.get("sessions", ()):
            record = orjson.loads(raw)
            if isinstance(record, dict):
                self._sessions[record.get("sessionID")] = record

    def get(self, db: str, k: str) -> dict[str, Any] | None:
        if db == "sessions" and k in self._sessions:
            return self._sessions[k]
        return super().get(db, k)

    def raw_values(self, db: str) -> Iterator[bytes]:
        return iter(self._records.get(db, ()))

    def cursor(self, db: str) -> Any:
        if db == "commits":  # Scope.prefetch_commits looks commits up by key
            return super().cursor(db)
        return _ListCursor(self._records.get(db, []))


class IdentityScope(Scope):
    """The report's Scope without filters and stacks: a record's setup identity."""

    def __init__(self, view: ReadView):
        super().__init__(view, Filters())
        self.versioned = True  # every record's configVersion is read (whether the database has versions or not)

    def _resolve(self, agent: str, model: str, path: Any, version: Any = None) -> Identity | None:
        return (str(agent), model, path if isinstance(path, str) else None,
                version if isinstance(version, str) and version else None)


def encode(records: Iterable[dict[str, Any]]) -> list[bytes]:
    return [_dumps(record) for record in records]


def session_contribution(view: ReadView, sessions: list[bytes]) -> Contribution:
    """What a session tree's session records contribute (their counters, usage, abandonment)."""
    subset = SubsetView(view, {"sessions": sessions})
    totals = Totals(by_group=True)
    collect_sessions(subset, IdentityScope(subset), totals, _CODEC, day_of, True)
    return _rows(totals)


def record_contribution(view: ReadView, sessions: list[bytes], records: dict[str, list[bytes]]) -> Contribution:
    """What commits, grades and bug activities contribute (``sessions``: their trees' session
    records, so the report's rule for subagents applies)."""
    subset = SubsetView(view, {**records, "sessions": sessions})
    scope = IdentityScope(subset)
    totals = Totals(by_group=True)
    collect_commits(subset, scope, totals, _CODEC, day_of, True)
    collect_grades(subset, scope, totals, _CODEC, day_of, True)
    if records.get("activities"):
        collect_bugs(subset, scope, totals, day_of)
    rows = _rows(totals)
    _add_imported(subset, scope, records, rows)
    return rows


def _add_imported(view: ReadView, scope: Scope, records: dict[str, list[bytes]], rows: Contribution) -> None:
    """The commits and grades imported from the older plugin (as report.collect.collect_imported)."""
    if not view.count("migrations"):  # every import writes a migrations record
        return
    for db, name in (("commits", "imported.commits"), ("communication", "imported.grades")):
        for raw in records.get(db, ()):
            if b'"migratedFrom"' not in raw:
                continue
            record = orjson.loads(raw)
            if not isinstance(record, dict) or "migratedFrom" not in record:
                continue
            setup = imported_setup(scope, db, record)
            if setup is not None:
                row = rows.setdefault(("a", setup, day_of(record.get("createdAt"))), {})
                row[name] = row.get(name, 0) + 1


def _rows(totals: Totals) -> Contribution:
    rows: Contribution = {}

    def row(kind: str, identity: Identity, day: str) -> Row:
        return rows.setdefault((kind, identity, day), {})

    for (identity, day), acc in totals.acc.items():
        found = row("a", identity, day)
        for name, slot in SLOT_NAMES.items():
            if acc[slot]:
                found[name] = acc[slot]
    for (identity, day), stamp in totals.last_used.items():
        row("a", identity, day)["lastUsed"] = stamp
    for (identity, day), latest in (totals.last_used_by or {}).items():
        row("a", identity, day)["lastUsedBy"] = latest
    for (identity, day), work in totals.subagents.items():
        row("a", identity, day)["subagents"] = {agent: list(numbers) for agent, numbers in work.items()}
    for (identity, day), ran in totals.subagent_versions.items():
        row("a", identity, day)["subagentVersions"] = {agent: dict(versions) for agent, versions in ran.items()}
    for group, counts in (totals.by_group or {}).items():
        identity, day = group
        kind = "u" if identity == UNATTRIBUTED else "a"
        found = row(kind, identity, day)
        for name, count in counts.items():
            found["n." + name] = found.get("n." + name, 0) + count
    for (setups, day, child), count in (totals.hits or {}).items():
        name = "n.subagentSessions" if child else "n.sessions"
        found = row("a", setups[0], day) if len(setups) == 1 else row("m", setups, day)
        found[name] = found.get(name, 0) + count
    return rows


@contextmanager
def no_gc() -> Iterator[None]:
    import gc

    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def whole_contribution(view: ReadView) -> Contribution:
    """What every record in the database contributes (a rebuild, doctor --summaries)."""
    scope = IdentityScope(view)
    totals = Totals(by_group=True)
    collect_sessions(view, scope, totals, _CODEC, day_of, True)
    collect_commits(view, scope, totals, _CODEC, day_of, True)
    collect_grades(view, scope, totals, _CODEC, day_of, True)
    collect_bugs(view, scope, totals, day_of)
    rows = _rows(totals)
    imported = {db: [raw for raw in view.raw_values(db) if b'"migratedFrom"' in raw]
                for db in ("commits", "communication")}
    _add_imported(view, scope, imported, rows)
    return rows
