"""Parameter classes of the wire contract and the one converter that structures them.

protocol/schema.json is the language-neutral source of truth; tests/test_protocol_schema.py
checks both ways that METHODS below matches it. Field names are snake_case here and camelCase
on the wire (``sessionID``/``callID``/``parentID`` keep OpenCode's spelling).
"""

from __future__ import annotations

import math
import types
from typing import Any, Mapping, NewType, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from .grades import parse_grade

# An identifier or path from the host: non-empty text without NUL (NUL separates key parts).
Id = NewType("Id", str)
Grade = NewType("Grade", int)
Grader = NewType("Grader", str)  # "agent" | "user"

MAX_ID_LENGTH = 4096


class InvalidParams(ValueError):
    """Params that do not match the contract; the message names the field and what is accepted."""


def _wire(name: str) -> str:
    special = {"session_id": "sessionID", "call_id": "callID", "parent_id": "parentID",
               "message_id": "messageID"}
    if name in special:
        return special[name]
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


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


# Host → bridge. The value is the parameter class; `event` marks methods that change state
# (journaled, and accepted as notifications or requests).
METHODS: dict[str, type] = {
    "initialize": InitializeParams,
    "shutdown": NoParams,
    "exit": NoParams,
    "flush": NoParams,
    "agent.status": StatusQuery,
    "report": ReportQuery,
    "session.created": SessionCreated,
    "session.updated": SessionUpdated,
    "session.idle": SessionRef,
    "session.deleted": SessionRef,
    "tool.executed": ToolExecuted,
    "command.executed": CommandExecuted,
    "commit.completed": CommitCompleted,
    "commit.pushed": CommitPushed,
    "grade": GradeGiven,
    "bug.reported": BugReported,
    "retrospective.recorded": RetrospectiveRecorded,
    "activity.logged": ActivityLogged,
    "agent.reinstate": AgentReinstated,
}
EVENT_METHODS = frozenset({
    "session.created", "session.updated", "session.idle", "session.deleted", "tool.executed",
    "command.executed", "commit.completed", "commit.pushed", "grade", "bug.reported",
    "retrospective.recorded", "activity.logged", "agent.reinstate",
})
# Bridge → host notifications (documented in protocol/; not structured here).
OUTGOING_NOTIFICATIONS = ("log", "toast", "agent.state")


def _strict(kind: type, label: str):
    def structure(value: Any, _type: Any) -> Any:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise InvalidParams(f"must be {label}; got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidParams(f"must be a finite number; got {value!r}")
        return value
    return structure


def _identifier(value: Any, _type: Any) -> str:
    if not isinstance(value, str) or not value or "\x00" in value or len(value) > MAX_ID_LENGTH:
        raise InvalidParams(
            f"must be a non-empty string without NUL characters, at most {MAX_ID_LENGTH} long; "
            f"got {value!r}"[:300]
        )
    return value


def _grade(value: Any, _type: Any) -> int:
    try:
        return parse_grade(value)
    except ValueError as exc:
        raise InvalidParams(str(exc)) from None


def _grader(value: Any, _type: Any) -> str:
    if value not in ("agent", "user") or not isinstance(value, str):
        raise InvalidParams(f'must be "agent" or "user"; got {value!r}')
    return value


def _object(value: Any, _type: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParams(f"must be an object; got {value!r}"[:300])
    return value


def _string_list(value: Any, _type: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidParams(f"must be a list of strings; got {value!r}"[:300])
    return value


def _objects_only(hook: Any) -> Any:
    def structure(value: Any, cls: Any) -> Any:
        return hook(_object(value, cls), cls)
    return structure


def _is_optional(type_: Any) -> bool:
    args = get_args(type_)
    return get_origin(type_) in (Union, types.UnionType) and len(args) == 2 and type(None) in args


def _optional_hook(type_: Any, converter: cattrs.Converter) -> Any:
    # cattrs' own Optional handling dispatches on the inner type at every call, a quarter of
    # the structuring time per event; the inner hook is looked up once here instead.
    inner = next(arg for arg in get_args(type_) if arg is not type(None))
    hook = converter.get_structure_hook(inner)

    def structure(value: Any, _type: Any) -> Any:
        return None if value is None else hook(value, inner)
    return structure


def make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_structure_hook(str, _strict(str, "a string"))
    converter.register_structure_hook(bool, _strict(bool, "true or false"))
    converter.register_structure_hook(int, _strict(int, "an integer"))
    converter.register_structure_hook(float, _strict((int, float), "a number"))  # type: ignore[arg-type]
    converter.register_structure_hook(Id, _identifier)
    converter.register_structure_hook(Grade, _grade)
    converter.register_structure_hook(Grader, _grader)
    converter.register_structure_hook_func(lambda t: t == dict[str, Any], _object)
    converter.register_structure_hook_func(lambda t: t == list[str], _string_list)
    converter.register_structure_hook_factory(_is_optional, _optional_hook)
    # Nested classes first: generated hooks capture the hooks of their field types.
    nested = (AgentRef, ProjectRef, ClientInfo)
    for cls in (*nested, *dict.fromkeys(METHODS.values())):
        overrides = {f.name: override(rename=_wire(f.name)) for f in attrs.fields(cls)}
        hook = make_dict_structure_fn(cls, converter, **overrides)
        if cls in nested:  # a string or a list must not pass for an object of optional fields
            hook = _objects_only(hook)
        converter.register_structure_hook(cls, hook)
    return converter


CONVERTER = make_converter()
# Looked up once: cattrs' per-call dispatch shows up on the hot path.
_STRUCTURE_HOOKS = {method: CONVERTER.get_structure_hook(cls) for method, cls in METHODS.items()}


def structure_params(method: str, params: Any) -> Any:
    """Raw wire params → the method's attrs class, or InvalidParams naming the field."""
    cls = METHODS[method]
    if params is None:
        params = {}
    if type(params) is not dict and not isinstance(params, Mapping):
        raise InvalidParams(f"params of {method} must be an object; got {type(params).__name__}")
    try:
        return _STRUCTURE_HOOKS[method](params, cls)
    except Exception as exc:
        raise InvalidParams(f"{method}: {describe_errors(exc)}") from None


def describe_errors(exc: BaseException) -> str:
    messages = []
    for message in cattrs.transform_error(exc, path="params", format_exception=_format):
        text, _, path = message.rpartition(" @ ")
        wire_path = ".".join(_wire(part) for part in path.split("."))
        messages.append(f"{wire_path} {text}")
    return "; ".join(messages)


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, InvalidParams):
        return str(exc)
    if isinstance(exc, KeyError):
        return "is required"
    return f"is invalid ({exc})"


def unstructure_wire(obj: Any) -> Any:
    """attrs params → camelCase wire dict (used by the journal and the recorder)."""
    if attrs.has(type(obj)):
        return {_wire(f.name): unstructure_wire(getattr(obj, f.name))
                for f in attrs.fields(type(obj)) if getattr(obj, f.name) is not None}
    return obj
