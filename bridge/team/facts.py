"""One database read into the export's rows (schema.TABLES), each credited to its setup by the report's rules.

The attribution (a subagent's work for its root session's setup, a grade's model from its commit,
a bug's setup from its commit or session, a switched session's several setups) is the report's
own (bridge.report.attribution and the collectors), applied here once per row, so a reader of the
Parquet files only sums: the team report's SQL has no attribution rule of its own.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

import orjson

from ..report.attribution import Scope
from ..report.bugs import _bug_setup
from ..report.collect import grade_setup
from ..report.filters import Filters
from ..report.model import SetupKey
from ..store import SEP, ReadView
from ..tracking.usage_totals import TOKEN_KINDS

KEY_SEP = "\x1f"  # stored keys join parts with NUL, which DuckDB's strings cannot hold: U+001F instead
PROMPT_FIELDS = ("prompt", "system", "instructions")
_COUNTERS = ("toolCalls", "failedToolCalls", "commands", "commits", "pushes", "fixedUpCommits")


def stable_id(stored_key: str) -> str:
    return stored_key.replace(SEP, KEY_SEP)


def stored_key(row_id: str) -> str:
    return row_id.replace(KEY_SEP, SEP)


def pseudonym(database_id: str) -> str:
    """The default person: stable for a database, and says nothing about who runs it."""
    return "person-" + hashlib.sha256(database_id.encode()).hexdigest()[:8]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _credited(setup: SetupKey | None) -> dict[str, str | None]:
    agent, model, stack = setup[:3] if setup is not None else (None, None, None)
    return {"credited_agent": agent, "credited_model": model, "credited_stack": stack}


class Facts:
    """The rows of one database (one read transaction), with their origin columns."""

    def __init__(self, view: ReadView, *, database_id: str, person: str, since: str | None,
                 include_prompts: bool):
        self.view = view
        self.scope = Scope(view, Filters(), by_version=False)  # the team's setups merge versions
        self.database_id = database_id
        self.person = person
        self.since = since
        self.include_prompts = include_prompts

    def _origin(self, record: dict[str, Any]) -> dict[str, Any]:
        imported = record.get("importedFrom")
        if isinstance(imported, dict) and isinstance(imported.get("databaseId"), str):
            return {"database_id": self.database_id, "origin_database_id": imported["databaseId"],
                    "person": str(imported.get("person") or pseudonym(imported["databaseId"]))}
        return {"database_id": self.database_id, "origin_database_id": self.database_id, "person": self.person}

    def _new(self, stamp: Any) -> bool:
        return self.since is None or (isinstance(stamp, str) and stamp >= self.since)

    def _records(self, db: str) -> Iterator[tuple[str, dict[str, Any]]]:
        # (``configs`` reads as empty where this store does not know it.)
        for stored, record in self.view.scan(db):
            if isinstance(record, dict):
                yield stored, record

    # -- sessions and their usage ---------------------------------------------------------------

    def sessions_and_usage(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """("sessions", row) and ("usage", row) pairs, a session's usage rows right after it."""
        scope = self.scope
        records = [record for _, record in self._records("sessions") if isinstance(record.get("sessionID"), str)]
        child_commits: dict[str, int] = {}
        for record in records:
            if scope.is_child(record["sessionID"]):
                root = scope.root_session(record["sessionID"])
                child_commits[root] = child_commits.get(root, 0) + _int(record.get("commits"))
        for record in records:
            get = record.get
            if not self._new(get("updatedAt") or get("createdAt")):
                continue
            sid = record["sessionID"]
            child = scope.is_child(sid)
            root_id = scope.root_session(sid) if child else sid
            root_record = (scope.session(root_id) or {}) if child else record
            setups = [setup for setup in scope.session_setups(root_record) if setup is not None]
            ended = get("endedAt") or get("deletedAt")
            commits = _int(get("commits"))
            row = {**self._origin(record), "session_id": sid, "parent_session_id": _text(get("parentID")),
                   "root_session_id": root_id, "is_subagent": child, "project_path": _text(get("projectPath")),
                   "stack": scope.stack_of(_text(get("projectPath"))), "agent": _text(get("agentId")),
                   "provider": _text(get("provider")), "model": _text(get("model")),
                   "title": _text(get("title")) if self.include_prompts else None,
                   "created_at": get("createdAt"), "updated_at": get("updatedAt") or get("createdAt"),
                   "ended_at": ended, "xp": _number(get("xpEarned")),
                   "abandoned": bool(not child and ended and not commits and not child_commits.get(sid)),
                   "credited_setups": [{"agent": a, "model": m, "stack": s} for a, m, s, *_ in setups]}
            for name, column in _COUNTER_COLUMNS:
                row[column] = _int(get(name))
            usage: list[dict[str, Any]] = []
            row.update(self._usage_rows(record, row, child, usage))
            yield "sessions", row
            for entry in usage:
                yield "usage", entry

    def _usage_rows(self, record: dict[str, Any], session: dict[str, Any], child: bool,
                    rows: list[dict[str, Any]]) -> dict[str, Any]:
        """The session's usage entries as rows (credited as report.usage.add_usage does); its totals."""
        entries = record.get("usage")
        totals: dict[str, Any] = {"cost": None, "tokens": None, "duration_ms": None, "messages": None}
        if not isinstance(entries, dict) or not entries:
            return totals
        scope, sid, path = self.scope, session["session_id"], session["project_path"]
        made = session["commits"]
        totals = {"cost": 0.0, "tokens": 0, "duration_ms": 0.0, "messages": 0}
        for index, (name, entry) in enumerate(entries.items()):
            if not isinstance(entry, dict):
                continue
            if child:
                setup = scope.credited_setup(None, None, None, path, sid)
                share = made if index == 0 else 0.0
            else:
                setup = scope.named_setup(name, path)
                share = made / len(entries)
            tokens = {kind: _int(entry.get(kind)) for kind in TOKEN_KINDS}
            rows.append({**self._origin(record), **_credited(setup), "session_id": sid,
                         "root_session_id": session["root_session_id"], "setup": str(name),
                         "messages": _int(entry.get("messages")), "cost": _number(entry.get("cost")),
                         **{column: tokens[kind] for kind, column in _TOKEN_COLUMNS},
                         "duration_ms": 0.0 if child else _number(entry.get("durationMs")),
                         "commits_share": float(share), "session_updated_at": session["updated_at"],
                         "created_at": session["created_at"]})
            totals["cost"] += _number(entry.get("cost"))
            totals["tokens"] += sum(tokens.values())
            totals["duration_ms"] += _number(entry.get("durationMs"))
            totals["messages"] += _int(entry.get("messages"))
        return totals

    # -- commits, grades, bugs, configuration versions ---------------------------------------------

    def commits(self) -> Iterator[dict[str, Any]]:
        for _, record in self._records("commits"):
            get = record.get
            if not self._new(get("createdAt")) or not isinstance(get("hash"), str):
                continue
            setup = self.scope.credited_setup(get("agentId"), get("provider"), get("model"), get("projectPath"),
                                              get("sessionID"))
            yield ({**self._origin(record), **_credited(setup), "project_path": _text(get("projectPath")),
                         "hash": get("hash"), "session_id": _text(get("sessionID")),
                         "parent_session_id": _text(get("parentID")), "agent": _text(get("agentId")),
                         "provider": _text(get("provider")), "model": _text(get("model")),
                         "task_description": _text(get("taskDescription")) if self.include_prompts else None,
                         "created_at": get("createdAt"), "source": _text(get("source")),
                         "fixup_of": _text(get("fixupOf")), "fixed_up_by": _text(get("fixedUpBy")),
                         "reverted_by": _text(get("revertedBy"))})

    def grades(self) -> Iterator[dict[str, Any]]:
        for stored, record in self._records("communication"):
            get = record.get
            grade = get("grade")
            if not self._new(get("createdAt")) or isinstance(grade, bool) or grade not in (-1, 1, 2, 5):
                continue
            yield ({**self._origin(record), **_credited(grade_setup(self.scope, record)),
                         "grade_id": stable_id(stored), "project_path": _text(get("projectPath")),
                         "commit_hash": _text(get("commitHash")), "grader": _text(get("grader")),
                         "grade": int(grade), "reason": _text(get("reason")), "session_id": _text(get("sessionID")),
                         "agent": _text(get("agentId")), "provider": _text(get("provider")),
                         "model": _text(get("model")), "created_at": get("createdAt")})

    def bugs(self) -> Iterator[dict[str, Any]]:
        for stored, record in self._records("activities"):
            get = record.get
            if get("kind") != "bug" or not self._new(get("createdAt")):
                continue
            setup, attributed = _bug_setup(self.scope, record)
            yield ({**self._origin(record), **_credited(setup if attributed else None),
                         "bug_id": stable_id(stored), "agent": _text(get("agentId")),
                         "session_id": _text(get("sessionID")), "project_path": _text(get("projectPath")),
                         "commit_hash": _text(get("commitHash")), "description": _text(get("description")),
                         "source": _text(get("source")), "reverted_by": _text(get("revertedBy")),
                         "attributed": attributed, "created_at": get("createdAt")})

    def configs(self) -> Iterator[dict[str, Any]]:
        """The ``configs`` sub-database's versions (where a newer agent-tracker keeps them), if present."""
        for stored, record in self._records("configs"):
            created = record.get("createdAt") or record.get("firstSeenAt")
            if not self._new(record.get("lastSeenAt") or created):
                continue
            data = record if self.include_prompts else without_prompts(record)
            yield ({**self._origin(record), "config_id": stable_id(stored), "created_at": created,
                         "data": orjson.dumps(data).decode()})


def without_prompts(value: Any) -> Any:
    """``value`` with every prompt-like text replaced by its SHA-256 and length (the change stays visible)."""
    if isinstance(value, list):
        return [without_prompts(item) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, str) and any(word in name.lower() for word in PROMPT_FIELDS):
            kept[name + "Sha256"] = hashlib.sha256(item.encode("utf-8", "surrogatepass")).hexdigest()
            kept[name + "Length"] = len(item)
        else:
            kept[name] = without_prompts(item)
    return kept


def snake(name: str) -> str:
    """camelCase (the store's fields) as snake_case (the Parquet columns)."""
    return "".join("_" + char.lower() if char.isupper() else char for char in name)


_COUNTER_COLUMNS = [(name, snake(name)) for name in _COUNTERS]
_TOKEN_COLUMNS = [(kind, "tokens_" + snake(kind)) for kind in TOKEN_KINDS]
