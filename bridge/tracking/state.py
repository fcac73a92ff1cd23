"""What the tracking service knows between flushes, and the helpers every event handler shares.

``TrackingState`` holds the write buffer, the runtime state of live sessions and an in-memory
projection of each touched agent (read-your-writes, immediate halt detection). The event
handlers (sessions, work, feedback) are mixins on it; service.TrackingService puts them
together with intake and flushing. Handlers register with ``EVENTS`` (and, for checks that may
refuse an event before it is journaled, ``CHECKS``) next to their method name.
"""

from __future__ import annotations

import os
import secrets
from typing import Any, Callable

import attrs
import orjson

from ..config import ScoringRules
from ..protocol.methods import HandlerTable
from ..store import Store, StoreError, key
from ..timestamps import utc_now
from .git_commands import hashes_match
from .journal import Journal
from .pending import BUG, GAIN, REINSTATE, REVERT, PendingChanges, apply_op_to_projection, ledger_prefix
from .projects import optional_project_path
from .scoring import AgentState, agent_sheet
from .setups import UNKNOWN_AGENT
from .stack import BackgroundClassifier

Notify = Callable[[str, dict[str, Any]], None]
# (service, params, receivedAt, eventId, what the method's check returned) -> the answer
EventHandler = Callable[[Any, Any, str, str, Any], Any]
# (service, params) -> context for the handler; raises EventRejected or AlreadyCounted
EventCheck = Callable[[Any, Any], Any]

EVENTS: HandlerTable[EventHandler] = HandlerTable("tracking")
CHECKS: HandlerTable[EventCheck] = HandlerTable("tracking checks")


class EventRejected(ValueError):
    """A well-formed event that the rules refuse (e.g. a second user grade for one commit)."""


class AlreadyCounted(Exception):
    """An event that was counted before (a repeated callID): answered, not journaled."""

    def __init__(self, result: dict[str, Any]):
        super().__init__(result)
        self.result = result


@attrs.frozen
class CommitSeen:
    """A commit this bridge recorded in a session (what a later fix-up in it is matched against)."""

    key: str  # the commit's record key
    hash: str
    subject: str | None
    created_at: str


@attrs.define
class SessionRuntime:
    session_id: str
    directory: str | None = None
    agent_id: str | None = None
    model: str | None = None
    provider: str | None = None
    last_commit: tuple[str, str] | None = None  # (projectPath, hash)
    seen_calls: set[str] = attrs.Factory(set)
    ledger_chunks: int = 0  # chunks of the session's stored call ledger read into seen_calls
    parent_id: str | None = None  # a subagent's session: the session whose task tool started it
    commits: list[CommitSeen] = attrs.Factory(list)  # in order
    # agent -> the configuration version it last ran with in this session (tracking.configs)
    config_versions: dict[str, str] = attrs.Factory(dict)

    def config_version(self, agent_id: str | None = None) -> str | None:
        """The version of ``agent_id`` (default: the session's agent) in this session, if recorded."""
        return self.config_versions.get(agent_id or self.agent_id or "")


class TrackingState:
    def __init__(self, store: Store, rules: ScoringRules, *, journal: Journal | None = None,
                 journal_id: str | None = None, default_directory: str | None = None,
                 notify: Notify | None = None, told: set[str] | None = None):
        self.store = store
        self.rules = rules
        self.journal = journal
        # Event ids (part of record keys) must be unique across processes and flushes.
        self.journal_id = journal.journal_id if journal else (journal_id or secrets.token_hex(6))
        self.default_directory = optional_project_path(default_directory)
        self._notify: Notify = notify or (lambda method, params: None)
        self.pending = PendingChanges()
        # Buffers a flush took and has not committed yet, oldest first: what handlers look up must
        # include them (the database does not have them yet), or a commit could count twice.
        self._flushing: list[PendingChanges] = []
        self._projected: dict[str, AgentState] = {}
        self._pending_events: dict[str, int] = {}
        self._sessions: dict[str, SessionRuntime] = {}
        self._ended: set[str] = set()  # sessions that ended in this run and saw no work since
        self._project_heads: dict[str, str] = {}
        # Pushes counted since the last flush: (marker, head), checked before the store is.
        self._pending_pushes: list[tuple[str, str | None]] = []
        # Topics the host was already told about (shared by the bridge's services: say it once).
        self._told: set[str] = told if told is not None else set()
        # The halted state the host was last told per agent (it assumes "not halted" until told).
        self._told_halted: dict[str, bool] = {}
        # Set by handlers whose event must be flushed right away (push, session deleted).
        self.flush_requested = False
        self._classifier = BackgroundClassifier()

    # -- sessions ----------------------------------------------------------------------------

    def _session(self, session_id: str, now: str | None = None, *, revive: bool = True) -> SessionRuntime:
        """The session's runtime state; an unknown session (e.g. after a restart) is adopted.

        An event in a session that ended in this run makes it open again (``revive``), except one
        that says nothing about work (``session.idle``, which OpenCode also sends after a delete).
        """
        if revive:
            self._ended.discard(session_id)
        runtime = self._sessions.get(session_id)
        if runtime is None:
            runtime = self._sessions[session_id] = SessionRuntime(session_id)
            stored = self._read("sessions", session_id)
            if stored:
                runtime.directory = stored.get("projectPath")
                runtime.agent_id = stored.get("agentId")
                runtime.model = stored.get("model")
                runtime.provider = stored.get("provider")
                runtime.parent_id = stored.get("parentID")
                versions = stored.get("configVersions")
                if isinstance(versions, dict):
                    runtime.config_versions = {str(agent): str(version) for agent, version in versions.items()}
                if stored.get("lastCommit"):
                    runtime.last_commit = (stored.get("projectPath") or "", stored["lastCommit"])
                self._read_ledger(runtime)
            else:
                runtime.directory = self.default_directory
                self.pending.merge("sessions", session_id).set_default.update(
                    {"sessionID": session_id, "createdAt": now or utc_now(),
                     "projectPath": runtime.directory})
                if runtime.directory:  # its stack is recorded now: the report never classifies
                    self._refresh_project(runtime.directory, now or utc_now())
        return runtime

    def _refresh_project(self, directory: str, now: str) -> None:
        """The project is seen now; its stack is (re)classified when its files changed."""
        if not os.path.isabs(directory):
            return
        stored = self._read("projects", directory)
        merge = self.pending.merge("projects", directory)
        merge.set_default.update({"path": directory, "firstSeenAt": now})
        merge.set["lastSeenAt"] = now
        # The project's files are read in a worker thread, never on the event loop; flush() adds
        # the result (see stack.BackgroundClassifier).
        self._classifier.submit(directory, stored.get("fingerprint") if stored else None, now)

    def open_sessions(self) -> list[str]:
        """The sessions this bridge saw events of that have not ended (ended at shutdown)."""
        return [session_id for session_id in self._sessions if session_id not in self._ended]

    def _ancestors(self, runtime: SessionRuntime) -> list[SessionRuntime]:
        """The live sessions above a subagent's session, nearest first (a cycle stops the walk)."""
        found: list[SessionRuntime] = []
        seen = {runtime.session_id}
        parent_id = runtime.parent_id
        while parent_id and parent_id not in seen:
            parent = self._sessions.get(parent_id)
            if parent is None:
                break
            found.append(parent)
            seen.add(parent_id)
            parent_id = parent.parent_id
        return found

    def _counted_calls(self, session_id: str, after_chunk: int = 0) -> tuple[list[str], int]:
        """(the callIDs the session's stored ledger holds from chunk ``after_chunk`` on, how many
        chunks it has): counted by any bridge or import (pending.CallLedgers)."""
        if not self.store.available:
            return [], 0
        prefix = ledger_prefix(session_id).encode()
        ids: list[str] = []
        chunks = 0
        try:
            with self.store.read() as view, view.cursor("calls") as cursor:
                if cursor.set_range(prefix):
                    for raw_key, raw in cursor:
                        if not bytes(raw_key).startswith(prefix):
                            break
                        chunks += 1
                        if chunks > after_chunk:  # the chunks read before are not decoded again
                            chunk = orjson.loads(raw)
                            if isinstance(chunk, dict) and isinstance(chunk.get("callIDs"), list):
                                ids.extend(str(call_id) for call_id in chunk["callIDs"])
        except (StoreError, KeyError, orjson.JSONDecodeError):  # KeyError: an older read-only database
            return ids, chunks
        return ids, chunks

    def _read_ledger(self, runtime: SessionRuntime) -> None:
        """Bring the session's stored ledger into ``seen_calls`` (only the chunks not read yet),
        and tell the flush how many chunks this bridge knows: when no other process added one
        meanwhile, the flush needs not read the ledger again (pending.CallLedgers)."""
        ids, chunks = self._counted_calls(runtime.session_id, runtime.ledger_chunks)
        runtime.seen_calls.update(ids)
        runtime.ledger_chunks = max(runtime.ledger_chunks, chunks)
        self.pending.ledger_chunks[runtime.session_id] = runtime.ledger_chunks

    # -- agents --------------------------------------------------------------------------------

    def _agent_for(self, explicit: str | None, session_id: str | None) -> str:
        if explicit:
            return explicit
        if session_id:
            runtime = self._sessions.get(session_id)
            if runtime is not None and runtime.agent_id:
                return runtime.agent_id
            stored = None if runtime is not None else self._read("sessions", session_id)
            if stored and stored.get("agentId"):
                return str(stored["agentId"])
        return UNKNOWN_AGENT

    def _projection(self, agent_id: str) -> AgentState:
        state = self._projected.get(agent_id)
        if state is None:
            stored = self._read("agents", agent_id)
            state = AgentState.from_record(stored) if stored else AgentState.new(agent_id, self.rules)
            self._projected[agent_id] = state
        return state

    def _gain(self, agent_id: str, xp: float) -> float:
        """Buffer an XP gain; returns what was earned (nothing while the agent is halted)."""
        state = self._projection(agent_id)
        earned = 0.0 if state.halted else xp
        self._add_op(agent_id, [GAIN, earned], state)
        return earned

    def _add_op(self, agent_id: str, op: list[Any], state: AgentState | None = None) -> AgentState:
        state = state or self._projection(agent_id)
        was_halted, sp_before = state.halted, state.skill_points
        levels = apply_op_to_projection(state, op, self.rules)
        self.pending.add_op(agent_id, op)
        self._count_pending(agent_id)
        if levels:
            self._notify("toast", {"message": f"{agent_id} levelled up to SP {state.skill_points:g}",
                                   "variant": "success"})
        if state.halted != self._told_halted.get(agent_id, False) or (
                op[0] in (BUG, REVERT, REINSTATE) and state.skill_points != sp_before):
            self._tell_state(agent_id)
            if state.halted and not was_halted:
                self._notify("toast", {
                    "message": f"Agent {agent_id} is halted (SP {state.skill_points:g}): its tools are "
                               f"blocked until `agent-tracker reinstate {agent_id}`.",
                    "variant": "error"})
        return state

    def _count_pending(self, agent_id: str) -> None:
        self._pending_events[agent_id] = self._pending_events.get(agent_id, 0) + 1
        counts = self.pending.counts
        counts[agent_id] = counts.get(agent_id, 0) + 1

    def _reproject(self, agent_id: str) -> None:
        """After a commit: the stored agent plus the operations still waiting (in flight or new)."""
        self._projected.pop(agent_id, None)
        if not self._pending_events.get(agent_id):
            return  # read again when needed: it may include other bridges' changes
        state = self._projection(agent_id)
        for buffer in (*self._flushing, self.pending):
            for op in buffer.agent_ops.get(agent_id, ()):
                apply_op_to_projection(state, op, self.rules)

    def _tell_state(self, agent_id: str) -> None:
        status = self.status_of(agent_id)
        self._told_halted[agent_id] = status["halted"]
        self._notify("agent.state", status)

    def refresh_agent(self, agent_id: str) -> None:
        """Re-read an agent another bridge or the CLI may have changed (`agent-tracker reinstate`,
        `agent-tracker bug`), with our pending operations applied on top, as the next flush will;
        tell the host if its halt changed."""
        if any(agent_id in buffer.agent_ops for buffer in self._flushing):
            # A flush in flight changes this agent and may commit while we read: the projection
            # (stored + in flight + new, kept as each event came) is the truth until it finished.
            state = self._projection(agent_id)
        else:
            stored = self._read("agents", agent_id)
            state = AgentState.from_record(stored) if stored else AgentState.new(agent_id, self.rules)
            for op in self.pending.agent_ops.get(agent_id, ()):
                apply_op_to_projection(state, op, self.rules)
            self._projected[agent_id] = state
        if state.halted != self._told_halted.get(agent_id, False):
            self._tell_state(agent_id)

    def status_of(self, agent_id: str) -> dict[str, Any]:
        """The agent's sheet with our pending changes applied (see scoring.agent_sheet); a halted
        agent's sheet says why (its latest bug), so the plugin can tell the model. pendingChanges: events
        no flush has taken yet (one in progress has the others)."""
        state = self._projection(agent_id)
        sheet = {**agent_sheet(state), "pendingChanges": self.pending.counts.get(agent_id, 0)}
        if state.halted:
            sheet["haltReason"] = self._halt_reason(agent_id, state)
        return sheet

    def _halt_reason(self, agent_id: str, state: AgentState) -> str:
        bug = self._latest_bug(agent_id)
        why = f"skill points {state.skill_points:g} after {state.total_bugs} bug{'s' if state.total_bugs != 1 else ''}"
        if bug is None:
            return why
        commit = str(bug.get("commitHash") or "")[:12]
        if bug.get("revertedBy"):
            latest = f"its commit {commit} was reverted by {str(bug['revertedBy'])[:12]}"
        else:
            latest = "a bug was reported" + (f" for commit {commit}" if commit else "")
            if bug.get("description"):
                latest += f": {str(bug['description'])[:200]}"
        return f"{why}; the latest: {latest}"

    def _latest_bug(self, agent_id: str) -> dict[str, Any] | None:
        """The agent's latest bug activity: pending (not flushed yet), else stored."""
        prefix = key(agent_id, "")
        buffers = (self.pending, *self._flushing)  # a flush in flight has not stored its bugs yet
        pending = [(record_key, record) for buffer in buffers for (db, record_key), record in buffer.inserts.items()
                   if db == "activities" and record_key.startswith(prefix) and record.get("kind") == "bug"]
        pending += [(op[2], op[3]) for buffer in buffers for op in buffer.agent_ops.get(agent_id, ())
                    if op[0] == REVERT]
        if pending:
            return max(pending, key=lambda item: item[0])[1]
        if not self.store.available:
            return None
        try:
            with self.store.read() as view:
                for _, record in view.scan_backwards("activities", prefix):
                    if record.get("kind") == "bug":
                        return record
        except StoreError:
            pass
        return None

    # -- records -------------------------------------------------------------------------------

    def _find_commit(self, project: str, commit_hash: str) -> tuple[str, dict[str, Any]] | None:
        """A known commit in this project whose hash matches (short or full, either way)."""
        prefix = key(project, "")
        for buffer in (self.pending, *self._flushing):
            for (db, record_key), record in buffer.inserts.items():
                if db == "commits" and record_key.startswith(prefix) and hashes_match(record["hash"], commit_hash):
                    return record_key, record
        if self.store.available:
            try:
                with self.store.read() as view:
                    for record_key, record in view.scan("commits", key(project, commit_hash[:4].lower())):
                        if hashes_match(record["hash"], commit_hash):
                            return record_key, record
            except StoreError:
                pass
        return None

    def _insert_activity(self, agent_id: str, kind: str, now: str, event_id: str,
                         fields: dict[str, Any]) -> None:
        self.pending.inserts[("activities", key(agent_id, now, event_id))] = {
            "agentId": agent_id, "kind": kind, "createdAt": now, **fields}

    def _pending_prefix(self, db: str, prefix: str | tuple[str, ...]) -> bool:
        """Whether a record under ``prefix`` (or one of them) waits to be inserted (in the buffer or in flight)."""
        return any(k[0] == db and k[1].startswith(prefix)
                   for buffer in (self.pending, *self._flushing) for k in buffer.inserts)

    def _read(self, db: str, record_key: str) -> dict[str, Any] | None:
        """The stored record, with what flushes in flight will write to it (not the buffer's changes)."""
        record = None
        if self.store.available:
            try:
                with self.store.read() as view:
                    record = view.get(db, record_key)
            except StoreError:
                pass
        for buffer in self._flushing:
            insert = buffer.inserts.get((db, record_key))
            if insert is not None and record is None:
                record = dict(insert)
            merge = buffer.merges.get((db, record_key))
            if merge is not None:
                record = merge.apply_to(record or {})
        return record

    def _tell_once(self, topic: str, message: str, variant: str) -> None:
        self._notify("log", {"level": "error" if variant == "error" else "warning", "message": message})
        if topic not in self._told:
            self._told.add(topic)
            self._notify("toast", {"message": message, "variant": variant})
