"""The tracking service: events in, buffered changes out, one transaction per flush.

Hook-driven events never write to LMDB. Each accepted event is appended to the crash
journal, applied to the write buffer (bridge.pending) and to an in-memory projection of
each touched agent (for read-your-writes and immediate halt detection). ``flush`` applies
the buffer in one Store.write transaction together with the journal sequence it covers.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any, Callable

import attrs
import orjson

from . import faults
from . import messages as m
from .config import ScoringRules
from .git_commands import hashes_match, recognise_commit, recognise_push
from .journal import Journal, OrphanJournal
from .pending import (BUG, COMMIT, GAIN, GRADE, PUSH, REINSTATE, PendingChanges,
                      apply_op_to_projection, grade_prefix)
from .scoring import GRADE_NAMES, AgentState
from .stack import BackgroundClassifier
from .store import DatabaseFull, Store, StoreError, key
from .timestamps import utc_now

UNKNOWN_AGENT = "unknown"
Notify = Callable[[str, dict[str, Any]], None]


class EventRejected(ValueError):
    """A well-formed event that the rules refuse (e.g. a second user grade for one commit)."""


class AlreadyCounted(Exception):
    """An event that was counted before (a repeated callID): answered, not journaled."""

    def __init__(self, result: dict[str, Any]):
        super().__init__(result)
        self.result = result


MAX_NESTING = 200


def sanitize(value: Any, depth: int = 0) -> Any:
    """Replace what orjson cannot encode: lone surrogates, integers beyond 64 bits, deep nesting."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if depth >= MAX_NESTING:
        return "<nested too deep>"
    if isinstance(value, dict):
        return {sanitize(k, depth + 1): sanitize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v, depth + 1) for v in value]
    return value


@attrs.define
class SessionRuntime:
    session_id: str
    directory: str | None = None
    agent_id: str | None = None
    model: str | None = None
    provider: str | None = None
    last_commit: tuple[str, str] | None = None  # (projectPath, hash)
    seen_calls: set[str] = attrs.Factory(set)


@attrs.frozen
class GradeTarget:
    agent_id: str
    project: str
    commit_hash: str
    model: str | None
    provider: str | None


@attrs.frozen
class FlushResult:
    entries_written: int
    duration_ms: float
    errors: list[str]
    transactions: int

    def to_wire(self) -> dict[str, Any]:
        return {"entriesWritten": self.entries_written, "durationMs": round(self.duration_ms, 3),
                "errors": self.errors, "transactions": self.transactions}


class TrackingService:
    def __init__(self, store: Store, rules: ScoringRules, *, journal: Journal | None = None,
                 journal_id: str | None = None, default_directory: str | None = None,
                 notify: Notify | None = None, told: set[str] | None = None):
        self.store = store
        self.rules = rules
        self.journal = journal
        # Event ids (part of record keys) must be unique across processes and flushes.
        self.journal_id = journal.journal_id if journal else (journal_id or secrets.token_hex(6))
        self._events_accepted = 0
        self.default_directory = default_directory
        self._notify = notify or (lambda method, params: None)
        self.pending = PendingChanges()
        self._projected: dict[str, AgentState] = {}
        self._pending_events: dict[str, int] = {}
        self._sessions: dict[str, SessionRuntime] = {}
        self._project_heads: dict[str, str] = {}
        self._pushed_heads: dict[str, str] = {}
        self._journal_seq = 0
        # Topics the host was already told about (shared by the bridge's services: say it once).
        self._told: set[str] = told if told is not None else set()
        # The halted state the host was last told per agent (it assumes "not halted" until told).
        self._told_halted: dict[str, bool] = {}
        self._handlers: dict[str, Callable[[Any, str, str], Any]] = {
            "session.created": self._session_created,
            "session.updated": self._session_updated,
            "session.idle": self._session_idle,
            "session.deleted": self._session_deleted,
            "tool.executed": self._tool_executed,
            "command.executed": self._command_executed,
            "commit.completed": self._commit_completed,
            "commit.pushed": self._commit_pushed,
            "grade": self._grade,
            "bug.reported": self._bug_reported,
            "retrospective.recorded": self._retrospective,
            "activity.logged": self._activity,
            "agent.reinstate": self._reinstate,
        }
        # Set by handlers whose event must be flushed right away (push, session deleted).
        self.flush_requested = False
        self._classifier = BackgroundClassifier()

    # -- intake ----------------------------------------------------------------------------

    def handle(self, method: str, params: Any, received_at: str | None = None,
               raw: dict[str, Any] | None = None) -> Any:
        """Check, journal, then apply one structured event. Raises EventRejected untouched.

        ``raw`` is the event's wire params when the caller has them (the bridge does), which
        saves unstructuring them again for the journal.
        """
        received_at = received_at or utc_now()
        try:
            context = self._prepare(method, params)  # may refuse: nothing journaled then
        except AlreadyCounted as counted:
            return counted.result  # changes nothing, so it is not journaled either
        wire = raw if raw is not None else m.unstructure_wire(params)
        try:
            if self.journal is not None:
                self._journal_seq = self.journal.append(received_at, method, wire)
            else:
                orjson.dumps(wire)  # the same check: records are written with orjson too
        except TypeError:
            # Valid JSON that orjson cannot write (a lone surrogate from a cut emoji, an integer
            # beyond 64 bits, nesting deeper than 254): keep the event, with those values replaced.
            wire = sanitize(wire)
            params = m.structure_params(method, wire)
            context = self._prepare(method, params)
            if self.journal is not None:
                self._journal_seq = self.journal.append(received_at, method, wire)
        if faults.ENABLED:
            faults.crash_point("event")
        self.pending.events += 1
        self._events_accepted += 1
        event_id = f"{self.journal_id}:{self._journal_seq if self.journal is not None else self._events_accepted}"
        return self._handlers[method](params, received_at, event_id, context)

    def replay(self, orphan: OrphanJournal, after_seq: int) -> int:
        """Re-apply an orphan journal's entries after ``after_seq`` (exactly-once replay)."""
        replayed = 0
        for entry in orphan.entries():
            if entry.seq <= after_seq or entry.method not in self._handlers:
                continue
            try:
                params = m.structure_params(entry.method, entry.params)
                context = self._prepare(entry.method, params)
            except (m.InvalidParams, EventRejected, AlreadyCounted):
                continue
            self._journal_seq = entry.seq
            self.pending.events += 1
            self._handlers[entry.method](params, entry.received_at, f"{self.journal_id}:{entry.seq}", context)
            replayed += 1
        return replayed

    def _prepare(self, method: str, params: Any) -> Any:
        """The checks that can refuse an event, run before it is journaled."""
        if method == "tool.executed":
            runtime = self._sessions.get(params.session_id)
            if runtime is not None and params.call_id in runtime.seen_calls:
                raise AlreadyCounted({"counted": False, "reason": "duplicate callID"})
            return None
        if method == "grade":
            return self._resolve_grade(params)
        if method in ("commit.completed", "commit.pushed"):
            runtime = self._session(params.session_id) if params.session_id else None
            project = params.project_path or (runtime and runtime.directory) or self.default_directory
            if not project:
                raise EventRejected(f"{method} needs projectPath (or a session with a directory)")
            return project
        return None

    # -- sessions ----------------------------------------------------------------------------

    def _session(self, session_id: str, now: str | None = None) -> SessionRuntime:
        """The session's runtime state; an unknown session (e.g. after a restart) is adopted."""
        runtime = self._sessions.get(session_id)
        if runtime is None:
            runtime = self._sessions[session_id] = SessionRuntime(session_id)
            stored = self._read("sessions", session_id)
            if stored:
                runtime.directory = stored.get("projectPath")
                runtime.agent_id = stored.get("agentId")
                runtime.model = stored.get("model")
                runtime.provider = stored.get("provider")
                if stored.get("lastCommit"):
                    runtime.last_commit = (stored.get("projectPath") or "", stored["lastCommit"])
            else:
                runtime.directory = self.default_directory
                self.pending.merge("sessions", session_id).set_default.update(
                    {"sessionID": session_id, "createdAt": now or utc_now(),
                     "projectPath": runtime.directory})
        return runtime

    def _session_created(self, p: m.SessionCreated, now: str, event_id: str, context: Any = None) -> None:
        runtime = self._session(p.session_id, now)
        runtime.directory = p.directory or runtime.directory or self.default_directory
        merge = self.pending.merge("sessions", p.session_id)
        merge.set_default.update({"sessionID": p.session_id, "createdAt": now})
        merge.set.update({"projectPath": runtime.directory, "updatedAt": now})
        if p.title is not None:
            merge.set["title"] = p.title
        if p.parent_id is not None:
            merge.set["parentID"] = p.parent_id
        if p.agent is not None:
            self._set_agent(runtime, p.agent, now)
        if runtime.directory:
            self._refresh_project(runtime.directory, now)

    def _session_updated(self, p: m.SessionUpdated, now: str, event_id: str, context: Any = None) -> None:
        runtime = self._session(p.session_id, now)
        merge = self.pending.merge("sessions", p.session_id)
        merge.set["updatedAt"] = now
        if p.title is not None:
            merge.set["title"] = p.title
        if p.agent is not None:
            self._set_agent(runtime, p.agent, now)

    def _set_agent(self, runtime: SessionRuntime, agent: m.AgentRef, now: str) -> None:
        runtime.agent_id = agent.id
        runtime.model = agent.model or runtime.model
        runtime.provider = agent.provider or runtime.provider
        merge = self.pending.merge("sessions", runtime.session_id)
        merge.set.update({"agentId": runtime.agent_id, "model": runtime.model,
                          "provider": runtime.provider, "updatedAt": now})
        merge.set_default.update({"sessionID": runtime.session_id, "createdAt": now,
                                  "projectPath": runtime.directory})
        setup = setup_name(runtime.agent_id, runtime.provider, runtime.model)
        setups = merge.set.setdefault("setups", self._stored_setups(runtime.session_id))
        if setup not in setups:
            setups.append(setup)
        self.refresh_agent(agent.id)  # a halt stored by another bridge reaches this host now

    def _stored_setups(self, session_id: str) -> list[str]:
        stored = self._read("sessions", session_id)
        return list(stored.get("setups", [])) if stored else []

    def _session_idle(self, p: m.SessionRef, now: str, event_id: str, context: Any = None) -> None:
        self._session(p.session_id, now)
        self.pending.merge("sessions", p.session_id).set["lastIdleAt"] = now

    def _session_deleted(self, p: m.SessionRef, now: str, event_id: str, context: Any = None) -> None:
        self._session(p.session_id, now)
        self.pending.merge("sessions", p.session_id).set.update({"deletedAt": now, "updatedAt": now})
        self._sessions.pop(p.session_id, None)
        self.flush_requested = True

    def _refresh_project(self, directory: str, now: str) -> None:
        path = Path(directory)
        if not path.is_absolute():
            return
        stored = self._read("projects", directory)
        merge = self.pending.merge("projects", directory)
        merge.set_default.update({"path": directory, "firstSeenAt": now})
        merge.set["lastSeenAt"] = now
        # The project's files are read in a worker thread; flush() adds the result.
        self._classifier.submit(directory, stored.get("fingerprint") if stored else None, now)

    def _add_classifications(self) -> None:
        for directory, fields in self._classifier.finished():
            merge = self.pending.merge("projects", directory)
            merge.set_default.update({"path": directory, "firstSeenAt": fields["classifiedAt"]})
            merge.set.update(fields)

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
                return stored["agentId"]
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
        earned = 0.0 if state.skill_points <= 0 else xp
        self._add_op(agent_id, [GAIN, earned], state)
        return earned

    def _add_op(self, agent_id: str, op: list[Any], state: AgentState | None = None) -> AgentState:
        state = state or self._projection(agent_id)
        was_halted, sp_before = state.halted, state.skill_points
        levels = apply_op_to_projection(state, op, self.rules)
        self.pending.add_op(agent_id, op)
        self._pending_events[agent_id] = self._pending_events.get(agent_id, 0) + 1
        if levels:
            self._notify("toast", {"message": f"{agent_id} levelled up to SP {state.skill_points:g}",
                                   "variant": "success"})
        if state.halted != self._told_halted.get(agent_id, False) or (
                op[0] in (BUG, REINSTATE) and state.skill_points != sp_before):
            self._tell_state(agent_id)
            if state.halted and not was_halted:
                self._notify("toast", {
                    "message": f"Agent {agent_id} is halted (SP {state.skill_points:g}): its tools are "
                               f"blocked until `agent-tracker reinstate {agent_id}`.",
                    "variant": "error"})
        return state

    def _tell_state(self, agent_id: str) -> None:
        status = self.status_of(agent_id)
        self._told_halted[agent_id] = status["halted"]
        self._notify("agent.state", status)

    def refresh_agent(self, agent_id: str) -> None:
        """Re-read an agent another bridge may have changed; tell the host if its halt changed."""
        if self._pending_events.get(agent_id):
            return  # the projection holds our own pending changes on top of the stored state
        self._projected.pop(agent_id, None)
        if self._projection(agent_id).halted != self._told_halted.get(agent_id, False):
            self._tell_state(agent_id)

    def status_of(self, agent_id: str) -> dict[str, Any]:
        state = self._projection(agent_id)
        return {
            "agentId": agent_id,
            "skillPoints": state.skill_points,
            "experiencePoints": state.experience_points,
            "communicationScore": state.communication_score,
            "totalCommits": state.total_commits,
            "totalBugs": state.total_bugs,
            "totalPushes": state.total_pushes,
            "halted": state.halted,
            "pendingChanges": self._pending_events.get(agent_id, 0),
        }

    def status(self, query: m.StatusQuery) -> dict[str, Any]:
        agent_id = self._agent_for(query.agent_id, query.session_id)
        self.refresh_agent(agent_id)
        return self.status_of(agent_id)

    # -- tools, commands, commits, pushes ----------------------------------------------------

    def _tool_executed(self, p: m.ToolExecuted, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        runtime = self._session(p.session_id, now)
        runtime.seen_calls.add(p.call_id)  # repeats were answered in _prepare
        merge = self.pending.merge("sessions", p.session_id)
        merge.set["updatedAt"] = now
        if not p.success:
            merge.add["failedToolCalls"] += 1
            return {"counted": True, "xp": 0}
        agent_id = p.agent_id or runtime.agent_id or self._agent_for(None, p.session_id)
        earned = self._gain(agent_id, self.rules.tool_call_xp)
        merge.add["toolCalls"] += 1
        merge.add["xpEarned"] += earned
        if p.tool == "bash" and p.args and isinstance(p.args.get("command"), str):
            command = p.args["command"]
            project = runtime.directory or self.default_directory
            commit = recognise_commit(command, p.output)
            if commit and project:
                self._record_commit(runtime, agent_id, project, commit.short_hash, commit.message, now,
                                    source="bash")
            push = recognise_push(command, p.output)
            if push and project:
                self._record_push(runtime, agent_id, project, push.head, now)
        return {"counted": True, "xp": earned}

    def _command_executed(self, p: m.CommandExecuted, now: str, event_id: str, context: Any = None) -> None:
        self._session(p.session_id, now)
        merge = self.pending.merge("sessions", p.session_id)
        merge.set["updatedAt"] = now
        if not p.success:
            return
        merge.add["commands"] += 1
        merge.add["xpEarned"] += self._gain(self._agent_for(p.agent_id, p.session_id), self.rules.command_xp)

    def _commit_completed(self, p: m.CommitCompleted, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        runtime = self._session(p.session_id, now) if p.session_id else None
        agent_id = self._agent_for(p.agent_id, p.session_id)
        return self._record_commit(runtime, agent_id, context, p.commit_hash, p.task_description, now,
                                   source="commit.completed")

    def _find_commit(self, project: str, commit_hash: str) -> tuple[str, dict[str, Any]] | None:
        """A known commit in this project whose hash matches (short or full, either way)."""
        prefix = key(project, "")
        for (db, record_key), record in self.pending.inserts.items():
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

    def _record_commit(self, runtime: SessionRuntime | None, agent_id: str, project: str,
                       commit_hash: str, task: str | None, now: str, source: str) -> dict[str, Any]:
        commit_hash = commit_hash.lower()
        found = self._find_commit(project, commit_hash)
        if found:
            record_key, record = found
            update: dict[str, Any] = {}
            if len(commit_hash) > len(record["hash"]):
                update["hash"] = commit_hash
            if task and not record.get("taskDescription"):
                update["taskDescription"] = task
            if update:
                pending = self.pending.inserts.get(("commits", record_key))
                if pending is not None:
                    pending.update(update)
                else:
                    self.pending.merge("commits", record_key).set.update(update)
            if runtime:
                runtime.last_commit = (project, update.get("hash", record["hash"]))
            return {"counted": False, "commitHash": update.get("hash", record["hash"]),
                    "reason": "already recorded"}
        record_key = key(project, commit_hash)
        record = {
            "hash": commit_hash, "projectPath": project, "agentId": agent_id,
            "sessionID": runtime.session_id if runtime else None,
            "model": runtime.model if runtime else None,
            "provider": runtime.provider if runtime else None,
            "taskDescription": task, "createdAt": now, "source": source,
        }
        self.pending.inserts[("commits", record_key)] = record
        earned = 0.0 if self._projection(agent_id).halted else self.rules.commit_xp
        self._add_op(agent_id, [COMMIT, record_key, earned])
        self._project_heads[project] = commit_hash
        self.pending.merge("projects", project).set.update({"lastCommit": commit_hash, "lastCommitAt": now})
        if runtime:
            runtime.last_commit = (project, commit_hash)
            merge = self.pending.merge("sessions", runtime.session_id)
            merge.add["commits"] += 1
            merge.add["xpEarned"] += earned
            merge.set["lastCommit"] = commit_hash
        return {"counted": True, "commitHash": commit_hash}

    def _commit_pushed(self, p: m.CommitPushed, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        runtime = self._session(p.session_id, now) if p.session_id else None
        agent_id = self._agent_for(p.agent_id, p.session_id)
        return self._record_push(runtime, agent_id, context, p.head, now)

    def _record_push(self, runtime: SessionRuntime | None, agent_id: str, project: str,
                     head: str | None, now: str) -> dict[str, Any]:
        self.flush_requested = True
        stored_project = None
        if project not in self._project_heads or project not in self._pushed_heads:
            stored_project = self._read("projects", project) or {}
        head = (head or self._project_heads.get(project)
                or (stored_project or {}).get("lastCommit"))
        pushed = self._pushed_heads.get(project) or (stored_project or {}).get("lastPushedHead")
        if head and pushed and hashes_match(head, pushed):
            return {"counted": False, "reason": "this head was already pushed"}
        earned = 0.0 if self._projection(agent_id).halted else self.rules.push_xp
        self._add_op(agent_id, [PUSH, earned])
        if head:
            self._pushed_heads[project] = head
        self.pending.merge("projects", project).set.update({"lastPushedHead": head, "lastPushAt": now})
        if runtime:
            merge = self.pending.merge("sessions", runtime.session_id)
            merge.add["pushes"] += 1
            merge.add["xpEarned"] += earned
        return {"counted": True, "head": head}

    # -- grades, bugs, retrospectives, activities ----------------------------------------------

    def _resolve_grade(self, p: m.GradeGiven) -> GradeTarget:
        """The graded commit, or EventRejected (nothing to grade, or already graded)."""
        runtime = self._session(p.session_id) if p.session_id else None
        if p.commit_hash:
            project = p.project_path or (runtime and runtime.directory) or self.default_directory
            if not project:
                raise EventRejected("grade needs projectPath (or a session with a directory)")
            commit_hash = p.commit_hash.lower()
        elif runtime and runtime.last_commit:
            project, commit_hash = runtime.last_commit
        else:
            raise EventRejected(
                "There is no commit to grade: give commitHash (and projectPath), or grade in a "
                "session after its agent committed.")
        found = self._find_commit(project, commit_hash)
        commit = found[1] if found else {}
        commit_hash = commit.get("hash", commit_hash)
        # The grade belongs to the setup that made the commit, whoever grades and from where.
        target = GradeTarget(
            agent_id=p.agent_id or commit.get("agentId") or self._agent_for(None, p.session_id),
            project=project, commit_hash=commit_hash,
            model=commit.get("model") or (runtime.model if runtime else None),
            provider=commit.get("provider") or (runtime.provider if runtime else None))
        prefix = grade_prefix(project, commit_hash, p.grader)
        already = any(k[0] == "communication" and k[1].startswith(prefix) for k in self.pending.inserts)
        if not already and self.store.available:
            try:
                with self.store.read() as view:
                    already = any(True for _ in view.scan("communication", prefix))
            except StoreError:
                pass
        if already:
            raise EventRejected(
                f"Commit {commit_hash[:12]} was already graded by the {p.grader}: each commit gets one "
                f"agent grade and one user grade.")
        return target

    def _grade(self, p: m.GradeGiven, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        target: GradeTarget = context
        prefix = grade_prefix(target.project, target.commit_hash, p.grader)
        record_key = prefix + key(now, event_id)
        self.pending.inserts[("communication", record_key)] = {
            "agentId": target.agent_id, "projectPath": target.project, "commitHash": target.commit_hash,
            "grade": p.grade, "gradeName": GRADE_NAMES[p.grade], "grader": p.grader,
            "reason": p.reason, "sessionID": p.session_id, "createdAt": now,
            "model": target.model, "provider": target.provider,
        }
        state = self._add_op(target.agent_id, [GRADE, p.grade, record_key, prefix])
        return {"agentId": target.agent_id, "commitHash": target.commit_hash, "grade": p.grade,
                "communicationScore": state.communication_score}

    def _bug_reported(self, p: m.BugReported, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        agent_id = self._agent_for(p.agent_id, p.session_id)
        runtime = self._sessions.get(p.session_id) if p.session_id else None
        self._insert_activity(agent_id, "bug", now, event_id, {
            "description": p.description, "commitHash": p.commit_hash,
            "projectPath": p.project_path or (runtime.directory if runtime else None),
            "sessionID": p.session_id,
            "model": runtime.model if runtime else None,
            "provider": runtime.provider if runtime else None})
        state = self._add_op(agent_id, [BUG])
        return self.status_of(state.agent_id)

    def _reinstate(self, p: m.AgentReinstated, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        self._insert_activity(p.agent_id, "reinstate", now, event_id, {"reason": p.reason})
        self._add_op(p.agent_id, [REINSTATE])
        self.flush_requested = True
        return self.status_of(p.agent_id)

    def _retrospective(self, p: m.RetrospectiveRecorded, now: str, event_id: str, context: Any = None) -> None:
        agent_id = self._agent_for(p.agent_id, p.session_id)
        self.pending.inserts[("retrospectives", key(agent_id, now, event_id))] = {
            "agentId": agent_id, "sessionID": p.session_id, "summary": p.summary,
            "wentWell": p.went_well, "toImprove": p.to_improve, "lessons": p.lessons,
            "createdAt": now}
        self._pending_events[agent_id] = self._pending_events.get(agent_id, 0) + 1

    def _activity(self, p: m.ActivityLogged, now: str, event_id: str, context: Any = None) -> None:
        agent_id = self._agent_for(p.agent_id, p.session_id)
        self._insert_activity(agent_id, p.kind, now, event_id, {
            "description": p.description, "data": p.data, "sessionID": p.session_id})
        self._pending_events[agent_id] = self._pending_events.get(agent_id, 0) + 1

    def _insert_activity(self, agent_id: str, kind: str, now: str, event_id: str,
                         fields: dict[str, Any]) -> None:
        self.pending.inserts[("activities", key(agent_id, now, event_id))] = {
            "agentId": agent_id, "kind": kind, "createdAt": now, **fields}

    # -- flushing ------------------------------------------------------------------------------

    def flush(self) -> FlushResult:
        """Apply the buffer in one write transaction; on failure keep everything."""
        started = time.perf_counter()
        self.flush_requested = False
        self._add_classifications()
        if not self.pending:
            return FlushResult(0, (time.perf_counter() - started) * 1000, [], 0)
        if self.journal is not None or self._journal_seq:
            self.pending.meta[f"journal:{self.journal_id}"] = self._journal_seq
        now = utc_now()

        def apply(view: Any) -> Any:
            outcome = self.pending.apply(view, self.rules, now)
            if faults.ENABLED:
                faults.crash_point("in-flush")
            return outcome

        try:
            outcome = self.store.write(apply)
        except StoreError as exc:
            self._tell_once(type(exc).__name__, str(exc), "error" if isinstance(exc, DatabaseFull) else "warning")
            return FlushResult(0, (time.perf_counter() - started) * 1000, [str(exc)], 0)
        if faults.ENABLED:
            faults.crash_point("after-commit")
        if self.journal is not None:
            self.journal.truncate()
        self.pending = PendingChanges()
        self._projected.clear()
        self._pending_events.clear()
        for change in outcome.agents:
            # The merged state may include another bridge's halt or reinstatement.
            if change.after.halted != self._told_halted.get(change.after.agent_id, False):
                self._tell_state(change.after.agent_id)
        return FlushResult(outcome.entries_written, (time.perf_counter() - started) * 1000, [], 1)

    def _tell_once(self, topic: str, message: str, variant: str) -> None:
        self._notify("log", {"level": "error" if variant == "error" else "warning", "message": message})
        if topic not in self._told:
            self._told.add(topic)
            self._notify("toast", {"message": message, "variant": variant})

    def _read(self, db: str, record_key: str) -> dict[str, Any] | None:
        if not self.store.available:
            return None
        try:
            with self.store.read() as view:
                return view.get(db, record_key)
        except StoreError:
            return None


def setup_name(agent_id: str | None, provider: str | None, model: str | None) -> str:
    model_name = f"{provider}/{model}" if provider and model else (model or "unknown-model")
    return f"{agent_id or UNKNOWN_AGENT}|{model_name}"
