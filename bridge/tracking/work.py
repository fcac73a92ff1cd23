"""Work events: tool calls, commands, commits and pushes (a bash `git commit` / `git revert` /
`git push` included). A new commit is announced to the host (``commit.recorded``: the plugin asks
the user to grade it), checked for being a fix-up or a revert of an earlier one (outcomes), and, in a
subagent's session, becomes the latest commit of the sessions above it too (a `/grade` there grades
it)."""

from __future__ import annotations

from typing import Any

from ..protocol.params import (
    CommandExecuted,
    CommitCompleted,
    CommitPushed,
    ToolExecuted,
)
from ..store import SEP, StoreError, key
from .git_commands import GitCommit, hashes_match, recognise_commit, recognise_push, reverted_in_message
from .outcomes import OutcomeEvents
from .pending import CALLS, COMMIT, PUSH, push_marker, pushed_before
from .projects import optional_project_path
from .state import (
    CHECKS,
    EVENTS,
    AlreadyCounted,
    CommitSeen,
    EventRejected,
    SessionRuntime,
)


DUPLICATE_CALL = {"counted": False, "reason": "duplicate callID"}


class WorkEvents(OutcomeEvents):
    @CHECKS("tool.executed")
    def _check_tool_call(self, p: ToolExecuted) -> None:
        runtime = self._sessions.get(p.session_id)
        if runtime is not None:
            counted = p.call_id in runtime.seen_calls
        else:  # a session this bridge has not seen yet: another bridge or an import may have
            counted = p.call_id in self._counted_calls(p.session_id)[0]
        if counted:
            raise AlreadyCounted(dict(DUPLICATE_CALL))

    @EVENTS("tool.executed")
    def _tool_executed(self, p: ToolExecuted, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        runtime = self._session(p.session_id, now)
        if p.session_id not in self.pending.ledger_chunks:  # once per session between flushes
            self._read_ledger(runtime)
        if p.call_id in runtime.seen_calls:  # journaled before this bridge knew the session's ledger
            return dict(DUPLICATE_CALL)
        runtime.seen_calls.add(p.call_id)
        self.pending.merge("sessions", p.session_id).set["updatedAt"] = now
        # Counted (session counters, XP) in the flush, against the session's stored ledger of
        # callIDs: a call another process counted meanwhile counts once.
        if not p.success:
            self.pending.failed_calls.setdefault(p.session_id, []).append(p.call_id)
            return {"counted": True, "xp": 0}
        agent_id = p.agent_id or runtime.agent_id or self._agent_for(None, p.session_id)
        state = self._projection(agent_id)
        earned = 0.0 if state.halted else self.rules.tool_call_xp
        self._add_op(agent_id, [CALLS, 0.0, {p.session_id: {p.call_id: earned}}, earned], state)
        if p.tool == "bash" and p.args and isinstance(p.args.get("command"), str):
            command = p.args["command"]
            project = runtime.directory or self.default_directory
            commit = recognise_commit(command, p.output)
            if commit and project:
                self._record_commit(runtime, agent_id, project, commit, now, event_id, source="bash")
            push = recognise_push(command, p.output)
            if push and project:
                self._record_push(runtime, agent_id, project, push.head, push.branch, now)
        return {"counted": True, "xp": earned}

    @EVENTS("command.executed")
    def _command_executed(self, p: CommandExecuted, now: str, event_id: str, context: Any = None) -> None:
        self._session(p.session_id, now)
        merge = self.pending.merge("sessions", p.session_id)
        merge.set["updatedAt"] = now
        if not p.success:
            return
        merge.add["commands"] += 1
        merge.add["xpEarned"] += self._gain(self._agent_for(p.agent_id, p.session_id), self.rules.command_xp)

    @CHECKS("commit.completed")
    def _check_commit(self, p: CommitCompleted) -> str:
        return self._project_of(p.project_path, p.session_id, "commit.completed")

    @CHECKS("commit.pushed")
    def _check_push(self, p: CommitPushed) -> str:
        return self._project_of(p.project_path, p.session_id, "commit.pushed")

    def _project_of(self, given: str | None, session_id: str | None, method: str) -> str:
        runtime = self._session(session_id) if session_id else None
        project = optional_project_path(given) or (runtime and runtime.directory) or self.default_directory
        if not project:
            raise EventRejected(f"{method} needs projectPath (or a session with a directory)")
        return project

    @EVENTS("commit.completed")
    def _commit_completed(self, p: CommitCompleted, now: str, event_id: str, project: str) -> dict[str, Any]:
        runtime = self._session(p.session_id, now) if p.session_id else None
        agent_id = self._agent_for(p.agent_id, p.session_id)
        commit = GitCommit(p.commit_hash, p.task_description or "",
                           reverts=tuple(reverted_in_message(p.task_description)))
        return self._record_commit(runtime, agent_id, project, commit, now, event_id, source="commit.completed")

    def _record_commit(self, runtime: SessionRuntime | None, agent_id: str, project: str, commit: GitCommit,
                       now: str, event_id: str, source: str) -> dict[str, Any]:
        commit_hash, task = commit.short_hash.lower(), commit.message or None
        head_before = self._project_head(project)
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
            # A second report of a commit may be the first to say what it reverts (its full message).
            self._note_reverts(runtime, project, update.get("hash", record["hash"]), commit.reverts, None, now,
                               event_id)
            return {"counted": False, "commitHash": update.get("hash", record["hash"]),
                    "reason": "already recorded"}
        record_key = key(project, commit_hash)
        session_id = runtime.session_id if runtime else None
        record = {
            "hash": commit_hash, "projectPath": project, "agentId": agent_id,
            "sessionID": runtime.session_id if runtime else None,
            "model": runtime.model if runtime else None,
            "provider": runtime.provider if runtime else None,
            "taskDescription": task, "createdAt": now, "source": source,
        }
        version = runtime.config_version(agent_id) if runtime else None
        if version is not None:
            record["configVersion"] = version  # the setup's version: its grades and bugs take it too
        if runtime and runtime.parent_id:
            record["parentID"] = runtime.parent_id  # made by a subagent: the report credits its root
        if runtime:
            self._note_fixup(runtime, record, commit.amend, now)
        self.pending.inserts[("commits", record_key)] = record
        earned = 0.0 if self._projection(agent_id).halted else self.rules.commit_xp
        # Counted for the agent and the session at flush, unless the store holds it by then.
        self._add_op(agent_id, [COMMIT, record_key, earned, session_id])
        self._project_heads[project] = commit_hash
        self.pending.merge("projects", project).set.update({"lastCommit": commit_hash, "lastCommitAt": now})
        if runtime is None or runtime.directory != project:  # a project no session named: record its stack
            self._refresh_project(project, now)
        if runtime:
            runtime.commits.append(CommitSeen(record_key, commit_hash, task, now))
            # The sessions above a subagent's see its commit as their latest (a /grade there grades it).
            for session in [runtime, *self._ancestors(runtime)]:
                session.last_commit = (project, commit_hash)
                self.pending.merge("sessions", session.session_id).set["lastCommit"] = commit_hash
        self._note_reverts(runtime, project, commit_hash, commit.reverts, head_before, now, event_id)
        announced = {"commitHash": commit_hash, "projectPath": project, "agentId": agent_id,
                     "sessionID": session_id, "message": task}
        self._notify("commit.recorded", {name: value for name, value in announced.items() if value is not None})
        return {"counted": True, "commitHash": commit_hash}

    def _project_head(self, project: str) -> str | None:
        """The project's latest commit known before this event (what `git revert HEAD` reverts)."""
        head = self._project_heads.get(project)
        if head is None:
            stored = self._read("projects", project) or {}
            head = stored.get("lastCommit")
        return head

    @EVENTS("commit.pushed")
    def _commit_pushed(self, p: CommitPushed, now: str, event_id: str, project: str) -> dict[str, Any]:
        runtime = self._session(p.session_id, now) if p.session_id else None
        agent_id = self._agent_for(p.agent_id, p.session_id)
        return self._record_push(runtime, agent_id, project, p.head, None, now)

    def _record_push(self, runtime: SessionRuntime | None, agent_id: str, project: str,
                     head: str | None, branch: str | None, now: str) -> dict[str, Any]:
        """Count a push once per (project, head); a push that names no head and no known commit,
        once per (session, branch). Checked here against what this bridge knows, and again in the
        flush transaction against the store (another bridge may have counted it)."""
        self.flush_requested = True
        if not head:
            stored_project = self._read("projects", project) or {}
            head = self._project_heads.get(project) or stored_project.get("lastCommit")
        session_id = runtime.session_id if runtime else None
        marker = push_marker(project, head, session_id, branch)
        if self._pushed(marker, head):
            return {"counted": False, "reason": "this head was already pushed"}
        self._pending_pushes.append((marker, head))
        earned = 0.0 if self._projection(agent_id).halted else self.rules.push_xp
        self._add_op(agent_id, [PUSH, earned, marker, head, session_id, now])
        self.pending.merge("projects", project).set.update({"lastPushedHead": head, "lastPushAt": now})
        return {"counted": True, "head": head}

    def _pushed(self, marker: str, head: str | None) -> bool:
        for pending_marker, pending_head in self._pending_pushes:
            if pending_marker == marker or (head and pending_head and hashes_match(pending_head, head)
                                            and pending_marker.rpartition(SEP)[0] == marker.rpartition(SEP)[0]):
                return True
        if not self.store.available:
            return False
        try:
            with self.store.read() as view:
                return pushed_before(view, marker, head)
        except StoreError:
            return False
