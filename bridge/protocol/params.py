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

MAX_ID_LENGTH = 4096


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
class SessionCreated:
    session_id: Id
    directory: Id | None = None
    agent: AgentRef | None = None
    title: str | None = None
    parent_id: str | None = None


@attrs.frozen
class SessionUpdated:
    session_id: Id
    agent: AgentRef | None = None
    title: str | None = None


@attrs.frozen
class SessionRef:
    session_id: Id


@attrs.frozen
class SessionEnded:
    session_id: Id
    reason: str | None = None


@attrs.frozen
class ToolExecuted:
    session_id: Id
    call_id: Id
    tool: Id
    success: bool
    agent_id: Id | None = None
    args: dict[str, Any] | None = None
    output: str | None = None
    title: str | None = None


@attrs.frozen
class CommandExecuted:
    session_id: Id
    command: Id
    success: bool = True
    agent_id: Id | None = None
    arguments: str | None = None


@attrs.frozen
class CommitCompleted:
    commit_hash: Id
    project_path: Id | None = None
    agent_id: Id | None = None
    session_id: Id | None = None
    task_description: str | None = None


@attrs.frozen
class CommitPushed:
    project_path: Id | None = None
    agent_id: Id | None = None
    session_id: Id | None = None
    head: Id | None = None


@attrs.frozen
class GradeGiven:
    grade: Grade
    grader: Grader
    session_id: Id | None = None
    agent_id: Id | None = None
    commit_hash: Id | None = None
    project_path: Id | None = None
    reason: str | None = None


@attrs.frozen
class BugReported:
    session_id: Id | None = None
    agent_id: Id | None = None
    description: str | None = None
    commit_hash: Id | None = None
    project_path: Id | None = None


@attrs.frozen
class RetrospectiveRecorded:
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
class ActivityLogged:
    kind: Id
    session_id: Id | None = None
    agent_id: Id | None = None
    description: str | None = None
    data: dict[str, Any] | None = None


@attrs.frozen
class AgentReinstated:
    agent_id: Id
    reason: str | None = None


@attrs.frozen
class StatusQuery:
    agent_id: Id | None = None
    session_id: Id | None = None


@attrs.frozen
class ReportQuery:
    project_path: Id | None = None
    stack: str | None = None
    since: str | None = None
    min_sessions: int | None = None
