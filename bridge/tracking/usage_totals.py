"""The usage rule the flush and the report share: a session's usage per setup is the sum of its
assistant messages' latest usage (one stored record per message, replaced when sent again), so a
message reported twice is counted once.

A usage record (sub-database ``usage``, key ``sessionID \\0 messageID``) holds
``cost`` (USD), ``tokens {input, output, reasoning, cacheRead, cacheWrite}``, ``durationMs`` and
the ``setup`` (``agent|provider/model``) of the message. The session record gets the sums as
``usage: {setup: {messages, cost, input, output, reasoning, cacheRead, cacheWrite, durationMs}}``.
"""

from __future__ import annotations

from typing import Any, Iterable

# Token kinds as stored (OpenCode's tokens.cache.read/write are cacheRead/cacheWrite here).
TOKEN_KINDS = ("input", "output", "reasoning", "cacheRead", "cacheWrite")
# The numbers summed per setup, in the order they are reported.
USAGE_FIELDS = ("messages", "cost", *TOKEN_KINDS, "durationMs")


def empty_usage() -> dict[str, Any]:
    return {"messages": 0, "cost": 0.0, **{kind: 0 for kind in TOKEN_KINDS}, "durationMs": 0}


def _number(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def add_message(totals: dict[str, Any], record: dict[str, Any]) -> None:
    """Add one message's usage record to a setup's totals (fields that are not numbers count 0)."""
    tokens = record.get("tokens")
    tokens = tokens if isinstance(tokens, dict) else {}
    totals["messages"] += 1
    totals["cost"] += _number(record.get("cost"))
    for kind in TOKEN_KINDS:
        totals[kind] += _number(tokens.get(kind))
    totals["durationMs"] += _number(record.get("durationMs"))


def session_usage(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{setup: totals}`` of one session's message records, summed in the order given (the flush
    gives them in key order, i.e. by message id: creation order, as OpenCode sums them)."""
    usage: dict[str, dict[str, Any]] = {}
    for record in records:
        setup = str(record.get("setup") or "")
        totals = usage.get(setup)
        if totals is None:
            totals = usage[setup] = empty_usage()
        add_message(totals, record)
    return usage


def token_total(totals: dict[str, Any]) -> int:
    return int(sum(_number(totals.get(kind)) for kind in TOKEN_KINDS))
