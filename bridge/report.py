"""The setup report: which (agent, provider/model, project stack) works best, from the central database.

A *setup* is the OpenCode agent, the provider/model it ran on and the stack of the project
(language/framework, bridge.stack). Every session, commit, grade and bug in the database is
attributed to one setup (rules below), aggregated, scored and ranked within its stack.

Attribution
  * a session counts once for every setup it used (``setups[]``, normally one; its XP is split
    evenly between them); a session without agent information counts for ``unknown``;
  * a commit counts for the agent and provider/model recorded with it;
  * a grade counts for the agent and provider/model recorded with it (the agent is the one who
    made the commit); a grade stored without a model (graded outside the commit's session, or
    migrated) takes the commit's, then the session's;
  * a bug counts for the setup of the commit it names, else of the session it was reported in
    (the reported agent's entry in that session); a bug naming neither is *unattributed*;
  * the stack is the project's ``projects`` record, else the project folder classified now if
    it exists, else ``unknown``.

Score (0-100, see SCORE_HELP) and ranking rules are documented in docs/README-report.md.

Speed: one pass per sub-database over the raw values, in one read transaction. Commits and
grades are grouped in C (``Counter(map(itemgetter(...), map(orjson.loads, values)))``, or with
msgspec, when installed, frozen structs of just the needed fields as the group keys); a record
that lacks a field (e.g. a migrated one) is handled on its own and the scan resumes after it;
activities are decoded only when their bytes mention ``"bug"``. bench/bench_report.py measures it.
"""

from __future__ import annotations

import gc
import math
import os
import re
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import attrs
import orjson

from .config import BridgeConfig
from .git_commands import hashes_match
from .store import ReadView, Store, key
from .timestamps import utc_now

DEFAULT_MIN_SESSIONS = 3
UNKNOWN = "unknown"
UNKNOWN_MODEL = "unknown-model"
# Grades are -1 (bad), 1 (neutral), 2 (good), 5 (excellence): mapped onto 0..1 by (g + 1) / 6.
GRADE_MIN, GRADE_MAX, NEUTRAL_GRADE = -1, 5, 1
GRADE_PRIOR = 2  # virtual neutral grades added to each mean (small samples stay near neutral)
WEIGHTS = {"userGrade": 0.40, "agentGrade": 0.15, "productivity": 0.25, "reliability": 0.20}
FORMULA = ("score = 100 x (0.40 x userGrade + 0.15 x agentGrade + 0.25 x productivity "
           "+ 0.20 x reliability)")
TIE_BREAK = ["score (higher first)", "sessions (more first)", "commits (more first)",
             "lastUsed (more recent first)", "agent, model, stack (alphabetical)"]
SCORE_HELP = f"""\
A setup is (OpenCode agent, provider/model, project stack). Each setup is scored 0-100:

  {FORMULA}

  userGrade    = (m + 1) / 6 where m is the mean user grade (-1, 1, 2, 5) smoothed with
                 {GRADE_PRIOR} virtual neutral grades: m = (sum + {GRADE_PRIOR}) / (count + {GRADE_PRIOR})
  agentGrade   = the same for the agents' self-grades
  productivity = c / (c + 1), c = commits per session (1 commit/session = 0.5)
  reliability  = 1 - min(1, bugs per commit)

Setups with fewer sessions than --min-sessions (default {DEFAULT_MIN_SESSIONS}), or with an unknown
agent/model, are shown but not ranked. Ranks are per stack; ties are broken by
{", then ".join(TIE_BREAK[1:])}. One recommendation per stack: its rank-1 setup.
"""

# Accumulator slots (one list of numbers per setup, or per (setup, time bucket)).
SESSIONS, XP, COMMITS, AGENT_SUM, AGENT_N, USER_SUM, USER_N, EXCELLENT, BAD, BUGS = range(10)
_SLOTS = 10

_loads = orjson.loads
_SINCE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?)?$")
_RELATIVE = re.compile(r"^(\d{1,5})d$")
_HAS_BUG = re.compile(rb'"bug"').search  # cheaper than decoding every activity

SetupKey = tuple[str, str, str]  # (agent, model name, stack)


class ReportError(ValueError):
    """A bad report option (e.g. --since); the message says what is accepted."""


# -- opening ----------------------------------------------------------------------------------------

def open_readonly(config: BridgeConfig) -> Store:
    """A read-only store (check ``available``/``error`` as with Store.open)."""
    return Store.open(config, readonly=True)


# -- the report ---------------------------------------------------------------------------------

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

    @property
    def setup(self) -> str:
        return f"{self.agent}|{self.model}"

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
        }


@attrs.define
class Recommendation:
    stack: str
    text: str
    setup: SetupRow | None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"stack": self.stack, "text": self.text}
        if self.setup is not None:
            wire.update({"agent": self.setup.agent, "model": self.setup.model,
                         "setup": self.setup.setup, "score": self.setup.score,
                         "sessions": self.setup.sessions})
        else:
            wire.update({"agent": None, "model": None, "setup": None, "score": None, "sessions": None})
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
    duration_ms: float = 0.0
    decoder: str = "orjson"
    parallel: bool = False
    # commits and grades (of those counted) imported from the older TypeScript plugin
    imported: dict[str, int] = attrs.Factory(lambda: {"commits": 0, "grades": 0})

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
            "setups": [row.to_wire() for row in self.setups],
            "recommendations": [rec.to_wire() for rec in self.recommendations],
            "agents": self.agents, "durationMs": round(self.duration_ms, 3), "decoder": self.decoder,
            "parallel": self.parallel,
        }


# -- scoring ---------------------------------------------------------------------------------------

def _grade_part(total: float, count: int) -> float:
    smoothed = (total + GRADE_PRIOR * NEUTRAL_GRADE) / (count + GRADE_PRIOR)
    return (smoothed - GRADE_MIN) / (GRADE_MAX - GRADE_MIN)


def score_parts(acc: list[float]) -> tuple[float, dict[str, float]]:
    """(score 0-100, its four parts 0-1) of one accumulator (see SCORE_HELP)."""
    sessions, commits, bugs = acc[SESSIONS], acc[COMMITS], acc[BUGS]
    per_session = commits / sessions if sessions else 0.0
    if commits:
        reliability = 1.0 - min(1.0, bugs / commits)
    else:
        reliability = 0.0 if bugs else 1.0
    parts = {
        "userGrade": _grade_part(acc[USER_SUM], int(acc[USER_N])),
        "agentGrade": _grade_part(acc[AGENT_SUM], int(acc[AGENT_N])),
        "productivity": per_session / (per_session + 1.0),
        "reliability": reliability,
    }
    score = 100.0 * sum(WEIGHTS[name] * value for name, value in parts.items())
    return score, parts


def _sort_key(row: SetupRow) -> tuple[Any, ...]:
    # Deterministic: rounded score (float noise never decides), then the documented tie-breaks.
    return (-round(row.score, 9), -row.sessions, -row.commits, _descending(row.last_used or ""),
            row.agent, row.model, row.stack)


def _descending(text: str) -> tuple[int, ...]:
    """Sorts strings in descending order (the sentinel puts a prefix after its extensions)."""
    return tuple(-ord(c) for c in text) + (1,)


# -- options ---------------------------------------------------------------------------------------

def normalise_since(since: str | None, now: datetime | None = None) -> str | None:
    """YYYY-MM-DD, an ISO timestamp, or Nd (N days ago) → an ISO prefix to compare with createdAt."""
    if since is None or since == "":
        return None
    text = since.strip()
    relative = _RELATIVE.match(text)
    if relative:
        moment = (now or datetime.now(timezone.utc)) - timedelta(days=int(relative.group(1)))
        return moment.strftime("%Y-%m-%d")
    if not _SINCE.match(text):
        raise ReportError(f"--since must be a date like 2026-01-31, an ISO timestamp, or Nd "
                          f"(N days ago, e.g. 30d); got {since!r}.")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise ReportError(f"--since is not a valid date: {since!r}.") from None
    if len(text) == 10:
        return text
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def normalise_project(project: str | None) -> str | None:
    if not project:
        return None
    return os.path.normpath(os.path.abspath(os.path.expanduser(project)))


def stack_matches(stack: str, wanted: str | None) -> bool:
    """``python`` matches python and python/*; ``python/fastapi`` only itself (case-insensitive)."""
    if not wanted:
        return True
    stack, wanted = stack.lower(), wanted.lower().strip().rstrip("/")
    return stack == wanted or ("/" not in wanted and stack.startswith(wanted + "/"))


def model_name(provider: str | None, model: str | None) -> str:
    """Same naming as tracking.setup_name: provider/model, else model, else unknown-model."""
    if provider and model:
        return f"{provider}/{model}"
    return model or UNKNOWN_MODEL


# -- attribution -----------------------------------------------------------------------------------

class _Scope:
    """Filters, stack classification and record → setup attribution, all memoised."""

    def __init__(self, view: ReadView, project: str | None, stack: str | None, since: str | None,
                 agent: str | None):
        self.view = view
        self.project = project
        self.stack = stack
        self.since = since
        self.agent = agent
        self.projects: dict[str, dict[str, Any]] = {}
        for raw in view.raw_values("projects"):
            try:
                record = _loads(raw)
                self.projects[record["path"]] = record
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        self._stacks: dict[str | None, str] = {}
        self.setups_cache: dict[tuple[Any, ...], SetupKey | None] = {}
        self._named: dict[tuple[str, Any], SetupKey | None] = {}
        self.paths: dict[SetupKey, set[str]] = {}
        self._commits: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._sessions: dict[str, dict[str, Any] | None] = {}

    def stack_of(self, path: str | None) -> str:
        found = self._stacks.get(path)
        if found is None:
            found = self._stacks[path] = self._classify(path)
        return found

    def _classify(self, path: str | None) -> str:
        if not path:
            return UNKNOWN
        record = self.projects.get(path)
        if record and record.get("stack"):
            return str(record["stack"])
        candidate = Path(path)
        if candidate.is_absolute() and candidate.is_dir():
            from .stack import classify
            return classify(candidate).name
        return UNKNOWN

    def setup(self, agent: Any, provider: Any, model: Any, path: Any) -> SetupKey | None:
        """The setup of a record, or None when the filters leave it out."""
        cache_key = (agent, provider, model, path)
        try:
            return self.setups_cache[cache_key]
        except KeyError:
            pass
        except TypeError:  # an unhashable field (foreign data): not attributable
            return None
        found = self.setups_cache[cache_key] = self._resolve(agent or UNKNOWN, model_name(provider, model), path)
        return found

    def named_setup(self, name: str, path: Any) -> SetupKey | None:
        """A session's ``setups[]`` entry ``agent|provider/model``."""
        cache_key = (str(name), path if isinstance(path, str) else None)
        found = self._named.get(cache_key, False)
        if found is False:
            agent, _, model = str(name).partition("|")
            found = self._named[cache_key] = self._resolve(agent or UNKNOWN, model or UNKNOWN_MODEL, path)
        return found  # type: ignore[return-value]

    def _resolve(self, agent: str, model: str, path: Any) -> SetupKey | None:
        path = path if isinstance(path, str) else None
        if self.project is not None and (path is None or _normal_path(path) != self.project):
            return None
        if self.agent is not None and agent != self.agent:
            return None
        stack = self.stack_of(path)
        if not stack_matches(stack, self.stack):
            return None
        setup = (str(agent), model, stack)
        if path:
            self.paths.setdefault(setup, set()).add(path)
        return setup

    # Lookups used by the record-by-record paths (few records: bugs, migrated or partial data).

    def commit(self, path: str | None, commit_hash: str | None) -> dict[str, Any] | None:
        if not path or not commit_hash or not isinstance(path, str) or not isinstance(commit_hash, str):
            return None
        cache_key = (path, commit_hash)
        if cache_key in self._commits:
            return self._commits[cache_key]
        found = self.view.get("commits", key(path, commit_hash.lower()))
        if found is None and len(commit_hash) >= 4:
            for _, record in self.view.scan("commits", key(path, commit_hash[:4].lower())):
                if isinstance(record.get("hash"), str) and hashes_match(record["hash"], commit_hash):
                    found = record
                    break
        self._commits[cache_key] = found
        return found

    def prefetch_commits(self, wanted: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Exact-key lookups for many commits at once, in key order (misses are left to commit())."""
        keys = sorted((key(path, commit_hash.lower()).encode(), path, commit_hash) for path, commit_hash in wanted)
        found: dict[tuple[str, str], dict[str, Any]] = {}
        with _cursor(self.view, "commits") as cursor:
            set_key, value = cursor.set_key, cursor.value
            for raw_key, path, commit_hash in keys:
                if set_key(raw_key):
                    try:
                        record = _loads(value())
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(record, dict):
                        found[(path, commit_hash)] = record
        self._commits.update(found)
        return found

    def session(self, session_id: Any) -> dict[str, Any] | None:
        if not isinstance(session_id, str) or not session_id:
            return None
        if session_id not in self._sessions:
            self._sessions[session_id] = self.view.get("sessions", session_id)
        return self._sessions[session_id]


def _normal_path(path: str) -> str:
    return os.path.normpath(path)


# -- decoding ----------------------------------------------------------------------------------------

class _OrjsonCodec:
    """Values → dicts with orjson; a missing field raises KeyError (handled record by record)."""

    name = "orjson"
    errors: tuple[type[BaseException], ...] = (KeyError, TypeError, AttributeError, orjson.JSONDecodeError)

    def decoder(self, fields: tuple[str, ...]) -> Callable[[bytes], Any]:
        return _loads

    def getter(self, fields: tuple[str, ...]) -> Callable[[Any], Any]:
        return itemgetter(*fields)

    def keys(self, fields: tuple[str, ...]) -> tuple[Callable[[Iterator[bytes]], Iterable[Any]], Callable[[Any], Any]]:
        """(values → hashable group keys, group key → tuple of ``fields``)."""
        getter = itemgetter(*fields)
        return (lambda values: map(getter, map(_loads, values))), (lambda group: group)


class _MsgspecCodec:
    """Values → structs holding only the fields the report reads (optional accelerator: the
    others are skipped without being allocated, ~35% faster than orjson). Missing fields are
    None, exactly what the record-by-record path (``dict.get``) sees."""

    name = "msgspec"

    def __init__(self) -> None:
        import msgspec

        self._msgspec = msgspec
        self.errors = (TypeError, AttributeError, msgspec.MsgspecError)
        self._decoders: dict[tuple[str, ...], Callable[[bytes], Any]] = {}

    def decoder(self, fields: tuple[str, ...]) -> Callable[[bytes], Any]:
        found = self._decoders.get(fields)
        if found is None:
            # gc=False: rows hold only scalars and lists of strings, never cycles.
            struct = self._msgspec.defstruct("Row", [(name, Any, None) for name in fields], gc=False)
            found = self._decoders[fields] = self._msgspec.json.Decoder(struct).decode
        return found

    def getter(self, fields: tuple[str, ...]) -> Callable[[Any], Any]:
        return attrgetter(*fields)

    def keys(self, fields: tuple[str, ...]) -> tuple[Callable[[Iterator[bytes]], Iterable[Any]], Callable[[Any], Any]]:
        # A frozen struct of exactly ``fields`` is itself the group key: no tuple per record.
        found = self._decoders.get(("#keys",) + fields)
        if found is None:
            struct = self._msgspec.defstruct("Key", [(name, Any, None) for name in fields], gc=False, frozen=True)
            found = self._decoders[("#keys",) + fields] = self._msgspec.json.Decoder(struct).decode
        decode = found
        return (lambda values: map(decode, values)), attrgetter(*fields)


_CODECS: dict[str, Any] = {}


def _codec(name: str | None = None) -> Any:
    """``msgspec`` when installed (faster), else ``orjson``; AGENT_TRACKER_REPORT_DECODER forces one."""
    name = name or os.environ.get("AGENT_TRACKER_REPORT_DECODER") or "auto"
    if name not in _CODECS:
        if name in ("auto", "msgspec"):
            try:
                _CODECS[name] = _MsgspecCodec()
            except ImportError:
                if name == "msgspec":
                    raise ReportError("The msgspec decoder was asked for but msgspec is not installed.") from None
                _CODECS[name] = _OrjsonCodec()
        elif name == "orjson":
            _CODECS[name] = _OrjsonCodec()
        else:
            raise ReportError(f"Unknown report decoder {name!r}: use orjson or msgspec.")
    return _CODECS[name]


@contextmanager
def _cursor(view: ReadView, db: str) -> Iterator[Any]:
    """A raw py-lmdb cursor: the fast paths iterate it directly and, after a record fails,
    read the value it still points at (ReadView has no public cursor yet)."""
    cursor = view.cursor(db)
    try:
        yield cursor
    finally:
        cursor.close()


def _rows(view: ReadView, db: str, fields: tuple[str, ...], codec: Any,
          one_by_one: Callable[[dict[str, Any] | None], None],
          since: str | None = None) -> Iterator[Any]:
    """``fields`` tuples of every value of ``db``, decoded and picked in C.

    A value that does not fit (a missing field, a non-string createdAt when filtering by date,
    not an object) is decoded with orjson and given to ``one_by_one``; the scan then resumes at
    the next record (the cursor still points at the one that failed).
    """
    decode = codec.decoder(fields + ("createdAt",))
    getter = codec.getter(fields)
    created_of = codec.getter(("createdAt",))
    with _cursor(view, db) as cursor:
        if not cursor.first():
            return
        values: Iterator[bytes] = cursor.iternext(keys=False, values=True)
        while True:
            records: Iterable[Any] = map(decode, values)
            if since:
                records = filter(lambda r: created_of(r) >= since, records)
            try:
                yield from map(getter, records)
                return
            except codec.errors:
                try:
                    one_by_one(_loads(cursor.value()))
                except orjson.JSONDecodeError:
                    one_by_one(None)
                if not cursor.next():
                    return
                values = cursor.iternext(keys=False, values=True)


def _count(view: ReadView, db: str, fields: tuple[str, ...], codec: Any,
           one_by_one: Callable[[dict[str, Any] | None], None], since: str | None = None) -> Counter:
    """Counter of ``fields`` tuples: like _rows, but the whole loop runs in C."""
    decode = codec.decoder(fields + ("createdAt",))
    getter = codec.getter(fields)
    created_of = codec.getter(("createdAt",))
    group_keys, as_tuple = codec.keys(fields)
    counts: Counter = Counter()

    def result() -> Counter:
        if since:
            return counts
        tuples: Counter = Counter()
        for group, count in counts.items():
            tuples[as_tuple(group)] += count
        return tuples

    with _cursor(view, db) as cursor:
        if not cursor.first():
            return counts
        values: Iterator[bytes] = cursor.iternext(keys=False, values=True)
        while True:
            if since:
                records = filter(lambda r: created_of(r) >= since, map(decode, values))
                keys: Iterable[Any] = map(getter, records)
            else:
                keys = group_keys(values)
            try:
                # An exception leaves the failing record uncounted (hashing comes before insertion).
                counts.update(keys)
                return result()
            except codec.errors:
                try:
                    one_by_one(_loads(cursor.value()))
                except orjson.JSONDecodeError:
                    one_by_one(None)
                if not cursor.next():
                    return result()
                values = cursor.iternext(keys=False, values=True)


# -- aggregation -----------------------------------------------------------------------------------

Bucket = Callable[[Any], Any]


class _Totals:
    def __init__(self) -> None:
        self.acc: dict[Any, list[float]] = {}
        self.last_used: dict[SetupKey, str] = {}
        self.unattributed_bugs = 0
        self.counts = {"sessions": 0, "commits": 0, "grades": 0, "bugs": 0}

    def slot(self, setup: SetupKey, bucket: Bucket | None, created: Any) -> list[float]:
        group: Any = setup if bucket is None else (setup, bucket(created))
        found = self.acc.get(group)
        if found is None:
            found = self.acc[group] = [0.0] * _SLOTS
        return found


def _collect(view: ReadView, scope: _Scope, codec: Any, bucket: Bucket | None = None,
             force_slow: bool = False) -> _Totals:
    totals = _Totals()
    _collect_sessions(view, scope, totals, codec, bucket, force_slow)
    _collect_commits(view, scope, totals, codec, bucket, force_slow)
    _collect_grades(view, scope, totals, codec, bucket, force_slow)
    _collect_bugs(view, scope, totals, bucket)
    return totals


def _each(view: ReadView, db: str, one: Callable[[dict[str, Any] | None], None]) -> None:
    """The record-by-record path (time buckets for the chart; tests compare it with the fast one)."""
    for raw in view.raw_values(db):
        try:
            one(_loads(raw))
        except orjson.JSONDecodeError:
            continue


_SESSION_FIELDS = ("agentId", "provider", "model", "projectPath", "setups", "xpEarned", "updatedAt",
                   "createdAt")


def _collect_sessions(view: ReadView, scope: _Scope, totals: _Totals, codec: Any,
                      bucket: Bucket | None, force_slow: bool) -> None:
    since = scope.since
    last_used = totals.last_used
    counts = totals.counts

    def one(record: dict[str, Any] | None) -> None:
        if not isinstance(record, dict):
            return
        get = record.get
        created = get("createdAt") or ""
        if since and (not isinstance(created, str) or created < since):
            return
        path = get("projectPath")
        setups = get("setups")
        if isinstance(setups, list) and len(setups) > 1:
            keys = [scope.named_setup(name, path) for name in setups]
        else:
            keys = [scope.setup(get("agentId"), get("provider"), get("model"), path)]
        xp = get("xpEarned") or 0
        share = (xp if isinstance(xp, (int, float)) and not isinstance(xp, bool) else 0) / len(keys)
        last = get("updatedAt") or created
        hit = False
        for setup in keys:
            if setup is None:
                continue
            hit = True
            acc = totals.slot(setup, bucket, created)
            acc[SESSIONS] += 1
            acc[XP] += share
            if isinstance(last, str) and last > last_used.get(setup, ""):
                last_used[setup] = last
        counts["sessions"] += hit

    if bucket is not None or force_slow:
        _each(view, "sessions", one)
        return
    # The common case (one setup, every field a plain value) in a lean loop; anything else
    # goes through one() — before any accumulator was touched for that record.
    acc_of = totals.acc
    setup_of = scope.setup
    # (agentId, provider, model, projectPath) -> (setup, its accumulator), or None (filtered out)
    targets: dict[tuple[Any, ...], tuple[SetupKey, list[float]] | None] = {}
    counted = 0
    for values in _rows(view, "sessions", _SESSION_FIELDS, codec, one, since):
        agent, provider, model, path, setups, xp, updated, _ = values
        if (setups is not None and len(setups) > 1) or xp.__class__ not in (int, float) \
                or updated.__class__ is not str:
            one(dict(zip(_SESSION_FIELDS, values)))
            continue
        head = values[:4]
        try:
            target = targets[head]
        except KeyError:
            setup = setup_of(agent, provider, model, path)
            if setup is not None:
                acc = acc_of.get(setup)
                if acc is None:
                    acc = acc_of[setup] = [0.0] * _SLOTS
                target = targets[head] = (setup, acc)
            else:
                target = targets[head] = None
        except TypeError:  # an unhashable field: the careful path
            one(dict(zip(_SESSION_FIELDS, values)))
            continue
        if target is None:
            continue
        setup, acc = target
        acc[SESSIONS] += 1
        acc[XP] += xp
        if updated > last_used.get(setup, ""):
            last_used[setup] = updated
        counted += 1
    counts["sessions"] += counted


def _collect_commits(view: ReadView, scope: _Scope, totals: _Totals, codec: Any,
                     bucket: Bucket | None, force_slow: bool) -> None:
    since = scope.since

    def one(record: dict[str, Any] | None) -> None:
        if not isinstance(record, dict):
            return
        get = record.get
        created = get("createdAt")
        if since and (not isinstance(created, str) or created < since):
            return
        setup = scope.setup(get("agentId"), get("provider"), get("model"), get("projectPath"))
        if setup is not None:
            totals.slot(setup, bucket, created)[COMMITS] += 1
            totals.counts["commits"] += 1

    if bucket is not None or force_slow:
        _each(view, "commits", one)
        return
    fields = ("agentId", "provider", "model", "projectPath")
    groups = _count(view, "commits", fields, codec, one, since)
    for (agent, provider, model, path), count in groups.items():
        setup = scope.setup(agent, provider, model, path)
        if setup is not None:
            totals.slot(setup, None, None)[COMMITS] += count
            totals.counts["commits"] += count


def _grade_setup(scope: _Scope, record: dict[str, Any]) -> SetupKey | None:
    get = record.get
    agent, provider, model, path = get("agentId"), get("provider"), get("model"), get("projectPath")
    if model is None:
        commit = scope.commit(path, get("commitHash"))
        if commit and commit.get("model"):
            agent, provider, model = agent or commit.get("agentId"), commit.get("provider"), commit.get("model")
        else:
            session = scope.session(get("sessionID"))
            if session and session.get("model"):
                provider, model = session.get("provider"), session.get("model")
                agent = agent or session.get("agentId")
    return scope.setup(agent, provider, model, path)


def _add_grade(acc: list[float], grader: Any, grade: Any, count: int) -> bool:
    if isinstance(grade, bool) or not isinstance(grade, (int, float)) or not math.isfinite(grade):
        return False
    if grader == "user":
        acc[USER_SUM] += grade * count
        acc[USER_N] += count
    elif grader == "agent":
        acc[AGENT_SUM] += grade * count
        acc[AGENT_N] += count
    # Shares of excellence and bad count every grade, whoever the grader (migrated: "unknown").
    if grade == 5:
        acc[EXCELLENT] += count
    elif grade == -1:
        acc[BAD] += count
    return True


_GRADE_FIELDS = ("agentId", "provider", "model", "projectPath", "grader", "grade")


def _collect_grades(view: ReadView, scope: _Scope, totals: _Totals, codec: Any,
                    bucket: Bucket | None, force_slow: bool) -> None:
    since = scope.since

    def one(record: dict[str, Any] | None) -> None:
        if not isinstance(record, dict):
            return
        created = record.get("createdAt")
        if since and (not isinstance(created, str) or created < since):
            return
        setup = _grade_setup(scope, record)
        if setup is not None and _add_grade(totals.slot(setup, bucket, created), record.get("grader"),
                                            record.get("grade"), 1):
            totals.counts["grades"] += 1

    if bucket is not None or force_slow:
        _each(view, "communication", one)
        return
    # Grouped in C by (agent, provider, model, project, grader, grade): a few hundred groups.
    groups = _count(view, "communication", _GRADE_FIELDS, codec, one, since)
    need_model = False
    for (agent, provider, model, path, grader, grade), count in groups.items():
        if model is None:
            need_model = True  # graded outside the commit's session: resolved below
            continue
        setup = scope.setup(agent, provider, model, path)
        if setup is not None and _add_grade(totals.slot(setup, None, None), grader, grade, count):
            totals.counts["grades"] += count
    if need_model:
        _grades_without_model(view, codec, since, one)


def _grades_without_model(view: ReadView, codec: Any, since: str | None,
                          one: Callable[[dict[str, Any] | None], None]) -> None:
    """The grades the grouped path counted under a null model, record by record (the same
    routing as _rows: a value it handed to one_by_one is skipped here)."""
    decode = codec.decoder(_GRADE_FIELDS + ("createdAt",))
    getter = codec.getter(_GRADE_FIELDS)
    created_of = codec.getter(("createdAt",))
    maybe = (lambda raw: b'"model":' not in raw or b'"model":null' in raw)
    for raw in filter(maybe, view.raw_values("communication")):
        try:
            record = decode(raw)
            values = getter(record)
            if since and not created_of(record) >= since:
                continue
        except codec.errors:
            continue
        if values[2] is None:
            one(_loads(raw))


_BUG_REF = itemgetter("projectPath", "commitHash")
_MIGRATED = re.compile(rb'"migratedFrom"').search  # cheaper than decoding every commit and grade


def _imported_by_setup(view: ReadView, scope: _Scope) -> dict[SetupKey, dict[str, int]]:
    """Per setup, its commits and grades imported from the older plugin (bridge.migration marks
    them with ``migratedFrom``), so the report can say so. They are counted like any other
    commit and grade by _collect_commits and _collect_grades; this only tells them apart."""
    found: dict[SetupKey, dict[str, int]] = {}
    if not view.count("migrations"):  # every import writes a migrations record
        return found
    since = scope.since
    for db, name in (("commits", "commits"), ("communication", "grades")):
        for raw in filter(_MIGRATED, view.raw_values(db)):
            try:
                record = _loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict) or "migratedFrom" not in record:
                continue
            created = record.get("createdAt")
            if since and (not isinstance(created, str) or created < since):
                continue
            if db == "commits":
                setup = scope.setup(record.get("agentId"), record.get("provider"), record.get("model"),
                                    record.get("projectPath"))
            else:
                setup = _grade_setup(scope, record)
            if setup is not None:
                counts = found.setdefault(setup, {"commits": 0, "grades": 0})
                counts[name] += 1
    return found


def _collect_bugs(view: ReadView, scope: _Scope, totals: _Totals, bucket: Bucket | None) -> None:
    since = scope.since
    bugs = []
    with _cursor(view, "activities") as cursor:
        for raw in filter(_HAS_BUG, cursor.iternext(keys=False, values=True)):
            try:
                record = _loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict) or record.get("kind") != "bug":
                continue
            if since:
                created = record.get("createdAt")
                if not isinstance(created, str) or created < since:
                    continue
            bugs.append(record)
    # The common case, a bug naming its project and commit: the commits are fetched in one go
    # (in key order) and the bug counts for the commit's setup.
    refs: list[Any] = [None] * len(bugs)
    for index, record in enumerate(bugs):
        try:
            path, commit_hash = _BUG_REF(record)
        except KeyError:
            continue
        if path.__class__ is str and commit_hash.__class__ is str and path and commit_hash:
            refs[index] = (path, commit_hash)
    found = scope.prefetch_commits({ref for ref in refs if ref is not None})
    counted = 0
    for record, ref in zip(bugs, refs):
        commit = found.get(ref) if ref is not None else None
        if commit is not None:
            setup: SetupKey | None = scope.setup(record.get("agentId") or commit.get("agentId"),
                                                 commit.get("provider"), commit.get("model"), ref[0])
        else:
            setup, attributed = _bug_setup(scope, record)
            if not attributed:
                totals.unattributed_bugs += 1
                continue
        if setup is not None:
            totals.slot(setup, bucket, record.get("createdAt"))[BUGS] += 1
            counted += 1
    totals.counts["bugs"] += counted


def _bug_setup(scope: _Scope, record: dict[str, Any]) -> tuple[SetupKey | None, bool]:
    """(setup or None when filtered out, whether the bug could be attributed at all)."""
    get = record.get
    agent = get("agentId")
    path = get("projectPath")
    session = None
    if not path:
        session = scope.session(get("sessionID"))
        path = (session or {}).get("projectPath")
    commit = scope.commit(path, get("commitHash"))
    if commit is not None:
        return scope.setup(agent or commit.get("agentId"), commit.get("provider"), commit.get("model"),
                           path or commit.get("projectPath")), True
    session = session or scope.session(get("sessionID"))
    if session is None:
        return None, False
    path = path or session.get("projectPath")
    if not agent or agent == session.get("agentId"):
        return scope.setup(agent or session.get("agentId"), session.get("provider"), session.get("model"),
                           path), True
    # Reported for another agent of that session: its last provider/model there, if any.
    mine = [name for name in session.get("setups") or [] if str(name).partition("|")[0] == agent]
    if mine:
        return scope.named_setup(mine[-1], path), True
    return scope.setup(agent, None, None, path), True


# -- a helper process ------------------------------------------------------------------------------

HELPER_THRESHOLD = 20_000  # grades + activities from which the helper process pays off


class _Helper:
    """Grades and bugs counted in a forked child while the parent counts sessions and commits.

    The child opens its own LMDB environment (an inherited one must not be used after fork),
    ends its read transaction and closes it before ``os._exit`` (no other cleanup runs in the
    child: it never touches the parent's stores, files or output), and sends back its partial sums
    with the id of the snapshot it read. The parent uses them only if its own read transaction
    saw the same snapshot; otherwise (a bridge committed in between), or if anything went wrong
    in the child, the parent counts grades and bugs itself. The sums land in accumulator slots
    the parent does not touch, so the result is bit-for-bit the sequential one.
    """

    def __init__(self, pid: int, fd: int):
        self.pid = pid
        self.fd = fd

    @classmethod
    def start(cls, store: Store, scope_args: tuple[Any, ...], codec_name: str) -> "_Helper | None":
        import threading

        if not hasattr(os, "fork") or threading.active_count() > 1 or (os.cpu_count() or 1) < 2:
            return None  # fork() in a threaded process (the bridge) is not safe; one CPU gains nothing
        with store.read() as view:  # ended before the fork: the child never shares a transaction
            if view.count("communication") + view.count("activities") < HELPER_THRESHOLD:
                return None  # small databases: a process costs more than it saves
        path, map_size = store.path, store.map_size
        try:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
        except OSError:
            return None
        if pid == 0:  # the child
            code = 1
            try:
                os.close(read_fd)
                # py-lmdb refuses a second environment on the same file in one process: close the
                # inherited copy first. LMDB's close only clears reader slots of the calling pid and
                # this process holds no file locks, so the parent's environment is unaffected.
                inherited = store._env  # noqa: SLF001
                if inherited is not None:
                    inherited.close()
                code = _helper_main(path, map_size, scope_args, codec_name, write_fd)
            finally:
                os._exit(code)
        os.close(write_fd)
        return cls(pid, read_fd)

    def result(self) -> dict[str, Any] | None:
        import pickle

        chunks = []
        try:
            while True:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self.fd)
            _, status = os.waitpid(self.pid, 0)
        if status != 0 or not chunks:
            return None
        try:
            return pickle.loads(b"".join(chunks))
        except Exception:
            return None

    def cancel(self) -> None:
        import signal

        try:
            os.kill(self.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def _helper_main(path: Path, map_size: int, scope_args: tuple[Any, ...], codec_name: str, fd: int) -> int:
    import pickle

    store = open_readonly(BridgeConfig(database_path=str(path), max_database_size=map_size))
    if not store.available:
        return 2
    try:
        with store.read() as view:
            scope = _Scope(view, *scope_args)
            totals = _Totals()
            codec = _codec(codec_name)
            _collect_grades(view, scope, totals, codec, None, False)
            _collect_bugs(view, scope, totals, None)
            payload = pickle.dumps({"txn": view.txn_id(), "acc": totals.acc,  # noqa: SLF001
                                    "grades": totals.counts["grades"], "bugs": totals.counts["bugs"],
                                    "unattributed": totals.unattributed_bugs, "paths": scope.paths},
                                   protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        store.close()
    view_of_payload = memoryview(payload)
    while view_of_payload:
        written = os.write(fd, view_of_payload)
        view_of_payload = view_of_payload[written:]
    os.close(fd)
    return 0


def _merge(totals: _Totals, scope: _Scope, part: dict[str, Any]) -> None:
    for setup, acc in part["acc"].items():
        mine = totals.acc.get(setup)
        if mine is None:
            totals.acc[setup] = acc
        else:
            for index in (AGENT_SUM, AGENT_N, USER_SUM, USER_N, EXCELLENT, BAD, BUGS):
                mine[index] += acc[index]
    totals.counts["grades"] += part["grades"]
    totals.counts["bugs"] += part["bugs"]
    totals.unattributed_bugs += part["unattributed"]
    for setup, paths in part["paths"].items():
        scope.paths.setdefault(setup, set()).update(paths)


# -- building ----------------------------------------------------------------------------------------

def _read_agents(view: ReadView) -> dict[str, dict[str, Any]]:
    agents: dict[str, dict[str, Any]] = {}
    for raw in view.raw_values("agents"):
        try:
            record = _loads(raw)
            agents[str(record["id"])] = record
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue
    return agents


class _NoGC:
    """Building millions of short-lived dicts: the cyclic GC only costs time here."""

    def __enter__(self) -> None:
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            gc.enable()


def build_report(store: Store, *, project: str | None = None, stack: str | None = None,
                 since: str | None = None, min_sessions: int | None = None, agent: str | None = None,
                 decoder: str | None = None, parallel: bool = False, _force_slow: bool = False) -> Report:
    """Aggregate, score and rank every setup (see the module docstring and SCORE_HELP).

    ``parallel``: count grades and bugs in a forked helper process meanwhile (the CLI does; the
    bridge does not, as it runs threads). The result is identical either way.
    """
    import time

    started = time.perf_counter()
    min_sessions = DEFAULT_MIN_SESSIONS if min_sessions is None else int(min_sessions)
    if min_sessions < 1:
        raise ReportError(f"--min-sessions must be at least 1; got {min_sessions}.")
    since_key = normalise_since(since)
    project_key = normalise_project(project)
    codec = _codec(decoder)
    scope_args = (project_key, stack, since_key, agent)
    with _NoGC():
        helper = _Helper.start(store, scope_args, codec.name) if parallel and not _force_slow else None
        used_helper = False
        try:
            with store.read() as view:
                scope = _Scope(view, *scope_args)
                totals = _Totals()
                _collect_sessions(view, scope, totals, codec, None, _force_slow)
                _collect_commits(view, scope, totals, codec, None, _force_slow)
                part = helper.result() if helper is not None else None
                helper = None
                if part is not None and part["txn"] == view.txn_id():  # same snapshot
                    _merge(totals, scope, part)
                    used_helper = True
                else:
                    _collect_grades(view, scope, totals, codec, None, _force_slow)
                    _collect_bugs(view, scope, totals, None)
                agents = _read_agents(view)
                imported = _imported_by_setup(view, scope)
        finally:
            if helper is not None:
                helper.cancel()
    rows = []
    for setup, acc in totals.acc.items():
        agent_id, model, stack_name = setup
        row = SetupRow(agent_id, model, stack_name, sessions=int(acc[SESSIONS]), xp=acc[XP],
                       commits=int(acc[COMMITS]), agent_grade_sum=acc[AGENT_SUM],
                       agent_grades=int(acc[AGENT_N]), user_grade_sum=acc[USER_SUM],
                       user_grades=int(acc[USER_N]), excellent=int(acc[EXCELLENT]), bad=int(acc[BAD]),
                       bugs=int(acc[BUGS]), last_used=totals.last_used.get(setup),
                       projects=len(scope.paths.get(setup, ())))
        row.score, row.parts = score_parts(acc)
        if setup in imported:
            row.imported = imported[setup]
        sheet = agents.get(agent_id)
        if sheet:
            row.skill_points = sheet.get("skillPoints")
            row.communication_score = sheet.get("communicationScore")
            row.halted = bool(sheet.get("halted", (sheet.get("skillPoints") or 0) <= 0))
        rows.append(row)
    rows = _rank(rows, min_sessions)
    report = Report(
        database=str(store.path), generated_at=utc_now(),
        filters={"project": project_key, "stack": stack, "since": since_key, "agent": agent},
        min_sessions=min_sessions, setups=rows, recommendations=_recommend(rows, min_sessions),
        agents=[_agent_wire(record) for _, record in sorted(agents.items())
                if agent is None or record.get("id") == agent],
        totals={**totals.counts, "setups": len(rows), "rankedSetups": sum(r.ranked for r in rows)},
        decoder=codec.name, parallel=used_helper,
        unattributed_bugs=totals.unattributed_bugs,
        imported={"commits": sum(r.imported["commits"] for r in rows),
                  "grades": sum(r.imported["grades"] for r in rows)},
    )
    report.duration_ms = (time.perf_counter() - started) * 1000
    return report


def _agent_wire(record: dict[str, Any]) -> dict[str, Any]:
    sp = record.get("skillPoints")
    return {"agentId": record.get("id"), "skillPoints": sp,
            "experiencePoints": record.get("experiencePoints"),
            "communicationScore": record.get("communicationScore"),
            "totalCommits": record.get("totalCommits", 0), "totalBugs": record.get("totalBugs", 0),
            "totalPushes": record.get("totalPushes", 0),
            "halted": bool(record.get("halted", isinstance(sp, (int, float)) and sp <= 0)),
            "updatedAt": record.get("updatedAt")}


def _rank(rows: list[SetupRow], min_sessions: int) -> list[SetupRow]:
    for row in rows:
        if row.agent == UNKNOWN or row.model == UNKNOWN_MODEL:
            row.note = "agent or model unknown: not ranked"
        elif row.sessions < min_sessions:
            row.note = f"{row.sessions} of {min_sessions} sessions needed to be ranked"
        else:
            row.ranked = True
    ranked = sorted((row for row in rows if row.ranked), key=_sort_key)
    for position, row in enumerate(ranked, 1):
        row.overall_rank = position
    per_stack: dict[str, int] = {}
    for row in ranked:
        per_stack[row.stack] = row.rank = per_stack.get(row.stack, 0) + 1
    stack_sessions: dict[str, int] = {}
    for row in rows:
        stack_sessions[row.stack] = stack_sessions.get(row.stack, 0) + row.sessions
    # Stacks with the most sessions first; in each, ranked setups by rank, then the others.
    return sorted(rows, key=lambda row: (-stack_sessions[row.stack], row.stack, not row.ranked,
                                         *_sort_key(row)))


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _recommend(rows: list[SetupRow], min_sessions: int) -> list[Recommendation]:
    recommendations = []
    seen: list[str] = []
    for row in rows:
        if row.stack not in seen:
            seen.append(row.stack)
    for stack_name in seen:
        group = [row for row in rows if row.stack == stack_name]
        best = next((row for row in group if row.rank == 1), None)
        label = f"{stack_name} projects" if stack_name != UNKNOWN else "projects of unknown stack"
        if best is None:
            most = max(group, key=lambda row: row.sessions)
            recommendations.append(Recommendation(stack_name, (
                f"For {label}: not enough data yet (the most used setup, {most.agent} with "
                f"{most.model}, has {most.sessions} of the {min_sessions} sessions needed)."), None))
            continue
        runner_up = next((row for row in group if row.rank == 2), None)
        margin = f"; next: {runner_up.agent} with {runner_up.model} at {runner_up.score:.1f}" if runner_up else ""
        recommendations.append(Recommendation(stack_name, (
            f"For {label}, use agent {best.agent} with {best.model}: score {best.score:.1f} over "
            f"{_plural(best.sessions, 'session')} ({_fmt(best.commits_per_session)} commits/session, mean user grade "
            f"{_fmt(best.mean_user_grade)}, mean agent grade {_fmt(best.mean_agent_grade)}, "
            f"{_fmt(best.bugs_per_commit)} bugs/commit){margin}."), best))
    return recommendations


# -- timeline (for the chart) ----------------------------------------------------------------------------

@attrs.define
class Timeline:
    granularity: str  # "day" | "hour" | "minute" | "second" | "millisecond"
    series: dict[str, list[tuple[str, float]]]  # setup label -> [(bucket start, cumulative score)]


_GRANULARITY = {"day": 10, "hour": 13, "minute": 16, "second": 19, "millisecond": 23}


def build_timeline(store: Store, *, project: str | None = None, stack: str | None = None,
                   since: str | None = None, setups: Iterable[SetupKey] | None = None) -> Timeline:
    """Each setup's score over time: its score on the cumulative sums up to each bucket.

    Buckets are days; when that gives fewer than 3 points, hours, then minutes, seconds and
    milliseconds (the demo, replayed in well under a second, still shows its progression).
    """
    since_key = normalise_since(since)
    project_key = normalise_project(project)
    wanted = set(setups) if setups is not None else None
    granularity, totals = "day", _Totals()
    with _NoGC(), store.read() as view:
        for granularity, width in _GRANULARITY.items():
            scope = _Scope(view, project_key, stack, since_key, None)
            totals = _collect(view, scope, _OrjsonCodec(), bucket=lambda created, w=width: created[:w]
                              if isinstance(created, str) else "")
            if len({stamp for (_, stamp) in totals.acc if stamp}) >= 3:
                break
    per_setup: dict[SetupKey, dict[str, list[float]]] = {}
    for (setup, stamp), acc in totals.acc.items():
        if wanted is None or setup in wanted:
            per_setup.setdefault(setup, {})[stamp] = acc
    series: dict[str, list[tuple[str, float]]] = {}
    for setup, buckets in sorted(per_setup.items()):
        running = [0.0] * _SLOTS
        points = []
        for stamp in sorted(buckets):  # "" (no timestamp) sorts first: counted from the start
            for index, value in enumerate(buckets[stamp]):
                running[index] += value
            if stamp and running[SESSIONS]:
                points.append((stamp, score_parts(running)[0]))
        if points:
            series[f"{setup[0]} · {setup[1]} · {setup[2]}"] = points
    return Timeline(granularity, series)


def bucket_datetime(stamp: str) -> datetime:
    """A bucket label (``2026-11-26``, ``2026-11-26T05``, ``...T05:07``, ``...T05:07:09``)."""
    suffix = {10: "T00:00:00", 13: ":00:00", 16: ":00", 19: "", 23: ""}.get(len(stamp))
    if suffix is None:
        return datetime.fromisoformat(stamp[:19])
    return datetime.fromisoformat(stamp + suffix)


# -- rendering -------------------------------------------------------------------------------------------

COLUMNS = ["#", "Stack", "Agent", "Model", "Sessions", "Commits", "C/S", "XP/S", "Agent grade",
           "User grade", "5s", "-1s", "Bugs/C", "SP", "CS", "Last used", "Score"]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def table_rows(report: Report) -> list[list[str]]:
    out = []
    for row in report.setups:
        out.append([
            str(row.rank) if row.ranked else "-", row.stack, row.agent, row.model, str(row.sessions),
            str(row.commits), _fmt(row.commits_per_session), _fmt(row.xp_per_session, 1),
            f"{_fmt(row.mean_agent_grade)} ({row.agent_grades})",
            f"{_fmt(row.mean_user_grade)} ({row.user_grades})",
            _percent(row.excellence_share), _percent(row.bad_share), _fmt(row.bugs_per_commit),
            "-" if row.skill_points is None else f"{row.skill_points:g}",
            "-" if row.communication_score is None else f"{row.communication_score:g}",
            (row.last_used or "-")[:10], f"{row.score:.1f}" + ("" if row.ranked else "*"),
        ])
    return out


def render_rich(report: Report, console: Any, *, recommendations: bool = True) -> None:
    """The report as a rich table plus recommendations, on ``console``."""
    from rich import box
    from rich.table import Table

    filters = ", ".join(f"{k}={v}" for k, v in report.filters.items() if v) or "none"
    table = Table(title=f"Agent setups ({report.totals['sessions']} sessions, {report.totals['commits']} "
                        f"commits, {report.totals['grades']} grades; filters: {filters})",
                  box=box.SIMPLE_HEAVY, title_justify="left")
    for name in COLUMNS:
        numeric = name not in ("Stack", "Agent", "Model", "Last used")
        table.add_column(name, justify="right" if numeric else "left", no_wrap=name in ("Model", "Stack"))
    previous_stack = None
    for cells, row in zip(table_rows(report), report.setups):
        if previous_stack is not None and row.stack != previous_stack:
            table.add_section()
        previous_stack = row.stack
        style = "bold green" if row.rank == 1 else ("dim" if not row.ranked else None)
        table.add_row(*cells, style=style)
    if report.setups:
        console.print(table)
    else:
        console.print("No sessions match: nothing to report yet.")
    for rec in report.recommendations if recommendations else []:
        console.print(f"• {rec.text}", highlight=False)
    console.print(
        f"[dim]{FORMULA}; * = not ranked (fewer than {report.min_sessions} sessions, or agent/model "
        f"unknown). Ranks are per stack. Details: agent-tracker report --help.[/dim]", highlight=False)
    if report.imported["commits"] or report.imported["grades"]:
        console.print(f"[dim]Includes {report.imported['commits']} commit(s) and "
                      f"{report.imported['grades']} grade(s) imported from the older TypeScript plugin "
                      f"(agent-tracker migrate); `--json` shows them per setup.[/dim]", highlight=False)
    if report.unattributed_bugs:
        console.print(f"[dim]{report.unattributed_bugs} bug(s) named neither a commit nor a session "
                      f"and count for no setup.[/dim]", highlight=False)


def render_text(report: Report, width: int = 200) -> str:
    """Plain text (no colour): what the bridge returns with the ``report`` method."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, color_system=None, force_terminal=False,
                      highlight=False, emoji=False)
    render_rich(report, console)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
