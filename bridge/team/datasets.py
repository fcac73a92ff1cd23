"""Finding and checking the datasets of a team export, and the deduplicated views the report reads.

A PATH is an export folder (``agent-tracker export --format parquet PATH``, several people's
exports may share it) or a remote prefix DuckDB's httpfs reads (``s3://bucket/team``). Every file
is checked before a number is computed: its schema version, its table, every column of the
schema, and no text cell the report reads over schema.MAX_TEXT_BYTES. Any failure is one
TeamDataError naming the file; nothing is read further.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import schema
from .engine import TeamDataError, query

REMOTE = ("s3://", "s3a://", "gs://", "gcs://", "r2://", "http://", "https://", "az://", "abfss://")
# The text columns the team report reads (checked for size; the others it never loads).
READ_TEXT = {
    "sessions": ("person", "session_id", "project_path"),
    "commits": ("person", "project_path", "hash", "credited_agent", "credited_model", "credited_stack"),
    "grades": ("person", "grade_id", "project_path", "commit_hash", "grader", "credited_agent", "credited_model",
               "credited_stack"),
    "bugs": ("person", "bug_id", "credited_agent", "credited_model", "credited_stack"),
    "usage": ("person", "session_id", "root_session_id", "setup", "credited_agent", "credited_model",
              "credited_stack"),
}
REPORT_TABLES = tuple(READ_TEXT)
# What the report reads of each table (read once, into memory: many small files cost most in
# opening them, so each is opened once for its metadata and once for these columns).
_CREDITED = ("credited_agent", "credited_model", "credited_stack")
READ = {
    "sessions": ("database_id", "person", "session_id", "project_path", "is_subagent", "updated_at",
                 "ended_at", "tool_calls", "failed_tool_calls", "xp", "fixed_up_commits", "abandoned",
                 "credited_setups"),
    "commits": ("database_id", "person", "project_path", "hash", "created_at", *_CREDITED),
    "grades": ("database_id", "person", "grade_id", "project_path", "commit_hash", "grader", "grade", "created_at",
               *_CREDITED),
    "bugs": ("database_id", "person", "bug_id", "attributed", "reverted_by", *_CREDITED),
    "usage": ("database_id", "person", "session_id", "root_session_id", "setup", "messages", "cost", "tokens_input",
              "tokens_output", "tokens_reasoning", "tokens_cache_read", "tokens_cache_write", "duration_ms",
              "commits_share", "session_updated_at", *_CREDITED),
}


def is_remote(path: str) -> bool:
    return path.lower().startswith(REMOTE)


def table_files(paths: list[str], table: str) -> list[str]:
    """The table's files (local: listed; remote: a glob DuckDB expands)."""
    found: list[str] = []
    for path in paths:
        if is_remote(path):
            found.append(f"{path.rstrip('/')}/{table}/**/*.parquet")
            continue
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise TeamDataError(f"{path} is not a folder of team exports (agent-tracker export --format parquet DIR).")
        found.extend(str(file) for file in sorted((folder / table).glob("**/*.parquet")))
    return found


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join("'" + file.replace("'", "''") + "'" for file in files) + "]"


def check_files(connection: Any, table: str, files: list[str]) -> None:
    """Every file's version, table and columns, from the footers (two reads of the metadata, no data)."""
    listing = _sql_list(files)
    metadata: dict[str, dict[str, str]] = {}
    for file_name, name, value in query(connection, f"SELECT file_name, key, value FROM parquet_kv_metadata({listing})"):
        metadata.setdefault(str(file_name), {})[_text(name)] = _text(value)
    present: dict[str, set[str]] = {}
    for file_name, name in query(connection, f"SELECT file_name, name FROM parquet_schema({listing})"):
        present.setdefault(str(file_name), set()).add(str(name))
    for file_name, names in sorted(present.items()):
        found = metadata.get(file_name, {})
        version = found.get(schema.VERSION_KEY)
        if version != str(schema.SCHEMA_VERSION):
            raise TeamDataError(
                f"{file_name} has schema version {version or 'none'} (no agent-tracker team export of version "
                f"{schema.SCHEMA_VERSION}); export it again with this agent-tracker, or upgrade to read it.")
        if found.get(schema.TABLE_KEY) != table:
            raise TeamDataError(f"{file_name} holds the table {found.get(schema.TABLE_KEY)!r}, not {table!r}: "
                                f"it is in the wrong folder.")
        missing = [name for name in schema.columns(table) if name not in names]
        if missing:
            raise TeamDataError(f"{file_name} lacks the column{'s' if len(missing) > 1 else ''} "
                                f"{', '.join(missing)} of the {table} table (schema version {schema.SCHEMA_VERSION}).")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def open_views(connection: Any, paths: list[str]) -> dict[str, int]:
    """Check every file and create the raw_<table> views; rows per table (0: no file)."""
    counts: dict[str, int] = {}
    for table in REPORT_TABLES:
        files = table_files(paths, table)
        if files and not any(is_remote(path) for path in paths):
            check_files(connection, table, files)
        elif files:  # a remote glob: checked through DuckDB's listing of it
            check_files(connection, table, [str(row[0]) for row in query(
                connection, f"SELECT file FROM glob({_sql_list(files)})")] or files)
        source = f"read_parquet({_sql_list(files)}, union_by_name = true)" if files else f"({_empty(table)})"
        query(connection, f"CREATE OR REPLACE TEMP TABLE raw_{table} AS SELECT {', '.join(READ[table])} FROM {source}")
        counts[table] = _check_sizes(connection, table, files)
    if not counts["sessions"] and not counts["commits"]:
        raise TeamDataError("No team export found at " + ", ".join(paths) + " (no sessions/ or commits/ dataset "
                            "with .parquet files): export with `agent-tracker export --format parquet DIR`.")
    return counts


def _check_sizes(connection: Any, table: str, files: list[str]) -> int:
    """The table's rows; TeamDataError naming the file when a text cell the report reads is too long."""
    names = list(READ_TEXT[table])
    widest = ", ".join(f"max(strlen({name}))" for name in names)
    if table == "sessions":  # the setups' names, inside the list
        names.append("credited_setups")
        widest += (", max(list_max(list_transform(credited_setups, "
                   "lambda x: greatest(strlen(x.agent), strlen(x.model), strlen(x.stack)))))")
    ids = schema.ROW_IDS[table]
    without_id = " OR ".join(f"{name} IS NULL" for name in ids)
    rows, unnamed, *sizes = query(connection, f"SELECT count(*), count(*) FILTER (WHERE {without_id}), {widest} "
                                              f"FROM raw_{table}")[0]
    if unnamed:
        file_name = query(connection, f"SELECT filename FROM read_parquet({_sql_list(files)}, union_by_name = true, "
                                      f"filename = true) WHERE {without_id} LIMIT 1")[0][0]
        raise TeamDataError(f"{file_name} has rows without {' or '.join(ids)}, the {table} table's stable id: the file "
                            f"was altered or is not an agent-tracker export. Nothing was computed.")
    for name, size in zip(names, sizes):
        if size is not None and size > schema.MAX_TEXT_BYTES:
            length = ("list_max(list_transform(credited_setups, lambda x: greatest(strlen(x.agent), strlen(x.model), "
                      "strlen(x.stack))))" if name == "credited_setups" else f"strlen({name})")
            file_name = query(connection, f"SELECT filename FROM read_parquet({_sql_list(files)}, union_by_name = true, "
                                          f"filename = true) WHERE {length} > ? LIMIT 1", [schema.MAX_TEXT_BYTES])[0][0]
            raise TeamDataError(f"{file_name} has a {name} of {size} bytes in the {table} table, over the "
                                f"{schema.MAX_TEXT_BYTES} bytes any real value takes: the file was altered or is "
                                f"not an agent-tracker export. Nothing was computed.")
    return int(rows)


_SQL_TYPES = {"string": "VARCHAR", "int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN",
              "timestamp": "TIMESTAMPTZ", "list<setup>": "STRUCT(agent VARCHAR, model VARCHAR, stack VARCHAR)[]"}


def _empty(table: str) -> str:
    return "SELECT " + ", ".join(f"CAST(NULL AS {_SQL_TYPES[kind]}) AS {name}" for name, kind, _ in
                                 schema.TABLES[table]) + " WHERE false"


