"""A session's usage (what its model calls cost) into its setups' accumulator slots.

The rule (collect.collect_sessions calls it for every session with usage): a root session's usage
counts for the setup of each of its entries (``agent|provider/model``: the messages' own agent and
model); a subagent's session's, all of it, for its root session's setup
(attribution.Scope.root_session). score.USAGE_SESSIONS and USAGE_COMMITS count the sessions and commits
that usage covers: the denominators of $/session and $/commit.

A second rule, for "what did each model cost" (the report's total spend, ``usageByModel``, the
usage views): each entry counts under the model that produced it (add_spend), so `--model A`
finds a subagent's spend on A even when its root session ran on B. A setup's own $/session and
$/commit keep its subagents' spend, whatever model they ran on: that is what the setup cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..tracking.usage_totals import USAGE_FIELDS
from .score import DURATION, USAGE_COMMITS, USAGE_SESSIONS, USAGE_SLOTS

if TYPE_CHECKING:
    from .attribution import Bucket, Scope, Totals
    from .model import SetupKey


def add_usage(scope: Scope, totals: Totals, bucket: Bucket | None, session_id: Any, usage: Any, path: Any,
              created: Any, commits: Any, versions: Any = None) -> None:
    """A session's usage (``usage``: totals per ``agent|provider/model``) into its setups' slots.

    A root session's usage counts for the setup of each entry (the messages' own agent and model);
    a subagent's session's, all of it, for its root session's setup (Scope.credited_setup: the
    same rule as its commits), without its time: a subagent runs inside its parent's task call,
    whose time already counts. ``versions``: the session's configVersions (agent -> version), the
    version each entry's agent ran with. USAGE_SESSIONS counts each root once per setup; USAGE_COMMITS the
    session's commits (a session with several setups splits them evenly, as its XP).
    """
    if not isinstance(usage, dict) or not usage:
        return
    made = commits if commits.__class__ in (int, float) else 0
    if bucket is None:
        add_spend(scope, totals, session_id, usage, path, made)
    if scope.is_child(session_id):
        root_id = scope.root_session(session_id)
        setup = scope.credited_setup(None, None, None, path, session_id)
        if setup is not None:
            acc = totals.slot(setup, bucket, created)
            for entry in usage.values():
                _add_entry(acc, entry, with_time=False)
            acc[USAGE_COMMITS] += made
            _count_root(totals, acc, root_id, setup)
        return
    share = made / len(usage)
    for name, entry in usage.items():
        setup = scope.named_setup(name, path, versions)
        if setup is None:
            continue
        acc = totals.slot(setup, bucket, created)
        _add_entry(acc, entry, with_time=True)
        acc[USAGE_COMMITS] += share
        _count_root(totals, acc, str(session_id), setup)


def _add_entry(acc: list[float], entry: Any, with_time: bool) -> None:
    if not isinstance(entry, dict):
        return
    for name, slot in USAGE_SLOTS.items():
        value = entry.get(name)
        if value.__class__ in (int, float) and (with_time or slot != DURATION):
            acc[slot] += value


def _count_root(totals: Totals, acc: list[float], root_id: str, setup: SetupKey) -> None:
    if (root_id, setup) not in totals.usage_roots:
        totals.usage_roots.add((root_id, setup))
        acc[USAGE_SESSIONS] += 1


# The slots of Totals.spent: the usage fields (tracking.usage_totals.USAGE_FIELDS) in order.
SPEND_FIELDS = USAGE_FIELDS


def add_spend(scope: Scope, totals: Totals, session_id: Any, usage: dict[Any, Any], path: Any,
              commits: float) -> None:
    """Each entry of a session's usage under the model that produced it, when the filters keep
    that message as what it is (its own agent, model and project): Totals.spent."""
    root = scope.root_session(session_id) if scope.is_child(session_id) else str(session_id)
    counted: set[str] = set()
    for name, entry in usage.items():
        model = scope.producer(str(name), path) if isinstance(entry, dict) else None
        if model is None:
            continue
        acc = totals.spent.get(model)
        if acc is None:
            acc = totals.spent[model] = [0.0] * len(SPEND_FIELDS)
        for index, field in enumerate(SPEND_FIELDS):
            value = entry.get(field)
            if value.__class__ in (int, float):
                acc[index] += value
        totals.spent_roots.setdefault(model, set()).add(root)
        if model not in counted:
            counted.add(model)
            totals.spent_commits[model] = totals.spent_commits.get(model, 0) + commits
    if counted:
        totals.spent_roots.setdefault("", set()).add(root)
        totals.spent_commits[""] = totals.spent_commits.get("", 0) + commits
