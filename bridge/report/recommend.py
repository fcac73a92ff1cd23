"""`recommend`: which agent and model to configure for one project folder, how sure that is, and
what to try next.

The folder's stack is the one a session there recorded, else what the tracker's bounded reader
makes of the folder now (bridge.tracking.stack). The answer comes from the narrowest level that
has a contender (a setup with a known agent and model and at least ``min_sessions`` sessions,
default 1):

  1. "stack":    setups used on projects of exactly that stack (python/fastapi);
  2. "language": setups used on projects of that language (python, python/fastapi, python/django…),
                 each (agent, model) scored once over all of them;
  3. "all":      setups used on any project, each (agent, model) scored once over all of them.

Every level uses the report's score (build_report with ``group``), so the answer and `agent-tracker
report` never disagree on a number. Among the level's contenders the posterior (posterior.py)
states each one's P(best); at the language and all-projects levels it also carries how much a
setup varies between stacks (posterior.stack_spread), since none was used on this one. Three
answers, and the JSON says which (``confident``):

  * confident: the leader's P(best) >= CONFIDENT_AT: use it;
  * not yet sure: the leader, and ``tryNext``: the setups with a real chance of being best;
  * nothing to go on: no contender at any level.

``explore``: the setup to run the next session with, by Thompson sampling from the same posterior.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs

from ..config import ScoringRules
from ..display import display_name
from ..store import Store
from ..tracking.configs import agent_markdown, label, opencode_agent_block
from ..wording import grade_phrase, plural, score_phrase
from .build import build_report
from .model import UNKNOWN_STACK, Report, SetupRow, fmt
from .posterior import is_contender
from .rank import CHEAPEST_WITHIN, cheapest_within, money

LEVELS = ("stack", "language", "all")
LEVEL_NAMES = {"stack": "exact-stack", "language": "language", "all": "all-projects"}
CONFIDENT_AT = 0.8     # the leader's P(best) from which recommend says "use it"
TRY_NEXT_MASS = 0.95   # tryNext: the fewest setups whose P(best) adds up to this...
TRY_NEXT_AT = 0.05     # ...and every other one with at least this chance


def try_next_of(contenders: list[SetupRow]) -> list[SetupRow]:
    """The setups with a real chance of being best (the fewest, most probable first, whose P(best)
    adds up to TRY_NEXT_MASS, and any other with TRY_NEXT_AT or more), the least tried first."""
    ordered = sorted(contenders, key=lambda row: (-(row.probability_best or 0.0), row.sessions))
    chosen, mass = [], 0.0
    for row in ordered:
        chance = row.probability_best or 0.0
        if mass < TRY_NEXT_MASS or chance >= TRY_NEXT_AT:
            chosen.append(row)
            mass += chance
    return sorted(chosen, key=lambda row: (row.sessions, -(row.probability_best or 0.0), row.agent, row.model))


def chance(row: SetupRow) -> str:
    return f"{row.probability_best or 0.0:.2f}"


def interval_text(row: SetupRow) -> str:
    low, high = row.score_interval or (row.score, row.score)
    return f"{score_phrase(row.score)}, 80 % interval {low:.0f}-{high:.0f}"


@attrs.define
class Level:
    name: str          # "stack" | "language" | "all"
    scope: str         # what it compares: "python/fastapi", "python", "all projects"
    report: Report
    min_sessions: int = 1
    contenders: list[SetupRow] = attrs.Factory(list)   # by P(best), highest first
    # Answers from other stacks: the stacks judged from, and the between-stack spread (score points).
    judged_from: list[str] = attrs.Factory(list)
    stack_spread: float | None = None
    posterior: Any = None

    def judge(self, per_stack: Report | None) -> None:
        """State P(best) of this level's contenders (posterior.py); ``per_stack``: the same
        setups per stack, at the levels that answer from other stacks."""
        from .posterior import is_contender, judge, stack_spread

        contenders = [row for row in self.report.setups if is_contender(row) and row.sessions >= self.min_sessions]
        between, factors = None, None
        if per_stack is not None:
            stacks: dict[str, int] = {}
            used_on: dict[tuple[str, str], int] = {}
            for row in per_stack.setups:
                if is_contender(row):
                    stacks[row.stack] = stacks.get(row.stack, 0) + row.sessions
                    used_on[row.agent, row.model] = used_on.get((row.agent, row.model), 0) + 1
            # Projects of no recognised stack are not "another stack" to name.
            self.judged_from = sorted((stack for stack in stacks if stack != UNKNOWN_STACK),
                                      key=lambda stack: (-stacks[stack], stack))
            between = stack_spread([row for row in per_stack.setups if is_contender(row)])
            self.stack_spread = between.median
            # On a stack it was never used on, a setup is off its pooled score by its own deviation
            # there, and the pooled score is itself off by tau / sqrt(k) over its k stacks.
            factors = [(1 + 1 / max(1, used_on.get((row.agent, row.model), 1))) ** 0.5 for row in contenders]
        self.posterior = judge(contenders, self.report.agreements, between=between, stack_factor=factors)
        self.contenders = sorted(contenders, key=lambda row: (-(row.probability_best or 0.0), -row.score,
                                                              -row.sessions, row.agent, row.model))

    @property
    def best(self) -> SetupRow | None:
        return self.contenders[0] if self.contenders else None

    @property
    def runner_up(self) -> SetupRow | None:
        return self.contenders[1] if len(self.contenders) > 1 else None

    @property
    def cheapest(self) -> SetupRow | None:
        """The contender with the lowest cost per commit within CHEAPEST_WITHIN points of the best."""
        best = self.best
        return cheapest_within(self.contenders, best, ranked_only=False) if best is not None else None

    @property
    def confident(self) -> bool:
        """The leader's P(best) reaches CONFIDENT_AT among two setups or more (the only setup tried
        is trivially the best of one: no verdict)."""
        best = self.best
        return best is not None and len(self.contenders) >= 2 and (best.probability_best or 0.0) >= CONFIDENT_AT

    @property
    def try_next(self) -> list[SetupRow]:
        return [] if self.confident or self.best is None else try_next_of(self.contenders)

    @property
    def explore(self) -> SetupRow | None:
        if not self.contenders or self.posterior is None:
            return None
        drawn = self.posterior.keys[self.posterior.thompson()]
        return next(row for row in self.contenders if (row.agent, row.model, row.stack) == drawn)

    def to_wire(self) -> dict[str, Any]:
        return {"level": self.name, "scope": self.scope, "sessions": self.report.totals["sessions"],
                "setups": self.report.totals["setups"], "rankedSetups": self.report.totals["rankedSetups"],
                "contenders": len(self.contenders)}


def config_of(row: SetupRow | None) -> dict[str, Any] | None:
    """The OpenCode configuration (opencode.json) of a setup."""
    if row is None:
        return None
    return {"model": row.model, "agent": {row.agent: opencode_agent_block(row.configuration, row.model)}}


def _brief(row: SetupRow) -> dict[str, Any]:
    return {"agent": row.agent, "model": row.model, "probabilityBest": row.probability_best,
            "sessions": row.sessions, "score": row.score,
            "scoreInterval": list(row.score_interval) if row.score_interval else None}


CONFIG_HEADING = "OpenCode configuration (opencode.json in the project, or your global one):"


@attrs.define
class Advice:
    database: str
    directory: str
    stack: str
    language: str | None
    min_sessions: int
    levels: list[Level]            # the levels tried, narrowest first
    answer: Level | None           # the first one with a contender
    # The project folder the directory belongs to (tracking.project_root), whose stack it has.
    project_root: str | None = None
    refused: str | None = None     # why the folder's files could not be read (a symlink loop ...)

    @property
    def best(self) -> SetupRow | None:
        return self.answer.best if self.answer else None

    @property
    def runner_up(self) -> SetupRow | None:
        return self.answer.runner_up if self.answer else None

    @property
    def cheapest(self) -> SetupRow | None:
        return self.answer.cheapest if self.answer else None

    @property
    def confident(self) -> bool:
        return self.answer.confident if self.answer else False

    @property
    def try_next(self) -> list[SetupRow]:
        return self.answer.try_next if self.answer else []

    @property
    def explore(self) -> SetupRow | None:
        return self.answer.explore if self.answer else None

    def config(self) -> dict[str, Any] | None:
        """The OpenCode configuration (opencode.json) of the leader: its model and its version's
        whole agent definition (tracking.configs.opencode_agent_block: prompt included)."""
        return config_of(self.best)

    def agent_file(self) -> str | None:
        """The leader as .opencode/agent/NAME.md (frontmatter, then the prompt)."""
        best = self.best
        return agent_markdown(opencode_agent_block(best.configuration, best.model)) if best else None

    def _head(self) -> str:
        stack = display_name(self.stack)
        head = (f"{display_name(self.directory, 400)}: "
                f"{'stack not recognised' if self.stack == UNKNOWN_STACK else 'a ' + stack + ' project'}")
        if self.project_root not in (None, self.directory):
            head += f" (its root: {display_name(self.project_root, 400)})"
        refused = "" if self.refused is None else " " + display_name(self.refused, 400)
        level = self.answer
        if level is None or not level.judged_from:
            return head + "." + refused
        shown = [display_name(name) for name in level.judged_from[:3]]
        more = len(level.judged_from) - len(shown)
        stacks = ", ".join(shown[:-1]) + (" and " if len(shown) > 1 else "") + shown[-1] if not more else \
            ", ".join(shown) + f" and {plural(more, 'more stack')}"
        history = "" if self.stack == UNKNOWN_STACK else f"no {stack} history: "
        return (f"{head}; {history}judged from {stacks}, with the doubt that setups differ between stacks "
                f"(about {level.stack_spread or 0:.1f} score points).{refused}")

    def _why(self, level: Level) -> str:
        scope = display_name(level.scope)
        return {"stack": f"on {scope} projects",
                "language": f"on all {scope} projects",
                "all": "across all projects"}[level.name] + f" (answered at the {LEVEL_NAMES[level.name]} level)"

    def lines(self) -> list[str]:
        """The answer in a few lines of plain text (the CLI, the plugin's tool and /recommend)."""
        best, level = self.best, self.answer
        if best is None or level is None:
            return [self._head(), self._no_answer()]
        evidence = f"P(best) {chance(best)} over {plural(best.sessions, 'session')}; {interval_text(best)}"
        if level.confident:
            lines = [self._head(), f"Use agent {display_name(best.agent)} with model {display_name(best.model)} ({evidence}): the best setup "
                                   f"{self._why(level)}." + self._version_words(best)]
        elif len(level.contenders) == 1:
            lines = [self._head(), f"Only one setup was used {self._why(level)}: agent {display_name(best.agent)} with model "
                                   f"{display_name(best.model)} ({plural(best.sessions, 'session')}; {interval_text(best)}). With "
                                   f"nothing to compare it with this is no verdict: try another agent or model on "
                                   f"this project too."]
        else:
            lines = [self._head(), f"Not sure yet. The leader {self._why(level)} is agent {display_name(best.agent)} with model "
                                   f"{display_name(best.model)} ({evidence}), short of the {CONFIDENT_AT:.2f} this answer "
                                   f"needs to say \"use it\"." + self._version_words(best)]
            tries = level.try_next
            listed = "; ".join(f"{display_name(row.agent)} with {display_name(row.model)} (P(best) {chance(row)}, "
                               f"{plural(row.sessions, 'session')})" for row in tries)
            first = tries[0]
            lines.append(f"Still in the race (least tried first): {listed}. To settle it, run your next sessions "
                         f"with agent {display_name(first.agent)} and model {display_name(first.model)} (agent-tracker recommend --explore "
                         f"picks each next one by its chance).")
        lines += [f"Evidence: {plural(best.commits, 'commit')} in {plural(best.projects, 'project')} "
                  f"({fmt(best.commits_per_session)} per session), "
                  f"{grade_phrase('user', best.mean_user_grade, best.user_grades)}, "
                  f"{grade_phrase('agent', best.mean_agent_grade, best.agent_grades)}{self._weight_note(best)}, "
                  f"{fmt(best.bugs_per_commit)} bugs per commit.",
                  self._cost_line(best)]
        runner = self.runner_up
        if runner is not None:
            runner_cost = "" if runner.cost_per_commit is None else f", {money(runner.cost_per_commit)} $ per commit"
            lines.append(f"Runner-up: agent {display_name(runner.agent)} with {display_name(runner.model)}, P(best) {chance(runner)} over "
                         f"{plural(runner.sessions, 'session')} ({interval_text(runner)}; "
                         f"{fmt(runner.commits_per_session)} commits per session, "
                         f"{grade_phrase('user', runner.mean_user_grade)}{runner_cost}).")
        else:
            lines.append("Runner-up: none yet (no other setup at this level has a session).")
        return lines

    @staticmethod
    def _weight_note(row: SetupRow) -> str:
        if row.self_grade_weight >= 0.995 or not row.agent_grades:
            return ""
        return f" weighed {row.self_grade_weight:.2f}, as far as they agree with the user's"

    def explore_lines(self) -> list[str]:
        """--explore: the setup to run the next session with, said as the experiment it is."""
        pick, level = self.explore, self.answer
        if pick is None or level is None:
            return [self._head(), self._no_answer()]
        percent = f"{(pick.probability_best or 0.0) * 100:.0f} %"
        only = "only " if pick.sessions <= 3 else ""
        return [self._head(),
                f"To learn which is best: try agent {display_name(pick.agent)} with model {display_name(pick.model)} next; it has a {percent} "
                f"chance of being best {self._why(level)} and {only}{plural(pick.sessions, 'session')}.",
                "This is an experiment: each setup is drawn as often as it may be the best (Thompson sampling), "
                "so the next sessions settle the question at little cost. agent-tracker recommend (without "
                "--explore) says which one to use."]

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
        return (line + f"; cheapest setup within {CHEAPEST_WITHIN:g} points: agent {display_name(cheapest.agent)} "
                f"with {display_name(cheapest.model)} at {money(cheapest.cost_per_commit)} $ per commit "
                f"(score {cheapest.score:.1f}).")

    def _no_answer(self) -> str:
        everything = self.levels[-1].report
        if not everything.setups:
            return (f"Nothing to recommend yet: {self.database} holds no sessions. Use OpenCode with the plugin "
                    f"(agent-tracker install-plugin), or try agent-tracker demo.")
        most = max(everything.setups, key=lambda row: (row.sessions, row.setup))
        if self.min_sessions > 1:
            return (f"Nothing to recommend yet: no setup has the {self.min_sessions} sessions asked for (the most "
                    f"used, agent {display_name(most.agent)} with {display_name(most.model)}, has {most.sessions}).")
        return ("Nothing to recommend yet: no session names its agent and model (the plugin records both from "
                "now on).")

    def snippet(self, row: SetupRow | None = None) -> str | None:
        config = config_of(row) if row is not None else self.config()
        return json.dumps(config, indent=2) if config is not None else None

    def text(self) -> str:
        """The lines and, when there is an answer, the OpenCode config snippet to copy."""
        return _with_snippet(self.lines(), self.snippet())

    def explore_text(self) -> str:
        pick = self.explore
        return _with_snippet(self.explore_lines(), self.snippet(pick) if pick is not None else None)

    def to_wire(self) -> dict[str, Any]:
        best, runner, cheapest, level = self.best, self.runner_up, self.cheapest, self.answer
        pick = self.explore
        return {
            "database": self.database, "directory": self.directory, "projectRoot": self.project_root,
            "stack": self.stack, "language": self.language, "minSessions": self.min_sessions,
            "level": level.name if level else None,
            "scope": level.scope if level else None,
            "levels": [one.to_wire() for one in self.levels],
            "recommendation": best.to_wire() if best else None,
            "runnerUp": runner.to_wire() if runner else None,
            "cheapest": cheapest.to_wire() if cheapest else None,
            "config": self.config(), "lines": self.lines(), "text": self.text(),
            "confident": self.confident, "confidentAt": CONFIDENT_AT,
            "tryNext": [_brief(row) for row in self.try_next],
            "contenders": [_brief(row) for row in level.contenders] if level else [],
            "judgedFrom": level.judged_from if level else [],
            "stackSpread": level.stack_spread if level else None,
            "explore": None if pick is None else {**_brief(pick), "config": config_of(pick),
                                                   "lines": self.explore_lines(), "text": self.explore_text()},
        }


def _with_snippet(lines: list[str], snippet: str | None) -> str:
    out = "\n".join(lines)
    if snippet is not None:
        out += f"\n\n{CONFIG_HEADING}\n" + snippet
    return out + "\n"


def classify_directory(store: Store, directory: Path) -> tuple[str, str | None]:
    """(the folder's stack, why its files could not be read or None): the stack a session there
    recorded, else what the bounded reader (tracking.stack) makes of the folder now."""
    from ..tracking.stack import classify

    with store.read() as view:
        recorded = view.get("projects", str(directory))
    if isinstance(recorded, dict) and isinstance(recorded.get("stack"), str) and recorded["stack"]:
        return recorded["stack"], None
    found = classify(directory)
    return found.name, found.refused


def recommend_for(store: Store, directory: Path, *, min_sessions: int | None = None,
                  rules: ScoringRules | None = None, since: str | None = None, until: str | None = None,
                  scan: bool = False) -> Advice:
    """The advice for ``directory`` (an existing folder), trying each level in turn (``scan``: every
    level read from the events, not the summaries: the same answer, for doctor and the bench)."""
    from ..tracking.project_root import project_root

    root = project_root(directory)
    stack, refused = classify_directory(store, root)
    known = stack != UNKNOWN_STACK
    language = stack.partition("/")[0] if known else None
    contention = 1 if min_sessions is None else int(min_sessions)
    attempts: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    if known:
        attempts.append(("stack", stack, {"stack": stack, "exact_stack": True}, {}))
        attempts.append(("language", str(language), {"stack": language, "group": "language"}, {"stack": language}))
    attempts.append(("all", "all projects", {"group": "all"}, {}))
    levels: list[Level] = []
    answer = None
    for name, scope, options, per_stack_options in attempts:
        report = build_report(store, min_sessions=min_sessions, rules=rules, since=since, until=until, scan=scan,
                              **options)
        level = Level(name, scope, report, contention)
        levels.append(level)
        if any(is_contender(row) and row.sessions >= contention for row in report.setups):
            per_stack = None if name == "stack" else build_report(
                store, min_sessions=min_sessions, rules=rules, since=since, until=until, scan=scan, beliefs=False,
                **per_stack_options)
            level.judge(per_stack)
            answer = level
            break
    return Advice(database=str(store.path), directory=str(directory), stack=stack, language=language,
                  min_sessions=contention, levels=levels, answer=answer, project_root=str(root),
                  refused=refused)
