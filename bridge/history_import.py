"""`agent-tracker import-opencode`: the user's past OpenCode sessions, from OpenCode's own database.

bridge.opencode.history reads ``opencode.db`` read-only (one consistent snapshot, safe while
OpenCode runs), bridge.opencode.replay turns each session into the events the plugin would have
sent for it live, and a TrackingService handles them in-process with their original times as
receive times: the same rules as live events, so the same records (sessions with their agent,
model, project, stack and parent; tool calls, commits and pushes from bash outputs; usage).

Idempotent, and never counting a session twice: a re-import, or an import of sessions the plugin
tracked live, finds the same session ids, message ids and callIDs. Tool calls count once per
session and callID (the ``calls`` ledger, checked when the event is handled and again in the
flush, so even a bridge holding the same calls unflushed counts them once); usage replaces per
message. A session that a bridge from before the ledger counted keeps those counts: its calls
that ended before the ledger's ``countedWithoutIdsBefore`` (all of them, when it has no ledger)
are not sent again; its usage is filled in.

Sessions are imported oldest first and flushed in batches of whole sessions: an import that stops
(disk full, interrupted) keeps the sessions it finished, and running it again completes it. What
an import added is read back from the sessions it touched (their counters before and after), so
the summary says what was written, not what was sent. A layout the reader does not know is refused
before anything is read (OpenCodeSchemaError).

Speed: a large history is shared between this process and a forked one, by project: each
imports the sessions of its projects, oldest first, with its own TrackingService on the same
database (LMDB serialises their flushes; agents' counters merge exactly in the flush). Commits
and pushes are told apart per project and sessions per id, so no rule ever compares the two
processes' sessions: the records are those of a one-process import. bench/bench_opencode_import.py
measures it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from contextlib import contextmanager
from datetime import datetime
from multiprocessing.connection import Connection, Pipe, wait
from pathlib import Path
from typing import Any, Callable, Iterator

import attrs

from .config import BridgeConfig, ScoringRules
from .opencode.history import OpenCodeHistory
from .opencode.location import OpenCodeHistoryError
from .opencode.replay import session_events
from .opencode.sessions import HistorySession
from .protocol.structure import InvalidParams
from .store import NotInitialised, ReadView, Store, StoreError, key
from .timestamps import iso_utc
from .tracking.pending import ledger_prefix
from .tracking.projects import project_path
from .tracking.service import EventRejected, TrackingService

BATCH_SESSIONS = 1000  # sessions per flush: bounded memory (~50 MB), few durable commits
PARALLEL_PARTS = 50_000  # from this many part rows a second process pays off
_ALL_COUNTED = "~"  # sorts after every ISO time: every call was counted without its id
_COUNTERS = ("toolCalls", "failedToolCalls", "commits", "pushes", "xpEarned")
IMPORT_LOCK_SUFFIX = ".import-lock"  # beside the database: agent-tracker.lmdb.import-lock

Progress = Callable[[int, int], None]  # (parts read so far, parts in all)


@attrs.define
class ImportResult:
    source: str
    database: str
    dry_run: bool
    since: str | None = None
    sessions: int = 0  # read from OpenCode's database
    new_sessions: int = 0  # not in our database before
    tracked_sessions: int = 0  # already there (tracked live, or imported before)
    child_sessions: int = 0  # subagents' sessions (among the above)
    sent_tool_calls: int = 0  # tool calls handed to the tracking rules
    tool_calls: int = 0  # of those, counted by this import (the sessions' counters grew by this)
    legacy_tool_calls: int = 0  # counted by a bridge that kept no callIDs: not sent again
    commits: int = 0
    pushes: int = 0
    xp: float = 0.0
    messages: int = 0  # assistant messages whose usage was recorded (new or replaced)
    cost: float = 0.0
    tokens: int = 0
    # of those, the messages the database did not hold yet (the others replaced their own record)
    new_messages: int = 0
    new_cost: float = 0.0
    new_tokens: int = 0
    parts: int = 0  # part rows read
    rejected: int = 0
    skipped_rows: int = 0  # rows OpenCode's database could not give (named in problems), skipped
    workers: int = 1
    problems: list[str] = attrs.Factory(list)  # rows OpenCode's database could not give, events refused
    flush_errors: list[str] = attrs.Factory(list)

    def add(self, other: ImportResult) -> None:
        """Another worker's share of the same import."""
        for name in ("sessions", "new_sessions", "tracked_sessions", "child_sessions", "sent_tool_calls",
                     "tool_calls", "legacy_tool_calls", "commits", "pushes", "xp", "messages", "cost", "tokens",
                     "new_messages", "new_cost", "new_tokens", "parts", "rejected", "skipped_rows"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems)
        self.flush_errors.extend(other.flush_errors)

    def to_wire(self) -> dict[str, Any]:
        return {
            "source": self.source, "database": self.database, "dryRun": self.dry_run, "since": self.since,
            "sessions": {"read": self.sessions, "new": self.new_sessions, "alreadyTracked": self.tracked_sessions,
                         "children": self.child_sessions},
            "toolCalls": {"counted": self.tool_calls, "alreadyCounted": self.sent_tool_calls - self.tool_calls,
                          "countedBeforeCallIds": self.legacy_tool_calls},
            "commits": self.commits, "pushes": self.pushes, "xp": self.xp,
            # what was read; "new": what this import added (a message recorded before is replaced)
            "usage": {"messages": self.messages, "cost": self.cost, "tokens": self.tokens,
                      "new": {"messages": self.new_messages, "cost": self.new_cost, "tokens": self.new_tokens}},
            "parts": self.parts, "rejected": self.rejected, "skippedRows": self.skipped_rows,
            "workers": self.workers,
            "problems": self.problems[:100], "flushErrors": self.flush_errors,
        }


def import_history(store: Store, history: OpenCodeHistory, rules: ScoringRules, *, dry_run: bool = False,
                   since: datetime | None = None, progress: Progress | None = None,
                   batch_sessions: int = BATCH_SESSIONS, workers: int | None = None,
                   waiting: Callable[[], None] | None = None) -> ImportResult:
    """Feed every session of ``history`` created at or after ``since`` into ``store``.

    ``workers``: processes sharing the projects (default: 2 for a large history of several
    projects on a machine with two CPUs and no other thread running, else 1;
    AGENT_TRACKER_IMPORT_WORKERS sets the default). One import at a time per database
    (import_lock; ``waiting`` is called when another one holds it).
    """
    with import_lock(store.path, waiting):
        return _import_history(store, history, rules, dry_run, since, progress, batch_sessions, workers)


def lock_path_for(database: Path) -> Path:
    return database.with_name(database.name + IMPORT_LOCK_SUFFIX)


@contextmanager
def import_lock(database: Path, waiting: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the database's import lock (an flock on a file beside it; released when the process
    ends, however it ends). Two imports at once would both find a session not yet tracked and
    both end it: two summaries, activities counted twice. The second waits, then finds every
    session the first imported already tracked (an import is idempotent run after run)."""
    import fcntl

    descriptor = os.open(lock_path_for(database), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                waiting()
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _import_history(store: Store, history: OpenCodeHistory, rules: ScoringRules, dry_run: bool,
                    since: datetime | None, progress: Progress | None, batch_sessions: int,
                    workers: int | None) -> ImportResult:
    total = history.count_parts(since)
    chosen, forced = (workers, True) if workers else _default_workers(total)
    shards = plan_shards(history.directory_sizes(since), chosen, 0.0 if forced else MIN_SHARE) if chosen > 1 else None
    result = ImportResult(str(history.path), str(store.path), dry_run,
                          since=iso_utc(since) if since is not None else None, workers=len(shards or [None]))
    children = [_Worker.start(store, history.path, rules, since, shard, batch_sessions, dry_run)
                for shard in (shards or [])[1:]]
    done = {child: 0 for child in children}

    def report(parts: int) -> None:
        for child in children:
            done[child] = child.poll_progress(done[child])
        if progress is not None:
            progress(parts + sum(done.values()), total)

    try:
        _import_shard(store, history, rules, since, shards[0] if shards else None, batch_sessions, result, report)
        for child in children:
            result.add(child.result(lambda: report(result.parts)))
    finally:
        for child in children:
            child.close()
    result.problems[:0] = history.problems
    result.skipped_rows += history.skipped_rows
    return result


def _default_workers(total_parts: int) -> tuple[int, bool]:
    """(processes, whether the environment chose them)."""
    forced = os.environ.get("AGENT_TRACKER_IMPORT_WORKERS", "")
    if forced.isdigit() and int(forced) >= 1:
        return min(int(forced), 8), True
    # fork() is safe only without other threads (the report's helper follows the same rule)
    if (total_parts >= PARALLEL_PARTS and hasattr(os, "fork") and (os.cpu_count() or 1) >= 2
            and threading.active_count() == 1):
        return 2, False
    return 1, False


MIN_SHARE = 0.2  # a second process only when it gets at least this share of the sessions


def plan_shards(sizes: dict[str, int], workers: int, min_share: float = MIN_SHARE) -> list[frozenset[str]] | None:
    """The session directories each process imports: whole projects (one project's sessions in
    one process, oldest first, as one process would see them), balanced by sessions, largest
    first. None when that would leave a process less than ``min_share`` (or nothing)."""
    projects: dict[str, set[str]] = {}
    weights: dict[str, int] = {}
    for directory, count in sizes.items():
        project = project_path(directory) if directory else directory
        projects.setdefault(project, set()).add(directory)
        weights[project] = weights.get(project, 0) + count
    shards: list[set[str]] = [set() for _ in range(workers)]
    loads = [0] * workers
    for project in sorted(projects, key=lambda name: (-weights[name], name)):
        lightest = loads.index(min(loads))
        shards[lightest] |= projects[project]
        loads[lightest] += weights[project]
    total = sum(loads)
    if workers < 2 or not total or min(loads) <= 0 or min(loads) < min_share * total:
        return None
    return [frozenset(shard) for shard in shards]


def _import_shard(store: Store, history: OpenCodeHistory, rules: ScoringRules, since: datetime | None,
                  directories: frozenset[str] | None, batch_sessions: int, result: ImportResult,
                  progress: Callable[[int], None]) -> None:
    service = TrackingService(store, rules, journal_id=f"import-{secrets.token_hex(6)}", holds_events=False)
    before: dict[str, tuple[float, ...]] = {}  # the batch's sessions: their counters before
    for session in history.sessions(since, directories):
        counters = _import_session(service, session, result)
        if counters is not None:
            before[session.id] = counters
        result.parts += session.part_count
        if len(before) >= batch_sessions:
            if not _flush(service, before, result):
                return
            before = {}
        progress(result.parts)
    _flush(service, before, result)


def _import_session(service: TrackingService, session: HistorySession,
                    result: ImportResult) -> tuple[float, ...] | None:
    """Hand one session's events to the rules; returns its stored counters before them. A session
    whose rows make no events (a value of the wrong type) is skipped whole and named."""
    try:
        events = [(event.method, event.params, _iso(event.at)) for event in session_events(session)]
    except (ValueError, TypeError, OverflowError) as exc:
        result.skipped_rows += 1
        if len(result.problems) < 100:
            result.problems.append(f"session {session.id}: cannot be read ({exc}); skipped"[:300])
        return None
    with service.store.read() as view:
        stored = view.get("sessions", session.id)
        counted_before = _counted_before(view, session.id, stored) if stored is not None else None
        known_messages = {record.get("messageID") for _, record in view.scan("usage", key(session.id, ""))} \
            if stored is not None else set()
    result.sessions += 1
    result.child_sessions += session.parent_id is not None
    if stored is not None:
        result.tracked_sessions += 1
    else:
        result.new_sessions += 1
    handle = service.handle
    ended = stored is not None and bool(stored.get("endedAt"))
    for method, params, at in events:
        if method == "session.ended" and ended:
            continue  # ended already (tracked live, or imported before): one end, one summary
        if method == "tool.executed":
            if counted_before is not None and at < counted_before:
                result.legacy_tool_calls += 1
                continue
            result.sent_tool_calls += 1
        try:
            handle(method, params, at)
        except (InvalidParams, EventRejected) as exc:
            result.rejected += 1
            if len(result.problems) < 100:
                result.problems.append(f"session {session.id}: {method} refused: {exc}")
            continue
        if method == "usage.recorded":
            result.messages += 1
            result.cost += params["cost"]
            result.tokens += sum(params["tokens"].values())
            if params.get("messageID") not in known_messages:
                result.new_messages += 1
                result.new_cost += params["cost"]
                result.new_tokens += sum(params["tokens"].values())
    return _counters(stored)


def _counters(record: dict[str, Any] | None) -> tuple[float, ...]:
    if not record:
        return (0,) * len(_COUNTERS)
    values = (record.get(name, 0) for name in _COUNTERS)
    return tuple(value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0 for value in values)


def _counted_before(view: ReadView, session_id: str, stored: dict[str, Any]) -> str | None:
    """Until when the session's tool calls were counted by a bridge that kept no callIDs (None:
    every counted call is in its ledger; see tracking.pending.CallLedgers)."""
    for _, chunk in view.scan("calls", ledger_prefix(session_id)):  # the first chunk says it
        counted = chunk.get("countedWithoutIdsBefore")
        return counted if isinstance(counted, str) else None
    return _ALL_COUNTED if stored.get("toolCalls") or stored.get("failedToolCalls") else None


def _flush(service: TrackingService, before: dict[str, tuple[float, ...]], result: ImportResult) -> bool:
    """Write the batch, then add what its sessions' counters grew by."""
    flushed = service.flush()
    if flushed.errors:
        result.flush_errors.extend(flushed.errors)
        return False
    with service.store.read() as view:
        for session_id, old in before.items():
            calls, failed, commits, pushes, xp = (new - was for new, was in
                                                  zip(_counters(view.get("sessions", session_id)), old))
            result.tool_calls += int(calls + failed)
            result.commits += int(commits)
            result.pushes += int(pushes)
            result.xp += xp
    return True


_SECONDS: dict[int, str] = {}


def _iso(millis: int) -> str:
    """timestamps.iso_utc of epoch milliseconds (``2026-11-29T19:03:20.084Z``), the second's text
    made once (a session's events come within a few minutes)."""
    second, milli = divmod(millis, 1000)
    head = _SECONDS.get(second)
    if head is None:
        if len(_SECONDS) > 65536:
            _SECONDS.clear()
        head = _SECONDS[second] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{head}.{milli:03d}Z"


# -- a second process ----------------------------------------------------------------------------------

class _Worker:
    """Every n-th session of the history, imported in a forked child with its own TrackingService,
    LMDB environment and SQLite connection (neither may be used across fork()). It sends
    ("progress", parts) as it goes and ("done", ImportResult) or ("error", sentence) at the end."""

    def __init__(self, pid: int, connection: Connection):
        self.pid = pid
        self.connection = connection
        self.outcome: tuple[str, Any] | None = None

    @classmethod
    def start(cls, store: Store, history_path: Path, rules: ScoringRules, since: datetime | None,
              shard: frozenset[str], batch_sessions: int, dry_run: bool) -> _Worker:
        receiver, sender = Pipe(duplex=False)
        path, map_size = store.path, store.map_size
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                receiver.close()
                store.close()  # the inherited environment: LMDB forbids using it after fork()
                code = _worker_main(sender, path, map_size, history_path, rules, since, shard, batch_sessions, dry_run)
            finally:
                os._exit(code)
        sender.close()
        return cls(pid, receiver)

    def poll_progress(self, parts: int) -> int:
        """The latest parts count it reported (without waiting)."""
        while self.outcome is None and self.connection.poll():
            parts = self._receive(parts)
        return parts

    def result(self, tick: Callable[[], None]) -> ImportResult:
        parts = 0
        while self.outcome is None:
            wait([self.connection], timeout=0.2)
            parts = self.poll_progress(parts)
            tick()
        kind, value = self.outcome
        if kind != "done":
            raise StoreError(str(value))
        assert isinstance(value, ImportResult)
        return value

    def _receive(self, parts: int) -> int:
        try:
            kind, value = self.connection.recv()
        except (EOFError, OSError):
            self.outcome = ("error", "The second import process ended without a result; the sessions it finished "
                                     "are kept, run import-opencode again to complete the import.")
            return parts
        if kind == "progress":
            return int(value)
        self.outcome = (kind, value)
        return parts

    def close(self) -> None:
        self.connection.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _worker_main(sender: Connection, path: Path, map_size: int, history_path: Path, rules: ScoringRules,
                 since: datetime | None, shard: frozenset[str], batch_sessions: int, dry_run: bool) -> int:
    try:
        store = Store.open(BridgeConfig(database_path=str(path), max_database_size=map_size))
        if not store.available:
            raise store.failure or StoreError(f"Cannot open the database at {path}.")
        try:
            with OpenCodeHistory.open(history_path) as history:
                result = ImportResult(str(history_path), str(path), dry_run)
                _import_shard(store, history, rules, since, shard, batch_sessions, result,
                              lambda parts: sender.send(("progress", parts)))
                result.problems[:0] = history.problems
                result.skipped_rows += history.skipped_rows
        finally:
            store.close()
        sender.send(("done", result))
        return 0
    except (OpenCodeHistoryError, StoreError, OSError) as exc:
        sender.send(("error", str(exc)))
    except BaseException as exc:  # a bug: one line for the user, the traceback on stderr
        traceback.print_exc()
        sender.send(("error", f"The second import process failed: {type(exc).__name__}: {exc}"))
    return 1


# -- a dry run: the real rules on a throw-away copy ------------------------------------------------

@contextmanager
def scratch_copy(config: BridgeConfig) -> Iterator[Store]:
    """A writable copy of the database at ``config``'s path (an empty one when there is none yet)
    in a temporary folder, removed afterwards: a dry run applies the real rules, flushes included,
    and reports exactly what a real import would add, without changing the real database."""
    folder = Path(tempfile.mkdtemp(prefix="agent-tracker-dry-run-"))
    copy = folder / "agent-tracker.lmdb"
    try:
        path = config.resolved_database_path()
        if path is not None and path.is_file() and path.stat().st_size > 0:
            with Store.open(config, readonly=True) as original:
                if original.available:
                    original.copy_to(copy)
                elif not isinstance(original.failure, NotInitialised):
                    raise original.failure or StoreError(f"Cannot read the database at {path}.")
        store = Store.open(BridgeConfig(database_path=str(copy), max_database_size=config.max_database_size))
        try:
            if not store.available:
                raise store.failure or StoreError(f"Cannot open a copy of the database in {folder}.")
            yield store
        finally:
            store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def sessions_not_tracked(store: Store | None, history: OpenCodeHistory) -> tuple[int, int]:
    """(sessions in OpenCode's database, how many of them ``store`` does not hold yet)."""
    ids = history.session_ids()
    if store is None:
        return len(ids), len(ids)
    with store.read() as view:
        return len(ids), sum(1 for session_id in ids if view.get("sessions", session_id) is None)
