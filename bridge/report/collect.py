"""Attribution and aggregation: every stored record counted for one setup (see the package docstring)."""

from __future__ import annotations

import math
import re
from typing import Any, Callable

import orjson

from ..store import ReadView
from .attribution import Bucket, Scope, Totals, Window, outside, session_version
from .decode import count_groups, scan_rows
from .model import SetupKey
from .outcomes import add_subagent_work, settle_abandoned
from .usage import add_usage
from .score import (
    AGENT_GRADE_COUNTS,
    AGENT_N,
    AGENT_SUM,
    BAD,
    COMMITS,
    ENDED,
    EXCELLENT,
    FAILED_CALLS,
    FIXED_UP,
    SESSIONS,
    SLOTS,
    TOOL_CALLS,
    USER_GRADE_COUNTS,
    USER_N,
    USER_SUM,
    XP,
)

_loads = orjson.loads




def _each(view: ReadView, db: str, one: Callable[[dict[str, Any] | None], None]) -> None:
    """The record-by-record path (time buckets for the chart; tests compare it with the fast one)."""
    for raw in view.raw_values(db):
        try:
            one(_loads(raw))
        except orjson.JSONDecodeError:
            continue


_SESSION_FIELDS = ("agentId", "provider", "model", "projectPath", "setups", "xpEarned", "updatedAt",
                   "createdAt")
# Counters a session leaves out while they are 0, and the markers of an ended or a subagent's session.
_SESSION_OPTIONAL = ("sessionID", "parentID", "toolCalls", "failedToolCalls", "commits", "endedAt", "deletedAt",
                     "fixedUpCommits", "usage", "configVersions", "configVersion")  # session_version reads both
_COUNT_TYPES = (int, float, type(None))



def collect_sessions(view: ReadView, scope: Scope, totals: Totals, codec: Any,
                      bucket: Bucket | None, force_slow: bool) -> None:
    """Sessions, their XP and tool calls per setup; which ended and which of those were abandoned;
    a subagent's session counts for its root session's setup (never as a session of its own)."""
    window = scope.window
    last_used = totals.last_used
    counts = totals.counts

    def one(record: dict[str, Any] | None) -> None:
        if not isinstance(record, dict):
            return
        get = record.get
        created = get("createdAt") or ""
        if outside(window, created):
            return
        session_id = get("sessionID")
        add_usage(scope, totals, bucket, session_id, get("usage"), get("projectPath"), created, get("commits"),
                  get("configVersions"))
        child = scope.is_child(session_id)
        root_id = scope.root_session(str(session_id)) if child else session_id
        keys = scope.session_setups((scope.session(root_id) or {}) if child else record)
        share = 1 / len(keys)
        xp, failed, commits = _number(get("xpEarned")), _number(get("failedToolCalls")), _number(get("commits"))
        fixed_up = _number(get("fixedUpCommits"))
        calls = _number(get("toolCalls")) + failed
        ended = not child and bool(get("endedAt") or get("deletedAt"))
        last = get("updatedAt") or created
        hit = False
        accs = []
        for setup in keys:
            if setup is None:
                continue
            hit = True
            acc = totals.slot(setup, bucket, created)
            acc[XP] += xp * share
            acc[TOOL_CALLS] += calls * share
            acc[FAILED_CALLS] += failed * share
            acc[FIXED_UP] += fixed_up * share
            group = totals.group(setup, bucket, created)
            if child:
                add_subagent_work(totals, group, get("agentId"), calls * share, failed * share, commits * share,
                                  xp * share, session_version(record))
            else:
                acc[SESSIONS] += 1
                acc[ENDED] += ended
                accs.append(acc)
            if isinstance(last, str) and last > last_used.get(group, ""):
                last_used[group] = last
            if totals.last_used_by is not None and isinstance(last, str):
                latest = totals.last_used_by.setdefault(group, {})
                if last > latest.get(str(root_id), ""):
                    latest[str(root_id)] = last
        if hit:
            totals.count_session(keys, bucket, created, child)
        if child:
            counts["subagentSessions"] += hit
            if isinstance(root_id, str):
                totals.child_commits[root_id] = totals.child_commits.get(root_id, 0) + commits
            return
        counts["sessions"] += hit
        if ended and not commits and accs:
            totals.ended_without_commit[str(session_id)] = accs

    if bucket is not None or force_slow:
        _each(view, "sessions", one)
        settle_abandoned(totals)
        return
    # The common case (a root session with one setup, every field a plain value) in a lean loop;
    # anything else goes through one() — before any accumulator was touched for that record.
    acc_of = totals.acc
    setup_of = scope.setup
    names = _SESSION_FIELDS + _SESSION_OPTIONAL
    # (agentId, provider, model, projectPath) -> (setup, its accumulator), or None (filtered out)
    targets: dict[tuple[Any, ...], tuple[SetupKey, list[float]] | None] = {}
    counted = 0
    ended_without_commit = totals.ended_without_commit
    for values in scan_rows(view, "sessions", _SESSION_FIELDS, codec, one, window, _SESSION_OPTIONAL):
        agent, provider, model, path, setups, xp, updated, created, session_id, parent, calls, failed, commits, \
            ended, deleted, fixed_up, usage, versions, version = values
        if (setups is not None and len(setups) > 1) or xp.__class__ not in (int, float) \
                or updated.__class__ is not str or parent is not None or calls.__class__ not in _COUNT_TYPES \
                or failed.__class__ not in _COUNT_TYPES or commits.__class__ not in _COUNT_TYPES \
                or fixed_up.__class__ not in _COUNT_TYPES or (versions is not None and versions.__class__ is not dict):
            one(dict(zip(names, values)))
            continue
        if usage:  # before the filters below: usage counts per message setup (usage.add_usage)
            add_usage(scope, totals, None, session_id, usage, path, created, commits, versions)
        mine = versions.get(agent) if versions and agent.__class__ is str else None  # as session_version
        head = (agent, provider, model, path, mine if mine is not None else version)
        try:
            target = targets[head]
        except KeyError:
            setup = setup_of(*head)
            if setup is not None:
                acc = acc_of.get(setup)
                if acc is None:
                    acc = acc_of[setup] = [0.0] * SLOTS
                target = targets[head] = (setup, acc)
            else:
                target = targets[head] = None
        except TypeError:  # an unhashable field: the careful path
            one(dict(zip(names, values)))
            continue
        if target is None:
            continue
        setup, acc = target
        acc[SESSIONS] += 1
        acc[XP] += xp
        if calls or failed:
            acc[TOOL_CALLS] += (calls or 0) + (failed or 0)
            acc[FAILED_CALLS] += failed or 0
        if fixed_up:
            acc[FIXED_UP] += fixed_up
        if ended or deleted:
            acc[ENDED] += 1
            if not commits:
                ended_without_commit[str(session_id)] = [acc]
        if updated > last_used.get(setup, ""):
            last_used[setup] = updated
        counted += 1
    counts["sessions"] += counted
    settle_abandoned(totals)


def _number(value: Any) -> float:
    """A stored counter (absent, or foreign data that is not a number: 0)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0



def collect_commits(view: ReadView, scope: Scope, totals: Totals, codec: Any,
                     bucket: Bucket | None, force_slow: bool) -> None:
    """Commits per setup (a subagent's for its root session's setup)."""
    window = scope.window
    careful = bucket is not None or force_slow

    def one(record: dict[str, Any] | None) -> None:
        if not isinstance(record, dict):
            return
        get = record.get
        created = get("createdAt")
        if outside(window, created):
            return
        setup = scope.credited_setup(get("agentId"), get("provider"), get("model"), get("projectPath"),
                                     get("sessionID"), get("configVersion"))
        if setup is not None:
            totals.slot(setup, bucket, created)[COMMITS] += 1
            totals.counts["commits"] += 1

    if careful:
        _each(view, "commits", one)
        return
    # Subagents' commits are told apart by their session, so with any subagent session in the
    # database the groups are per session too (about as many as sessions with commits).
    fields = ("agentId", "provider", "model", "projectPath") + (("sessionID",) if scope.parents else ())
    optional = ("configVersion",) if scope.versioned else ()  # absent on commits from before versions
    groups = count_groups(view, "commits", fields, codec, one, window, optional)
    for group, count in groups.items():
        if scope.parents:
            setup = scope.credited_setup(*group)
        else:
            setup = scope.setup(*group)
        if setup is not None:
            totals.slot(setup, None, None)[COMMITS] += count
            totals.counts["commits"] += count



def grade_setup(scope: Scope, record: dict[str, Any]) -> SetupKey | None:
    """The setup a grade counts for (see the package docstring)."""
    get = record.get
    agent, provider, model, path = get("agentId"), get("provider"), get("model"), get("projectPath")
    version = get("configVersion")
    if scope.parents:  # a grade counts where its commit does: a subagent's, for its root session's setup
        commit = scope.commit(path, get("commitHash"))
        session_id = commit.get("sessionID") if commit else get("sessionID")
        if scope.is_child(session_id):
            return scope.credited_setup(agent, provider, model, path, session_id)
    if model is None:
        commit = scope.commit(path, get("commitHash"))
        if commit and commit.get("model"):
            agent, provider, model = agent or commit.get("agentId"), commit.get("provider"), commit.get("model")
        else:
            session = scope.session(get("sessionID"))
            if session and session.get("model"):
                provider, model = session.get("provider"), session.get("model")
                agent = agent or session.get("agentId")
    return scope.setup(agent, provider, model, path, version)



def _add_grade(acc: list[float], grader: Any, grade: Any, count: int) -> bool:
    if isinstance(grade, bool) or not isinstance(grade, (int, float)) or not math.isfinite(grade):
        return False
    if grader == "user":
        acc[USER_SUM] += grade * count
        acc[USER_N] += count
        slot = USER_GRADE_COUNTS.get(int(grade)) if grade == int(grade) else None
        if slot is not None:
            acc[slot] += count
    elif grader == "agent":
        acc[AGENT_SUM] += grade * count
        acc[AGENT_N] += count
        slot = AGENT_GRADE_COUNTS.get(int(grade)) if grade == int(grade) else None
        if slot is not None:
            acc[slot] += count
    # Shares of excellence and bad count every grade, whoever the grader (migrated: "unknown").
    if grade == 5:
        acc[EXCELLENT] += count
    elif grade == -1:
        acc[BAD] += count
    return True


_GRADE_FIELDS = ("agentId", "provider", "model", "projectPath", "grader", "grade")



def collect_grades(view: ReadView, scope: Scope, totals: Totals, codec: Any,
                    bucket: Bucket | None, force_slow: bool) -> None:
    window = scope.window

    def one(record: dict[str, Any] | None) -> None:
        if not isinstance(record, dict):
            return
        created = record.get("createdAt")
        if outside(window, created):
            return
        setup = grade_setup(scope, record)
        if setup is not None and _add_grade(totals.slot(setup, bucket, created), record.get("grader"),
                                            record.get("grade"), 1):
            totals.tally("grades", totals.group(setup, bucket, created))

    # With subagent sessions in the database, each grade's commit tells where it counts: one by one.
    if bucket is not None or force_slow or scope.parents:
        _each(view, "communication", one)
        return
    # Grouped in C by (agent, provider, model, project, grader, grade): a few hundred groups.
    optional = ("configVersion",) if scope.versioned else ()  # absent on grades from before versions
    groups = count_groups(view, "communication", _GRADE_FIELDS, codec, one, window, optional)
    need_model = False
    for (agent, provider, model, path, grader, grade, *version), count in groups.items():
        if model is None:
            need_model = True  # graded outside the commit's session: resolved below
            continue
        setup = scope.setup(agent, provider, model, path, *version)
        if setup is not None and _add_grade(totals.slot(setup, None, None), grader, grade, count):
            totals.counts["grades"] += count
    if need_model:
        _grades_without_model(view, codec, window, one)



def _grades_without_model(view: ReadView, codec: Any, window: Window,
                          one: Callable[[dict[str, Any] | None], None]) -> None:
    """The grades the grouped path counted under a null model, record by record (the same
    routing as scan_rows: a value it handed to one_by_one is skipped here)."""
    decode = codec.decoder(_GRADE_FIELDS + ("createdAt",))
    getter = codec.getter(_GRADE_FIELDS)
    created_of = codec.getter(("createdAt",))
    maybe = (lambda raw: b'"model":' not in raw or b'"model":null' in raw)
    for raw in filter(maybe, view.raw_values("communication")):
        try:
            record = decode(raw)
            values = getter(record)
            if window is not None and not window[0] <= created_of(record) < window[1]:
                continue
        except codec.errors:
            continue
        if values[2] is None:
            one(_loads(raw))


_MIGRATED = re.compile(rb'"migratedFrom"').search  # cheaper than decoding every commit and grade


def collect_imported(view: ReadView, scope: Scope) -> dict[SetupKey, dict[str, int]]:
    """Per setup, its commits and grades imported from the older plugin (bridge.migration marks
    them with ``migratedFrom``), so the report can say so. They are counted like any other
    commit and grade by collect_commits and collect_grades; this only tells them apart."""
    found: dict[SetupKey, dict[str, int]] = {}
    if not view.count("migrations"):  # every import writes a migrations record
        return found
    window = scope.window
    for db, name in (("commits", "commits"), ("communication", "grades")):
        for raw in filter(_MIGRATED, view.raw_values(db)):
            try:
                record = _loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict) or "migratedFrom" not in record:
                continue
            if outside(window, record.get("createdAt")):
                continue
            setup = imported_setup(scope, db, record)
            if setup is not None:
                counts = found.setdefault(setup, {"commits": 0, "grades": 0})
                counts[name] += 1
    return found


def imported_setup(scope: Scope, db: str, record: dict[str, Any]) -> SetupKey | None:
    """The setup a commit (``db`` "commits") or a grade imported from the older plugin counts for:
    a commit's own agent and model, a grade's as grades are attributed (grade_setup)."""
    if db == "commits":
        return scope.setup(record.get("agentId"), record.get("provider"), record.get("model"),
                           record.get("projectPath"), record.get("configVersion"))
    return grade_setup(scope, record)
