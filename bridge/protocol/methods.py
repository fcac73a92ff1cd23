"""Every wire method, declared once: its parameter class, how the host sends it, whether it changes state.

Everything else is derived from this table: the bridge registers one entry point per method, the
structuring hooks are built per parameter class, and the methods that change state (``event``)
are journaled and handed to the tracking service. Handlers are declared where they live, next
to their method name, with a ``HandlerTable`` (rpc.server for the bridge's own requests,
tracking for events); tests/test_protocol_schema.py checks that protocol/schema.json, this table
and the handlers agree both ways, each method with exactly one handler.
"""

from __future__ import annotations

import enum
from typing import Callable, Generic, Iterator, TypeVar

import attrs

from .params import (
    ActivityLogged,
    AgentConfigured,
    AgentReinstated,
    BugReported,
    CommandExecuted,
    CommitCompleted,
    CommitPushed,
    GradeGiven,
    InitializeParams,
    NoParams,
    RecommendQuery,
    ReportQuery,
    RetrospectiveRecorded,
    SessionCreated,
    SessionEnded,
    SessionRef,
    SessionUpdated,
    StatusQuery,
    ToolExecuted,
    UsageRecorded,
)


class Kind(enum.Enum):
    """How the host sends a method. A notification may also be sent as a request: it is then answered."""

    REQUEST = "request"
    NOTIFICATION = "notification"


@attrs.frozen
class Method:
    name: str
    params: type
    kind: Kind
    # Changes tracked state: journaled before it is acknowledged, handled by the tracking service.
    event: bool = False


REQUEST, NOTIFICATION = Kind.REQUEST, Kind.NOTIFICATION

METHODS: dict[str, Method] = {method.name: method for method in (
    # The bridge's own requests (rpc.server).
    Method("initialize", InitializeParams, REQUEST),
    Method("shutdown", NoParams, REQUEST),
    Method("exit", NoParams, NOTIFICATION),
    Method("flush", NoParams, REQUEST),
    Method("agent.status", StatusQuery, REQUEST),
    Method("report", ReportQuery, REQUEST),
    Method("recommend", RecommendQuery, REQUEST),
    # Events (tracking).
    Method("session.created", SessionCreated, NOTIFICATION, event=True),
    Method("session.updated", SessionUpdated, NOTIFICATION, event=True),
    Method("session.idle", SessionRef, NOTIFICATION, event=True),
    Method("session.deleted", SessionRef, NOTIFICATION, event=True),
    Method("session.ended", SessionEnded, NOTIFICATION, event=True),
    Method("tool.executed", ToolExecuted, NOTIFICATION, event=True),
    Method("command.executed", CommandExecuted, NOTIFICATION, event=True),
    Method("commit.completed", CommitCompleted, NOTIFICATION, event=True),
    Method("commit.pushed", CommitPushed, NOTIFICATION, event=True),
    Method("grade", GradeGiven, NOTIFICATION, event=True),
    Method("bug.reported", BugReported, NOTIFICATION, event=True),
    Method("retrospective.recorded", RetrospectiveRecorded, NOTIFICATION, event=True),
    Method("activity.logged", ActivityLogged, NOTIFICATION, event=True),
    Method("agent.reinstate", AgentReinstated, NOTIFICATION, event=True),
    Method("usage.recorded", UsageRecorded, NOTIFICATION, event=True),
    Method("agent.configured", AgentConfigured, NOTIFICATION, event=True),
)}
EVENT_METHODS = frozenset(name for name, method in METHODS.items() if method.event)
# Bridge → host notifications (documented in protocol/; the bridge only sends them).
OUTGOING_NOTIFICATIONS = ("log", "toast", "agent.state", "commit.recorded")

F = TypeVar("F", bound=Callable[..., object])


class HandlerTable(Generic[F]):
    """Method name → the one function that handles it, filled by decorating that function.

    ``@table("grade")`` refuses a name that is not in METHODS and a second handler for one name,
    at import time, so a typo or a duplicate cannot reach a running bridge.
    """

    def __init__(self, owner: str):
        self.owner = owner
        self._handlers: dict[str, F] = {}

    def __call__(self, method: str) -> Callable[[F], F]:
        if method not in METHODS:
            raise ValueError(f"{self.owner}: {method!r} is not a method of protocol.methods.METHODS")

        def register(function: F) -> F:
            if method in self._handlers:
                raise ValueError(f"{self.owner}: a second handler for {method!r}")
            self._handlers[method] = function
            return function
        return register

    def __getitem__(self, method: str) -> F:
        return self._handlers[method]

    def get(self, method: str) -> F | None:
        return self._handlers.get(method)

    def __contains__(self, method: object) -> bool:
        return method in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)
