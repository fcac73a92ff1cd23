"""Bugs per setup: reported ones (`/bug`, `agent-tracker bug`, `bug.reported`) and commits that
were reverted (the tracker records those as bugs of the agent that made the commit)."""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

import orjson

from ..store import ReadView
from ..tracking.setups import split_setup_name
from .attribution import Bucket, Scope, Totals, outside, session_version
from .decode import raw_cursor
from .model import SetupKey
from .score import BUGS, REVERTS

_loads = orjson.loads
_HAS_BUG = re.compile(rb'"bug"').search  # cheaper than decoding every activity
_BUG_REF = itemgetter("projectPath", "commitHash")
UNATTRIBUTED = ("", "", "unattributed")  # Totals.tally's group of the bugs no setup can be named for


def collect_bugs(view: ReadView, scope: Scope, totals: Totals, bucket: Bucket | None) -> None:
    window = scope.window
    bugs = []
    with raw_cursor(view, "activities") as cursor:
        for raw in filter(_HAS_BUG, cursor.iternext(keys=False, values=True)):
            try:
                record = _loads(raw)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(record, dict) or record.get("kind") != "bug":
                continue
            if outside(window, record.get("createdAt")):
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
            setup: SetupKey | None = scope.credited_setup(
                record.get("agentId") or commit.get("agentId"), commit.get("provider"), commit.get("model"), ref[0],
                commit.get("sessionID"), commit.get("configVersion"))
        else:
            setup, attributed = _bug_setup(scope, record)
            if not attributed:
                totals.unattributed_bugs += 1
                totals.tally("unattributed", totals.group(UNATTRIBUTED, bucket, record.get("createdAt")))
                continue
        if setup is not None:
            acc = totals.slot(setup, bucket, record.get("createdAt"))
            acc[BUGS] += 1
            acc[REVERTS] += bool(record.get("revertedBy"))  # the bug is that its commit was reverted
            counted += 1
    totals.counts["bugs"] += counted



def _bug_setup(scope: Scope, record: dict[str, Any]) -> tuple[SetupKey | None, bool]:
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
        return scope.credited_setup(agent or commit.get("agentId"), commit.get("provider"), commit.get("model"),
                                    path or commit.get("projectPath"), commit.get("sessionID"),
                                    commit.get("configVersion")), True
    session = session or scope.session(get("sessionID"))
    if session is None:
        return None, False
    if scope.is_child(get("sessionID")):  # reported in a subagent's session: its root's setup
        return scope.credited_setup(agent, None, None, path, get("sessionID")), True
    path = path or session.get("projectPath")
    if not agent or agent == session.get("agentId"):
        return scope.setup(agent or session.get("agentId"), session.get("provider"), session.get("model"),
                           path, get("configVersion") or session_version(session)), True
    # Reported for another agent of that session: its last provider/model there, if any.
    mine = [name for name in session.get("setups") or [] if split_setup_name(str(name))[0] == agent]
    if mine:
        return scope.named_setup(mine[-1], path, session.get("configVersions")), True
    return scope.setup(agent, None, None, path), True
