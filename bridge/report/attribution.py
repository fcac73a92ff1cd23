"""Who a record counts for: the report's filters, stack classification and record → setup
attribution (Scope), the time window, and the accumulators per setup (Totals).

collect.py reads the records through these; outcomes.py, usage.py and bugs.py add to the same
accumulators.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

import orjson

from ..store import ReadView, key
from ..tracking.configs import UNKNOWN_VERSION
from ..tracking.git_commands import hashes_match
from ..tracking.setups import UNKNOWN_AGENT, model_name, split_setup_name
from .decode import raw_cursor
from .filters import Filters, model_matches, stack_matches
from .model import UNKNOWN_STACK, SetupKey
from .score import SLOTS

_loads = orjson.loads
_HAS_PARENT = re.compile(rb'"parentID":"').search  # a subagent's session (stored only when it has one)


# -- attribution -----------------------------------------------------------------------------------

# How stacks are grouped into the setup key: as they are, by language (python/fastapi and
# python/django count as one "python"), or all together ("all"): the levels of `recommend`.
GROUPS = (None, "language", "all")
ALL_STACKS = "all"


def group_stack(stack: str, group: str | None) -> str:
    if group == "language":
        return stack.partition("/")[0]
    return ALL_STACKS if group == "all" else stack


class Scope:
    """Filters, stack classification and record → setup attribution, all memoised."""

    def __init__(self, view: ReadView, filters: Filters, group: str | None = None, by_version: bool = True, *,
                 subagents: bool = True):
        """``subagents=False``: skip finding the subagents' sessions (a reader of bridge.summaries,
        whose rows are attributed already, only resolves setups)."""
        self.view = view
        # A setup is agent x model x stack x configuration version (tracking.configs); without
        # by_version (`report --by agent-model`) the versions of one agent and model are one setup.
        # ``versioned``: the database holds versions at all (else every record is "unknown" and
        # the scans need not read the field).
        self.by_version = by_version
        self.versioned = by_version and view.count("configs") > 0
        self.filters = filters
        self.project = filters.project
        self.stack = filters.stack
        self.window = filters.window()
        self.agent = filters.agent.lower() if filters.agent else None
        self.model = filters.model
        self.group = group
        self.projects: dict[str, dict[str, Any]] = {}
        for raw in view.raw_values("projects"):
            try:
                record = _loads(raw)
                self.projects[record["path"]] = record
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        self._stacks: dict[str | None, str] = {}
        self.setups_cache: dict[tuple[Any, ...], SetupKey | None] = {}
        self._named: dict[tuple[str, Any, Any], SetupKey | None] = {}
        self._producers: dict[tuple[str, str | None], str | None] = {}
        self.paths: dict[SetupKey, set[str]] = {}
        self._commits: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._sessions: dict[str, dict[str, Any] | None] = {}
        # Subagents' sessions: session id -> the id of the session whose task tool started it.
        self.parents: dict[str, str] = {}
        children: list[bytes] = []
        if subagents:
            with raw_cursor(view, "sessions") as cursor:  # filtered in C: most sessions have no parent
                children = list(filter(_HAS_PARENT, cursor.iternext(keys=False, values=True)))
        for raw in children:
            try:
                record = _loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("sessionID"), str) \
                    and isinstance(record.get("parentID"), str) and record["parentID"]:
                self.parents[record["sessionID"]] = record["parentID"]
        self._roots: dict[str, str] = {}

    # -- subagents: a child session's work counts for its root session's setup ----------------------

    def root_session(self, session_id: str) -> str:
        """The session at the top of ``session_id``'s chain of parents (itself when it has none).

        The one rule for subagents: a session started by another one's task tool (``parentID``)
        is credited to the setup of its root session, never counted on its own. A parent that is
        not in the database ends the walk (the highest one that is becomes the root); so does a
        cycle. Independent of the filters: a child inside ``--since`` whose root is older still
        counts for its root's setup.
        """
        found = self._roots.get(session_id)
        if found is not None:
            return found
        root, seen = session_id, {session_id}
        while True:
            parent = self.parents.get(root)
            if parent is None or parent in seen or self.session(parent) is None:
                break
            seen.add(parent)
            root = parent
        self._roots[session_id] = root
        return root

    def is_child(self, session_id: Any) -> bool:
        return isinstance(session_id, str) and session_id in self.parents and self.root_session(session_id) != session_id

    def session_setups(self, record: dict[str, Any]) -> list[SetupKey | None]:
        """Every setup a (root) session used: its ``setups[]`` when it switched, else its agent/model."""
        get = record.get
        setups = get("setups")
        versions = get("configVersions")
        if isinstance(setups, list) and len(setups) > 1:
            return [self.named_setup(name, get("projectPath"), versions) for name in setups]
        return [self.setup(get("agentId"), get("provider"), get("model"), get("projectPath"),
                           session_version(record))]

    def credited_setup(self, agent: Any, provider: Any, model: Any, path: Any, session_id: Any,
                       version: Any = None) -> SetupKey | None:
        """The setup a record made in ``session_id`` counts for: its own (agent, model, project,
        version), or, when the session is a subagent's, its root session's (see root_session)."""
        if self.is_child(session_id):
            root = self.session(self.root_session(session_id)) or {}
            return self.setup(root.get("agentId"), root.get("provider"), root.get("model"),
                              root.get("projectPath") or path, session_version(root))
        return self.setup(agent, provider, model, path, version)

    def stack_of(self, path: str | None) -> str:
        found = self._stacks.get(path)
        if found is None:
            found = self._stacks[path] = self._classify(path)
        return found

    def _classify(self, path: str | None) -> str:
        """The stack recorded for the project (when its session started): the report never reads
        a project's files, so one hostile repository cannot break the report of every project."""
        if not path:
            return UNKNOWN_STACK
        record = self.projects.get(path)
        if record and record.get("stack"):
            return str(record["stack"])
        return UNKNOWN_STACK

    def setup(self, agent: Any, provider: Any, model: Any, path: Any, version: Any = None) -> SetupKey | None:
        """The setup of a record (``version``: its configVersion), or None when the filters leave it out."""
        cache_key = (agent, provider, model, path, version)
        try:
            return self.setups_cache[cache_key]
        except KeyError:
            pass
        except TypeError:  # an unhashable field (foreign data): not attributable
            return None
        found = self.setups_cache[cache_key] = self._resolve(agent or UNKNOWN_AGENT, model_name(provider, model),
                                                             path, version)
        return found

    def named_setup(self, name: str, path: Any, versions: Any = None) -> SetupKey | None:
        """A session's ``setups[]`` entry ``agent|provider/model`` (``versions``: its configVersions)."""
        agent, model = split_setup_name(str(name))
        version = versions.get(agent) if isinstance(versions, dict) else None
        cache_key = (str(name), path if isinstance(path, str) else None, version if isinstance(version, str) else None)
        found = self._named.get(cache_key, False)
        if found is False:
            found = self._named[cache_key] = self._resolve(agent, model, path, version)
        return found  # type: ignore[return-value]

    def resolve_identity(self, agent: str, model: str, path: Any, version: Any = None) -> SetupKey | None:
        """The setup of a setup identity as bridge.summaries stores it (agent, provider/model, path,
        configuration version)."""
        return self._resolve(agent, model, path, version)

    def _resolve(self, agent: str, model: str, path: Any, version: Any = None) -> SetupKey | None:
        path = path if isinstance(path, str) else None
        stack = self._selected_stack(agent, model, path)
        if stack is None:
            return None
        setup = (str(agent), model, group_stack(stack, self.group),
                 (version if isinstance(version, str) and version else UNKNOWN_VERSION) if self.by_version else None)
        if path:
            self.paths.setdefault(setup, set()).add(path)
        return setup

    def _selected_stack(self, agent: str, model: str, path: str | None) -> str | None:
        """The stack of a record the filters keep, or None when they leave it out."""
        if self.project is not None and (path is None or not self.project.matches(path)):
            return None
        if self.agent is not None and str(agent).lower() != self.agent:
            return None
        if not model_matches(model, self.model):
            return None
        stack = self.stack_of(path)
        return stack if stack_matches(stack, self.stack, self.filters.exact_stack) else None

    def producer(self, name: str, path: Any) -> str | None:
        """The model of a usage entry ``agent|provider/model`` when the filters keep the message
        as what it is (its own agent and model, never its root session's), else None."""
        cache_key = (str(name), path if isinstance(path, str) else None)
        found = self._producers.get(cache_key, False)
        if found is False:
            agent, model = split_setup_name(cache_key[0])
            found = self._producers[cache_key] = (
                model if self._selected_stack(agent, model, cache_key[1]) is not None else None)
        return found  # type: ignore[return-value]

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
        with raw_cursor(self.view, "commits") as cursor:
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



def session_version(record: dict[str, Any]) -> Any:
    """The configuration version a session's agent ran with (tracking.configs), if recorded."""
    versions, agent = record.get("configVersions"), record.get("agentId")
    if isinstance(versions, dict) and isinstance(agent, str):
        found = versions.get(agent)
        if found is not None:
            return found
    return record.get("configVersion")


# -- aggregation -----------------------------------------------------------------------------------

Window = tuple[str, str] | None


def outside(window: Window, created: Any) -> bool:
    """Whether a record's createdAt is outside the time filters (the scan's fast path compares alike)."""
    return window is not None and not (isinstance(created, str) and window[0] <= created < window[1])

Bucket = Callable[[Any], Any]



class Totals:
    def __init__(self, *, by_group: bool = False) -> None:
        self.acc: dict[Any, list[float]] = {}
        # setup (or (setup, time bucket)) -> the latest update of its sessions
        self.last_used: dict[Any, str] = {}
        self.unattributed_bugs = 0
        self.counts = {"sessions": 0, "subagentSessions": 0, "commits": 0, "grades": 0, "bugs": 0}
        # setup -> subagent (its agent) -> numbers (outcomes.SUB_*): what its subagents did
        self.subagents: dict[Any, dict[str, list[float]]] = {}
        # setup (or setup x bucket) -> subagent -> the configuration versions it ran with -> its sessions
        # (counts, so bridge.summaries can add and take them away)
        self.subagent_versions: dict[Any, dict[str, dict[str, float]]] = {}
        # Root sessions that ended without a commit of their own: abandoned unless a subagent of
        # theirs committed (known once every session was read): session id -> the accumulators.
        self.ended_without_commit: dict[str, list[list[float]]] = {}
        self.child_commits: dict[str, float] = {}  # root session id -> commits of its subagents
        # (root session, setup) pairs already counted in USAGE_SESSIONS: a session and its
        # subagents' sessions are one session of their setup.
        self.usage_roots: set[tuple[str, SetupKey]] = set()
        # Spend under the model that produced it (usage.add_spend), whoever's setup it counts for:
        # model -> [messages, cost, tokens by kind, durationMs] (usage.SPEND_FIELDS), and the root
        # sessions and their commits that spend covers (per model, and for all models together).
        self.spent: dict[str, list[float]] = {}
        self.spent_roots: dict[str, set[str]] = {}
        self.spent_commits: dict[str, float] = {}
        # ``by_group`` (bridge.summaries): the counts above also per accumulator group, and each
        # counted session under the tuple of setups it counted for: (setups, bucket, is a subagent's).
        self.by_group: dict[Any, dict[str, float]] | None = {} if by_group else None
        self.hits: dict[tuple[Any, ...], int] | None = {} if by_group else None
        self.last_used_by: dict[Any, dict[str, str]] | None = {} if by_group else None  # group -> root -> latest

    @staticmethod
    def group(setup: Any, bucket: Bucket | None, created: Any) -> Any:
        return setup if bucket is None else (setup, bucket(created))

    def tally(self, name: str, group: Any, count: float = 1) -> None:
        """One more of ``counts[name]``, counted for ``group`` too when kept per group."""
        if name in self.counts:
            self.counts[name] += int(count)
        if self.by_group is not None:
            found = self.by_group.setdefault(group, {})
            found[name] = found.get(name, 0) + count

    def count_session(self, setups: list[Any], bucket: Bucket | None, created: Any, child: bool) -> None:
        if self.hits is not None:
            hit = (tuple(setup for setup in setups if setup is not None),
                   bucket(created) if bucket is not None else None, child)
            self.hits[hit] = self.hits.get(hit, 0) + 1

    def slot(self, setup: SetupKey, bucket: Bucket | None, created: Any) -> list[float]:
        group: Any = setup if bucket is None else (setup, bucket(created))
        found = self.acc.get(group)
        if found is None:
            found = self.acc[group] = [0.0] * SLOTS
        return found
