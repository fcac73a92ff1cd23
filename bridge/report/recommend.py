"""`recommend`: which agent and model to configure for one project folder, and why.

The folder's stack is classified as the tracker does (bridge.tracking.stack). The answer comes
from the narrowest level that has a ranked setup:

  1. "stack":    setups used on projects of exactly that stack (python/fastapi);
  2. "language": setups used on projects of that language (python, python/fastapi, python/django…),
                 each (agent, model) scored once over all of them;
  3. "all":      setups used on any project, each (agent, model) scored once over all of them.

Every level uses the report's score and minimum sample (build_report with ``group``), so the
answer and `agent-tracker report` never disagree. The answer says which level answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from ..config import ScoringRules
from ..store import Store
from ..tracking.configs import agent_markdown, label, opencode_agent_block
from ..wording import grade_phrase, plural, score_phrase
from .build import build_report
from .model import UNKNOWN_STACK, Report, SetupRow, fmt
from .rank import CHEAPEST_WITHIN, cheapest_within, money

LEVELS = ("stack", "language", "all")
LEVEL_NAMES = {"stack": "exact-stack", "language": "language", "all": "all-projects"}


@attrs.define
class Level:
    name: str          # "stack" | "language" | "all"
    scope: str         # what it compares: "python/fastapi", "python", "all projects"
    report: Report

    @property
    def best(self) -> SetupRow | None:
        return next((row for row in self.report.setups if row.rank == 1), None)

    @property
    def runner_up(self) -> SetupRow | None:
        return next((row for row in self.report.setups if row.rank == 2), None)

    @property
    def cheapest(self) -> SetupRow | None:
        """The ranked setup with the lowest cost per commit within CHEAPEST_WITHIN points of the best."""
        best = self.best
        return cheapest_within(self.report.setups, best) if best is not None else None

    def to_wire(self) -> dict[str, Any]:
        return {"level": self.name, "scope": self.scope, "sessions": self.report.totals["sessions"],
                "setups": self.report.totals["setups"], "rankedSetups": self.report.totals["rankedSetups"]}


@attrs.define
class Advice:
    database: str
    directory: str
    stack: str
    language: str | None
    min_sessions: int
    levels: list[Level]            # the levels tried, narrowest first
    answer: Level | None           # the first one with a ranked setup
    # The project folder the directory belongs to (tracking.project_root), whose stack it has.
    project_root: str | None = None

    @property
    def best(self) -> SetupRow | None:
        return self.answer.best if self.answer else None

    @property
    def runner_up(self) -> SetupRow | None:
        return self.answer.runner_up if self.answer else None

    @property
    def cheapest(self) -> SetupRow | None:
        return self.answer.cheapest if self.answer else None

    def config(self) -> dict[str, Any] | None:
        """The OpenCode configuration (opencode.json) of the recommended setup: its model and its
        version's whole agent definition (tracking.configs.opencode_agent_block: prompt included)."""
        best = self.best
        if best is None:
            return None
        return {"model": best.model, "agent": {best.agent: opencode_agent_block(best.configuration, best.model)}}

    def agent_file(self) -> str | None:
        """The recommended agent as .opencode/agent/NAME.md (frontmatter, then the prompt)."""
        best = self.best
        return agent_markdown(opencode_agent_block(best.configuration, best.model)) if best else None

    def lines(self) -> list[str]:
        """The answer in a few lines of plain text (the CLI, the plugin's tool and /recommend)."""
        head = f"{self.directory}: {'stack not recognised' if self.stack == UNKNOWN_STACK else 'a ' + self.stack + ' project'}"
        head += f" (its root: {self.project_root})." if self.project_root not in (None, self.directory) else "."
        best = self.best
        if best is None or self.answer is None:
            return [head, self._no_answer()]
        level = self.answer
        needed = f"{self.min_sessions} sessions yet"
        why = {"stack": f"the best setup on {level.scope} projects",
               "language": f"no {self.stack} setup has {needed}, so the best setup on all {level.scope} projects",
               "all": (f"no {self.stack} or {self.language} setup has {needed}, so the best setup across all "
                       f"projects" if self.language else
                       "the stack is not recognised, so the best setup across all projects")}[level.name]
        lines = [head,
                 f"Use agent {best.agent} with model {best.model}: {why} (answered at the "
                 f"{LEVEL_NAMES[level.name]} level)." + self._version_words(best),
                 f"Evidence: {score_phrase(best.score)} over {plural(best.sessions, 'session')} in "
                 f"{plural(best.projects, 'project')}: {plural(best.commits, 'commit')} "
                 f"({fmt(best.commits_per_session)} per session), "
                 f"{grade_phrase('user', best.mean_user_grade, best.user_grades)}, "
                 f"{grade_phrase('agent', best.mean_agent_grade, best.agent_grades)}, "
                 f"{fmt(best.bugs_per_commit)} bugs per commit.",
                 self._cost_line(best)]
        runner = self.runner_up
        if runner is not None:
            runner_cost = "" if runner.cost_per_commit is None else f", {money(runner.cost_per_commit)} $ per commit"
            lines.append(f"Runner-up: agent {runner.agent} with {runner.model}, {score_phrase(runner.score)} over "
                         f"{plural(runner.sessions, 'session')} ({fmt(runner.commits_per_session)} commits per "
                         f"session, {grade_phrase('user', runner.mean_user_grade)}{runner_cost}).")
        else:
            lines.append("Runner-up: none yet (no other setup at this level has enough sessions).")
        return lines

    @staticmethod
    def _version_words(best: SetupRow) -> str:
        if not best.configuration:
            return ""
        first = f", first seen {best.config_first_seen[:10]}" if best.config_first_seen else ""
        return f" Its configuration: version {label(best.agent, best.config_version)}{first} (below, whole)."

    def _cost_line(self, best: SetupRow) -> str:
        if best.cost_per_session is None:
            return ("Cost: not recorded for its sessions (the plugin records it from now on; "
                    "agent-tracker import-opencode brings in what past sessions cost).")
        line = f"Cost: {money(best.cost_per_session)} $ per session"
        if best.cost_per_commit is not None:
            line += f", {money(best.cost_per_commit)} $ per commit"
        cheapest = self.cheapest
        if cheapest is None:
            return line + "."
        if cheapest is best:
            return line + f"; no setup within {CHEAPEST_WITHIN:g} points of it is cheaper per commit."
        return (line + f"; cheapest setup within {CHEAPEST_WITHIN:g} points: agent {cheapest.agent} with "
                f"{cheapest.model} at {money(cheapest.cost_per_commit)} $ per commit (score {cheapest.score:.1f}).")

    def _no_answer(self) -> str:
        everything = self.levels[-1].report
        if not everything.setups:
            return (f"Nothing to recommend yet: {self.database} holds no sessions. Use OpenCode with the plugin "
                    f"(agent-tracker install-plugin), or try agent-tracker demo.")
        most = max(everything.setups, key=lambda row: (row.sessions, row.setup))
        return (f"Nothing to recommend yet: no setup has the {self.min_sessions} sessions needed (the most used, "
                f"agent {most.agent} with {most.model}, has {most.sessions}).")

    def snippet(self) -> str | None:
        config = self.config()
        return json.dumps(config, indent=2) if config is not None else None

    def text(self) -> str:
        """The lines and, when there is an answer, the OpenCode config snippet to copy."""
        out = "\n".join(self.lines())
        snippet = self.snippet()
        if snippet is not None:
            out += "\n\nOpenCode configuration (opencode.json in the project, or your global one):\n" + snippet
        return out + "\n"

    def to_wire(self) -> dict[str, Any]:
        best, runner, cheapest = self.best, self.runner_up, self.cheapest
        return {
            "database": self.database, "directory": self.directory, "projectRoot": self.project_root,
            "stack": self.stack, "language": self.language, "minSessions": self.min_sessions,
            "level": self.answer.name if self.answer else None,
            "scope": self.answer.scope if self.answer else None,
            "levels": [level.to_wire() for level in self.levels],
            "recommendation": best.to_wire() if best else None,
            "runnerUp": runner.to_wire() if runner else None,
            "cheapest": cheapest.to_wire() if cheapest else None,
            "config": self.config(), "lines": self.lines(), "text": self.text(),
        }


def classify_directory(directory: Path) -> str:
    from ..tracking.stack import classify

    return classify(directory).name


def recommend_for(store: Store, directory: Path, *, min_sessions: int | None = None,
                  rules: ScoringRules | None = None, since: str | None = None, until: str | None = None,
                  scan: bool = False) -> Advice:
    """The advice for ``directory`` (an existing folder), trying each level in turn (``scan``: every
    level read from the events, not the summaries: the same answer, for doctor and the bench)."""
    from ..tracking.project_root import project_root

    root = project_root(directory)
    stack = classify_directory(root)
    known = stack != UNKNOWN_STACK
    language = stack.partition("/")[0] if known else None
    attempts: list[tuple[str, str, dict[str, Any]]] = []
    if known:
        attempts.append(("stack", stack, {"stack": stack, "exact_stack": True}))
        attempts.append(("language", str(language), {"stack": language, "group": "language"}))
    attempts.append(("all", "all projects", {"group": "all"}))
    levels: list[Level] = []
    answer = None
    for name, scope, options in attempts:
        report = build_report(store, min_sessions=min_sessions, rules=rules, since=since, until=until, scan=scan,
                              **options)
        level = Level(name, scope, report)
        levels.append(level)
        if level.best is not None:
            answer = level
            break
    return Advice(database=str(store.path), directory=str(directory), stack=stack, language=language,
                  min_sessions=levels[0].report.min_sessions, levels=levels, answer=answer,
                  project_root=str(root))
