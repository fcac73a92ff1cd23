"""The signals nobody types, as the report counts them: abandoned sessions and what each setup's
subagents did (fixed-up commits are a session counter, ``fixedUpCommits``, read with the others).

Collected by collect.py while it reads sessions and commits; the rules are in score.SCORE_HELP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..tracking.configs import version_or_unknown
from ..tracking.setups import UNKNOWN_AGENT
from .model import SetupKey, whole
from .score import ABANDONED

if TYPE_CHECKING:
    from .attribution import Totals

# What a setup's subagents did, per subagent (its OpenCode agent): child sessions, tool calls
# (all), failed tool calls, commits (per the sessions' counters), XP.
SUB_SESSIONS, SUB_CALLS, SUB_FAILED, SUB_COMMITS, SUB_XP = range(5)


def add_subagent_work(totals: Totals, group: Any, agent: Any, calls: float, failed: float, commits: float,
                      xp: float, version: Any = None) -> None:
    """One subagent session's work (its share, when its root used several setups) for ``group`` (a
    setup, or a setup and a time bucket);
    ``version``: the subagent's configuration version in that session (a workflow is its root's
    version plus the versions of the subagents it called)."""
    name = agent if isinstance(agent, str) and agent else UNKNOWN_AGENT
    ran = totals.subagent_versions.setdefault(group, {}).setdefault(name, {})
    found = version_or_unknown(version)
    ran[found] = ran.get(found, 0) + 1
    numbers = totals.subagents.setdefault(group, {}).setdefault(name, [0.0] * 5)
    numbers[SUB_SESSIONS] += 1
    numbers[SUB_CALLS] += calls
    numbers[SUB_FAILED] += failed
    numbers[SUB_COMMITS] += commits
    numbers[SUB_XP] += xp


def settle_abandoned(totals: Totals) -> None:
    """A root session that ended without a commit is abandoned unless one of its subagents committed
    (what they did counts for it); called once every session was read."""
    for session_id, accs in totals.ended_without_commit.items():
        if not totals.child_commits.get(session_id):
            for acc in accs:
                acc[ABANDONED] += 1
    totals.ended_without_commit.clear()


def subagent_rows(used: dict[str, list[float]], total_calls: float,
                  versions: dict[str, dict[str, float]] | None = None) -> list[dict[str, Any]]:
    """The wire form of a setup's subagents, most work first: how much of its tool calls they made,
    and (versions told apart) the configuration versions each ran with."""
    rows = []
    for agent, numbers in used.items():
        rows.append({"agent": agent, "sessions": whole(numbers[SUB_SESSIONS]),
                     **({"configVersions": sorted(version for version, sessions in versions.get(agent, {}).items()
                                                 if sessions > 0.5)} if versions is not None else {}),
                     "toolCalls": whole(numbers[SUB_CALLS]), "failedToolCalls": whole(numbers[SUB_FAILED]),
                     "commits": whole(numbers[SUB_COMMITS]), "xp": numbers[SUB_XP],
                     "workShare": numbers[SUB_CALLS] / total_calls if total_calls else None})
    return sorted(rows, key=lambda row: (-row["toolCalls"], -row["sessions"], row["agent"]))

