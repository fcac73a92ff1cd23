"""Reading an export for `import-export`: a Parquet folder (checked file by file) or the JSONL export.

Everything is read and checked before anything is written: a file with another schema version, a
missing column, a text cell over schema.MAX_TEXT_BYTES or a line that is not JSON refuses the whole
import with one sentence naming the file. The result is the store's own record shapes
(protocol/storage.md), each with ``importedFrom`` (the origin database and person).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

import attrs
import orjson

from ..report.export import FORMAT_NAME
from ..timestamps import iso_utc
from ..tracking.usage_totals import TOKEN_KINDS
from . import schema
from .extra import require
from .facts import KEY_SEP, pseudonym, snake

IMPORTED_TABLES = ("sessions", "commits", "grades", "bugs", "usage")
MAX_LINE_BYTES = 4 * schema.MAX_TEXT_BYTES


class ImportRefused(Exception):
    """The export cannot be imported; nothing was written."""


@attrs.define
class Export:
    """What an export holds, as store records: sessions, commits, grades, bugs, projects (path -> stack)."""

    source: str
    sessions: list[dict[str, Any]] = attrs.Factory(list)
    commits: list[dict[str, Any]] = attrs.Factory(list)
    grades: list[tuple[str | None, dict[str, Any]]] = attrs.Factory(list)  # (event id, record)
    bugs: list[tuple[str | None, dict[str, Any]]] = attrs.Factory(list)    # (stored key, record)
    projects: dict[str, str] = attrs.Factory(dict)


def read_export(path: Path, *, person: str | None = None) -> Export:
    """The export at ``path``; ``person``: only that person's rows (Parquet)."""
    if path.is_dir():
        return _read_parquet(path, person)
    if path.is_file():
        return _read_jsonl(path)
    raise ImportRefused(f"No export at {path}: give a Parquet export folder or an `export --format jsonl` file.")


# -- Parquet --------------------------------------------------------------------------------------------

def _read_parquet(folder: Path, person: str | None) -> Export:
    pq = require("pyarrow.parquet")
    tables: dict[str, list[dict[str, Any]]] = {}
    for table in IMPORTED_TABLES:
        rows: list[dict[str, Any]] = []
        for file in sorted((folder / table).glob("**/*.parquet")):
            try:
                parquet = pq.ParquetFile(file)
                check_parquet(file, table, parquet.schema_arrow)
                data = parquet.read()
            except ImportRefused:
                raise
            except Exception as exc:  # pyarrow's errors: not a Parquet file, truncated, ...
                raise ImportRefused(f"{file} is not a readable Parquet file ({exc}); nothing was imported.") from None
            check_sizes(file, data)
            for name in schema.ROW_IDS[table]:
                if data.column(name).null_count:
                    raise ImportRefused(f"{file} has rows without {name}, the {table} table's stable id; nothing was "
                                        f"imported.")
            rows.extend(row for row in data.to_pylist() if person is None or row["person"] == person)
        tables[table] = rows
    if not tables["sessions"] and not tables["commits"] and person is None:
        raise ImportRefused(f"{folder} holds no team export (no sessions/ or commits/ .parquet files).")
    export = Export(str(folder))
    usage: dict[str, dict[str, dict[str, Any]]] = {}
    for row in tables["usage"]:
        entry = {"messages": row["messages"], "cost": row["cost"], "durationMs": row["duration_ms"],
                 **{kind: row["tokens_" + snake(kind)] for kind in TOKEN_KINDS}}
        usage.setdefault(row["session_id"], {})[row["setup"]] = entry
    for row in tables["sessions"]:
        export.sessions.append(_session(row, usage.get(row["session_id"])))
        if row["project_path"] and row["stack"] and row["stack"] != "unknown":
            export.projects.setdefault(row["project_path"], row["stack"])
    for row in tables["commits"]:
        export.commits.append(_drop_none({
            "hash": row["hash"], "projectPath": row["project_path"], "agentId": row["agent"],
            "sessionID": row["session_id"], "model": row["model"], "provider": row["provider"],
            "taskDescription": row["task_description"], "createdAt": _iso(row["created_at"]),
            "source": row["source"], "parentID": row["parent_session_id"], "fixupOf": row["fixup_of"],
            "fixedUpBy": row["fixed_up_by"], "revertedBy": row["reverted_by"], "importedFrom": _origin(row)}))
    for row in tables["grades"]:
        export.grades.append((row["grade_id"].split(KEY_SEP)[-1] or None, _drop_none({
            "agentId": row["agent"], "projectPath": row["project_path"], "commitHash": row["commit_hash"],
            "grade": row["grade"], "grader": row["grader"], "reason": row["reason"], "sessionID": row["session_id"],
            "model": row["model"], "provider": row["provider"], "createdAt": _iso(row["created_at"]),
            "importedFrom": _origin(row)})))
    for row in tables["bugs"]:
        export.bugs.append((row["bug_id"].replace(KEY_SEP, "\x00"), _drop_none({
            "agentId": row["agent"], "kind": "bug", "createdAt": _iso(row["created_at"]),
            "description": row["description"], "sessionID": row["session_id"], "commitHash": row["commit_hash"],
            "projectPath": row["project_path"], "source": row["source"], "revertedBy": row["reverted_by"],
            "importedFrom": _origin(row)})))
    return export


def check_parquet(file: Path, table: str, arrow_schema: Any) -> None:
    metadata = {key.decode("utf-8", "replace"): value.decode("utf-8", "replace")
                for key, value in (arrow_schema.metadata or {}).items()}
    version = metadata.get(schema.VERSION_KEY)
    if version != str(schema.SCHEMA_VERSION):
        raise ImportRefused(f"{file} has schema version {version or 'none'}, not {schema.SCHEMA_VERSION}: it is not "
                            f"an export this agent-tracker reads; nothing was imported.")
    if metadata.get(schema.TABLE_KEY) != table:
        raise ImportRefused(f"{file} holds the table {metadata.get(schema.TABLE_KEY)!r}, not {table!r}; "
                            f"nothing was imported.")
    missing = [name for name in schema.columns(table) if name not in arrow_schema.names]
    if missing:
        raise ImportRefused(f"{file} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} of the "
                            f"{table} table; nothing was imported.")
    for field in schema.arrow_schema(table, {}):
        found = arrow_schema.field(field.name).type
        if found != field.type:
            raise ImportRefused(f"{file} has the column {field.name} as {found}, not {field.type} (schema version "
                                f"{schema.SCHEMA_VERSION}); nothing was imported.")


def check_sizes(file: Path, data: Any) -> None:
    pa, pc = require("pyarrow"), require("pyarrow.compute")
    for name in data.column_names:
        column = data.column(name)
        if pa.types.is_list(column.type):
            column = pc.list_flatten(column)
            for child in range(column.type.num_fields) if pa.types.is_struct(column.type) else ():
                _check_text(file, name, pc.struct_field(column, [child]))
        else:
            _check_text(file, name, column)


def _check_text(file: Path, name: str, column: Any) -> None:
    pa, pc = require("pyarrow"), require("pyarrow.compute")
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)) or len(column) == 0:
        return
    widest = pc.max(pc.binary_length(column)).as_py()
    if widest is not None and widest > schema.MAX_TEXT_BYTES:
        raise ImportRefused(f"{file} has a {name} of {widest} bytes, over the {schema.MAX_TEXT_BYTES} any real value "
                            f"takes: the file was altered or is not an agent-tracker export; nothing was imported.")


def _session(row: dict[str, Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    setups = [f"{s['agent']}|{s['model']}" for s in row["credited_setups"] or []]
    record = {"sessionID": row["session_id"], "projectPath": row["project_path"], "agentId": row["agent"],
              "model": row["model"], "provider": row["provider"], "title": row["title"],
              "parentID": row["parent_session_id"], "createdAt": _iso(row["created_at"]),
              "updatedAt": _iso(row["updated_at"]), "endedAt": _iso(row["ended_at"]),
              "toolCalls": row["tool_calls"], "failedToolCalls": row["failed_tool_calls"], "commands": row["commands"],
              "commits": row["commits"], "pushes": row["pushes"], "xpEarned": row["xp"],
              "fixedUpCommits": row["fixed_up_commits"], "usage": usage, "importedFrom": _origin(row)}
    if len(setups) > 1 and not row["is_subagent"]:
        record["setups"] = setups
    return _drop_none(record)


def _origin(row: dict[str, Any]) -> dict[str, str]:
    return {"databaseId": str(row["origin_database_id"]), "person": str(row["person"])}


# -- JSONL (agent-tracker export --format jsonl) ------------------------------------------------------------

def _read_jsonl(file: Path) -> Export:
    export = Export(str(file))
    origin = {"databaseId": "jsonl:" + hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:24]}
    origin["person"] = pseudonym(origin["databaseId"])
    stacks: dict[str, str] = {}
    for number, record in _lines(file):
        table = record.pop("table", None)
        if table == "projects" and isinstance(record.get("path"), str) and record.get("stack"):
            stacks[record["path"]] = str(record["stack"])
        elif table == "sessions" and isinstance(record.get("sessionID"), str):
            record = {k: v for k, v in record.items() if k not in _DERIVED_SESSION}
            export.sessions.append({**record, "importedFrom": record.get("importedFrom") or origin})
        elif table == "commits" and isinstance(record.get("hash"), str) and isinstance(record.get("projectPath"), str):
            record.pop("stack", None)
            export.commits.append({**record, "importedFrom": record.get("importedFrom") or origin})
        elif table == "grades" and isinstance(record.get("commitHash"), str):
            record.pop("stack", None)
            export.grades.append((None, {**record, "importedFrom": record.get("importedFrom") or origin}))
        elif table == "activities" and record.get("kind") == "bug":
            export.bugs.append((None, {**record, "importedFrom": record.get("importedFrom") or origin}))
    for record in export.sessions:
        path = record.get("projectPath")
        if isinstance(path, str) and path in stacks:
            export.projects[path] = stacks[path]
    if not export.sessions and not export.commits:
        raise ImportRefused(f"{file} holds no sessions or commits of an `agent-tracker export --format jsonl`.")
    return export


_DERIVED_SESSION = {"stack", "cost", "tokens", "tokensInput", "tokensOutput", "tokensReasoning", "tokensCacheRead",
                    "tokensCacheWrite", "durationMs", "messages"}


def _lines(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        handle = open(file, "rb")
    except OSError as exc:
        raise ImportRefused(f"Cannot read {file}: {exc.strerror or exc}.") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if len(line) > MAX_LINE_BYTES:
                raise ImportRefused(f"{file} line {number} is {len(line)} bytes long, over {MAX_LINE_BYTES}: not an "
                                    f"agent-tracker export; nothing was imported.")
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                if number == 1 and line.lstrip().startswith(b"{") and FORMAT_NAME.encode() in line:
                    raise ImportRefused(f"{file} is the json export; import-export reads `export --format jsonl` "
                                        f"or a Parquet folder.") from None
                raise ImportRefused(f"{file} line {number} is not JSON: not an `export --format jsonl` file; "
                                    f"nothing was imported.") from None
            if not isinstance(record, dict) or not isinstance(record.get("table"), str):
                raise ImportRefused(f"{file} line {number} has no table: not an `export --format jsonl` file; "
                                    f"nothing was imported.")
            yield number, record


def _iso(moment: Any) -> str | None:
    return iso_utc(moment) if moment is not None and hasattr(moment, "astimezone") else moment


def _drop_none(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None}

