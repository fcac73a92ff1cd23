"""What OpenCode's history holds, as typed records: sessions, assistant messages with usage, tool calls."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping, Union

import attrs

from .fields import EMPTY, as_int

ToolStatus = Literal["pending", "running", "completed", "error"]


TOOL_STATUSES: frozenset[str] = frozenset(("pending", "running", "completed", "error"))



# ---------------------------------------------------------------------------------------------
# records
#
# Plain (not frozen) slotted attrs classes: an import builds one per message, step and tool
# call, and a frozen attrs __init__ costs five times as much. Treat them as read-only.


@attrs.define(slots=True)
class Tokens:
    """Token counts by kind, as OpenCode records them. ``input`` excludes cache reads and writes,
    ``output`` excludes ``reasoning``; OpenCode's ``tokens.total`` is the sum of all five."""

    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.reasoning + self.cache_read + self.cache_write

    def __add__(self, other: Tokens) -> Tokens:
        return Tokens(self.input + other.input, self.output + other.output, self.reasoning + other.reasoning,
                      self.cache_read + other.cache_read, self.cache_write + other.cache_write)

    @classmethod
    def from_json(cls, value: Any) -> Tokens:
        """``{input, output, reasoning, cache: {read, write}}`` (``total`` is derived)."""
        if not isinstance(value, dict):
            return cls()
        cache = value.get("cache")
        if not isinstance(cache, dict):
            cache = EMPTY
        a, b, c, d, e = (value.get("input"), value.get("output"), value.get("reasoning"), cache.get("read"),
                         cache.get("write"))
        if type(a) is int and type(b) is int and type(c) is int and type(d) is int and type(e) is int:
            return cls(a, b, c, d, e)  # the usual case
        return cls(as_int(a), as_int(b), as_int(c), as_int(d), as_int(e))



@attrs.define(slots=True)
class StepUsage:
    """One ``step-finish`` part: the usage of one model call (``time``: when it was written)."""

    part_id: str
    reason: str | None
    cost: float
    tokens: Tokens
    time: int



@attrs.define(slots=True)
class AssistantMessage:
    """One assistant message with its usage; in OpenCode 1.18 one message is one model call, so
    ``steps`` holds one step whose cost and tokens equal the message's."""

    id: str
    session_id: str
    parent_id: str | None  # the user message it answers
    agent: str | None
    provider_id: str | None
    model_id: str | None
    cost: float
    tokens: Tokens
    time_created: int  # epoch milliseconds
    time_completed: int | None  # None: still streaming, or interrupted
    finish: str | None  # "stop", "tool-calls", ...
    error: str | None  # the error's name (e.g. "MessageAbortedError") when the call failed
    steps: tuple[StepUsage, ...]

    kind: ClassVar[Literal["message"]] = "message"

    @property
    def duration_ms(self) -> int | None:
        return None if self.time_completed is None else self.time_completed - self.time_created

    @property
    def order_time(self) -> int:
        """When the plugin reports it live: the ``message.updated`` that sets ``time.completed``."""
        return self.time_completed if self.time_completed is not None else self.time_created



@attrs.define(slots=True)
class ToolCall:
    """One tool part in its last state. ``success`` follows the plugin's rule (util.js
    ``toolSucceeded``): an ``error`` state fails; a completed ``bash`` succeeds only with exit 0;
    another completed tool fails only when its metadata says ``error`` or ``isError: true``.
    ``input`` and ``output`` are bounded as the plugin bounds them (:func:`excerpt`); ``output``
    is the error text for an ``error`` state."""

    id: str  # the part id
    call_id: str
    session_id: str
    message_id: str
    tool: str
    status: ToolStatus
    success: bool
    input: Mapping[str, Any]
    output: str | None
    title: str | None
    exit_code: int | None  # bash: metadata.exit
    time_start: int | None
    time_end: int | None

    kind: ClassVar[Literal["tool"]] = "tool"

    @property
    def finished(self) -> bool:
        """Completed or failed; ``pending``/``running`` calls were cut off (OpenCode stopped)."""
        return self.status in ("completed", "error")

    @property
    def order_time(self) -> int:
        """When the plugin reports it live: when the call ended."""
        for value in (self.time_end, self.time_start):
            if value is not None:
                return value
        return 0


HistoryItem = Union[AssistantMessage, ToolCall]



@attrs.frozen(slots=True)
class HistorySession:
    """One OpenCode session: its row, its assistant messages (by creation time) and its tool
    calls (by start time). ``cost`` and ``tokens`` are the session row's running totals (None when
    the database has no such columns): OpenCode adds every ``step-finish`` of this session to
    them, not those of its child sessions."""

    id: str
    project_id: str
    parent_id: str | None
    directory: str
    worktree: str | None  # the project's worktree (table ``project``), when known
    title: str
    slug: str | None
    version: str | None  # the OpenCode version that created the session
    agent: str | None  # the session's current agent (column ``agent``)
    provider_id: str | None  # the session's current model (column ``model``)
    model_id: str | None
    cost: float | None
    tokens: Tokens | None
    time_created: int
    time_updated: int
    time_archived: int | None
    messages: tuple[AssistantMessage, ...]
    tool_calls: tuple[ToolCall, ...]
    user_messages: int  # how many user messages (prompts) the session has
    part_count: int  # part rows of this session (all types), for progress reporting

    @property
    def message_cost(self) -> float:
        """The sum of the assistant messages' costs (equals ``cost`` up to float rounding)."""
        return sum(m.cost for m in self.messages)

    @property
    def message_tokens(self) -> Tokens:
        total = Tokens()
        for message in self.messages:
            total = total + message.tokens
        return total

    def timeline(self) -> list[HistoryItem]:
        """Messages and tool calls in the order the plugin reports them live: a tool call when it
        ends, an assistant message when it completes (ties: tool calls first, then by id)."""
        items: list[HistoryItem] = [*self.tool_calls, *self.messages]
        items.sort(key=lambda item: (item.order_time, 0 if item.kind == "tool" else 1, item.id))
        return items
