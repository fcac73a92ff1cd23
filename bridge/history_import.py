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
(disk full, interrupted) keeps the sessions it finished, and running it again completes it. A
layout the reader does not know is refused before anything is read (OpenCodeSchemaError).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import attrs

from .config import BridgeConfig, ScoringRules
from .opencode.history import OpenCodeHistory
from .opencode.replay import session_events
from .protocol.structure import InvalidParams
from .store import NotInitialised, ReadView, Store, StoreError
from .timestamps import iso_utc
from .tracking.pending import CALLS, COMMIT, GAIN, PUSH, PendingChanges
from .tracking.service import EventRejected, TrackingService

BATCH_SESSIONS = 250  # sessions per flush: bounded memory, whole sessions per transaction
_ALL_COUNTED = "~"  # sorts after every ISO time: every call was counted without its id

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
    tool_calls: int = 0  # counted by this import
    known_tool_calls: int = 0  # already counted (same session and callID)
    legacy_tool_calls: int = 0  # counted by a bridge that kept no callIDs: not sent again
    commits: int = 0
    pushes: int = 0
    xp: float = 0.0
    messages: int = 0  # assistant messages whose usage was recorded (new or replaced)
    cost: float = 0.0
    tokens: int = 0
    parts: int = 0  # part rows read
    rejected: int = 0
    problems: list[str] = attrs.Factory(list)  # rows OpenCode's database could not give, events refused
    flush_errors: list[str] = attrs.Factory(list)

    def to_wire(self) -> dict[str, Any]:
        return {
            "source": self.source, "database": self.database, "dryRun": self.dry_run, "since": self.since,
            "sessions": {"read": self.sessions, "new": self.new_sessions, "alreadyTracked": self.tracked_sessions,
                         "children": self.child_sessions},
            "toolCalls": {"counted": self.tool_calls, "alreadyCounted": self.known_tool_calls,
                          "countedBeforeCallIds": self.legacy_tool_calls},
            "commits": self.commits, "pushes": self.pushes, "xp": self.xp,
            "usage": {"messages": self.messages, "cost": self.cost, "tokens": self.tokens},
            "parts": self.parts, "rejected": self.rejected, "problems": self.problems,
            "flushErrors": self.flush_errors,
        }


def import_history(store: Store, history: OpenCodeHistory, rules: ScoringRules, *, dry_run: bool = False,
                   since: datetime | None = None, progress: Progress | None = None,
                   batch_sessions: int = BATCH_SESSIONS) -> ImportResult:
    """Feed every session of ``history`` created at or after ``since`` into ``store``."""
    result = ImportResult(str(history.path), str(store.path), dry_run,
                          since=iso_utc(since) if since is not None else None)
    service = TrackingService(store, rules, journal_id=f"import-{secrets.token_hex(6)}")
    total = history.count_parts(since)
    pending_sessions = 0
    for session in history.sessions(since):
        _import_session(service, session, result)
        result.parts += session.part_count
        pending_sessions += 1
        if pending_sessions >= batch_sessions:
            if not _flush(service, result):
                break
            pending_sessions = 0
        if progress is not None:
            progress(result.parts, total)
    else:
        _flush(service, result)
    result.problems[:0] = history.problems
    return result


def _import_session(service: TrackingService, session: Any, result: ImportResult) -> None:
    with service.store.read() as view:
        known = view.get("sessions", session.id) is not None
        counted_before = _counted_before(view, session.id) if known else None
    result.sessions += 1
    result.child_sessions += session.parent_id is not None
    if known:
        result.tracked_sessions += 1
    else:
        result.new_sessions += 1
    handle = service.handle
    for event in session_events(session):
        at = _iso(event.at)
        if event.method == "tool.executed" and counted_before is not None and at < counted_before:
            result.legacy_tool_calls += 1
            continue
        try:
            answer = handle(event.method, event.params, at)
        except (InvalidParams, EventRejected) as exc:
            result.rejected += 1
            if len(result.problems) < 100:
                result.problems.append(f"session {session.id}: {event.method} refused: {exc}")
            continue
        if event.method == "tool.executed":
            if answer.get("counted"):
                result.tool_calls += 1
            else:
                result.known_tool_calls += 1
        elif event.method == "usage.recorded":
            params = event.params
            result.messages += 1
            result.cost += params["cost"]
            result.tokens += sum(params["tokens"].values())


def _counted_before(view: ReadView, session_id: str) -> str | None:
    """Until when the session's tool calls were counted by a bridge that kept no callIDs (None:
    every counted call is in its ledger)."""
    ledger = view.get("calls", session_id)
    if ledger is None:
        stored = view.get("sessions", session_id) or {}
        return _ALL_COUNTED if stored.get("toolCalls") or stored.get("failedToolCalls") else None
    counted = ledger.get("countedWithoutIdsBefore")
    return counted if isinstance(counted, str) else None


def _flush(service: TrackingService, result: ImportResult) -> bool:
    """Count what the buffer adds, then write it (a dry run writes into its copy too)."""
    commits, pushes, xp = tally(service.pending)
    flushed = service.flush()
    if flushed.errors:
        result.flush_errors.extend(flushed.errors)
        return False
    result.commits += commits
    result.pushes += pushes
    result.xp += xp
    return True


def tally(pending: PendingChanges) -> tuple[int, int, float]:
    """(commits, pushes, XP) the buffered agent operations add."""
    commits = pushes = 0
    xp = 0.0
    for ops in pending.agent_ops.values():
        for op in ops:
            kind = op[0]
            if kind == GAIN:
                xp += op[1]
            elif kind == CALLS:
                xp += sum(op[2].values())
            elif kind == COMMIT:
                commits += 1
                xp += op[2]
            elif kind == PUSH:
                pushes += 1
                xp += op[1]
    return commits, pushes, xp


def _iso(millis: int) -> str:
    return iso_utc(datetime.fromtimestamp(millis / 1000, tz=timezone.utc))


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
