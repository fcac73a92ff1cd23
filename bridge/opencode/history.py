"""Read OpenCode's own history database (``opencode.db``) read-only, one session at a time.

OpenCode (verified with 1.18.33, see docs/opencode-history.md) keeps every session in SQLite:
tables ``session`` (one row per session, with the running totals ``cost`` and ``tokens_*``),
``message`` (``data``: the message's JSON without its id and session id) and ``part``
(``data``: the part's JSON without its ids). This module finds that file, opens it with a
``mode=ro`` URI (safe while OpenCode runs: the database is in WAL mode, and a reader neither
blocks OpenCode nor is blocked by it), checks up front that the tables and columns it needs are
there (:class:`OpenCodeSchemaError`, one sentence, before anything is read), and yields one
:class:`HistorySession` per session: the session row, its assistant messages with their usage,
and its tool calls, in time order. Nothing is ever written to OpenCode's database.

Memory stays bounded by the largest single session: sessions stream from one cursor, and the
messages and parts of one session are read when it is yielded. The whole read runs in one
read transaction, so it sees one consistent snapshot even while OpenCode writes.

Self-contained on purpose (the standard library, attrs and orjson only): the ``import-opencode``
command and the tracking service build on it without it depending on them.

    with OpenCodeHistory.open() as history:             # or open(db="/path/to/opencode.db")
        for session in history.sessions(since=since):
            for item in session.timeline():             # AssistantMessage | ToolCall
                ...
"""


from __future__ import annotations

import os
import sqlite3
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Container, Iterator, Mapping, Sequence

import orjson

from .excerpts import EXCERPT_HALF, bound_args, excerpt, tool_succeeded
from .fields import (
    EMPTY,
    as_dict,
    as_float,
    as_int,
    as_opt_int,
    as_str,
    first_int,
    joined,
)
from .location import OpenCodeHistoryError, locate_database
from .sessions import (
    TOOL_STATUSES,
    AssistantMessage,
    HistorySession,
    StepUsage,
    Tokens,
    ToolCall,
)

#: The OpenCode release whose database layout and JSON shapes this reader was verified against.
VERIFIED_WITH = "1.18.33"


# What the reader needs; anything else in the database is ignored.
REQUIRED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "session": ("id", "project_id", "parent_id", "directory", "title", "time_created", "time_updated"),
    "message": ("id", "session_id", "time_created", "data"),
    "part": ("id", "message_id", "session_id", "time_created", "data"),
}


# Read when present (older or newer layouts may lack them).
OPTIONAL_SESSION_COLUMNS = (
    "slug", "version", "agent", "model", "cost", "tokens_input", "tokens_output", "tokens_reasoning",
    "tokens_cache_read", "tokens_cache_write", "time_archived",
)


TOKEN_COLUMNS = ("tokens_input", "tokens_output", "tokens_reasoning", "tokens_cache_read", "tokens_cache_write")


class OpenCodeSchemaError(OpenCodeHistoryError):
    """The database lacks tables or columns this reader needs (a future or very old OpenCode)."""

    def __init__(self, path: Path, missing: Sequence[str]) -> None:
        self.path = path
        self.missing = tuple(missing)
        super().__init__(
            f"OpenCode's database {path} has a layout agent-tracker cannot read: it lacks "
            f"{joined(self.missing)} (agent-tracker reads the layout of OpenCode {VERIFIED_WITH}); "
            f"nothing was read.")


# ---------------------------------------------------------------------------------------------
# reading


def since_millis(since: datetime | int | float | None) -> int | None:
    """``since`` as epoch milliseconds: a datetime (naive means UTC) or a number of milliseconds."""
    if since is None:
        return None
    if isinstance(since, datetime):
        moment = since if since.tzinfo is not None else since.replace(tzinfo=timezone.utc)
        return int(moment.timestamp() * 1000)
    return int(since)


class OpenCodeHistory:
    """A read-only view of one OpenCode database. Use :meth:`open`; close it (or use ``with``).

    ``problems`` collects one line per row that could not be decoded (bad JSON); such rows are
    skipped and counted, the rest of the session is still read."""

    def __init__(self, path: Path, connection: sqlite3.Connection, columns: Mapping[str, frozenset[str]],
                 immutable: bool, excerpt_half: int = EXCERPT_HALF) -> None:
        self.path = path
        self.immutable = immutable
        self.excerpt_half = excerpt_half
        self.problems: list[str] = []
        self.skipped_rows = 0
        self._db = connection
        self._columns = columns
        self._session_columns = [c for c in OPTIONAL_SESSION_COLUMNS if c in columns["session"]]
        self._has_project = {"id", "worktree"} <= columns.get("project", frozenset())
        self._in_transaction = False

    # -- opening ------------------------------------------------------------------------------

    @classmethod
    def open(cls, db: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None, *,
             excerpt_half: int = EXCERPT_HALF) -> OpenCodeHistory:
        """Open the database :func:`locate_database` finds (or ``db``) read-only and check its layout.

        The connection uses ``file:<path>?mode=ro``: SQLite never writes the database file. In WAL
        mode a reader needs the ``-wal`` and ``-shm`` files beside it; while OpenCode runs they
        exist, and when it is not running SQLite creates them (an empty ``-wal``, a 32 KiB
        ``-shm``) as OpenCode itself would and leaves them. Only when they are missing and cannot
        be created (a read-only folder: no OpenCode can be writing there) is the file opened
        ``immutable=1`` instead."""
        path = locate_database(db, env)
        connection, immutable = _connect(path)
        try:
            columns = _check_layout(path, connection)
        except BaseException:
            connection.close()
            raise
        return cls(path, connection, columns, immutable, excerpt_half)

    def close(self) -> None:
        if self._in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._in_transaction = False
        self._db.close()

    def __enter__(self) -> OpenCodeHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- counting -----------------------------------------------------------------------------

    def count_sessions(self, since: datetime | int | float | None = None) -> int:
        where, args = self._since_clause(since)
        row = self._query(f"SELECT count(*) FROM session{where}", args).fetchone()
        return int(row[0])

    def count_parts(self, since: datetime | int | float | None = None) -> int:
        """Part rows of the sessions :meth:`sessions` would yield (for a progress bar)."""
        where, args = self._since_clause(since)
        if not where:
            return int(self._query("SELECT count(*) FROM part").fetchone()[0])
        row = self._query(f"SELECT count(*) FROM part WHERE session_id IN (SELECT id FROM session{where})",
                          args).fetchone()
        return int(row[0])

    def session_ids(self, since: datetime | int | float | None = None) -> list[str]:
        """The ids of the sessions :meth:`sessions` would yield, oldest first (nothing else is read)."""
        where, args = self._since_clause(since)
        rows = self._query(f"SELECT id FROM session{where} ORDER BY time_created, id", args)
        return [str(session_id) for (session_id,) in rows]

    # -- sessions -----------------------------------------------------------------------------

    def directory_sizes(self, since: datetime | int | float | None = None) -> dict[str, int]:
        """How many sessions (created at or after ``since``) each directory has."""
        where, args = self._since_clause(since)
        rows = self._query(f"SELECT directory, count(*) FROM session{where} GROUP BY directory", args)
        return {str(directory): int(count) for directory, count in rows}

    def sessions(self, since: datetime | int | float | None = None,
                 directories: Container[str] | None = None) -> Iterator[HistorySession]:
        """Every session created at or after ``since`` (all when None), oldest first (a subagent's
        session comes after its parent), each with its messages and tool calls. ``directories``:
        only the sessions in those (readers that share the work by project read only theirs)."""
        where, args = self._since_clause(since, "s.")
        rows = self._query(self._session_sql(where) + " ORDER BY s.time_created, s.id", args)
        while True:
            batch = rows.fetchmany(256)
            if not batch:
                return
            for row in batch:
                if directories is None or row[3] in directories:
                    session = self._readable_session(row)
                    if session is not None:
                        yield session

    def _readable_session(self, row: Sequence[Any]) -> HistorySession | None:
        """The session of a row, or None with the row named as a problem: one row OpenCode (or
        anyone) wrote oddly (text in time_created) is skipped, never the end of the import."""
        try:
            return self._session(row)
        except (ValueError, TypeError, OverflowError) as exc:
            self._problem(f"session {row[0]!r}: cannot be read ({exc}); skipped"[:300])
            return None

    def session(self, session_id: str) -> HistorySession | None:
        """One session by id (None when there is no such session)."""
        row = self._query(self._session_sql(" WHERE s.id = ?"), (session_id,)).fetchone()
        return None if row is None else self._readable_session(row)

    # -- internals ----------------------------------------------------------------------------

    def _session_sql(self, where: str) -> str:
        extra = "".join(f", s.{c}" for c in self._session_columns)
        if self._has_project:
            return (f"SELECT s.id, s.project_id, s.parent_id, s.directory, s.title, s.time_created, s.time_updated, "
                    f"p.worktree{extra} FROM session s LEFT JOIN project p ON p.id = s.project_id{where}")
        return (f"SELECT s.id, s.project_id, s.parent_id, s.directory, s.title, s.time_created, s.time_updated, "
                f"NULL{extra} FROM session s{where}")

    def _since_clause(self, since: datetime | int | float | None, prefix: str = "") -> tuple[str, tuple[Any, ...]]:
        millis = since_millis(since)
        return ("", ()) if millis is None else (f" WHERE {prefix}time_created >= ?", (millis,))

    def _query(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        if not self._in_transaction:
            # one read transaction for the whole read: a consistent snapshot while OpenCode writes
            self._db.execute("BEGIN")
            self._in_transaction = True
        try:
            return self._db.execute(sql, tuple(args))
        except sqlite3.DatabaseError as exc:
            raise OpenCodeHistoryError(f"Reading OpenCode's database {self.path} failed: {exc}.") from None

    def _problem(self, text: str) -> None:
        self.skipped_rows += 1
        if len(self.problems) < 100:
            self.problems.append(text)

    def _object(self, data: Any, table: str, row_id: Any, session_id: str) -> dict[str, Any] | None:
        """A row's ``data`` column as a JSON object; None (and the row named as a problem) otherwise."""
        try:
            value = _loads(data)
        except orjson.JSONDecodeError:
            self._problem(f"{table} {row_id} of session {session_id}: data is not valid JSON")
            return None
        if not isinstance(value, dict):
            self._problem(f"{table} {row_id} of session {session_id}: not a JSON object")
            return None
        return value

    def _session(self, row: Sequence[Any]) -> HistorySession:
        session_id = str(row[0])
        optional = dict(zip(self._session_columns, row[8:]))
        provider_id = model_id = None
        model = optional.get("model")
        if isinstance(model, str) and model:
            try:
                decoded = orjson.loads(model)
            except orjson.JSONDecodeError:
                decoded = None
            if isinstance(decoded, dict):
                provider_id = as_str(decoded.get("providerID"))
                model_id = as_str(decoded.get("id") if "id" in decoded else decoded.get("modelID"))
        tokens = None
        if all(c in optional for c in TOKEN_COLUMNS):
            tokens = Tokens(*(as_int(optional[c]) for c in TOKEN_COLUMNS))
        cost = optional.get("cost")
        tool_calls, steps, part_count = self._parts(session_id)
        messages, user_messages = self._messages(session_id, steps)
        return HistorySession(
            id=session_id, project_id=str(row[1]), parent_id=as_str(row[2]), directory=str(row[3]),
            worktree=as_str(row[7]), title=str(row[4]), slug=as_str(optional.get("slug")),
            version=as_str(optional.get("version")), agent=as_str(optional.get("agent")),
            provider_id=provider_id, model_id=model_id,
            cost=float(cost) if isinstance(cost, (int, float)) else None, tokens=tokens,
            time_created=int(row[5]), time_updated=int(row[6]),
            time_archived=as_opt_int(optional.get("time_archived")),
            messages=tuple(messages), tool_calls=tuple(tool_calls), user_messages=user_messages,
            part_count=part_count)

    def _messages(self, session_id: str, steps: Mapping[str, list[StepUsage]]) -> tuple[list[AssistantMessage], int]:
        messages: list[AssistantMessage] = []
        users = 0
        rows = self._query("SELECT id, time_created, data FROM message WHERE session_id = ? "
                           "ORDER BY time_created, id", (session_id,))
        for message_id, time_created, data in rows:
            if isinstance(data, str) and _USER_MARK in data and _ASSISTANT_MARK not in data:
                users += 1  # compact JSON of a user message: nothing else to take from it
                continue
            info = self._object(data, "message", message_id, session_id)
            if info is None:
                continue
            role = info.get("role")
            if role == "user":
                users += 1
                continue
            if role != "assistant":
                continue
            times = as_dict(info.get("time"))
            error = info.get("error")
            cost = info.get("cost")
            messages.append(AssistantMessage(
                id=message_id, session_id=session_id, parent_id=as_str(info.get("parentID")),
                agent=as_str(info.get("agent")) or as_str(info.get("mode")),
                provider_id=as_str(info.get("providerID")), model_id=as_str(info.get("modelID")),
                cost=cost if type(cost) is float else as_float(cost), tokens=Tokens.from_json(info.get("tokens")),
                time_created=first_int(times.get("created"), time_created),
                time_completed=as_opt_int(times.get("completed")), finish=as_str(info.get("finish")),
                error=as_str(error.get("name")) if isinstance(error, dict) else None,
                steps=tuple(steps.get(message_id, ()))))
        return messages, users

    def _parts(self, session_id: str) -> tuple[list[ToolCall], dict[str, list[StepUsage]], int]:
        calls: list[ToolCall] = []
        steps: dict[str, list[StepUsage]] = {}
        half = self.excerpt_half
        count = 0
        rows = self._query("SELECT id, message_id, time_created, data FROM part WHERE session_id = ? ORDER BY id",
                           (session_id,))
        for part_id, message_id, time_created, data in rows:
            count += 1
            # OpenCode stores compact JSON, where a top-level "type" of "tool" or "step-finish"
            # shows as that exact text: the other parts (text, reasoning, patches: most of the
            # bytes) are skipped unparsed. Text without any compact "type" key is parsed anyway.
            if (isinstance(data, str) and _TOOL_MARK not in data and _STEP_MARK not in data
                    and _COMPACT_TYPE in data):
                continue
            part = self._object(data, "part", part_id, session_id)
            if part is None:
                continue
            kind = part.get("type")
            if kind == "step-finish":
                cost = part.get("cost")
                step = StepUsage(part_id=part_id, reason=as_str(part.get("reason")),
                                 cost=cost if type(cost) is float else as_float(cost),
                                 tokens=Tokens.from_json(part.get("tokens")), time=time_created)
                found = steps.get(message_id)
                if found is None:
                    steps[message_id] = [step]
                else:
                    found.append(step)
                continue
            if kind != "tool":
                continue
            state = as_dict(part.get("state"))
            status = state.get("status")
            if status not in TOOL_STATUSES:
                self._problem(f"tool part {part_id} of session {session_id}: unknown state {status!r}")
                continue
            tool = part.get("tool")
            tool = tool if isinstance(tool, str) else ""
            metadata = as_dict(state.get("metadata")) or as_dict(part.get("metadata"))
            exit_code = metadata.get("exit")
            output: str | None
            if status == "error":
                output = excerpt(str(state.get("error") or ""), half)
                success = False
            else:
                raw = state.get("output")
                output = excerpt(raw, half) if isinstance(raw, str) else None
                success = status == "completed" and tool_succeeded(tool, metadata)
            times = as_dict(state.get("time"))
            raw_input = state.get("input")
            call_id = part.get("callID")
            calls.append(ToolCall(
                id=part_id, call_id=call_id if isinstance(call_id, str) else "", session_id=session_id,
                message_id=message_id, tool=tool, status=status, success=success,
                input=bound_args(raw_input, half) if isinstance(raw_input, dict) else EMPTY,
                output=output, title=as_str(state.get("title")),
                exit_code=exit_code if type(exit_code) is int else None,
                time_start=as_opt_int(times.get("start")), time_end=as_opt_int(times.get("end"))))
        calls.sort(key=_call_order)
        return calls, steps, count


def _call_order(call: ToolCall) -> tuple[int, str]:
    return (call.time_start if call.time_start is not None else call.order_time, call.id)


_loads = orjson.loads


_TOOL_MARK = '"type":"tool"'


_STEP_MARK = '"type":"step-finish"'


_COMPACT_TYPE = '"type":"'


_USER_MARK = '"role":"user"'


_ASSISTANT_MARK = '"role":"assistant"'


# ---------------------------------------------------------------------------------------------
# helpers


def _connect(path: Path) -> tuple[sqlite3.Connection, bool]:
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    try:
        connection = _open(uri)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection, False
    except sqlite3.OperationalError as exc:
        if "unable to open" not in str(exc) or Path(f"{path}-wal").exists():
            raise OpenCodeHistoryError(f"OpenCode's database {path} cannot be opened: {exc}.") from None
    except sqlite3.DatabaseError as exc:
        raise OpenCodeHistoryError(f"{path} is not an SQLite database OpenCode wrote ({exc}).") from None
    # No -wal file and none can be created: nobody can be writing this database, so reading it
    # as an immutable file is safe.
    try:
        connection = _open(uri + "&immutable=1")
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection, True
    except sqlite3.DatabaseError as exc:
        raise OpenCodeHistoryError(f"OpenCode's database {path} cannot be opened: {exc}.") from None


def _open(uri: str) -> sqlite3.Connection:
    connection = sqlite3.connect(uri, uri=True, timeout=5.0, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA query_only = ON")
    return connection


def _check_layout(path: Path, connection: sqlite3.Connection) -> dict[str, frozenset[str]]:
    try:
        tables = {str(name) for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        columns = {t: frozenset(str(r[1]) for r in connection.execute(f'PRAGMA table_info("{t}")'))
                   for t in tables}
    except sqlite3.DatabaseError as exc:
        raise OpenCodeHistoryError(f"{path} is not an SQLite database OpenCode wrote ({exc}).") from None
    missing: list[str] = []
    for table, needed in REQUIRED_COLUMNS.items():
        if table not in columns:
            missing.append(f"table {table}")
            continue
        missing += [f"column {table}.{c}" for c in needed if c not in columns[table]]
    if missing:
        raise OpenCodeSchemaError(path, missing)
    return columns


