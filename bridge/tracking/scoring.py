"""Scoring rules applied to one agent's state: pure functions, no I/O.

The same functions run twice for every change: when an event arrives (to answer
``agent.status`` with read-your-writes and to notice a halt at once) and inside the
flush transaction on the freshly read stored state (so concurrent bridges merge exactly).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..config import ScoringRules


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
    """While SP >= 1 and XP >= cost x SP: pay cost x SP and add one SP (remainder kept)."""
    levels = 0
    while state.skill_points >= 1 and state.experience_points >= rules.level_cost * state.skill_points:
        state.experience_points -= rules.level_cost * state.skill_points
        state.skill_points += 1
        levels += 1
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
