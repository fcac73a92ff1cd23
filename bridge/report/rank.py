"""Ranking within a stack, the documented tie-breaks, and one recommendation per stack."""

from __future__ import annotations

from typing import Any

from ..display import display_name
from ..tracking.setups import UNKNOWN_AGENT, UNKNOWN_MODEL
from ..wording import grade_phrase, plural, score_phrase
from .model import UNKNOWN_STACK, Recommendation, SetupRow, fmt


def sort_key(row: SetupRow) -> tuple[Any, ...]:
    # Deterministic: rounded score (float noise never decides), then the documented tie-breaks.
    return (-round(row.score, 9), -row.sessions, -row.commits, _descending(row.last_used or ""),
            row.agent, row.model, row.stack, row.config_version or "")  # versions: the last tie-break



def _descending(text: str) -> tuple[int, ...]:
    """Sorts strings in descending order (the sentinel puts a prefix after its extensions)."""
    return tuple(-ord(c) for c in text) + (1,)



def rank_rows(rows: list[SetupRow], min_sessions: int) -> list[SetupRow]:
    for row in rows:
        if row.agent == UNKNOWN_AGENT or row.model == UNKNOWN_MODEL:
            row.note = "agent or model unknown: not ranked"
        elif row.sessions < min_sessions:
            row.note = f"{row.sessions} of {min_sessions} sessions needed to be ranked"
        else:
            row.ranked = True
    ranked = sorted((row for row in rows if row.ranked), key=sort_key)
    for position, row in enumerate(ranked, 1):
        row.overall_rank = position
    per_stack: dict[str, int] = {}
    for row in ranked:
        per_stack[row.stack] = row.rank = per_stack.get(row.stack, 0) + 1
    stack_sessions: dict[str, int] = {}
    for row in rows:
        stack_sessions[row.stack] = stack_sessions.get(row.stack, 0) + row.sessions
    # Stacks with the most sessions first; in each, ranked setups by rank, then the others.
    return sorted(rows, key=lambda row: (-stack_sessions[row.stack], row.stack, not row.ranked,
                                         *sort_key(row)))



def recommend(rows: list[SetupRow], min_sessions: int) -> list[Recommendation]:
    recommendations = []
    seen: list[str] = []
    for row in rows:
        if row.stack not in seen:
            seen.append(row.stack)
    for stack_name in seen:
        group = [row for row in rows if row.stack == stack_name]
        best = next((row for row in group if row.rank == 1), None)
        label = f"{display_name(stack_name)} projects" if stack_name != UNKNOWN_STACK else "projects of unknown stack"
        if best is None:
            most = max(group, key=lambda row: row.sessions)
            recommendations.append(Recommendation(stack_name, (
                f"For {label}: not enough data yet (the most used setup, {display_name(most.agent)} with "
                f"{display_name(most.model)}, has {most.sessions} of the {min_sessions} sessions needed)."), None))
            continue
        runner_up = next((row for row in group if row.rank == 2), None)
        margin = (f"; next: {display_name(runner_up.agent)} with {display_name(runner_up.model)} at "
                  f"{runner_up.score:.1f}" if runner_up else "")
        cheapest = cheapest_within(group, best)
        recommendations.append(Recommendation(stack_name, (
            f"For {label}, use agent {display_name(best.agent)} with {display_name(best.model)}: "
            f"{score_phrase(best.score)} over "
            f"{plural(best.sessions, 'session')} ({fmt(best.commits_per_session)} commits/session, "
            f"{grade_phrase('user', best.mean_user_grade)}, {grade_phrase('agent', best.mean_agent_grade)}, "
            f"{fmt(best.bugs_per_commit)} bugs/commit{_cost_clause(best, cheapest)}){margin}."), best, cheapest))
    return recommendations


CHEAPEST_WITHIN = 5.0  # score points: "about as good" for the cheapest-setup hint


def cheapest_within(group: list[SetupRow], best: SetupRow, *, ranked_only: bool = True) -> SetupRow | None:
    """The ranked setup of the stack (with ``ranked_only=False``: any setup of ``group``) with the
    lowest cost per commit among those scoring within CHEAPEST_WITHIN points of the best (the
    best itself included); None when none has a cost per commit. Ties: the better rank."""
    candidates = [row for row in group if (row.ranked or not ranked_only) and row.cost_per_commit is not None
                  and row.score >= best.score - CHEAPEST_WITHIN]
    return min(candidates, key=lambda row: (row.cost_per_commit, row.rank or 0), default=None)


def money(value: float | None) -> str:
    """Dollars: 2 decimals, 4 below one cent (a cheap model's commit can cost $0.0031)."""
    if value is None:
        return "-"
    if not -1e12 < value < 1e12:  # only a database written before costs were bounded at intake
        return f"{value:.3g}"
    return f"{value:.4f}" if 0 < value < 0.01 else f"{value:.2f}"


def _cost_clause(best: SetupRow, cheapest: SetupRow | None) -> str:
    if best.cost_per_commit is None:
        return ""  # no usage recorded for it, or no commit to divide by
    clause = f", {money(best.cost_per_commit)} $/commit"
    if cheapest is None or cheapest is best:
        return clause + f"; it is the cheapest setup within {CHEAPEST_WITHIN:g} points"
    return (clause + f"; cheapest setup within {CHEAPEST_WITHIN:g} points: {display_name(cheapest.agent)} with "
            f"{display_name(cheapest.model)} at {money(cheapest.cost_per_commit)} $/commit "
            f"(score {cheapest.score:.1f})")
