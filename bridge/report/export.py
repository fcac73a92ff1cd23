"""`agent-tracker export`: every table of the central database, for spreadsheets, DuckDB or pandas.

Tables: agents, projects, sessions, commits, grades (the ``communication`` sub-database),
activities (bugs, reinstatements, session summaries, ...), retrospectives and usage (one row per
assistant message: its cost, tokens and time). Sessions, commits and grades get a derived
``stack`` column (the project's stack, as in the report); session counters that are absent in the
database (= 0) are written as 0; sessions get their usage summed over their setups (``cost``,
``tokens`` and the ``tokens*`` kinds, ``durationMs``, ``messages``; empty when no usage was
recorded), usage rows their tokens by kind. Configuration versions (``configs``) leave the agents'
prompt text out (its SHA-256 and length stay) unless ``include_prompts`` (--include-prompts).

Formats (``--format``, default json):
  json   one object: {"format": "agent-tracker-export", "schemaVersion": 1, "exportedAt", "database",
         "tables": {"agents": [...], ...}}; to stdout or the ``--output`` file.
  jsonl  one record per line with its table first: {"table": "commits", "hash": ..., ...};
         to stdout or the ``--output`` file. (``pd.read_json(f, lines=True)``, DuckDB ``read_json``.)
  csv    with ``--output DIR``: one file per table, DIR/<table>.csv, fixed columns per table plus
         ``extra`` (a JSON object of any other field, e.g. migration details). Without --output:
         one CSV on stdout whose first column is ``table`` and whose header is the union of all
         tables' columns (filter on ``table``).
  CSV: RFC 4180 (CRLF line ends; a cell with a comma, quote, CR or LF quoted). Cells: empty =
  null, true/false, numbers as Python writes them (floats round-trip exactly), lists and objects
  as JSON; text that starts with = + - @ tab or CR gets a leading ' (OWASP's advice against
  formula injection: a spreadsheet shows it as text, never runs it).
"""

from __future__ import annotations

import contextlib
import csv
import sys
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import attrs
import orjson

from ..display import csv_cell
from ..output_files import UnsafeOutput, refuse_database_files, replace_atomically
from ..store import ReadView, Store
from ..timestamps import utc_now
from ..tracking.configs import without_prompts
from ..tracking.usage_totals import TOKEN_KINDS, empty_usage, token_total
from .attribution import outside

# tokens by kind, flat (tracking.usage_totals.TOKEN_KINDS: input, output, reasoning, cacheRead, cacheWrite)
TOKEN_COLUMNS = [f"tokens{kind[:1].upper()}{kind[1:]}" for kind in TOKEN_KINDS]
FORMAT_NAME = "agent-tracker-export"
# RFC 4180's line end: the csv module quotes a cell holding any character of the line end, so a
# CR inside text (a commit message) is quoted too instead of starting a row of its own.
CSV_LINE_END = "\r\n"
EXPORT_VERSION = 1

# table -> (sub-database, columns). "stack" is derived; "extra" (CSV only) holds other fields.
TABLES: dict[str, tuple[str, list[str]]] = {
    "agents": ("agents", ["id", "skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                          "totalBugs", "totalPushes", "halted", "createdAt", "updatedAt"]),
    "projects": ("projects", ["path", "stack", "language", "framework", "sources", "fingerprint",
                              "classifiedAt", "firstSeenAt", "lastSeenAt", "lastCommit", "lastCommitAt",
                              "lastPushedHead", "lastPushAt"]),
    "sessions": ("sessions", ["sessionID", "projectPath", "stack", "agentId", "provider", "model", "setups",
                              "title", "parentID", "createdAt", "updatedAt", "lastIdleAt", "deletedAt", "endedAt",
                              "toolCalls", "failedToolCalls", "commands", "commits", "pushes", "xpEarned",
                              "fixedUpCommits", "lastCommit", "cost", "tokens", *TOKEN_COLUMNS, "durationMs",
                              "messages", "configVersion"]),
    "commits": ("commits", ["hash", "projectPath", "stack", "agentId", "sessionID", "provider", "model",
                            "taskDescription", "createdAt", "source", "parentID", "fixupOf", "fixedUpBy",
                            "revertedBy", "configVersion"]),
    "grades": ("communication", ["createdAt", "agentId", "projectPath", "stack", "commitHash", "grade",
                                 "gradeName", "grader", "reason", "sessionID", "provider", "model",
                                 "configVersion"]),
    "activities": ("activities", ["createdAt", "agentId", "kind", "description", "sessionID", "commitHash",
                                  "projectPath", "reason", "data", "source", "revertedBy"]),
    "retrospectives": ("retrospectives", ["createdAt", "agentId", "sessionID", "author", "commitHash", "summary",
                                          "wentWell", "toImprove", "lessons"]),
    "usage": ("usage", ["sessionID", "messageID", "agentId", "provider", "model", "setup", "cost",
                        *TOKEN_COLUMNS, "durationMs", "recordedAt"]),
    # configuration versions (tracking.configs); the prompt text only with --include-prompts
    "configs": ("configs", ["version", "agentId", "firstSeenAt", "lastSeenAt", "projects", "definition"]),
}
# The time each table's records are filtered by with --since/--until (agents and projects are
# state, not events: always exported whole).
TIMED = {"sessions": "createdAt", "commits": "createdAt", "grades": "createdAt", "activities": "createdAt",
         "retrospectives": "createdAt", "usage": "recordedAt"}
SESSION_COUNTERS = ("toolCalls", "failedToolCalls", "commands", "commits", "pushes", "xpEarned", "fixedUpCommits")
WITH_STACK = {"sessions", "commits", "grades"}


class ExportError(Exception):
    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code  # the command's exit code: 2 for usage, 1 when the file cannot be written


@attrs.define
class ExportSummary:
    format: str
    target: str
    counts: dict[str, int]


def _records(view: ReadView, table: str, stack_of: Any, include_prompts: bool = False) -> Iterator[dict[str, Any]]:
    db, _ = TABLES[table]
    window, stamp = getattr(stack_of, "window", None), TIMED.get(table)
    for raw in view.raw_values(db):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if window is not None and stamp is not None and outside(window, record.get(stamp)):
            continue
        if table == "sessions":
            for name in SESSION_COUNTERS:
                record.setdefault(name, 0)
            _session_usage_columns(record)
        elif table == "configs" and not include_prompts and isinstance(record.get("definition"), dict):
            record["definition"] = without_prompts(record["definition"])  # private: hash and length only
        elif table == "usage":
            tokens = record.get("tokens")
            tokens = tokens if isinstance(tokens, dict) else {}
            for kind, column in zip(TOKEN_KINDS, TOKEN_COLUMNS):
                record[column] = tokens.get(kind, 0)
        if table in WITH_STACK:
            path = record.get("projectPath")
            record["stack"] = stack_of(path if isinstance(path, str) else None)
        yield record


def _session_usage_columns(record: dict[str, Any]) -> None:
    """The session's usage summed over its setups, flat (all null when none was recorded)."""
    usage = record.get("usage")
    entries = [entry for entry in usage.values() if isinstance(entry, dict)] if isinstance(usage, dict) else []
    if not entries:
        record.update(dict.fromkeys(("cost", "tokens", *TOKEN_COLUMNS, "durationMs", "messages")))
        return
    totals = empty_usage()
    for entry in entries:
        for name, value in entry.items():
            if name in totals and isinstance(value, (int, float)) and not isinstance(value, bool):
                totals[name] += value
    record.update({"cost": totals["cost"], "tokens": token_total(totals), "durationMs": totals["durationMs"],
                   "messages": totals["messages"]})
    record.update({column: totals[kind] for kind, column in zip(TOKEN_KINDS, TOKEN_COLUMNS)})


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return csv_cell(value)  # "=HYPERLINK(...)" in a commit message is text, never a formula


def _csv_row(record: dict[str, Any], columns: list[str]) -> list[Any]:
    row = [_cell(record.get(name)) for name in columns]
    extra = {k: v for k, v in record.items() if k not in columns}
    row.append(orjson.dumps(extra).decode() if extra else "")
    return row


class _Stacks:
    """The report's stack of a project path (so both agree), and the --since/--until window."""

    def __init__(self, scope: Any, window: tuple[str, str] | None):
        self.scope, self.window = scope, window

    def __call__(self, path: str | None) -> str:
        return str(self.scope.stack_of(path))


def export_database(store: Store, fmt: str, output: str | None, *,
                    stdout: IO[str] | None = None, since: str | None = None,
                    until: str | None = None, include_prompts: bool = False) -> ExportSummary:
    """``since``/``until``: only the events (sessions, commits, grades, activities,
    retrospectives, usage) of that time, read as the report reads them. ``include_prompts``: the
    configuration versions keep their prompt text (otherwise only its SHA-256 and length)."""
    from .attribution import Scope  # the report's stack resolution, so both agree
    from .filters import Filters

    out = stdout or sys.stdout
    counts = {table: 0 for table in TABLES}
    filters = Filters.parse(since=since, until=until)
    with store.read() as view:
        stack_of = _Stacks(Scope(view, Filters()), filters.window())

        def records(table: str) -> Iterator[dict[str, Any]]:
            return _records(view, table, stack_of, include_prompts)
        if fmt == "csv":
            target = _export_csv(view, records, output, out, counts, store.path)
        elif fmt in ("json", "jsonl"):
            path = _file_target(output, fmt, store.path)
            with _export_file(path) if path else contextlib.nullcontext(out) as handle:
                if fmt == "json":
                    _write_json(view, records, handle, str(store.path), counts)
                else:
                    for table in TABLES:
                        for record in records(table):
                            handle.write(orjson.dumps({"table": table, **record}).decode() + "\n")
                            counts[table] += 1
                if not path:
                    handle.flush()
            target = str(path) if path else "stdout"
        else:
            raise ExportError(f"--format must be json, csv or jsonl; got {fmt!r}.")
    return ExportSummary(fmt, target, counts)


@contextlib.contextmanager
def _export_file(path: Path) -> Iterator[IO[str]]:
    """Written to a temporary file renamed into place: a failed export leaves the old file intact."""
    try:
        with replace_atomically(path) as handle:
            yield handle
    except OSError as exc:
        raise ExportError(f"Cannot write the export to {path}: {exc.strerror or exc}.", 1) from None


def _refuse_database_files(path: Path, database: Path) -> None:
    try:
        refuse_database_files(path, database, what="the export")
    except UnsafeOutput as exc:
        raise ExportError(str(exc)) from None


def _file_target(output: str | None, fmt: str, database: Path) -> Path | None:
    if not output or output == "-":
        return None
    path = Path(output).expanduser()
    if path.is_dir():
        path = path / f"agent-tracker-export.{fmt}"
    _refuse_database_files(path, database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create the folder {path.parent}: {exc.strerror or exc}.") from None
    return path


def _write_json(view: ReadView, records: Callable[[str], Iterator[dict[str, Any]]], handle: IO[str], database: str, counts: dict[str, int]) -> None:
    exported_at = utc_now()
    header = {"format": FORMAT_NAME, "schemaVersion": EXPORT_VERSION, "exportedAt": exported_at,
              "database": database}
    handle.write(orjson.dumps(header).decode()[:-1] + ',"tables":{')
    for index, table in enumerate(TABLES):
        handle.write(("," if index else "") + f'"{table}":[')
        for record in records(table):
            handle.write(("," if counts[table] else "") + "\n" + orjson.dumps(record).decode())
            counts[table] += 1
        handle.write("]")
    handle.write("}}\n")


def _export_csv(view: ReadView, records: Callable[[str], Iterator[dict[str, Any]]], output: str | None, out: IO[str],
                counts: dict[str, int], database: Path) -> str:
    if not output or output == "-":
        union: list[str] = []
        for _, columns in TABLES.values():
            union.extend(name for name in columns if name not in union)
        writer = csv.writer(out, lineterminator=CSV_LINE_END)
        writer.writerow(["table", *union, "extra"])
        for table, (_, columns) in TABLES.items():
            for record in records(table):
                writer.writerow([table, *_csv_row(record, union)])
                counts[table] += 1
        out.flush()
        return "stdout"
    folder = Path(output).expanduser()
    for table in TABLES:  # before anything is created: the folder may be the journal's
        _refuse_database_files(folder / f"{table}.csv", database)
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"--output for csv must be a folder (one file per table); {folder} is a file.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create the folder {folder}: {exc.strerror or exc}.") from None
    for table, (_, columns) in TABLES.items():
        with _export_file(folder / f"{table}.csv") as handle:
            writer = csv.writer(handle, lineterminator=CSV_LINE_END)
            writer.writerow([*columns, "extra"])
            for record in records(table):
                writer.writerow(_csv_row(record, columns))
                counts[table] += 1
    return str(folder)
