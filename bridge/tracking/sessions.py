"""Session events: which agent and model a session uses, in which project, and when it ends.

A session ends when it is deleted, when the host says so (``session.ended``), or when the bridge
shuts down with it open (the bridge then sends itself ``session.ended`` for each, so the end is
journaled like any event). Its record gets ``endedAt`` and an ``activities`` summary of what it
did (kind ``session``: tool calls, failures, commits, duration) is written with the flush.
"""

from __future__ import annotations

from typing import Any

from ..protocol.params import AgentConfigured, AgentRef, SessionCreated, SessionEnded, SessionRef, SessionUpdated
from ..store import key
from .configs import canonical, version_of
from .pending import SessionSummary
from .projects import optional_project_path
from .setups import UNKNOWN_AGENT, setup_name
from .state import EVENTS, SessionRuntime, TrackingState


class SessionEvents(TrackingState):
    @EVENTS("session.created")
    def _session_created(self, p: SessionCreated, now: str, event_id: str, context: Any = None) -> None:
        runtime = self._session(p.session_id, now)
        runtime.directory = optional_project_path(p.directory) or runtime.directory or self.default_directory
        merge = self.pending.merge("sessions", p.session_id)
        merge.set_default.update({"sessionID": p.session_id, "createdAt": now})
        merge.set.update({"projectPath": runtime.directory, "updatedAt": now})
        if p.title is not None:
            merge.set["title"] = p.title
        if p.parent_id is not None:
            merge.set["parentID"] = p.parent_id
            runtime.parent_id = p.parent_id
        if p.agent is not None:
            self._set_agent(runtime, p.agent, now)
        if runtime.directory:
            self._refresh_project(runtime.directory, now)

    @EVENTS("session.updated")
    def _session_updated(self, p: SessionUpdated, now: str, event_id: str, context: Any = None) -> None:
        runtime = self._session(p.session_id, now)
        merge = self.pending.merge("sessions", p.session_id)
        merge.set["updatedAt"] = now
        if p.title is not None:
            merge.set["title"] = p.title
        if p.agent is not None:
            self._set_agent(runtime, p.agent, now)

    @EVENTS("session.idle")
    def _session_idle(self, p: SessionRef, now: str, event_id: str, context: Any = None) -> None:
        self._session(p.session_id, now, revive=False)
        self.pending.merge("sessions", p.session_id).set["lastIdleAt"] = now

    @EVENTS("session.deleted")
    def _session_deleted(self, p: SessionRef, now: str, event_id: str, context: Any = None) -> None:
        self._end_session(p.session_id, now, event_id, "deleted")
        self.pending.merge("sessions", p.session_id).set.update({"deletedAt": now, "updatedAt": now})
        self.flush_requested = True

    @EVENTS("session.ended")
    def _session_ended(self, p: SessionEnded, now: str, event_id: str, context: Any = None) -> None:
        self._end_session(p.session_id, now, event_id, p.reason or "ended")

    @EVENTS("agent.configured")
    def _agent_configured(self, p: AgentConfigured, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        """The definition an agent runs with in this session: its version (configs.version_of) is
        the session's for that agent, and the definition is stored once per version (``configs``)."""
        runtime = self._session(p.session_id, now)
        definition = canonical(p.definition)
        version = version_of(definition)
        runtime.config_versions[p.agent_id] = version
        record = self.pending.merge("configs", version)
        record.set_default.update({"version": version, "agentId": p.agent_id, "definition": definition,
                                   "firstSeenAt": now})
        record.set["lastSeenAt"] = now
        if runtime.directory:
            record.union.setdefault("projects", [])
            if runtime.directory not in record.union["projects"]:
                record.union["projects"].append(runtime.directory)
        self._set_versions(runtime)
        return {"configVersion": version}

    def _set_versions(self, runtime: SessionRuntime) -> None:
        if not runtime.config_versions:
            return
        merge = self.pending.merge("sessions", runtime.session_id)
        merge.set["configVersions"] = dict(runtime.config_versions)
        version = runtime.config_version()
        if version is not None:
            merge.set["configVersion"] = version

    def _end_session(self, session_id: str, now: str, event_id: str, reason: str) -> None:
        """Mark the session ended and summarise it; a session that ended before and saw no event
        since (e.g. deleted in a later OpenCode run) is not summarised twice."""
        if session_id in self._ended:
            self._sessions.pop(session_id, None)
            return  # it ended in this run already and did no work since: one end, one summary
        seen = session_id in self._sessions
        stored = None if seen else self._read("sessions", session_id)
        runtime = self._session(session_id, now, revive=False)
        # Not updatedAt: the end is not work (a session left open ends only when OpenCode closes).
        self.pending.merge("sessions", session_id).set["endedAt"] = now
        if seen or not (stored and stored.get("endedAt")):
            agent_id = runtime.agent_id or UNKNOWN_AGENT
            self.pending.summaries.append(SessionSummary(key(agent_id, now, event_id), session_id, agent_id,
                                                         reason, now))
            self._count_pending(agent_id)
        self._sessions.pop(session_id, None)
        self._ended.add(session_id)

    def _set_agent(self, runtime: SessionRuntime, agent: AgentRef, now: str) -> None:
        runtime.agent_id = agent.id
        runtime.model = agent.model or runtime.model
        runtime.provider = agent.provider or runtime.provider
        merge = self.pending.merge("sessions", runtime.session_id)
        merge.set.update({"agentId": runtime.agent_id, "model": runtime.model,
                          "provider": runtime.provider, "updatedAt": now})
        # Only when absent: an earlier event of this buffer (session.created) knows when it began.
        for name, value in (("sessionID", runtime.session_id), ("createdAt", now), ("projectPath", runtime.directory)):
            merge.set_default.setdefault(name, value)
        setup = setup_name(runtime.agent_id, runtime.provider, runtime.model)
        setups = merge.set.setdefault("setups", self._stored_setups(runtime.session_id))
        # OpenCode names a new session's agent before its model (a subagent's session.created):
        # once the model is known, the agent without one was that setup all along, not another.
        placeholder = setup_name(runtime.agent_id, None, None)
        if setup != placeholder and placeholder in setups:
            setups.remove(placeholder)
        if setup not in setups:
            setups.append(setup)
        self._set_versions(runtime)  # the version of the agent it runs now
        self.refresh_agent(agent.id)  # a halt stored by another bridge reaches this host now

    def _stored_setups(self, session_id: str) -> list[str]:
        stored = self._read("sessions", session_id)
        return list(stored.get("setups", [])) if stored else []

    def _add_classifications(self) -> None:
        for directory, fields in self._classifier.finished():
            merge = self.pending.merge("projects", directory)
            merge.set_default.update({"path": directory, "firstSeenAt": fields["classifiedAt"]})
            merge.set.update(fields)
