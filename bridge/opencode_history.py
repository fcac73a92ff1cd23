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
from typing import Any, ClassVar, Iterator, Literal, Mapping, Sequence, Union

import attrs
import orjson

#: The OpenCode release whose database layout and JSON shapes this reader was verified against.
VERIFIED_WITH = "1.18.33"
DATABASE_NAME = "opencode.db"
#: OpenCode's release channels that use ``opencode.db``; any other channel uses ``opencode-<channel>.db``.
RELEASE_CHANNELS = ("latest", "beta", "prod")
#: Head and tail kept of a tool output by :func:`excerpt`, as the plugin does (EXCERPT_HALF in util.js).
EXCERPT_HALF = 2048

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

ToolStatus = Literal["pending", "running", "completed", "error"]
TOOL_STATUSES: frozenset[str] = frozenset(("pending", "running", "completed", "error"))


class OpenCodeHistoryError(Exception):
    """OpenCode's database cannot be read; the message is one sentence saying why."""


class OpenCodeSchemaError(OpenCodeHistoryError):
    """The database lacks tables or columns this reader needs (a future or very old OpenCode)."""

    def __init__(self, path: Path, missing: Sequence[str]) -> None:
        self.path = path
        self.missing = tuple(missing)
        super().__init__(
            f"OpenCode's database {path} has a layout agent-tracker cannot read: it lacks "
            f"{_join(self.missing)} (agent-tracker reads the layout of OpenCode {VERIFIED_WITH}); "
            f"nothing was read.")


# ---------------------------------------------------------------------------------------------
# records
#
# Plain (not frozen) slotted attrs classes: an import builds one per message, step and tool
# call, and a frozen attrs __init__ costs five times as much. Treat them as read-only.


@attrs.define(slots=True)
class Tokens:
    """Token counts by kind, as OpenCode records them. ``input`` excludes cache reads and writes,
    ``output`` excludes ``reasoning``; OpenCode's ``tokens.total`` is the sum of all five."""

    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.reasoning + self.cache_read + self.cache_write

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.input + other.input, self.output + other.output, self.reasoning + other.reasoning,
                      self.cache_read + other.cache_read, self.cache_write + other.cache_write)

    @classmethod
    def from_json(cls, value: Any) -> Tokens:
        """``{input, output, reasoning, cache: {read, write}}`` (``total`` is derived)."""
        if not isinstance(value, dict):
            return cls()
        cache = value.get("cache")
        if not isinstance(cache, dict):
            cache = _EMPTY
        a, b, c, d, e = (value.get("input"), value.get("output"), value.get("reasoning"), cache.get("read"),
                         cache.get("write"))
        if type(a) is int and type(b) is int and type(c) is int and type(d) is int and type(e) is int:
            return cls(a, b, c, d, e)  # the usual case
        return cls(_int(a), _int(b), _int(c), _int(d), _int(e))



@attrs.define(slots=True)
class StepUsage:
    """One ``step-finish`` part: the usage of one model call (``time``: when it was written)."""

    part_id: str
    reason: str | None
    cost: float
    tokens: Tokens
    time: int


@attrs.define(slots=True)
class AssistantMessage:
    """One assistant message with its usage; in OpenCode 1.18 one message is one model call, so
    ``steps`` holds one step whose cost and tokens equal the message's."""

    id: str
    session_id: str
    parent_id: str | None  # the user message it answers
    agent: str | None
    provider_id: str | None
    model_id: str | None
    cost: float
    tokens: Tokens
    time_created: int  # epoch milliseconds
    time_completed: int | None  # None: still streaming, or interrupted
    finish: str | None  # "stop", "tool-calls", ...
    error: str | None  # the error's name (e.g. "MessageAbortedError") when the call failed
    steps: tuple[StepUsage, ...]

    kind: ClassVar[Literal["message"]] = "message"

    @property
    def duration_ms(self) -> int | None:
        return None if self.time_completed is None else self.time_completed - self.time_created

    @property
    def order_time(self) -> int:
        """When the plugin reports it live: the ``message.updated`` that sets ``time.completed``."""
        return self.time_completed if self.time_completed is not None else self.time_created


@attrs.define(slots=True)
class ToolCall:
    """One tool part in its last state. ``success`` follows the plugin's rule (util.js
    ``toolSucceeded``): an ``error`` state fails; a completed ``bash`` succeeds only with exit 0;
    another completed tool fails only when its metadata says ``error`` or ``isError: true``.
    ``input`` and ``output`` are bounded as the plugin bounds them (:func:`excerpt`); ``output``
    is the error text for an ``error`` state."""

    id: str  # the part id
    call_id: str
    session_id: str
    message_id: str
    tool: str
    status: ToolStatus
    success: bool
    input: Mapping[str, Any]
    output: str | None
    title: str | None
    exit_code: int | None  # bash: metadata.exit
    time_start: int | None
    time_end: int | None

    kind: ClassVar[Literal["tool"]] = "tool"

    @property
    def finished(self) -> bool:
        """Completed or failed; ``pending``/``running`` calls were cut off (OpenCode stopped)."""
        return self.status in ("completed", "error")

    @property
    def order_time(self) -> int:
        """When the plugin reports it live: when the call ended."""
        for value in (self.time_end, self.time_start):
            if value is not None:
                return value
        return 0


HistoryItem = Union[AssistantMessage, ToolCall]


@attrs.frozen(slots=True)
class HistorySession:
    """One OpenCode session: its row, its assistant messages (by creation time) and its tool
    calls (by start time). ``cost`` and ``tokens`` are the session row's running totals (None when
    the database has no such columns): OpenCode adds every ``step-finish`` of this session to
    them, not those of its child sessions."""

    id: str
    project_id: str
    parent_id: str | None
    directory: str
    worktree: str | None  # the project's worktree (table ``project``), when known
    title: str
    slug: str | None
    version: str | None  # the OpenCode version that created the session
    agent: str | None  # the session's current agent (column ``agent``)
    provider_id: str | None  # the session's current model (column ``model``)
    model_id: str | None
    cost: float | None
    tokens: Tokens | None
    time_created: int
    time_updated: int
    time_archived: int | None
    messages: tuple[AssistantMessage, ...]
    tool_calls: tuple[ToolCall, ...]
    user_messages: int  # how many user messages (prompts) the session has
    part_count: int  # part rows of this session (all types), for progress reporting

    @property
    def message_cost(self) -> float:
        """The sum of the assistant messages' costs (equals ``cost`` up to float rounding)."""
        return sum(m.cost for m in self.messages)

    @property
    def message_tokens(self) -> Tokens:
        total = Tokens()
        for message in self.messages:
            total = total + message.tokens
        return total

    def timeline(self) -> list[HistoryItem]:
        """Messages and tool calls in the order the plugin reports them live: a tool call when it
        ends, an assistant message when it completes (ties: tool calls first, then by id)."""
        items: list[HistoryItem] = [*self.tool_calls, *self.messages]
        items.sort(key=lambda item: (item.order_time, 0 if item.kind == "tool" else 1, item.id))
        return items


# ---------------------------------------------------------------------------------------------
# where the database is


def data_directory(env: Mapping[str, str] | None = None) -> Path:
    """OpenCode's data folder: ``$XDG_DATA_HOME/opencode``, by default ``~/.local/share/opencode``."""
    env = os.environ if env is None else env
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return Path(base) / "opencode"


def opencode_database_path(env: Mapping[str, str] | None = None, channel: str = "latest") -> Path | None:
    """Where OpenCode of ``channel`` keeps its database (whether or not it exists yet): ``OPENCODE_DB``
    when set (absolute, or relative to the data folder; None for ``:memory:``), else
    :func:`channel_database_name` in the data folder. ``OPENCODE_DISABLE_CHANNEL_DB=1`` (or
    ``true``) makes every channel use ``opencode.db``."""
    env = os.environ if env is None else env
    override = env.get("OPENCODE_DB")
    if override:
        if override == ":memory:":
            return None
        return Path(override) if os.path.isabs(override) else data_directory(env) / override
    if env.get("OPENCODE_DISABLE_CHANNEL_DB") in ("1", "true"):
        return data_directory(env) / DATABASE_NAME
    return data_directory(env) / channel_database_name(channel)


def channel_database_name(channel: str) -> str:
    """The file name a channel uses, as OpenCode computes it (``opencode-<channel>.db`` with
    characters outside ``[a-zA-Z0-9._-]`` replaced by ``-``; ``opencode.db`` for releases)."""
    if channel in RELEASE_CHANNELS:
        return DATABASE_NAME
    return "opencode-" + "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in channel) + ".db"


def database_candidates(env: Mapping[str, str] | None = None) -> list[Path]:
    """Existing history databases in OpenCode's data folder: ``opencode.db`` first, then the
    channel databases ``opencode-*.db``, newest first."""
    folder = data_directory(env)
    found = [folder / DATABASE_NAME] if (folder / DATABASE_NAME).is_file() else []
    channels = [p for p in folder.glob("opencode-*.db") if p.is_file()]
    channels.sort(key=lambda p: (-p.stat().st_mtime, p.name))
    return found + channels


def locate_database(db: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The database to read: ``db`` (``--db PATH``) when given; else ``OPENCODE_DB`` as OpenCode
    reads it (absolute, or relative to the data folder); else ``opencode.db`` in the data folder,
    or the newest ``opencode-<channel>.db`` when only channel databases exist. Raises
    :class:`OpenCodeHistoryError` when there is none."""
    env = os.environ if env is None else env
    if db is not None:
        path = Path(os.fspath(db)).expanduser()
        if not path.is_file():
            raise OpenCodeHistoryError(f"There is no OpenCode database at {path}.")
        return path
    if env.get("OPENCODE_DB"):
        configured = opencode_database_path(env)
        if configured is None:
            raise OpenCodeHistoryError("OPENCODE_DB is :memory:, so OpenCode keeps no history on disk to read.")
        if not configured.is_file():
            raise OpenCodeHistoryError(f"There is no OpenCode database at {configured} (from OPENCODE_DB).")
        return configured
    candidates = database_candidates(env)
    if not candidates:
        raise OpenCodeHistoryError(
            f"No OpenCode database in {data_directory(env)} (OpenCode keeps its history in "
            f"{DATABASE_NAME} there); pass --db PATH or set OPENCODE_DB.")
    return candidates[0]


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

    # -- sessions -----------------------------------------------------------------------------

    def sessions(self, since: datetime | int | float | None = None) -> Iterator[HistorySession]:
        """Every session created at or after ``since`` (all when None), oldest first (a subagent's
        session comes after its parent), each with its messages and tool calls."""
        where, args = self._since_clause(since, "s.")
        rows = self._query(self._session_sql(where) + " ORDER BY s.time_created, s.id", args)
        while True:
            batch = rows.fetchmany(256)
            if not batch:
                return
            for row in batch:
                yield self._session(row)

    def session(self, session_id: str) -> HistorySession | None:
        """One session by id (None when there is no such session)."""
        row = self._query(self._session_sql(" WHERE s.id = ?"), (session_id,)).fetchone()
        return None if row is None else self._session(row)

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
                provider_id = _str(decoded.get("providerID"))
                model_id = _str(decoded.get("id") if "id" in decoded else decoded.get("modelID"))
        tokens = None
        if all(c in optional for c in TOKEN_COLUMNS):
            tokens = Tokens(*(_int(optional[c]) for c in TOKEN_COLUMNS))
        cost = optional.get("cost")
        tool_calls, steps, part_count = self._parts(session_id)
        messages, user_messages = self._messages(session_id, steps)
        return HistorySession(
            id=session_id, project_id=str(row[1]), parent_id=_str(row[2]), directory=str(row[3]),
            worktree=_str(row[7]), title=str(row[4]), slug=_str(optional.get("slug")),
            version=_str(optional.get("version")), agent=_str(optional.get("agent")),
            provider_id=provider_id, model_id=model_id,
            cost=float(cost) if isinstance(cost, (int, float)) else None, tokens=tokens,
            time_created=int(row[5]), time_updated=int(row[6]),
            time_archived=_opt_int(optional.get("time_archived")),
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
            try:
                info = _loads(data)
            except orjson.JSONDecodeError:
                self._problem(f"message {message_id} of session {session_id}: data is not valid JSON")
                continue
            if not isinstance(info, dict):
                self._problem(f"message {message_id} of session {session_id}: not a JSON object")
                continue
            role = info.get("role")
            if role == "user":
                users += 1
                continue
            if role != "assistant":
                continue
            times = _dict(info.get("time"))
            error = info.get("error")
            cost = info.get("cost")
            messages.append(AssistantMessage(
                id=message_id, session_id=session_id, parent_id=_str(info.get("parentID")),
                agent=_str(info.get("agent")) or _str(info.get("mode")),
                provider_id=_str(info.get("providerID")), model_id=_str(info.get("modelID")),
                cost=cost if type(cost) is float else _float(cost), tokens=Tokens.from_json(info.get("tokens")),
                time_created=_first_int(times.get("created"), time_created),
                time_completed=_opt_int(times.get("completed")), finish=_str(info.get("finish")),
                error=_str(error.get("name")) if isinstance(error, dict) else None,
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
            try:
                part = _loads(data)
            except orjson.JSONDecodeError:
                self._problem(f"part {part_id} of session {session_id}: data is not valid JSON")
                continue
            if not isinstance(part, dict):
                self._problem(f"part {part_id} of session {session_id}: not a JSON object")
                continue
            kind = part.get("type")
            if kind == "step-finish":
                cost = part.get("cost")
                step = StepUsage(part_id=part_id, reason=_str(part.get("reason")),
                                 cost=cost if type(cost) is float else _float(cost),
                                 tokens=Tokens.from_json(part.get("tokens")), time=time_created)
                found = steps.get(message_id)
                if found is None:
                    steps[message_id] = [step]
                else:
                    found.append(step)
                continue
            if kind != "tool":
                continue
            state = _dict(part.get("state"))
            status = state.get("status")
            if status not in TOOL_STATUSES:
                self._problem(f"tool part {part_id} of session {session_id}: unknown state {status!r}")
                continue
            tool = part.get("tool")
            tool = tool if isinstance(tool, str) else ""
            metadata = _dict(state.get("metadata")) or _dict(part.get("metadata"))
            exit_code = metadata.get("exit")
            output: str | None
            if status == "error":
                output = excerpt(str(state.get("error") or ""), half)
                success = False
            else:
                raw = state.get("output")
                output = excerpt(raw, half) if isinstance(raw, str) else None
                success = status == "completed" and tool_succeeded(tool, metadata)
            times = _dict(state.get("time"))
            raw_input = state.get("input")
            call_id = part.get("callID")
            calls.append(ToolCall(
                id=part_id, call_id=call_id if isinstance(call_id, str) else "", session_id=session_id,
                message_id=message_id, tool=tool, status=status, success=success,
                input=bound_args(raw_input, half) if isinstance(raw_input, dict) else _EMPTY,
                output=output, title=_str(state.get("title")),
                exit_code=exit_code if type(exit_code) is int else None,
                time_start=_opt_int(times.get("start")), time_end=_opt_int(times.get("end"))))
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
# the plugin's rules, mirrored (examples/opencode-plugin/plugin/agent-tracker/util.js)


def excerpt(text: str, half: int = EXCERPT_HALF) -> str:
    """The whole text when short, else the first and last ``half`` characters around a marker
    (util.js ``excerpt``; JavaScript counts UTF-16 units, so text outside the BMP may be cut a
    few characters differently)."""
    if len(text) <= 2 * half + 64:
        return text
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n…[agent-tracker: {omitted} characters omitted]…\n{text[-half:]}"


def bound_args(args: Mapping[str, Any], half: int = EXCERPT_HALF) -> Mapping[str, Any]:
    """Tool input with long top-level strings cut to an excerpt (util.js ``boundArgs``)."""
    if not any(isinstance(v, str) and len(v) > 2 * half + 64 for v in args.values()):
        return args
    return {k: excerpt(v, half) if isinstance(v, str) else v for k, v in args.items()}


def tool_succeeded(tool: str, metadata: Mapping[str, Any]) -> bool:
    """Whether a completed tool call succeeded (util.js ``toolSucceeded``)."""
    if tool == "bash":
        exit_code = metadata.get("exit")
        return isinstance(exit_code, int) and not isinstance(exit_code, bool) and exit_code == 0
    if metadata.get("isError") is True:
        return False
    if metadata.get("error"):
        return False
    exit_code = metadata.get("exit")
    if isinstance(exit_code, (int, float)) and not isinstance(exit_code, bool):
        return exit_code == 0
    return True


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


_EMPTY: Mapping[str, Any] = {}


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value:
        return int(value)
    return 0


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return int(value)


def _first_int(value: Any, fallback: Any) -> int:
    found = _opt_int(value)
    return found if found is not None else int(fallback)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)
