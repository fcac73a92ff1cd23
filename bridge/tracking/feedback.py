"""Feedback events: grades, bugs, reinstatements, retrospectives and activities."""

from __future__ import annotations

from typing import Any

import attrs

from ..protocol.grades import GRADE_NAMES
from ..protocol.params import (
    ActivityLogged,
    AgentReinstated,
    BugReported,
    GradeGiven,
    RetrospectiveRecorded,
)
from ..store import StoreError, key
from .pending import BUG, GRADE, REINSTATE, grade_prefix
from .projects import optional_project_path
from .state import CHECKS, EVENTS, EventRejected, TrackingState


@attrs.frozen
class GradeTarget:
    agent_id: str
    project: str
    commit_key: str  # the commit's record key: the one-grade rule holds on it, not on a hash string
    commit_hash: str
    model: str | None
    provider: str | None
    asked: str = ""  # the hash as the event gave it (or the session's latest): what refusals name
    config_version: str | None = None  # the commit's configuration version (tracking.configs)


def grade_prefixes(target: GradeTarget, grader: str) -> tuple[str, ...]:
    """Where a grade of this commit by this grader is stored: under the commit's key (written so),
    or under the hash it had when graded (how grades were keyed before the hash could change)."""
    return tuple(dict.fromkeys((grade_prefix(target.commit_key, grader),
                                key(target.project, target.commit_hash, grader, ""))))


class FeedbackEvents(TrackingState):
    def _commit_target(self, session_id: str | None, commit_hash: str | None, project_path: str | None,
                       agent_id: str | None, what: str, rule: str) -> GradeTarget | None:
        """The commit a grade or retrospective is about: the one named, else the session's latest.

        None when nothing names a commit and the session has none; EventRejected when the commit
        named is not one the tracker recorded.
        """
        runtime = self._session(session_id) if session_id else None
        if commit_hash:
            project = optional_project_path(project_path) or (runtime and runtime.directory) or self.default_directory
            if not project:
                raise EventRejected(f"{what} needs projectPath (or a session with a directory)")
            commit_hash = commit_hash.lower()
        elif runtime and runtime.last_commit:
            project, commit_hash = runtime.last_commit
        else:
            return None
        found = self._find_commit(project, commit_hash)
        if found is None:
            raise EventRejected(f"There is no commit {commit_hash} in {project} to {what}: {rule} "
                                f"(see `agent-tracker export`).")
        commit_key, commit = found
        # It belongs to the agent and setup that made the commit, whoever writes it and from where.
        return GradeTarget(
            agent_id=commit.get("agentId") or agent_id or self._agent_for(None, session_id),
            project=project, commit_key=commit_key, commit_hash=commit.get("hash", commit_hash),
            model=commit.get("model") or (runtime.model if runtime else None),
            provider=commit.get("provider") or (runtime.provider if runtime else None), asked=commit_hash,
            config_version=commit.get("configVersion"))

    @CHECKS("grade")
    def _resolve_grade(self, p: GradeGiven) -> GradeTarget:
        """The graded commit, or EventRejected (nothing to grade, or already graded)."""
        target = self._commit_target(p.session_id, p.commit_hash, p.project_path, p.agent_id, "grade",
                                     "grades are given to commits the tracker recorded")
        if target is None:
            raise EventRejected(
                "There is no commit to grade: give commitHash (and projectPath), or grade in a "
                "session after its agent committed.")
        prefixes = grade_prefixes(target, p.grader)
        already = self._pending_prefix("communication", prefixes)
        if not already and self.store.available:
            try:
                with self.store.read() as view:
                    already = any(True for prefix in prefixes for _ in view.scan("communication", prefix))
            except StoreError:
                pass
        if already:
            raise EventRejected(
                f"Commit {target.asked[:12]} was already graded by the {p.grader}: each commit gets one "
                f"agent grade and one user grade.")
        return target

    @EVENTS("grade")
    def _grade(self, p: GradeGiven, now: str, event_id: str, target: GradeTarget) -> dict[str, Any]:
        prefixes = grade_prefixes(target, p.grader)
        record_key = prefixes[0] + key(now, event_id)
        self.pending.inserts[("communication", record_key)] = {
            "agentId": target.agent_id, "projectPath": target.project, "commitHash": target.commit_hash,
            "grade": p.grade, "gradeName": GRADE_NAMES[p.grade], "grader": p.grader,
            "reason": p.reason, "sessionID": p.session_id, "createdAt": now,
            "model": target.model, "provider": target.provider,
        }
        if target.config_version is not None:
            self.pending.inserts[("communication", record_key)]["configVersion"] = target.config_version
        state = self._add_op(target.agent_id, [GRADE, p.grade, record_key, prefixes])
        return {"agentId": target.agent_id, "commitHash": target.commit_hash, "grade": p.grade,
                "communicationScore": state.communication_score}

    @EVENTS("bug.reported")
    def _bug_reported(self, p: BugReported, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        agent_id = self._agent_for(p.agent_id, p.session_id)
        runtime = self._sessions.get(p.session_id) if p.session_id else None
        self._insert_activity(agent_id, "bug", now, event_id, {
            "description": p.description, "commitHash": p.commit_hash,
            "projectPath": optional_project_path(p.project_path) or (runtime.directory if runtime else None),
            "sessionID": p.session_id,
            "model": runtime.model if runtime else None,
            "provider": runtime.provider if runtime else None,
            **({"configVersion": version} if runtime and (version := runtime.config_version(agent_id)) else {})})
        state = self._add_op(agent_id, [BUG])
        # Stored at once: other OpenCode windows and `agent-tracker reinstate` must see a halt now.
        self.flush_requested = True
        return self.status_of(state.agent_id)

    @EVENTS("agent.reinstate")
    def _reinstate(self, p: AgentReinstated, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        self._insert_activity(p.agent_id, "reinstate", now, event_id, {"reason": p.reason})
        self._add_op(p.agent_id, [REINSTATE])
        self.flush_requested = True
        return self.status_of(p.agent_id)

    @CHECKS("retrospective.recorded")
    def _resolve_retrospective(self, p: RetrospectiveRecorded) -> GradeTarget | None:
        """The commit the retrospective is about (named, else the session's latest), if any."""
        return self._commit_target(p.session_id, p.commit_hash, p.project_path, p.agent_id,
                                   "write a retrospective for",
                                   "retrospectives are written for commits the tracker recorded")

    @EVENTS("retrospective.recorded")
    def _retrospective(self, p: RetrospectiveRecorded, now: str, event_id: str,
                       target: GradeTarget | None) -> dict[str, Any]:
        # Like a grade, it is about the agent that made the commit (a subagent's, in its parent).
        agent_id = target.agent_id if target else self._agent_for(p.agent_id, p.session_id)
        record: dict[str, Any] = {
            "agentId": agent_id, "sessionID": p.session_id, "summary": p.summary,
            "wentWell": p.went_well, "toImprove": p.to_improve, "lessons": p.lessons,
            "createdAt": now}
        if p.author:
            record["author"] = p.author
        if target:
            record.update({"commitHash": target.commit_hash, "projectPath": target.project,
                           "model": target.model, "provider": target.provider})
        self.pending.inserts[("retrospectives", key(agent_id, now, event_id))] = record
        self._count_pending(agent_id)
        return {"agentId": agent_id, "commitHash": target.commit_hash if target else None}

    @EVENTS("activity.logged")
    def _activity(self, p: ActivityLogged, now: str, event_id: str, context: Any = None) -> None:
        agent_id = self._agent_for(p.agent_id, p.session_id)
        self._insert_activity(agent_id, p.kind, now, event_id, {
            "description": p.description, "data": p.data, "sessionID": p.session_id})
        self._count_pending(agent_id)
