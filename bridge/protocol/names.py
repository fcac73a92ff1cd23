"""Field names: snake_case in Python, camelCase on the wire and in the stored records."""

from __future__ import annotations

# OpenCode's own spelling of its identifiers is kept on the wire.
_SPECIAL = {"session_id": "sessionID", "call_id": "callID", "parent_id": "parentID", "message_id": "messageID"}


def wire_name(name: str) -> str:
    """``flush_interval_seconds`` → ``flushIntervalSeconds``; ``session_id`` → ``sessionID``."""
    special = _SPECIAL.get(name)
    if special is not None:
        return special
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
