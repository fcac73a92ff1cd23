"""Usage events: what each assistant message (one model call) cost, in dollars, tokens and time.

``usage.recorded`` is idempotent per message: the record under ``sessionID \\0 messageID`` is
replaced, never added to, and the flush sums the session's usage per setup again from its
message records (usage_totals). The plugin sends it when a message completes; ``import-opencode``
sends the same for the messages in OpenCode's own history, so a message seen both ways counts once.
"""

from __future__ import annotations

from typing import Any

from ..protocol.params import UsageRecorded
from ..store import key
from .pending import Merge
from .setups import UNKNOWN_AGENT, setup_name
from .state import EVENTS, TrackingState


class UsageEvents(TrackingState):
    @EVENTS("usage.recorded")
    def _usage_recorded(self, p: UsageRecorded, now: str, event_id: str, context: Any = None) -> dict[str, Any]:
        runtime = self._session(p.session_id, now)
        agent_id: str
        if p.agent is not None:  # the message's own agent and model (a session may switch)
            agent_id, provider, model = p.agent.id, p.agent.provider, p.agent.model
        else:
            agent_id, provider, model = runtime.agent_id or UNKNOWN_AGENT, runtime.provider, runtime.model
        tokens = p.tokens
        # The latest values, whole: nothing of an earlier report of this message stays.
        self.pending.merges[("usage", key(p.session_id, p.message_id))] = Merge(set={
            "sessionID": p.session_id, "messageID": p.message_id, "agentId": agent_id, "provider": provider,
            "model": model, "setup": setup_name(agent_id, provider, model), "cost": p.cost,
            "tokens": {"input": tokens.input, "output": tokens.output, "reasoning": tokens.reasoning,
                       "cacheRead": tokens.cache_read, "cacheWrite": tokens.cache_write},
            "durationMs": p.duration_ms, "recordedAt": now,
            **({"configVersion": version} if (version := runtime.config_version(agent_id)) else {}),
        })
        self.pending.merge("sessions", p.session_id).set["updatedAt"] = now
        return {"recorded": True}
