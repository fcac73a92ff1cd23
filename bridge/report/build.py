"""build_report: one read transaction, the scan (here or shared with a forked helper), rank, recommend."""

from __future__ import annotations

import gc
import time
from typing import Any

import orjson

from ..config import ScoringRules
from ..store import ReadView, Store
from ..timestamps import utc_now
from ..tracking.scoring import AgentState, agent_sheet_detail
from .agreement import self_grade_agreement
from ..tracking.configs import label, stored_versions
from .bugs import collect_bugs
from .attribution import Scope, Totals
from .collect import collect_commits, collect_grades, collect_imported, collect_sessions
from .decode import codec_named
from .filters import Filters
from ..summaries.read import answerable as summaries_answer, read_totals
from .helper import Helper, merge_helper_result
from .model import Report, ReportError, SetupRow, Usage
from .rank import rank_rows, recommend
from .outcomes import subagent_rows
from .posterior import is_contender, judge
from .score import (
    ABANDONED,
    AGENT_GRADE_COUNTS,
    AGENT_N,
    AGENT_SUM,
    BAD,
    BUGS,
    COMMITS,
    DEFAULT_MIN_SESSIONS,
    COST,
    DURATION,
    ENDED,
    EXCELLENT,
    FAILED_CALLS,
    FIXED_UP,
    MESSAGES,
    REVERTS,
    SESSIONS,
    TOKENS_CACHE_READ,
    TOKENS_CACHE_WRITE,
    TOKENS_INPUT,
    TOKENS_OUTPUT,
    TOKENS_REASONING,
    TOOL_CALLS,
    USAGE_COMMITS,
    USAGE_SESSIONS,
    USER_GRADE_COUNTS,
    USER_N,
    USER_SUM,
    XP,
    score_parts,
)

_loads = orjson.loads


# -- building ----------------------------------------------------------------------------------------

def usage_of(acc: list[float]) -> Usage:
    return Usage(messages=int(acc[MESSAGES]), cost=acc[COST], input=int(acc[TOKENS_INPUT]),
                 output=int(acc[TOKENS_OUTPUT]), reasoning=int(acc[TOKENS_REASONING]),
                 cache_read=int(acc[TOKENS_CACHE_READ]), cache_write=int(acc[TOKENS_CACHE_WRITE]),
                 duration_ms=acc[DURATION], sessions=int(acc[USAGE_SESSIONS]), commits=acc[USAGE_COMMITS])


def spent_usage(acc: list[float], roots: set[str], commits: float) -> Usage:
    """One model's spend (Totals.spent, slots in usage.SPEND_FIELDS order) as a Usage."""
    messages, cost, input_, output, reasoning, cache_read, cache_write, duration = acc
    return Usage(messages=int(messages), cost=cost, input=int(input_), output=int(output),
                 reasoning=int(reasoning), cache_read=int(cache_read), cache_write=int(cache_write),
                 duration_ms=duration, sessions=len(roots), commits=commits)


def setup_row(setup: tuple[str, str, str], acc: list[float], *, last_used: str | None = None, projects: int = 0,
              subagents: list[dict[str, Any]] | None = None) -> SetupRow:
    """One setup's row from its accumulator (score.SLOTS): its numbers, usage and score. The team
    report (bridge.team) builds its rows from SQL-aggregated accumulators through this too."""
    agent_id, model, stack_name = setup
    row = SetupRow(agent_id, model, stack_name, sessions=int(acc[SESSIONS]), xp=acc[XP],
                   commits=int(acc[COMMITS]), agent_grade_sum=acc[AGENT_SUM],
                   agent_grades=int(acc[AGENT_N]), user_grade_sum=acc[USER_SUM],
                   user_grades=int(acc[USER_N]), excellent=int(acc[EXCELLENT]), bad=int(acc[BAD]),
                   bugs=int(acc[BUGS]), last_used=last_used, projects=projects, tool_calls=acc[TOOL_CALLS],
                   failed_tool_calls=acc[FAILED_CALLS], ended_sessions=int(acc[ENDED]),
                   abandoned_sessions=int(acc[ABANDONED]), fixed_up=int(acc[FIXED_UP]),
                   reverts=int(acc[REVERTS]), subagents=subagents or [],
                   user_grade_counts={value: int(acc[slot]) for value, slot in USER_GRADE_COUNTS.items()},
                   agent_grade_counts={value: int(acc[slot]) for value, slot in AGENT_GRADE_COUNTS.items()})
    row.usage = usage_of(acc)
    row.score, row.parts = score_parts(acc)
    return row


def _read_agents(view: ReadView) -> dict[str, AgentState]:
    agents: dict[str, AgentState] = {}
    for raw in view.raw_values("agents"):
        try:
            record = _loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("id") is not None:
            agents[str(record["id"])] = AgentState.from_record(record)
    return agents


def known_values(view: ReadView, codec: Any, filters: Filters) -> dict[str, Any]:
    """What the database holds for each filter that was given (every session, unfiltered)."""
    scope = Scope(view, Filters())
    totals = Totals()
    collect_sessions(view, scope, totals, codec, None, False)
    setups = list(totals.acc)
    given = filters.given()
    known: dict[str, Any] = {}
    if "project" in given:
        known["projects"] = sorted({path for paths in scope.paths.values() for path in paths})
    for name, index in (("stack", 2), ("agent", 0), ("model", 1)):
        if name in given:
            known[name + "s"] = sorted({setup[index] for setup in setups})
    if "since" in given or "until" in given:
        created_of = codec.getter(("createdAt",))
        decode = codec.decoder(("createdAt",))
        stamps = []
        for raw in view.raw_values("sessions"):
            try:
                created = created_of(decode(raw))
            except codec.errors:
                continue
            if isinstance(created, str) and created:
                stamps.append(created)
        known["sessionsFrom"] = min(stamps, default=None)
        known["sessionsTo"] = max(stamps, default=None)
    return known


def describe_version(row: SetupRow, version: str | None, versions: dict[str, dict[str, Any]]) -> None:
    """The row's configuration version and its definition (None: versions merged)."""
    row.config_version = version
    stored = versions.get(version) if version is not None else None
    if stored is not None:
        row.configuration = stored["definition"]
        row.config_first_seen = stored.get("firstSeenAt")


def label_versions(rows: list[SetupRow]) -> None:
    """``build@3f2a9c (2026-12-04)`` on the rows of an agent that has more than one version among
    them; the others stay named by their agent alone."""
    seen: dict[str, set[str | None]] = {}
    for row in rows:
        seen.setdefault(row.agent, set()).add(row.config_version)
    for row in rows:
        if row.config_version is not None and len(seen[row.agent]) > 1:
            day = f" ({row.config_first_seen[:10]})" if row.config_first_seen else ""
            row.version_label = label(row.agent, row.config_version) + day


class NoGC:
    """Building millions of short-lived dicts: the cyclic GC only costs time here."""

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            gc.enable()



def _scan(view: ReadView, store: Store, scope_args: tuple[Any, ...], codec: Any, helper: Helper | None,
          force_slow: bool) -> tuple[Scope, Totals, bool]:
    """Every event read (today's path, kept for databases without summaries, timestamps in the
    time filters, and `doctor --summaries`): (scope, totals, whether the helper counted grades)."""
    scope = Scope(view, *scope_args)
    totals = Totals()
    collect_sessions(view, scope, totals, codec, None, force_slow)
    collect_commits(view, scope, totals, codec, None, force_slow)
    part = helper.result() if helper is not None else None
    if part is not None and part["txn"] == view.txn_id():  # same snapshot
        merge_helper_result(totals, scope, part)
        return scope, totals, True
    collect_grades(view, scope, totals, codec, None, force_slow)
    collect_bugs(view, scope, totals, None)
    return scope, totals, False


_told_no_summaries: set[str] = set()


def _scan_note(store: Store, filters: Filters, asked: bool) -> str | None:
    """Why this report reads every event, said once per database and process (None: not worth saying)."""
    if asked:
        return None
    if not filters.whole_days():
        return ("--since/--until at a time of day: the report read every event (whole days, such as "
                "2026-01-31 or 30d, are answered from the summaries).")
    if str(store.path) in _told_no_summaries:
        return None
    _told_no_summaries.add(str(store.path))
    return ("This database has no summaries yet, so the report read every event; the next write (a bridge, "
            "or `agent-tracker doctor --rebuild`) builds them once.")


def build_report(store: Store, *, project: str | None = None, stack: str | None = None,
                 since: str | None = None, until: str | None = None, min_sessions: int | None = None,
                 agent: str | None = None, model: str | None = None, group: str | None = None,
                 exact_stack: bool = False, beliefs: bool = True, by_version: bool = True,
                 decoder: str | None = None, parallel: bool = False, rules: ScoringRules | None = None,
                 scan: bool = False, _force_slow: bool = False) -> Report:
    """Aggregate, score and rank every setup (see the module docstring and SCORE_HELP).

    ``group``: "language" or "all" ranks setups across the stacks of a language, or across all
    projects (the setup's stack is then the language, or "all"): the fallback levels of recommend.
    Read from the summaries (bridge.summaries) when the database has them and the time filters are
    whole days; ``scan`` (or no summaries) reads every event instead, with the same result.
    ``parallel``: when scanning, count grades and bugs in a forked helper process meanwhile (the CLI
    does; the bridge does not, as it runs threads). The result is identical either way.
    ``beliefs``: state each setup's P(best) and score interval within its stack (posterior.py).
    ``by_version``: a setup is also its agent's configuration version (tracking.configs); False
    merges the versions of one agent and model (`report --by agent-model`).
    """
    started = time.perf_counter()
    rules = rules or ScoringRules()
    min_sessions = DEFAULT_MIN_SESSIONS if min_sessions is None else int(min_sessions)
    if min_sessions < 1:
        raise ReportError(f"--min-sessions must be at least 1; got {min_sessions}.")
    filters = Filters.parse(project=project, stack=stack, since=since, until=until, agent=agent, model=model,
                            exact_stack=exact_stack)
    codec = codec_named(decoder)
    scope_args = (filters, group, by_version)
    with NoGC():
        with store.read() as view:
            use_summaries = not _force_slow and not scan and summaries_answer(view, filters)
        source_note = None if use_summaries else _scan_note(store, filters, scan or _force_slow)
        helper = Helper.start(store, scope_args, codec.name) if parallel and not _force_slow and not use_summaries \
            else None
        used_helper = False
        try:
            with store.read() as view:
                if use_summaries and summaries_answer(view, filters):  # still (a writer may have dropped them)
                    scope, totals, imported = read_totals(view, filters, group, by_version)
                else:
                    use_summaries = False
                    scope, totals, used_helper = _scan(view, store, scope_args, codec, helper, _force_slow)
                    helper = None
                    imported = collect_imported(view, scope)
                agents = _read_agents(view)
                # A filter that matched nothing: say what there is, so the next try can match.
                known = known_values(view, codec, filters) if filters.given() and not totals.acc else None
                # Self-grades against the user's on the same commits (a pass over the grades).
                agreements = self_grade_agreement(view, codec) if beliefs and totals.acc else {}
                versions = stored_versions(view) if scope.versioned else {}
        finally:
            if helper is not None:
                helper.cancel()
    rows = []
    for setup, acc in totals.acc.items():
        agent_id, version = setup[0], setup[3]
        row = setup_row(setup[:3], acc, last_used=totals.last_used.get(setup),
                        projects=len(scope.paths.get(setup, ())),
                        subagents=subagent_rows(totals.subagents.get(setup, {}), acc[TOOL_CALLS],
                                                totals.subagent_versions.get(setup, {}) if scope.versioned else None))
        describe_version(row, version, versions)
        if setup in imported:
            row.imported = imported[setup]
        state = agents.get(agent_id)
        if state is not None:
            row.skill_points = state.skill_points
            row.communication_score = state.communication_score
            row.halted = state.halted
        rows.append(row)
    label_versions(rows)
    rows = rank_rows(rows, min_sessions)
    if beliefs:
        for stack_name in dict.fromkeys(row.stack for row in rows):
            judge([row for row in rows if row.stack == stack_name and is_contender(row)], agreements)
    by_model = {model: spent_usage(acc, totals.spent_roots[model], totals.spent_commits[model])
                for model, acc in sorted(totals.spent.items())}
    usage = Usage()
    for spent in by_model.values():
        usage.add(spent)
    # Sessions are counted once, whichever models they used (a per-model sum would count twice);
    # the working time is the setups' (a subagent's runs inside its parent's task call).
    usage.sessions, usage.commits = len(totals.spent_roots.get("", ())), totals.spent_commits.get("", 0)
    usage.duration_ms = sum(row.usage.duration_ms for row in rows)
    report = Report(
        database=str(store.path), generated_at=utc_now(),
        filters=filters.to_wire(),
        min_sessions=min_sessions, setups=rows, recommendations=recommend(rows, min_sessions),
        agents=[agent_sheet_detail(state, rules) for _, state in sorted(agents.items())
                if filters.agent is None or state.agent_id.lower() == filters.agent.lower()],
        totals={**totals.counts, "setups": len(rows), "rankedSetups": sum(r.ranked for r in rows)},
        decoder=codec.name, parallel=used_helper,
        unattributed_bugs=totals.unattributed_bugs, known=known, selection=filters,
        imported={"commits": sum(r.imported["commits"] for r in rows),
                  "grades": sum(r.imported["grades"] for r in rows)},
        usage=usage, usage_by_model=by_model, agreements=agreements, source="summaries" if use_summaries else "scan",
        source_note=source_note, by_version=by_version,
    )
    report.duration_ms = (time.perf_counter() - started) * 1000
    return report
