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

from .config import ScoringRules

GRADE_NAMES = {-1: "bad", 1: "neutral", 2: "good", 5: "excellence"}
GRADE_VALUES = {name: value for value, name in GRADE_NAMES.items()}
VALID_GRADES_TEXT = "-1 (bad), 1 (neutral), 2 (good) or 5 (excellence)"


class InvalidGrade(ValueError):
    pass


def parse_grade(value: Any) -> int:
    """R7: exactly -1, 1, 2, 5 or their names. "2", 2.5, 3, true, null, NaN are rejected."""
    if isinstance(value, str) and value in GRADE_VALUES:
        return GRADE_VALUES[value]
    # JSON has one number type, so 2.0 is the number 2; a bool is never a grade.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and float(value).is_integer() and int(value) in GRADE_NAMES:
        return int(value)
    raise InvalidGrade(f"must be {VALID_GRADES_TEXT} (numbers, or their names); got {value!r}")


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
        return self.skill_points <= 0

    @classmethod
    def new(cls, agent_id: str, rules: ScoringRules, now: str | None = None) -> "AgentState":
        return cls(agent_id, rules.initial_skill_points, rules.initial_experience_points,
                   rules.initial_communication_score, created_at=now, updated_at=now)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "AgentState":
        return cls(
            agent_id=record["id"],
            skill_points=record["skillPoints"],
            experience_points=record["experiencePoints"],
            communication_score=record["communicationScore"],
            total_commits=record.get("totalCommits", 0),
            total_bugs=record.get("totalBugs", 0),
            total_pushes=record.get("totalPushes", 0),
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
