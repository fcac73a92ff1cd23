"""A past OpenCode session as the events the plugin would have sent for it live.

``import-opencode`` feeds these through the same tracking rules as live events, so one session
imported and one tracked live leave the same records: the translation mirrors the plugin
(examples/opencode-plugin/plugin/agent-tracker: tracker.js, util.js) rule for rule:

* ``session.created`` ``{sessionID, directory, title, parentID}`` when the session was created;
* ``session.updated`` ``{sessionID, agent: {id, model, provider}}`` whenever the agent or model
  changes (the plugin's ``setAgent``: a model is kept while the agent stays the same), at the start
  of the assistant message that uses it, before its tool calls; a session without assistant
  messages takes the session row's agent and model;
* ``tool.executed`` per finished tool call (``completed`` or ``error``; calls OpenCode was cut off
  in were never reported), when it ended, with the input, output excerpt, title and success
  the plugin reports (history.py applies util.js's rules); the plugin's own tools
  (``tracker_*``) and calls its halt guard blocked are left out, as the plugin leaves them out;
* ``usage.recorded`` per assistant message that completed, when it completed (util.js
  ``usageParams``);
* ``session.ended`` (reason ``imported``) last, at the session's last update: a past session has
  ended, as the bridge ends every session still open when OpenCode closes (a session that goes
  on in a running OpenCode opens again with its next event).

Events are ordered by time; at equal times: session, agent, tool calls, usage. Times are epoch
milliseconds (the importer makes them the events' receive times). Pure: no I/O.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from .sessions import AssistantMessage, HistorySession, ToolCall

#: The plugin's own tools (tracker.js TRACKER_TOOLS): never reported as tool calls.
TRACKER_TOOLS = frozenset(("tracker_grade", "tracker_status", "tracker_report", "tracker_retro"))
#: How the plugin's halt guard (tracker.js haltedMessage) starts the error of a call it blocked.
HALT_GUARD_PREFIX = "agent-tracker: agent "

# order of events at equal times
_SESSION, _AGENT, _TOOL, _USAGE, _END = range(5)
ENDED_REASON = "imported"


class Event(NamedTuple):  # a tuple: an import builds one per event
    at: int  # epoch milliseconds: when the plugin would have sent it
    method: str
    params: dict[str, Any]


def session_events(session: HistorySession) -> list[Event]:
    """The events of one session, in the order the plugin would have sent them."""
    ordered: list[tuple[int, int, str, Event]] = []

    def add(at: int, rank: int, tie: str, method: str, params: dict[str, Any]) -> None:
        ordered.append((at, rank, tie, Event(at, method, params)))

    created: dict[str, Any] = {"sessionID": session.id}
    if session.directory:
        created["directory"] = session.directory
    if session.title:
        created["title"] = session.title
    if session.parent_id:
        created["parentID"] = session.parent_id
    add(session.time_created, _SESSION, "", "session.created", created)

    agents = _Agent(session.id)
    by_message: dict[str, AssistantMessage] = {}
    for message in sorted(session.messages, key=lambda m: (m.time_created, m.id)):
        by_message[message.id] = message
        changed = agents.set(message.agent, message.provider_id, message.model_id)
        if changed is not None:
            add(message.time_created, _AGENT, message.id, "session.updated", changed)
        usage = usage_params(message)
        if usage is not None:
            assert message.time_completed is not None
            add(message.time_completed, _USAGE, message.id, "usage.recorded", usage)
    if not session.messages:
        changed = agents.set(session.agent, session.provider_id, session.model_id)
        if changed is not None:
            add(session.time_created, _AGENT, "", "session.updated", changed)

    # A tool call is reported with the agent the session had when it ended (tracker.js reads the
    # session's current agent): the agent of the message it belongs to, in practice.
    for call in session.tool_calls:
        params = tool_params(call)
        if params is None:
            continue
        owner = by_message.get(call.message_id)
        agent = owner.agent if owner is not None and owner.agent else agents.latest_id
        if agent:
            params["agentId"] = agent
        add(call.order_time, _TOOL, call.id, "tool.executed", params)
    last = max([session.time_updated, *(item[0] for item in ordered)])
    add(last, _END, "", "session.ended", {"sessionID": session.id, "reason": ENDED_REASON})
    ordered.sort(key=lambda item: item[:3])
    return [event for *_, event in ordered]


def tool_params(call: ToolCall) -> dict[str, Any] | None:
    """The ``tool.executed`` params of a finished call, or None for a call the plugin never
    reports (unfinished, one of its own tools, one its halt guard blocked, no callID)."""
    if not call.finished or not call.call_id or not call.tool or call.tool in TRACKER_TOOLS:
        return None
    if call.status == "error" and (call.output or "").startswith(HALT_GUARD_PREFIX) and " is halted" in (call.output or ""):
        return None
    params: dict[str, Any] = {"sessionID": call.session_id, "callID": call.call_id, "tool": call.tool,
                              "success": call.success, "args": dict(call.input)}
    if call.output is not None:
        params["output"] = call.output
    if call.title:
        params["title"] = call.title
    return params


def usage_params(message: AssistantMessage) -> dict[str, Any] | None:
    """util.js ``usageParams`` on the message as stored: None until it completed; anything that is
    not a number >= 0 counts 0."""
    if message.time_completed is None or not message.id or not message.session_id:
        return None
    tokens = message.tokens
    params: dict[str, Any] = {
        "sessionID": message.session_id, "messageID": message.id, "cost": _amount(message.cost),
        "tokens": {"input": _count(tokens.input), "output": _count(tokens.output),
                   "reasoning": _count(tokens.reasoning), "cacheRead": _count(tokens.cache_read),
                   "cacheWrite": _count(tokens.cache_write)},
    }
    if message.agent:
        agent: dict[str, Any] = {"id": message.agent}
        if message.model_id:
            agent["model"] = message.model_id
        if message.provider_id:
            agent["provider"] = message.provider_id
        params["agent"] = agent
    if message.time_completed >= message.time_created:
        params["durationMs"] = message.time_completed - message.time_created
    return params


class _Agent:
    """tracker.js ``setAgent``: the session's agent and model; an event only when they change."""

    def __init__(self, session_id: str):
        self.session_id = session_id
        self.current: dict[str, str] | None = None

    @property
    def latest_id(self) -> str | None:
        return self.current["id"] if self.current else None

    def set(self, agent: str | None, provider: str | None, model: str | None) -> dict[str, Any] | None:
        previous = self.current
        agent_id = agent or (previous["id"] if previous else None)
        if not agent_id:
            return None
        same = previous is not None and previous["id"] == agent_id
        model = model or (previous.get("model") if same and previous else None)
        provider = provider or (previous.get("provider") if same and previous else None)
        ref = {"id": agent_id, **({"model": model} if model else {}), **({"provider": provider} if provider else {})}
        if ref == previous:
            return None
        self.current = ref
        return {"sessionID": self.session_id, "agent": ref}


def _count(value: int) -> int:
    return value if value > 0 else 0


def _amount(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0
