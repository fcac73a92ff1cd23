"""Scoring rules applied to one agent's state: pure functions, no I/O.

The same functions run twice for every change: when an event arrives (to answer
``agent.status`` with read-your-writes and to notice a halt at once) and inside the
flush transaction on the freshly read stored state (so concurrent bridges merge exactly).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import attrs

from ..config import ScoringRules


def is_halted(skill_points: float) -> bool:
    """The one halt rule: an agent at SP 0 or below is halted (its tools are blocked)."""
    return skill_points <= 0


def _number(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


@attrs.define
class AgentState:
    agent_id: str
    skill_points: float
    experience_points: float
    communication_score: float
    total_commits: int = 0
    total_bugs: int = 0
    total_pushes: int = 0
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def halted(self) -> bool:
        return is_halted(self.skill_points)

    @classmethod
    def new(cls, agent_id: str, rules: ScoringRules, now: str | None = None) -> "AgentState":
        return cls(agent_id, rules.initial_skill_points, rules.initial_experience_points,
                   rules.initial_communication_score, created_at=now, updated_at=now)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "AgentState":
        """A stored agent; a field that is missing or not a number (foreign or damaged data) reads as 0."""
        return cls(
            agent_id=str(record.get("id")),
            skill_points=_number(record.get("skillPoints")),
            experience_points=_number(record.get("experiencePoints")),
            communication_score=_number(record.get("communicationScore")),
            total_commits=int(_number(record.get("totalCommits"))),
            total_bugs=int(_number(record.get("totalBugs"))),
            total_pushes=int(_number(record.get("totalPushes"))),
            created_at=record.get("createdAt"),
            updated_at=record.get("updatedAt"),
        )

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.agent_id,
            "skillPoints": self.skill_points,
            "experiencePoints": self.experience_points,
            "communicationScore": self.communication_score,
            "totalCommits": self.total_commits,
            "totalBugs": self.total_bugs,
            "totalPushes": self.total_pushes,
            "halted": self.halted,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    def copy(self) -> "AgentState":
        return attrs.evolve(self)


def earn(state: AgentState, xp: float, rules: ScoringRules) -> int:
    """Add XP unless halted, then level up. Returns how many levels were gained."""
    if state.halted or xp <= 0:
        return 0
    state.experience_points += xp
    return level_up(state, rules)


def level_up(state: AgentState, rules: ScoringRules) -> int:
    """While SP >= 1 and XP >= cost x SP: pay cost x SP and add one SP (remainder kept).

    In closed form, not as that loop: a large gain (pushXp 1e30 once spun it for ever) costs the
    same as a small one.
    """
    sp, xp, cost = state.skill_points, state.experience_points, rules.level_cost
    if sp < 1 or xp < cost * sp:
        return 0  # the common case, decided in floats as the loop's first test was
    levels = levels_affordable(Fraction(sp), Fraction(xp), Fraction(cost))
    # n levels from SP s cost c*(s + (s+1) + ... + (s+n-1)) = c*(n*s + n*(n-1)/2).
    paid = Fraction(cost) * (levels * Fraction(sp) + Fraction(levels * (levels - 1), 2))
    state.experience_points = float(Fraction(xp) - paid)
    state.skill_points = float(Fraction(sp) + levels)
    return levels


def levels_affordable(sp: Fraction, xp: Fraction, cost: Fraction) -> int:
    """The largest n with cost*(n*sp + n*(n-1)/2) <= xp, i.e. cost*n^2 + cost*(2sp-1)*n - 2xp <= 0.

    Exact: floats are dyadic rationals, so with Fractions this is the value the loop computes
    whenever its own arithmetic is exact (integer-valued rules, as the defaults are), and the
    exact value it approximates otherwise. A float estimate of the positive root is corrected by
    exact comparisons (a step or two).
    """
    def affordable(n: int) -> bool:
        return cost * n * n + cost * (2 * sp - 1) * n - 2 * xp <= 0

    b = float(2 * sp - 1)
    estimate = (-b + math.sqrt(b * b + 8 * float(xp / cost))) / 2
    levels = max(0, math.floor(estimate))
    while affordable(levels + 1):
        levels += 1
    while levels > 0 and not affordable(levels):
        levels -= 1
    return levels


def apply_grade(state: AgentState, grade: int, rules: ScoringRules) -> None:
    """Each grade is clamped on its own: CS stays within [0, cap x SP]."""
    state.communication_score = _clamp(state.communication_score + grade, state, rules)


def report_bug(state: AgentState, rules: ScoringRules) -> None:
    state.skill_points -= 1
    state.total_bugs += 1
    # "Never above cap x SP" holds after SP falls too.
    state.communication_score = _clamp(state.communication_score, state, rules)


def reinstate(state: AgentState, rules: ScoringRules) -> None:
    if state.skill_points < 1:
        state.skill_points = 1.0


def _clamp(score: float, state: AgentState, rules: ScoringRules) -> float:
    cap = max(0.0, rules.communication_cap_per_skill_point * state.skill_points)
    return min(max(score, 0.0), cap)


def agent_sheet(state: AgentState) -> dict[str, Any]:
    """An agent as the bridge reports it (``agent.status``, ``agent.state``, the report's agents)."""
    return {
        "agentId": state.agent_id,
        "skillPoints": state.skill_points,
        "experiencePoints": state.experience_points,
        "communicationScore": state.communication_score,
        "totalCommits": state.total_commits,
        "totalBugs": state.total_bugs,
        "totalPushes": state.total_pushes,
        "halted": state.halted,
    }


def agent_sheet_detail(state: AgentState, rules: ScoringRules) -> dict[str, Any]:
    """The sheet with what the rules say about it and its dates (`agent-tracker status`, the report)."""
    return {
        **agent_sheet(state),
        "nextLevelAt": rules.level_cost * state.skill_points if state.skill_points >= 1 else None,
        "communicationCap": rules.communication_cap_per_skill_point * max(state.skill_points, 0),
        "createdAt": state.created_at,
        "updatedAt": state.updated_at,
    }
