"""The write hook: the summaries of the sessions a transaction touched, updated in that transaction.

Only what changed is recomputed: a touched session's tree (its member sessions' counters, usage,
abandonment) and a touched commit, grade or bug. A record whose attribution reads session records
(any record of a subagent's session, a bug, a grade stored without a model) is a *dependent* of its
session's tree and is recomputed with the tree when a session's agent, model, project or setups
change. What the incremental path cannot know cheaply (a parent session recorded after its
subagents', a session's parent changed or its record removed, a record naming a session or commit
another bridge had not written yet)
rebuilds everything in the same transaction: rare, and always exact. A day row keeps each
session tree's latest use, so a session that moves to another setup leaves its latest use exact.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import attrs

from ..report.attribution import Scope
from ..report.filters import Filters
from ..report.score import SLOT_NAMES
from ..tracking import faults
from ..store import SEP, SUMMARIES_MARKER, ReadView, WriteView, key, split_key
from .identity import Contribution, day_of, encode, no_gc, record_contribution, session_contribution, whole_contribution
from .rows import DB, add_rows, apply_change, write_all

VERSION = 3  # 3: setup identities carry the configuration version (issue 24)
PROGRESS_AFTER_SECONDS = 1.0
LARGE = 100_000  # stored events from which a rebuild takes about a second: said when it starts
# A session field the setup of its records depends on (configVersion/configVersions: issue 24)
_ATTRIBUTION = ("agentId", "provider", "model", "projectPath", "setups", "parentID", "sessionID", "configVersion",
                "configVersions")


class _Rebuild(Exception):
    """The incremental path cannot be sure: rebuild everything in this transaction."""


def marker() -> dict[str, Any]:
    """What the meta marker holds: a reader or writer of another version (or other slots) rebuilds."""
    return {"version": VERSION, "slots": list(SLOT_NAMES)}  # rows store the slots in this order


def current(view: ReadView) -> bool:
    """Whether the database holds summaries this code can read."""
    return bool(view.meta(SUMMARIES_MARKER) == marker())


def refresh(view: WriteView) -> None:
    if faults.ENABLED:
        faults.crash_point("in-summaries")  # the reliability suite's kill -9 between events and summaries
    if not current(view):
        rebuild(view, progress=_stderr_progress)
        return
    try:
        _refresh(view)
    except _Rebuild:
        rebuild(view)


# -- the incremental path ------------------------------------------------------------------------------

@attrs.define
class _Tree:
    root: str
    members: list[str]
    dependents: list[list[str]]
    stored: bool
    sessions_changed: bool = False
    attribution_changed: bool = False
    touched: dict[tuple[str, str], dict[str, Any] | None] = attrs.field(factory=dict)

    @classmethod
    def load(cls, view: ReadView, root: str) -> "_Tree":
        found = view.get(DB, key("T", root))
        if found is None:
            return cls(root, [root], [], False)
        return cls(root, list(found["members"]), [list(pair) for pair in found["dependents"]], True)

    def save(self, view: WriteView, sessions: list[dict[str, Any] | None] | None = None) -> None:
        if len(self.members) > 1 or self.dependents:
            view.put(DB, key("T", self.root), {"members": self.members, "dependents": self.dependents})
        elif self.stored:
            view.delete(DB, key("T", self.root))
        if sessions is None:
            sessions = [view.get("sessions", member) for member in self.members]
        days = sorted({day_of(record.get("createdAt")) for record in sessions if record is not None})
        if len(days) > 1:  # a window may cut it: read.py answers its abandonment and usage sessions exactly
            view.put(DB, key("X", self.root), {"root": self.root, "first": days[0], "last": days[-1]})
        elif len(self.members) > 1:
            view.delete(DB, key("X", self.root))


def _refresh(view: WriteView) -> None:
    touched = dict(view.touched)
    trees: dict[str, _Tree] = {}

    def tree_of(root: str) -> _Tree:
        if root not in trees:
            trees[root] = _Tree.load(view, root)
        return trees[root]

    for (db, record_key), old in touched.items():
        if db != "sessions":
            continue
        new = view.get("sessions", record_key)
        if new is None or (old is not None and _parent(old) != _parent(new)):
            raise _Rebuild
        if old is None and _awaited(view, db, record_key, new):
            raise _Rebuild  # its subagents' sessions, or records naming it, were recorded first
        root = root_of(view, record_key)
        tree = tree_of(root)
        if record_key not in tree.members:
            tree.members.append(record_key)
        tree.sessions_changed = True
        if old is not None and any(old.get(name) != new.get(name) for name in _ATTRIBUTION):
            tree.attribution_changed = True
        parent = _parent(new)
        if root == record_key and parent:
            view.put(DB, key("W", parent, record_key), {})
    independent: dict[str, dict[str, list[bytes]]] = {"before": {}, "after": {}}
    lookup = _LazyScope(view)
    for (db, record_key), old in touched.items():
        if db == "sessions":
            continue
        new = view.get(db, record_key)
        value = new if new is not None else old
        if value is None or (db == "activities" and value.get("kind") != "bug" and (old or {}).get("kind") != "bug"):
            continue
        if db == "commits" and old is None and _awaited(view, db, record_key, value):
            raise _Rebuild
        for waiting in missing_references(view, lookup, db, value):
            view.put(DB, waiting, {})
        owner = owner_session(view, lookup, db, record_key, value)
        owner_root = root_of(view, owner) if owner is not None and view.get("sessions", owner) is not None else None
        if owner_root is not None and (owner_root != owner or db == "activities" or
                                       (db == "communication" and value.get("model") is None)):
            tree = tree_of(owner_root)
            if [db, record_key] not in tree.dependents:
                tree.dependents.append([db, record_key])
            tree.touched[(db, record_key)] = old
            continue
        for side, record in (("before", old), ("after", new)):
            if record is not None:
                independent[side].setdefault(db, []).extend(encode([record]))
    for tree in trees.values():
        tree.save(view, _recompute(view, tree, touched))
    if independent["before"] or independent["after"]:
        apply_change(view, record_contribution(view, [], independent["before"]) if independent["before"] else {},
                     record_contribution(view, [], independent["after"]))


def _recompute(view: WriteView, tree: _Tree, touched: dict[tuple[str, str], dict[str, Any] | None]
               ) -> list[dict[str, Any] | None]:
    """The tree's change applied to the roll-ups; returns its session records (as they are now)."""
    now_sessions = {sid: view.get("sessions", sid) for sid in tree.members}
    before_sessions = {sid: (touched[("sessions", sid)] if ("sessions", sid) in touched else record)
                       for sid, record in now_sessions.items()}
    old_sessions = encode(record for record in before_sessions.values() if record is not None)
    new_sessions = encode(record for record in now_sessions.values() if record is not None)
    before: Contribution = {}
    after: Contribution = {}
    if tree.sessions_changed:
        add_rows(before, session_contribution(view, old_sessions))
        add_rows(after, session_contribution(view, new_sessions))
    if tree.attribution_changed:
        old_records: dict[str, list[bytes]] = {}
        new_records: dict[str, list[bytes]] = {}
        for db, record_key in tree.dependents:
            now = view.get(db, record_key)
            was = tree.touched[(db, record_key)] if (db, record_key) in tree.touched else now
            if was is not None:
                old_records.setdefault(db, []).extend(encode([was]))
            if now is not None:
                new_records.setdefault(db, []).extend(encode([now]))
        add_rows(before, record_contribution(view, old_sessions, old_records))
        add_rows(after, record_contribution(view, new_sessions, new_records))
    elif tree.touched:
        old_touched: dict[str, list[bytes]] = {}
        new_touched: dict[str, list[bytes]] = {}
        for (db, record_key), was in tree.touched.items():
            now = view.get(db, record_key)
            if was is not None:
                old_touched.setdefault(db, []).extend(encode([was]))
            if now is not None:
                new_touched.setdefault(db, []).extend(encode([now]))
        if old_touched:
            add_rows(before, record_contribution(view, new_sessions, old_touched))
        add_rows(after, record_contribution(view, new_sessions, new_touched))
    apply_change(view, before, after)
    return list(now_sessions.values())


class _LazyScope:
    """The report's commit lookup (short or full hash), its Scope made only when a bug needs it."""

    def __init__(self, view: ReadView):
        self._view = view
        self._scope: Scope | None = None

    def commit(self, path: Any, commit_hash: Any) -> dict[str, Any] | None:
        if self._scope is None:
            self._scope = Scope(self._view, Filters(), subagents=False)
        return self._scope.commit(path, commit_hash)


def _parent(record: dict[str, Any]) -> str | None:
    parent = record.get("parentID")
    return parent if isinstance(parent, str) and parent and isinstance(record.get("sessionID"), str) else None


def root_of(view: ReadView, session_id: str) -> str:
    """The top of a session's chain of parents, by the report's rule (attribution.Scope.root_session)."""
    root, seen = session_id, {session_id}
    while True:
        record = view.get("sessions", root)
        parent = _parent(record) if record is not None else None
        if parent is None or parent in seen or view.get("sessions", parent) is None:
            return root
        seen.add(parent)
        root = parent


def owner_session(view: ReadView, lookup: Any, db: str, record_key: str, record: dict[str, Any]) -> str | None:
    """The session whose tree a commit, grade or bug belongs to: a grade's and a bug's commit's
    session when the commit is recorded, else the record's own."""
    if db == "communication":
        commit = view.get("commits", SEP.join(split_key(record_key)[:2]))
    elif db == "activities":
        commit = lookup.commit(record.get("projectPath"), record.get("commitHash"))
    else:
        commit = None
    session = commit.get("sessionID") if commit is not None else record.get("sessionID")
    return session if isinstance(session, str) and session else None


def missing_references(view: ReadView, lookup: Any, db: str, record: dict[str, Any]) -> list[str]:
    """The keys under which a record waits for a session or commit it names but that is not recorded
    yet (another bridge's buffer): when that one arrives, the record's attribution changes."""
    waiting = []
    session = record.get("sessionID")
    if isinstance(session, str) and session and view.get("sessions", session) is None:
        waiting.append(key("P", "s", session))
    path, commit_hash = record.get("projectPath"), record.get("commitHash")
    if db == "activities" and isinstance(path, str) and path and isinstance(commit_hash, str) \
            and len(commit_hash) >= 4 and lookup.commit(path, commit_hash) is None:
        waiting.append(key("P", "c", path, commit_hash[:4].lower()))
    return waiting


def _awaited(view: ReadView, db: str, record_key: str, record: dict[str, Any]) -> bool:
    """Whether a newly recorded session or commit is one that records (or subagents' sessions) wait for."""
    if db == "sessions":
        prefixes = [key("W", record_key) + SEP, key("P", "s", record_key)]
    else:
        path, commit_hash = record.get("projectPath"), record.get("hash")
        if not isinstance(path, str) or not isinstance(commit_hash, str):
            return False
        prefixes = [key("P", "c", path, commit_hash[:4].lower())]
    return any(True for prefix in prefixes for _ in view.scan(DB, prefix))


# -- the whole database ------------------------------------------------------------------------------------

def rebuild(view: WriteView, progress: Callable[[str], None] | None = None) -> int:
    """Every summary recomputed from the events, in the caller's transaction; how many rows."""
    started = time.perf_counter()
    events = sum(view.count(db) for db in ("sessions", "commits", "communication", "activities"))
    if progress is not None and events >= LARGE:
        progress(f"agent-tracker: building the report's summaries of {events:,} stored events (once) ...")
    with view.cursor(DB) as cursor:
        stale = [bytes(raw) for raw in cursor.iternext(keys=True, values=False)]
    for raw in stale:
        view.delete(DB, raw.decode())
    with no_gc():
        rows = whole_contribution(view)
        written = write_all(view, rows)
        written += _write_trees(view)
    view.put("meta", SUMMARIES_MARKER, marker())
    elapsed = time.perf_counter() - started
    if progress is not None and elapsed > PROGRESS_AFTER_SECONDS:
        progress(f"agent-tracker: built the report's summaries of {events:,} stored events "
                 f"({written:,} rows) in {elapsed:.1f} s; later writes keep them up to date.")
    return written


def _write_trees(view: WriteView) -> int:
    parents: dict[str, str] = {}
    for record_key, record in view.scan("sessions"):
        parent = _parent(record)
        if parent is not None:
            parents[record["sessionID"]] = parent
    roots: dict[str, str] = {}

    def root(session_id: str) -> str:
        found = roots.get(session_id)
        if found is None:
            found = roots[session_id] = root_of(view, session_id)
        return found

    trees: dict[str, _Tree] = {}
    for child in parents:
        top = root(child)
        if top == child:
            view.put(DB, key("W", parents[child], child), {})
            continue
        tree = trees.setdefault(top, _Tree(top, [top], [], False))
        tree.members.append(child)
    lookup = Scope(view, Filters(), subagents=False)
    for db in ("commits", "communication", "activities"):
        for record_key, record in view.scan(db):
            if db == "activities" and record.get("kind") != "bug":
                continue
            for waiting in missing_references(view, lookup, db, record):
                view.put(DB, waiting, {})
            owner = owner_session(view, lookup, db, record_key, record)
            if not isinstance(owner, str) or not owner or view.get("sessions", owner) is None:
                continue
            top = root(owner)
            if top != owner or db == "activities" or (db == "communication" and record.get("model") is None):
                trees.setdefault(top, _Tree(top, [top], [], False)).dependents.append([db, record_key])
    for tree in trees.values():
        tree.save(view)
    return len(trees)


def _stderr_progress(message: str) -> None:
    print(message, file=sys.stderr)
