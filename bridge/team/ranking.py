"""Comparing setups within persons, the team's rank, and the seam for the probability of best.

The rule (report.py's docstring): a setup's delta is the session-weighted mean, over the persons who
used it and another setup of its stack, of (its score for that person - that person's
session-weighted mean score in the stack).
"""

from __future__ import annotations

import importlib
from typing import Any, Sequence

import attrs

from ..report.model import SetupRow
from ..report.rank import sort_key

# A setup across people: (agent, model, stack); configuration versions are each person's own, so
# the team compares setups with their versions merged.
TeamSetup = tuple[str, str, str]


@attrs.define
class Comparison:
    persons: int = 0          # persons who used this setup and another one of its stack
    sessions: int = 0         # their sessions of this setup
    delta: float | None = None  # score points above (below) those persons' own mean in the stack

    def to_wire(self) -> dict[str, Any]:
        return {"persons": self.persons, "sessions": self.sessions, "delta": self.delta}




def within_persons(persons: dict[str, list[SetupRow]]) -> dict[TeamSetup, Comparison]:
    sums: dict[TeamSetup, list[float]] = {}  # weighted delta, sessions, persons
    for rows in persons.values():
        stacks: dict[str, list[SetupRow]] = {}
        for row in rows:
            if row.sessions:
                stacks.setdefault(row.stack, []).append(row)
        for group in stacks.values():
            if len(group) < 2:
                continue  # one setup: nothing to compare it with
            weight = sum(row.sessions for row in group)
            baseline = sum(row.score * row.sessions for row in group) / weight
            for row in group:
                entry = sums.setdefault((row.agent, row.model, row.stack), [0.0, 0.0, 0.0])
                entry[0] += (row.score - baseline) * row.sessions
                entry[1] += row.sessions
                entry[2] += 1
    return {key: Comparison(persons=int(n), sessions=int(sessions), delta=total / sessions)
            for key, (total, sessions, n) in sums.items()}


def team_ranks(rows: list[SetupRow], comparisons: dict[TeamSetup, Comparison]) -> dict[TeamSetup, int]:
    """Per stack, the ranked setups that were compared within persons, by delta (then pooled order)."""
    ranks: dict[TeamSetup, int] = {}
    per_stack: dict[str, int] = {}
    compared = [row for row in rows if row.ranked and comparisons.get((row.agent, row.model, row.stack))]

    def order(row: SetupRow) -> tuple[Any, ...]:
        delta = comparisons[(row.agent, row.model, row.stack)].delta or 0.0
        return (row.stack, -round(delta, 9), *sort_key(row))

    for row in sorted(compared, key=order):
        per_stack[row.stack] = ranks[(row.agent, row.model, row.stack)] = per_stack.get(row.stack, 0) + 1
    return ranks


def probability_of_best(rows: Sequence[SetupRow]) -> dict[TeamSetup, float] | None:
    """P(best) of each ranked setup within its stack, from bridge.report.posterior when this
    agent-tracker has it (issue 23), else None (the report then leaves the column out). The pooled
    rows carry every statistic the posterior reads (grade counts per value included)."""
    try:
        module = importlib.import_module("bridge.report.posterior")
    except ImportError:
        return None
    posterior = getattr(module, "posterior", None)
    if posterior is None:
        return None
    found: dict[TeamSetup, float] = {}
    stacks: dict[str, list[SetupRow]] = {}
    for row in rows:
        if row.ranked:
            stacks.setdefault(row.stack, []).append(row)
    for group in stacks.values():
        result = posterior(group)
        for row in group:
            belief = result.belief(row)
            if belief is not None:
                found[(row.agent, row.model, row.stack)] = float(belief.probability_best)
    return found
