"""The old plugin's records, read from a snapshot and mapped onto our layout (see importer's docstring).

Every entry becomes a row of a known type or an error naming the entry; ``Importer`` writes
the rows whose key is absent. The field mapping is documented in protocol/storage.md.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import Any, Callable

import attrs
import orjson

from ..protocol.grades import GRADE_NAMES
from ..store import WriteView, key
from ..timestamps import iso_utc
from ..tracking.git_commands import hashes_match
from .results import TABLES, SourceResult

UNKNOWN_GRADER = "unknown"  # the plugin did not record who gave a grade


PLUGIN_MIGRATION = "typescript-plugin"  # layout of the plugin's own migration records, as imported



# -- reading the old layouts --------------------------------------------------------------------

# The flat layout's key prefixes (the plugin's first versions stored nothing else).
_FLAT_PREFIXES = {"agent:": "agents", "commit:": "commits", "communication:": "communication"}


_SUBDATABASES = set(TABLES)  # the plugin's sub-databases have our table names



@attrs.frozen
class _Row:
    table: str
    label: str  # where the entry is in the source, for messages: agents['build'], main['agent:build']
    key: str  # its key in the source, without the flat layout's prefix
    value: dict[str, Any]



def read_rows(snapshot: Any, result: SourceResult) -> list[_Row]:
    """The source's entries that have a plugin record type, in import order; the rest are errors."""
    from ..lmdbjs import Symbol

    rows: list[_Row] = []
    for name, entries in snapshot.databases.items():
        for entry in entries:
            if isinstance(entry.key, Symbol) and entry.key.description.startswith("structures:"):
                result.skipped += 1  # msgpackr's shared structures (Symbol.for('structures:<db>')), not a record
                continue
            label = f"{name or 'main'}[{entry.key!r}]"
            if entry.error is not None:
                result.errors.append(f"{label}: {entry.error}")
                continue
            table, source_key, problem = _locate(name, entry.key)
            if table is None:
                result.errors.append(f"{label}: {problem}; not imported")
                continue
            if not isinstance(entry.value, dict):
                result.errors.append(f"{label}: expected a {table} record (an object), got "
                                     f"{type(entry.value).__name__}; not imported")
                continue
            rows.append(_Row(table, label, source_key, entry.value))
    rows.sort(key=lambda row: TABLES.index(row.table))  # stable: source order within a table
    return rows



def _locate(database: str | None, entry_key: Any) -> tuple[str | None, str, str]:
    """(table, key without prefix, "") for a plugin record, else (None, "", why not)."""
    if database is None:
        if isinstance(entry_key, str):
            for prefix, table in _FLAT_PREFIXES.items():
                if entry_key.startswith(prefix):
                    return table, entry_key[len(prefix):], ""
        return None, "", "not a key the TypeScript plugin wrote (agent:, commit:, communication:)"
    if database not in _SUBDATABASES:
        return None, "", f"sub-database {database!r} is not one the TypeScript plugin wrote"
    if not isinstance(entry_key, str):
        return None, "", f"the TypeScript plugin's keys are strings, not {type(entry_key).__name__}"
    return database, entry_key, ""



def agent_models(rows: list[_Row]) -> dict[str, str]:
    """agent id -> the model in the source's agent record (the only model the plugin recorded)."""
    models = {}
    for row in rows:
        if row.table == "agents":
            model = row.value.get("model")
            # createAgentData() wrote "unknown" when OpenCode gave no model: that is no model
            if isinstance(model, str) and model.strip() and model != "unknown":
                models[row.key] = model
    return models



def _plain(value: Any) -> Any:
    """lmdb-js/msgpackr values → JSON-safe values (dates as ISO strings, undefined dropped)."""
    from ..lmdbjs import JsError, JsRegExp, JsTypedArray, Symbol, Undefined

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not Undefined}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value)
    if value is Undefined:
        return None
    if isinstance(value, Symbol):
        return str(value)
    if isinstance(value, (JsError, JsRegExp)):
        return str(value)
    if isinstance(value, JsTypedArray):
        return {"typedArray": value.type, "hex": value.data.hex()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # e.g. InvalidDate



# -- the plugin's records, field by field --------------------------------------------------------

class _NotImported(ValueError):
    """The entry is not a record of the plugin's shape (the message says which field)."""



def _present(value: dict[str, Any], name: str) -> bool:
    from ..lmdbjs import Undefined

    return name in value and value[name] is not Undefined  # `undefined` is how JS leaves a field out



def _required(value: dict[str, Any], name: str, what: str) -> Any:
    if not _present(value, name):
        fields = ", ".join(map(str, value)) or "none"
        raise _NotImported(f"not {what} of the TypeScript plugin: field {name!r} is missing (fields: {fields})")
    return value[name]



def _number(value: dict[str, Any], name: str, what: str) -> int | float:
    found = _required(value, name, what)
    if isinstance(found, bool) or not isinstance(found, (int, float)):
        raise _NotImported(f"field {name!r} is not a number: {found!r}")
    if isinstance(found, float) and not math.isfinite(found):
        raise _NotImported(f"field {name!r} is {found!r}, which JSON cannot hold")
    if isinstance(found, int) and abs(found) >= 2**63:
        raise _NotImported(f"field {name!r} is {found}, beyond a 64-bit integer")
    return found



def _text(value: dict[str, Any], name: str, what: str) -> str:
    """A string that is part of one of our keys: non-empty, no NUL (our key separator)."""
    found = _required(value, name, what)
    if not isinstance(found, str) or not found:
        raise _NotImported(f"field {name!r} is not a non-empty string: {found!r}")
    if "\x00" in found:
        raise _NotImported(f"field {name!r} contains a NUL character")
    return found



def _moment(value: dict[str, Any], name: str, what: str, *, required: bool = True) -> str | None:
    """A Date (msgpack timestamp) as our ISO string; an ISO string (how the plugin stored some
    timestamps) exactly as it is."""
    if not required and not _present(value, name):
        return None
    found = _required(value, name, what)
    if isinstance(found, datetime):
        return iso_utc(found)
    if isinstance(found, str) and found and "\x00" not in found:
        return found
    raise _NotImported(f"field {name!r} is not a date: {found!r}")



def _owner(source_key: str, suffix: str) -> str:
    """The agent id of a ``<agentId>:<suffix>`` key (retrospectives, activities)."""
    tail = ":" + suffix
    if source_key.endswith(tail) and len(source_key) > len(tail):
        return source_key[: -len(tail)]
    # The plugin's own reading of these keys (getAllRetrospectives): up to the first ':'
    head, _, _ = source_key.partition(":")
    return head or source_key



def _key_text(text: str, what: str) -> str:
    if not text or "\x00" in text:
        raise _NotImported(f"{what} {text!r} cannot be a key (empty, or contains NUL)")
    return text



def _stack(language: Any, framework: Any) -> str | None:
    """A ProjectProfile's language/framework as our stack name; None when the plugin did not
    know the language (the report then classifies the folder, if it still exists)."""
    if not isinstance(language, str) or language.strip().lower() in ("", "unknown"):
        return None
    name = language.strip().lower().replace(" ", "")
    if isinstance(framework, str) and framework.strip().lower() not in ("", "unknown", "none"):
        name += "/" + framework.strip().lower().replace(" ", "")
    return name



class Importer:
    """Maps the plugin's records onto our layout, inserting only what is absent."""

    def __init__(self, view: WriteView, result: SourceResult, dry_run: bool, models: dict[str, str]):
        self.view = view
        self.result = result
        self.dry_run = dry_run
        self.source = result.path
        self.models = models
        self.planned: set[tuple[str, str]] = set()  # keys this source wrote (or would, in a dry run)

    def add(self, row: _Row) -> None:
        try:
            record_key, record = _MAPPERS[row.table](self, row)
        except _NotImported as exc:
            self.result.errors.append(f"{row.label}: {exc}; not imported")
            return
        if (row.table, record_key) in self.planned:  # the same record twice in this source
            self.result.already_present += 1
            return
        existing = self._existing(row.table, record_key, record)
        if existing is not None:
            if row.table == "agents" and _without_provenance(existing) != _without_provenance(record):
                self.result.skipped_agents.append(_agent_totals(row, record))
            else:
                self.result.already_present += 1
            return
        if not self.dry_run:
            try:
                self.view.insert(row.table, record_key, record)
            except (TypeError, ValueError) as exc:  # e.g. a lone surrogate JSON cannot encode
                self.result.errors.append(f"{row.label}: cannot be stored ({exc}); not imported")
                return
        self.planned.add((row.table, record_key))
        self.result.imported[row.table] += 1

    def _existing(self, table: str, record_key: str, record: dict[str, Any]) -> dict[str, Any] | None:
        found = self.view.get(table, record_key)
        if found is None and table == "commits":
            # A bridge may have recorded the same commit under its short hash (or the full one).
            project, commit_hash = record["projectPath"], record["hash"]
            for _, stored in self.view.scan("commits", key(project, commit_hash[:4].lower())):
                if isinstance(stored.get("hash"), str) and hashes_match(stored["hash"], commit_hash):
                    return stored
        return found

    def _provenance(self, value: dict[str, Any], mapped: set[str]) -> dict[str, Any]:
        from ..lmdbjs import Undefined

        legacy = {str(k): _plain(v) for k, v in value.items() if k not in mapped and v is not Undefined}
        return {"migratedFrom": self.source, **({"legacy": legacy} if legacy else {})}

    # AgentData: id, name, model, scope, skill_points, experience_points, communication_score,
    # total_commits, total_bugs, active, created_at, updated_at
    def _agent(self, row: _Row) -> tuple[str, dict[str, Any]]:
        v, what = row.value, "an AgentData record"
        agent_id = _key_text(row.key, "agent id")
        sp = _number(v, "skill_points", what)
        record = {
            "id": agent_id, "skillPoints": sp,
            "experiencePoints": _number(v, "experience_points", what),
            "communicationScore": _number(v, "communication_score", what),
            "totalCommits": _number(v, "total_commits", what), "totalBugs": _number(v, "total_bugs", what),
            "totalPushes": 0,  # the plugin did not count pushes
            "halted": sp <= 0,  # as its status said (halted: skill_points <= 0)
            "createdAt": _moment(v, "created_at", what, required=False),
            "updatedAt": _moment(v, "updated_at", what, required=False),
        }
        mapped = {"skill_points", "experience_points", "communication_score", "total_commits", "total_bugs",
                  "created_at", "updated_at"}
        if v.get("id") == agent_id:
            mapped.add("id")  # a different id in the value stays in legacy: the key is how it was found
        return agent_id, {**record, **self._provenance(v, mapped)}

    # CommitData: agent_id, commit_hash, project_path, task_description, experience_gained,
    # communication_score_change, timestamp
    def _commit(self, row: _Row) -> tuple[str, dict[str, Any]]:
        v, what = row.value, "a CommitData record"
        project, commit_hash = _text(v, "project_path", what), _text(v, "commit_hash", what)
        agent_id = _text(v, "agent_id", what)
        record: dict[str, Any] = {"hash": commit_hash, "projectPath": project, "agentId": agent_id}
        if agent_id in self.models:
            record["model"] = self.models[agent_id]
        mapped = {"commit_hash", "project_path", "agent_id", "timestamp"}
        if _present(v, "task_description"):
            record["taskDescription"] = _plain(v["task_description"])
            mapped.add("task_description")
        record.update({"createdAt": _moment(v, "timestamp", what), "source": "migration"})
        return key(project, commit_hash.lower()), {**record, **self._provenance(v, mapped)}

    # CommunicationScoreEvent: agent_id, commit_hash, project_path, grade, timestamp, reason?
    def _grade(self, row: _Row) -> tuple[str, dict[str, Any]]:
        v, what = row.value, "a CommunicationScoreEvent record"
        agent_id, project = _text(v, "agent_id", what), _text(v, "project_path", what)
        commit_hash = _text(v, "commit_hash", what)
        grade = _required(v, "grade", what)
        if isinstance(grade, bool) or not isinstance(grade, int) or grade not in GRADE_NAMES:
            raise _NotImported(f"grade {grade!r} is not one of -1, 1, 2, 5")
        created = _moment(v, "timestamp", what)
        record: dict[str, Any] = {"agentId": agent_id, "projectPath": project, "commitHash": commit_hash,
                                  "grade": grade, "gradeName": GRADE_NAMES[grade], "grader": UNKNOWN_GRADER}
        mapped = {"agent_id", "project_path", "commit_hash", "grade", "timestamp"}
        if _present(v, "reason"):
            record["reason"] = _plain(v["reason"])
            mapped.add("reason")
        if agent_id in self.models:
            record["model"] = self.models[agent_id]
        record.update({"createdAt": created, "source": "migration"})
        # Keyed by the whole stored event: the same event stored twice is one grade.
        content = orjson.dumps(_plain(v), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
        event_id = "m:" + hashlib.sha256(content).hexdigest()[:16]
        record_key = key(project, commit_hash.lower(), UNKNOWN_GRADER, created or "", event_id)
        return record_key, {**record, **self._provenance(v, mapped)}

    # RetrospectiveEntry (key <agentId>:<commitHash>): commit, timestamp, task, agent_grade,
    # user_grade, score_before, score_after, agent_note, user_note
    def _retrospective(self, row: _Row) -> tuple[str, dict[str, Any]]:
        v, what = row.value, "a RetrospectiveEntry record"
        commit_hash = _text(v, "commit", what)
        created = _moment(v, "timestamp", what)
        agent_id = _key_text(_owner(row.key, commit_hash), "agent id")
        record = {"agentId": agent_id, "commitHash": commit_hash, "createdAt": created}
        return key(agent_id, created or "", "m:" + commit_hash), {
            **record, **self._provenance(v, {"commit", "timestamp"})}

    # ActivityEntry (key <agentId>:<timestamp>): timestamp, task, actions, outcome, decisions
    def _activity(self, row: _Row) -> tuple[str, dict[str, Any]]:
        v, what = row.value, "an ActivityEntry record"
        created = _moment(v, "timestamp", what)
        agent_id = _key_text(_owner(row.key, created or ""), "agent id")
        record = {"agentId": agent_id, "kind": "activity", "createdAt": created}
        return key(agent_id, created or "", "m:activity"), {**record, **self._provenance(v, {"timestamp"})}

    # ProjectProfile: path, language, framework, scope, dependencies, manifestType, classifiedAt,
    # agentsmdHash
    def _project(self, row: _Row) -> tuple[str, dict[str, Any]]:
        v, what = row.value, "a ProjectProfile record"
        path = _text(v, "path", what)
        record: dict[str, Any] = {"path": path}
        stack = _stack(v.get("language"), v.get("framework"))
        if stack:
            record["stack"] = stack
        mapped = {"path"}
        for name in ("language", "framework", "classifiedAt"):
            if _present(v, name):
                record[name] = _plain(v[name])
                mapped.add(name)
        return path, {**record, **self._provenance(v, mapped)}

    # MigrationRecord (the plugin's own migrations): sourcePath, version, timestamp, entriesMigrated
    def _old_migration(self, row: _Row) -> tuple[str, dict[str, Any]]:
        v, what = row.value, "a MigrationRecord record"
        source = _text(v, "sourcePath", what)
        record: dict[str, Any] = {"sourcePath": source, "layout": PLUGIN_MIGRATION}
        mapped = {"sourcePath", "timestamp"}
        if _present(v, "version"):
            record["version"] = _plain(v["version"])
            mapped.add("version")
        record["finishedAt"] = _moment(v, "timestamp", what, required=False)
        return key(source, PLUGIN_MIGRATION), {**record, **self._provenance(v, mapped)}


_MAPPERS: dict[str, Callable[[Importer, _Row], tuple[str, dict[str, Any]]]] = {
    "agents": Importer._agent, "commits": Importer._commit, "communication": Importer._grade,
    "retrospectives": Importer._retrospective, "activities": Importer._activity,
    "projects": Importer._project, "migrations": Importer._old_migration,
}



def _without_provenance(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "migratedFrom"}



def _agent_totals(row: _Row, record: dict[str, Any]) -> dict[str, Any]:
    """A skipped source agent, as the summary lists it."""
    return {"agentId": record["id"], "entry": row.label,
            **{name: record[name] for name in ("skillPoints", "experiencePoints", "communicationScore",
                                               "totalCommits", "totalBugs", "halted")}}
