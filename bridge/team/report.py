"""team-report: the setups of several people, scored by the report's formula and compared within persons.

* pooled: each setup's statistics summed over everyone, scored and ranked per stack exactly as
  `agent-tracker report` over one database holding every export would (report.build.setup_row,
  report.rank);
* within persons: each person's setups scored on that person's numbers alone; a setup's
  ``withinPerson`` is the session-weighted mean, over the persons who used it and at least one
  other setup of the stack, of its score minus that person's session-weighted mean score in the
  stack. A harsh grader lowers all of their setups alike, so it cancels. ``teamRank`` orders the
  ranked setups of a stack by it (then by the pooled rank); a setup nobody compared has none;
* per person and per stack: who used what, and how much.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..report.build import setup_row
from ..report.model import SetupRow
from ..report.rank import rank_rows, recommend
from ..report.score import DEFAULT_MIN_SESSIONS, FORMULA, SLOTS
from ..timestamps import utc_now
from . import ranking
from .ranking import Comparison, TeamSetup
from .datasets import is_remote, open_views
from .engine import connect
from .stats import Statistics, collect


@attrs.define
class TeamReport:
    paths: list[str]
    generated_at: str
    min_sessions: int
    rows: list[SetupRow]
    persons: dict[str, list[SetupRow]]
    comparisons: dict[TeamSetup, Comparison]
    team_ranks: dict[TeamSetup, int]
    probability_best: dict[TeamSetup, float] | None
    counts: dict[str, int]
    unattributed_bugs: int

    def stacks(self) -> list[dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            entry = found.setdefault(row.stack, {"stack": row.stack, "sessions": 0, "commits": 0, "setups": 0,
                                                 "persons": 0, "best": None, "teamBest": None})
            entry["sessions"] += row.sessions
            entry["commits"] += row.commits
            entry["setups"] += 1
            if row.rank == 1:
                entry["best"] = row.setup
            if self.team_ranks.get(setup_key(row)) == 1:
                entry["teamBest"] = row.setup
        for stack_name, entry in found.items():
            entry["persons"] = sum(any(r.stack == stack_name for r in rows) for rows in self.persons.values())
        return list(found.values())

    def to_wire(self) -> dict[str, Any]:
        def setup_wire(row: SetupRow) -> dict[str, Any]:
            key = setup_key(row)
            wire = row.to_wire()
            wire["teamRank"] = self.team_ranks.get(key)
            wire["withinPerson"] = self.comparisons.get(key, Comparison()).to_wire()
            wire["persons"] = sum(any(setup_key(r) == key for r in rows) for rows in self.persons.values())
            if self.probability_best is not None:
                wire["probabilityBest"] = self.probability_best.get(key)
            return wire

        return {"paths": self.paths, "generatedAt": self.generated_at, "minSessions": self.min_sessions,
                "formula": FORMULA, "counts": self.counts, "unattributedBugs": self.unattributed_bugs,
                "setups": [setup_wire(row) for row in self.rows],
                "recommendations": [rec.to_wire() for rec in recommend(self.rows, self.min_sessions)],
                "persons": [{"person": person, "sessions": sum(r.sessions for r in rows),
                             "setups": [row.to_wire() for row in rows]}
                            for person, rows in self.persons.items()],
                "stacks": self.stacks()}


def setup_key(row: SetupRow) -> TeamSetup:
    return (row.agent, row.model, row.stack)


def build_team_report(paths: list[str], *, min_sessions: int | None = None) -> TeamReport:
    minimum = DEFAULT_MIN_SESSIONS if min_sessions is None else min_sessions
    connection = connect(remote=any(is_remote(path) for path in paths))
    try:
        counts = open_views(connection, paths)
        stats = collect(connection)
    finally:
        connection.close()
    return score_team(stats, paths, minimum, counts)


def score_team(stats: Statistics, paths: list[str], min_sessions: int, counts: dict[str, int]) -> TeamReport:
    pooled: dict[TeamSetup, list[float]] = {}
    last_used: dict[TeamSetup, str] = {}
    projects: dict[TeamSetup, int] = {}
    persons: dict[str, list[SetupRow]] = {}
    for (person, *setup_parts), acc in sorted(stats.acc.items()):
        setup: TeamSetup = (setup_parts[0], setup_parts[1], setup_parts[2])
        total = pooled.setdefault(setup, [0.0] * SLOTS)
        for index, value in enumerate(acc):
            total[index] += value
        key = (person, *setup)
        seen = stats.last_used.get(key)
        if seen and seen > last_used.get(setup, ""):
            last_used[setup] = seen
        projects[setup] = projects.get(setup, 0) + stats.projects.get(key, 0)
        persons.setdefault(person, []).append(setup_row(setup, acc, last_used=seen,
                                                        projects=stats.projects.get(key, 0)))
    rows = rank_rows([setup_row(setup, acc, last_used=last_used.get(setup), projects=projects.get(setup, 0))
                      for setup, acc in pooled.items()], min_sessions)
    for person, person_rows in persons.items():
        persons[person] = rank_rows(person_rows, min_sessions)
    comparisons = ranking.within_persons(persons)
    team_ranks = ranking.team_ranks(rows, comparisons)
    return TeamReport(paths=paths, generated_at=utc_now(), min_sessions=min_sessions, rows=rows,
                      persons=dict(sorted(persons.items())), comparisons=comparisons, team_ranks=team_ranks,
                      probability_best=ranking.probability_of_best(rows),
                      counts={**counts, "persons": len(persons)}, unattributed_bugs=stats.unattributed_bugs)
