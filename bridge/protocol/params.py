"""The parameter classes of the wire contract, one attrs class per method (see methods.METHODS).

Field names are snake_case here and camelCase on the wire (names.wire_name); protocol/schema.json
is the language-neutral source of truth and tests/test_protocol_schema.py holds these classes
against it, field by field.
"""

from __future__ import annotations

from typing import Any, NewType

import attrs

# An identifier or path from the host: non-empty text without NUL (NUL separates key parts).
Id = NewType("Id", str)
Grade = NewType("Grade", int)
Grader = NewType("Grader", str)  # "agent" | "user"
Count = NewType("Count", int)  # a whole number from 0 to MAX_COUNT (tokens, milliseconds)
Money = NewType("Money", float)  # a finite number from 0 to MAX_MONEY (US dollars)
# When an event happened, if not now: ISO-8601 with a time zone, normalised to the stored UTC form
# (structure.py). A replay of recorded sessions sends it; the plugin never does (now is right).
EventTime = NewType("EventTime", str)
# An agent's whole definition (schema $defs/AgentDefinition, tracking.configs): an object of at
# most MAX_DEFINITION_BYTES as JSON (structure.py says so past it). A prompt of a few hundred lines
# is ~30 KiB; 256 KiB leaves room for long ones while bounding what one event puts in the journal.
Definition = NewType("Definition", dict[str, Any])
MAX_DEFINITION_BYTES = 256 * 1024

MAX_ID_LENGTH = 4096
# Bounded sums: usage values are summed per session, per setup and over the whole report. One
# model call is refused beyond these (far above any real call: 10 billion tokens, 115 days, a
# million dollars), so no realistic total can overflow: a session's tokens stay within 64 bits
# for 900 million calls, and no sum of costs reaches infinity.
MAX_COUNT = 10**10
MAX_MONEY = 1e6


@attrs.frozen
class AgentRef:
    id: Id
    model: str | None = None
    provider: str | None = None


@attrs.frozen
class ProjectRef:
    directory: Id
    worktree: str | None = None


@attrs.frozen
class ClientInfo:
    name: str | None = None
    version: str | None = None


@attrs.frozen
class InitializeParams:
    client_info: ClientInfo | None = None
    # Validated separately by bridge.config so errors name the option, value and range.
    config: dict[str, Any] | None = None
    project: ProjectRef | None = None


@attrs.frozen
class NoParams:
    pass


@attrs.frozen
class Event:
    """What every event's params share (methods.METHODS with ``event=True``), declared once.

    ``at`` is keyword-only so that each event class can still list its required fields first.
    """

    at: EventTime | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class SessionCreated(Event):
    session_id: Id
    directory: Id | None = None
    agent: AgentRef | None = None
    title: str | None = None
    parent_id: str | None = None


@attrs.frozen
class SessionUpdated(Event):
    session_id: Id
    agent: AgentRef | None = None
    title: str | None = None


@attrs.frozen
class SessionRef(Event):
    session_id: Id


@attrs.frozen
class SessionEnded(Event):
    session_id: Id
    reason: str | None = None


@attrs.frozen
class ToolExecuted(Event):
    session_id: Id
    call_id: Id
    tool: Id
    success: bool
    agent_id: Id | None = None
    args: dict[str, Any] | None = None
    output: str | None = None
    title: str | None = None


@attrs.frozen
class CommandExecuted(Event):
    session_id: Id
    command: Id
    success: bool = True
    agent_id: Id | None = None
    arguments: str | None = None


@attrs.frozen
class CommitCompleted(Event):
    commit_hash: Id
    project_path: Id | None = None
    agent_id: Id | None = None
    session_id: Id | None = None
    task_description: str | None = None


@attrs.frozen
class CommitPushed(Event):
    project_path: Id | None = None
    agent_id: Id | None = None
    session_id: Id | None = None
    head: Id | None = None


@attrs.frozen
class GradeGiven(Event):
    grade: Grade
    grader: Grader
    session_id: Id | None = None
    agent_id: Id | None = None
    commit_hash: Id | None = None
    project_path: Id | None = None
    reason: str | None = None


@attrs.frozen
class BugReported(Event):
    session_id: Id | None = None
    agent_id: Id | None = None
    description: str | None = None
    commit_hash: Id | None = None
    project_path: Id | None = None


@attrs.frozen
class RetrospectiveRecorded(Event):
    session_id: Id | None = None
    agent_id: Id | None = None
    summary: str | None = None
    went_well: list[str] | None = None
    to_improve: list[str] | None = None
    lessons: list[str] | None = None
    author: Grader | None = None  # who wrote it: "agent" (tracker_retro) or "user" (/retro)
    commit_hash: Id | None = None
    project_path: Id | None = None


@attrs.frozen
class ActivityLogged(Event):
    kind: Id
    session_id: Id | None = None
    agent_id: Id | None = None
    description: str | None = None
    data: dict[str, Any] | None = None


@attrs.frozen
class AgentReinstated(Event):
    agent_id: Id
    reason: str | None = None


@attrs.frozen
class UsageTokens:
    """Tokens of one assistant message by kind, as OpenCode counts them: ``input`` without the
    cache reads and writes, ``output`` without the reasoning (the total is the sum of all five)."""

    input: Count = Count(0)
    output: Count = Count(0)
    reasoning: Count = Count(0)
    cache_read: Count = Count(0)
    cache_write: Count = Count(0)


@attrs.frozen
class UsageRecorded(Event):
    """The usage of one assistant message (one model call). Sent again for the same message, it
    replaces what was recorded for it: never added twice."""

    session_id: Id
    message_id: Id
    cost: Money
    tokens: UsageTokens
    agent: AgentRef | None = None
    duration_ms: Count | None = None


@attrs.frozen
class AgentConfigured(Event):
    """The whole definition an agent ran with in a session (tracking.configs): sent once per change."""

    session_id: Id
    agent_id: Id
    definition: Definition


@attrs.frozen
class StatusQuery:
    agent_id: Id | None = None
    session_id: Id | None = None


@attrs.frozen
class ReportQuery:
    """The report's filters, as `agent-tracker report` takes them (report/filters.py)."""

    project_path: Id | None = None
    stack: str | None = None
    since: str | None = None
    until: str | None = None
    agent: str | None = None
    model: str | None = None
    min_sessions: int | None = None


@attrs.frozen
class RecommendQuery:
    directory: Id | None = None  # the project folder; default: initialize's project.directory
    min_sessions: int | None = None
