"""How far each model's self-grades can be trusted: their agreement with the user's grades.

A commit graded by both its agent and the user is a pair. Per model (provider/model, over the
whole database: honesty is the model's, whatever the project), on the grades' 0..1 scale
((g + 1) / 6):

  d      = the mean absolute difference of its pairs (0: always the user's grade)
  w_obs  = max(0, 1 - d / AGREEMENT_SPAN)      (AGREEMENT_SPAN = 0.5: three grade points apart)
  weight = (AGREEMENT_PRIOR + n x w_obs) / (AGREEMENT_PRIOR + n)   over its n pairs

so a model that grades every commit 5 while its users grade it 1 or 2 weighs its self-grades
near 0, and one without pairs keeps the weight they always had (1). The posterior (posterior.py)
takes the agentGrade part as weight x the self-grades' + (1 - weight) x the user grades'; the
score column itself keeps today's formula.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..store import ReadView
from ..tracking.setups import model_name
from .decode import count_groups

AGREEMENT_SPAN = 0.5
AGREEMENT_PRIOR = 2.0  # pseudo-pairs of full agreement: one odd pair moves the weight little

_FIELDS = ("provider", "model", "projectPath", "commitHash", "grader", "grade")


@attrs.frozen
class Agreement:
    pairs: int
    mean_difference: float | None   # on the 0..1 scale; None without pairs
    weight: float

    def to_wire(self) -> dict[str, Any]:
        return {"pairs": self.pairs, "meanDifference": self.mean_difference, "weight": self.weight}


NO_PAIRS = Agreement(0, None, 1.0)


def agreement_of(differences: list[float]) -> Agreement:
    if not differences:
        return NO_PAIRS
    n = len(differences)
    mean = sum(differences) / n
    observed = max(0.0, 1.0 - mean / AGREEMENT_SPAN)
    return Agreement(n, mean, (AGREEMENT_PRIOR + n * observed) / (AGREEMENT_PRIOR + n))


def _grade(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1 <= value <= 5:
        return None
    return (float(value) + 1.0) / 6.0


def self_grade_agreement(view: ReadView, codec: Any) -> dict[str, Agreement]:
    """model name → its agreement (models without pairs are left out: weight 1)."""
    # commit (project, hash) → the agent's grade and its model, the user's grade (one of each)
    agent: dict[tuple[Any, Any], tuple[str, float]] = {}
    user: dict[tuple[Any, Any], float] = {}

    def add(provider: Any, model: Any, path: Any, commit: Any, grader: Any, grade: Any) -> None:
        value = _grade(grade)
        if value is None or not isinstance(commit, str) or not commit:
            return
        key = (path if isinstance(path, str) else None, commit)
        if grader == "agent" and isinstance(model, str) and model:
            agent[key] = (model_name(provider if isinstance(provider, str) else None, model), value)
        elif grader == "user":
            user[key] = value

    def one(record: dict[str, Any] | None) -> None:
        if isinstance(record, dict):
            add(*(record.get(name) for name in _FIELDS))

    # Grouped in C; a record that does not fit (a missing or unhashable field) goes to ``one``.
    for fields in count_groups(view, "communication", _FIELDS, codec, one):
        add(*fields)
    differences: dict[str, list[float]] = {}
    for key, (model, value) in agent.items():
        if key in user:
            differences.setdefault(model, []).append(abs(value - user[key]))
    return {model: agreement_of(found) for model, found in differences.items()}
