"""What a report is: setup rows, recommendations, the report itself, and their wire form."""

from __future__ import annotations

from typing import Any

import attrs

from .score import FORMULA, GRADE_PRIOR, SCORE_HELP, TIE_BREAK, WEIGHTS

UNKNOWN_STACK = "unknown"




# (agent, model name, stack, configuration version: tracking.configs; None where versions are
# merged, `report --by agent-model`)
SetupKey = tuple[str, str, str, str | None]



class ReportError(ValueError):
    """A bad report option (e.g. --since); the message says what is accepted."""



# -- the report ---------------------------------------------------------------------------------

@attrs.define
class Usage:
    """The usage recorded for one setup (or the whole report): sums, and the sessions and commits
    it covers (the denominators: sessions tracked before usage was recorded add neither)."""

    messages: int = 0
    cost: float = 0.0
    input: int = 0
    output: int = 0
    reasoning: int = 0
    cache_read: int = 0
    cache_write: int = 0
    duration_ms: float = 0
    sessions: int = 0
    commits: float = 0  # a session with several setups splits its commits between them

    @property
    def tokens(self) -> int:
        return self.input + self.output + self.reasoning + self.cache_read + self.cache_write

    def tokens_wire(self) -> dict[str, int]:
        return {"input": self.input, "output": self.output, "reasoning": self.reasoning,
                "cacheRead": self.cache_read, "cacheWrite": self.cache_write, "total": self.tokens}

    def add(self, other: "Usage") -> None:
        for field in attrs.fields(Usage):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    def to_wire(self) -> dict[str, Any]:
        return {"messages": self.messages, "cost": self.cost, "tokens": self.tokens_wire(),
                "durationMs": whole(self.duration_ms), "sessions": self.sessions, "commits": whole(self.commits)}


@attrs.define
class SetupRow:
    agent: str
    model: str
    stack: str
    sessions: int = 0
    xp: float = 0.0
    commits: int = 0
    agent_grade_sum: float = 0.0
    agent_grades: int = 0
    user_grade_sum: float = 0.0
    user_grades: int = 0
    excellent: int = 0
    bad: int = 0
    bugs: int = 0
    last_used: str | None = None
    projects: int = 0
    skill_points: float | None = None
    communication_score: float | None = None
    halted: bool | None = None
    score: float = 0.0
    parts: dict[str, float] = attrs.Factory(dict)
    ranked: bool = False
    rank: int | None = None
    overall_rank: int | None = None
    note: str | None = None
    # of its commits and grades, how many were imported from the older TypeScript plugin
    imported: dict[str, int] = attrs.Factory(lambda: {"commits": 0, "grades": 0})
    # What its model calls cost (the usage recorded for its sessions; a subagent's session counts
    # for its root session's setup): see collect.add_usage.
    usage: Usage = attrs.Factory(lambda: Usage())
    # Signals nobody types (score.SCORE_HELP): tool calls (all) and the failed ones, its sessions
    # that ended and those abandoned (no commit), commits fixed up soon after, commits reverted.
    tool_calls: float = 0
    failed_tool_calls: float = 0
    ended_sessions: int = 0
    abandoned_sessions: int = 0
    fixed_up: int = 0
    reverts: int = 0
    # What its subagents did (outcomes.subagent_rows), most work first.
    subagents: list[dict[str, Any]] = attrs.Factory(list)
    # How many user and agent grades took each value (-1, 1, 2, 5): score.USER_GRADE_COUNTS.
    user_grade_counts: dict[int, int] = attrs.Factory(dict)
    agent_grade_counts: dict[int, int] = attrs.Factory(dict)
    # What the posterior says (posterior.py) among the setups it is compared with (its stack, or
    # the level that answers): P(best), an 80 % interval of its score, the drawn scores' mean;
    # None for a setup whose agent or model is unknown. The weight its self-grades got there
    # (agreement.py) and the pairs it rests on.
    probability_best: float | None = None
    score_interval: tuple[float, float] | None = None
    score_mean: float | None = None
    self_grade_weight: float = 1.0
    self_grade_pairs: int = 0
    # The agent's configuration version (tracking.configs; "unknown" before one was recorded, None
    # with versions merged), its definition and when it first appeared. ``version_label`` is set
    # where the rows shown hold more than one version of the agent: the row then says which.
    config_version: str | None = None
    configuration: dict[str, Any] | None = None
    config_first_seen: str | None = None
    version_label: str | None = None

    @property
    def setup(self) -> str:
        return f"{self.agent}|{self.model}"

    @property
    def cost(self) -> float | None:
        """USD spent on its model calls; None when no usage was recorded for it."""
        return self.usage.cost if self.usage.messages else None

    @property
    def cost_per_session(self) -> float | None:
        return self.usage.cost / self.usage.sessions if self.usage.messages and self.usage.sessions else None

    @property
    def cost_per_commit(self) -> float | None:
        return self.usage.cost / self.usage.commits if self.usage.messages and self.usage.commits else None

    @property
    def tokens_per_commit(self) -> float | None:
        return self.usage.tokens / self.usage.commits if self.usage.messages and self.usage.commits else None

    @property
    def time_per_session_ms(self) -> float | None:
        return self.usage.duration_ms / self.usage.sessions if self.usage.messages and self.usage.sessions else None

    @property
    def zero_cost(self) -> bool:
        """Usage was recorded and cost nothing: a local model, or one paid by subscription."""
        return bool(self.usage.messages) and self.usage.cost == 0

    @property
    def value(self) -> float | None:
        """Score points per dollar a session costs (score / cost per session); None when the setup
        costs nothing (a local or subscription model: no meaningful ratio, never infinity) or its
        cost is unknown."""
        per_session = self.cost_per_session
        return self.score / per_session if per_session else None

    @property
    def workflow(self) -> str:
        """The agent and the subagents it started: ``build → explore, general``."""
        agent = self.version_label or self.agent
        if not self.subagents:
            return agent
        return f"{agent} → {', '.join(sorted(sub['agent'] for sub in self.subagents))}"

    @property
    def tool_failure_rate(self) -> float | None:
        return self.failed_tool_calls / self.tool_calls if self.tool_calls else None

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned_sessions / self.ended_sessions if self.ended_sessions else None

    @property
    def fixup_rate(self) -> float | None:
        return self.fixed_up / self.commits if self.commits else None

    @property
    def subagent_work_share(self) -> float | None:
        """The share of its tool calls its subagents made."""
        if not self.tool_calls:
            return None
        return float(sum(sub["toolCalls"] for sub in self.subagents)) / self.tool_calls

    @property
    def grades(self) -> int:
        return self.agent_grades + self.user_grades

    @property
    def commits_per_session(self) -> float | None:
        return self.commits / self.sessions if self.sessions else None

    @property
    def xp_per_session(self) -> float | None:
        return self.xp / self.sessions if self.sessions else None

    @property
    def mean_agent_grade(self) -> float | None:
        return self.agent_grade_sum / self.agent_grades if self.agent_grades else None

    @property
    def mean_user_grade(self) -> float | None:
        return self.user_grade_sum / self.user_grades if self.user_grades else None

    @property
    def excellence_share(self) -> float | None:
        return self.excellent / self.grades if self.grades else None

    @property
    def bad_share(self) -> float | None:
        return self.bad / self.grades if self.grades else None

    @property
    def bugs_per_commit(self) -> float | None:
        return self.bugs / self.commits if self.commits else None

    def to_wire(self) -> dict[str, Any]:
        return {
            "agent": self.agent, "model": self.model, "stack": self.stack, "setup": self.setup,
            "sessions": self.sessions, "commits": self.commits,
            "commitsPerSession": self.commits_per_session, "xpPerSession": self.xp_per_session,
            "agentGrades": self.agent_grades, "meanAgentGrade": self.mean_agent_grade,
            "userGrades": self.user_grades, "meanUserGrade": self.mean_user_grade,
            "excellenceShare": self.excellence_share, "badShare": self.bad_share,
            "bugs": self.bugs, "bugsPerCommit": self.bugs_per_commit,
            "skillPoints": self.skill_points, "communicationScore": self.communication_score,
            "halted": self.halted, "lastUsed": self.last_used, "projects": self.projects,
            "score": self.score, "scoreParts": self.parts, "ranked": self.ranked,
            "rank": self.rank, "overallRank": self.overall_rank, "note": self.note,
            "imported": self.imported,
            "cost": self.cost, "costPerSession": self.cost_per_session, "costPerCommit": self.cost_per_commit,
            "tokens": self.usage.tokens_wire() if self.usage.messages else None,
            "tokensPerCommit": self.tokens_per_commit, "timePerSessionMs": self.time_per_session_ms,
            "value": self.value, "zeroCost": self.zero_cost, "usage": self.usage.to_wire(),
            "workflow": self.workflow, "toolCalls": whole(self.tool_calls),
            "failedToolCalls": whole(self.failed_tool_calls), "toolFailureRate": self.tool_failure_rate,
            "endedSessions": self.ended_sessions, "abandonedSessions": self.abandoned_sessions,
            "abandonRate": self.abandon_rate, "fixedUpCommits": self.fixed_up, "fixupRate": self.fixup_rate,
            "revertedCommits": self.reverts, "subagents": self.subagents,
            "subagentWorkShare": self.subagent_work_share,
            "userGradeCounts": {str(value): n for value, n in self.user_grade_counts.items()},
            "agentGradeCounts": {str(value): n for value, n in self.agent_grade_counts.items()},
            "probabilityBest": self.probability_best,
            "scoreInterval": list(self.score_interval) if self.score_interval is not None else None,
            "scoreMean": self.score_mean,
            "selfGradeWeight": self.self_grade_weight, "selfGradePairs": self.self_grade_pairs,
            "configVersion": self.config_version, "configuration": self.configuration,
            "configFirstSeen": self.config_first_seen, "versionLabel": self.version_label,
        }



@attrs.define
class Recommendation:
    stack: str
    text: str
    setup: SetupRow | None
    # the ranked setup with the lowest cost per commit within 5 points of the best (rank.cheapest_within)
    cheapest: SetupRow | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"stack": self.stack, "text": self.text}
        if self.setup is not None:
            wire.update({"agent": self.setup.agent, "model": self.setup.model,
                         "setup": self.setup.setup, "score": self.setup.score,
                         "sessions": self.setup.sessions, "costPerCommit": self.setup.cost_per_commit})
        else:
            wire.update({"agent": None, "model": None, "setup": None, "score": None, "sessions": None,
                         "costPerCommit": None})
        cheapest = self.cheapest
        wire["cheapest"] = None if cheapest is None else {
            "agent": cheapest.agent, "model": cheapest.model, "setup": cheapest.setup, "score": cheapest.score,
            "costPerCommit": cheapest.cost_per_commit}
        return wire



@attrs.define
class Report:
    database: str
    generated_at: str
    filters: dict[str, Any]
    min_sessions: int
    setups: list[SetupRow]
    recommendations: list[Recommendation]
    agents: list[dict[str, Any]]
    totals: dict[str, int]
    unattributed_bugs: int = 0
    # Set when filters were given and matched nothing: what the database holds (build.known_values).
    known: dict[str, Any] | None = None
    # The parsed filters (filters.Filters), for what is drawn from the same selection (the chart).
    selection: Any = None
    duration_ms: float = 0.0
    decoder: str = "orjson"
    parallel: bool = False
    # "summaries" (bridge.summaries, no event read) or "scan" (every event read), and why a scan
    source: str = "scan"
    source_note: str | None = None
    # commits and grades (of those counted) imported from the older TypeScript plugin
    imported: dict[str, int] = attrs.Factory(lambda: {"commits": 0, "grades": 0})
    # What the selection's model calls cost, each message under the model that produced it
    # (report.usage.add_spend): a subagent on model A called from a session on B counts for A here,
    # though for its root's setup (B) in setups[].usage. ``sessions``: the root sessions with
    # usage in the selection, each once (totals.sessions also counts those without usage);
    # ``commits``: theirs.
    usage: Usage = attrs.Factory(lambda: Usage())
    usage_by_model: dict[str, Usage] = attrs.Factory(dict)
    # model name → how far its self-grades agree with the user's (agreement.Agreement)
    agreements: dict[str, Any] = attrs.Factory(dict)
    # Setups told apart by configuration version (else merged: `report --by agent-model`).
    by_version: bool = True

    @property
    def ranked(self) -> list[SetupRow]:
        return [row for row in self.setups if row.ranked]

    def to_wire(self) -> dict[str, Any]:
        return {
            "database": self.database, "generatedAt": self.generated_at, "filters": self.filters,
            "scoring": {"formula": FORMULA, "weights": WEIGHTS, "gradePrior": GRADE_PRIOR,
                        "minSessions": self.min_sessions, "tieBreak": TIE_BREAK,
                        "rankedWithin": "stack", "explanation": SCORE_HELP},
            "totals": self.totals, "imported": self.imported, "unattributedBugs": self.unattributed_bugs,
            "usage": self.usage.to_wire(),
            "usageByModel": [{"model": model, **part.to_wire()} for model, part in self.usage_by_model.items()],
            "setups": [row.to_wire() for row in self.setups],
            "recommendations": [rec.to_wire() for rec in self.recommendations],
            "agents": self.agents, "durationMs": round(self.duration_ms, 3), "decoder": self.decoder,
            "parallel": self.parallel, "known": self.known, "source": self.source,
        }



def whole(value: float) -> float | int:
    """Counts split between setups may be fractions; whole ones are written as integers."""
    return int(value) if float(value).is_integer() else value



def fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"

