"""The write buffer: everything accepted since the last flush, applied in one transaction.

Counters are kept as an ordered list of operations per agent (consecutive XP gains collapse
into one), records under their final keys (repeated updates of one key collapse). ``apply``
runs inside Store.write: it reads the stored agents and re-applies the operations on them,
so concurrent bridges merge exactly and level-ups are computed on the merged state.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import attrs

from ..config import ScoringRules
from ..store import SEP, WriteView, key
from ..timestamps import millis_between
from .git_commands import hashes_match
from .scoring import AgentState, apply_grade, earn, reinstate, report_bug

# Operation kinds (first element of each op list).
GAIN, COMMIT, PUSH, GRADE, BUG, REINSTATE = "gain", "commit", "push", "grade", "bug", "reinstate"
# [REVERT, commit key, bug activity key, bug activity]: the commit was reverted, a bug for the agent
# that made it, counted once per commit (checked in the flush: another bridge may have seen it).
REVERT = "revert"

# The session counters an end-of-session summary reports (absent = 0).
SUMMARY_COUNTERS = ("toolCalls", "failedToolCalls", "commands", "commits", "pushes", "xpEarned")


@attrs.frozen
class SessionSummary:
    """An ``activities`` record written when a session ends, from its record as the flush leaves it."""

    activity_key: str
    session_id: str
    agent_id: str
    reason: str  # "deleted", "shutdown" or what the host said
    ended_at: str


@attrs.define
class Merge:
    """Upsert of one record: fields set, fields set only when absent, counters added."""

    set: dict[str, Any] = attrs.Factory(dict)
    set_default: dict[str, Any] = attrs.Factory(dict)
    # Counters added on flush; missing ones start at 0 (an int: counts stay ints, XP may be a float).
    add: defaultdict[str, float] = attrs.Factory(lambda: defaultdict(int))

    def then(self, later: "Merge") -> None:
        """This merge followed by ``later`` (no handler both sets and adds one field)."""
        for name, value in later.set_default.items():
            self.set_default.setdefault(name, value)
        self.set.update(later.set)
        for name, delta in later.add.items():
            self.add[name] += delta

    def apply_to(self, record: dict[str, Any]) -> dict[str, Any]:
        for name, value in self.set_default.items():
            record.setdefault(name, value)
        record.update(self.set)
        for name, delta in self.add.items():
            record[name] = record.get(name, 0) + delta
        return record


@attrs.define
class AgentChange:
    """What a flush did to one agent, for host notifications."""

    before: AgentState | None
    after: AgentState


@attrs.define
class FlushOutcome:
    entries_written: int = 0
    agents: list[AgentChange] = attrs.Factory(list)


@attrs.define
class PendingChanges:
    agent_ops: dict[str, list[list[Any]]] = attrs.Factory(dict)
    # Records inserted only if their key is absent (commits via their op, grades, activities).
    inserts: dict[tuple[str, str], dict[str, Any]] = attrs.Factory(dict)
    merges: dict[tuple[str, str], Merge] = attrs.Factory(dict)
    meta: dict[str, Any] = attrs.Factory(dict)
    summaries: list[SessionSummary] = attrs.Factory(list)
    events: int = 0
    # Events per agent in this buffer (agent.status shows them as pendingChanges).
    counts: dict[str, int] = attrs.Factory(dict)

    def __bool__(self) -> bool:
        return bool(self.agent_ops or self.inserts or self.merges or self.meta or self.summaries)

    def size(self) -> int:
        return sum(map(len, self.agent_ops.values())) + len(self.inserts) + len(self.merges)

    def add_op(self, agent_id: str, op: list[Any]) -> None:
        ops = self.agent_ops.setdefault(agent_id, [])
        if op[0] == GAIN and ops and ops[-1][0] == GAIN:
            ops[-1][1] += op[1]
        else:
            ops.append(op)

    def absorb(self, later: "PendingChanges") -> None:
        """Append ``later`` to this (older) buffer, as if every event had gone into one.

        A flush that failed puts its batch back in front of what arrived while it ran.
        """
        for agent_id, ops in later.agent_ops.items():
            for op in ops:
                self.add_op(agent_id, op)
        self.inserts.update(later.inserts)
        for merge_key, merge in later.merges.items():
            mine = self.merges.get(merge_key)
            if mine is None:
                self.merges[merge_key] = merge
            else:
                mine.then(merge)
        self.meta.update(later.meta)
        self.summaries.extend(later.summaries)
        self.events += later.events
        for agent_id, count in later.counts.items():
            self.counts[agent_id] = self.counts.get(agent_id, 0) + count

    def merge(self, db: str, record_key: str) -> Merge:
        found = self.merges.get((db, record_key))
        if found is None:
            found = self.merges[(db, record_key)] = Merge()
        return found

    def apply(self, view: WriteView, rules: ScoringRules, now: str) -> FlushOutcome:
        outcome = FlushOutcome()
        for agent_id, ops in self.agent_ops.items():
            stored = view.get("agents", agent_id)
            before = AgentState.from_record(stored) if stored else None
            state = before.copy() if before else AgentState.new(agent_id, rules, now)
            for op in ops:
                self._apply_op(view, state, op, rules)
            state.updated_at = now
            view.put("agents", agent_id, _keep_other_fields(stored, state.to_record()))
            outcome.entries_written += 1
            outcome.agents.append(AgentChange(before, state))
        for (db, record_key), record in self.inserts.items():
            if db in ("commits", "communication"):
                continue  # written by their agent operation, which also counts them
            outcome.entries_written += view.insert(db, record_key, record)
        for (db, merge_key), merge in self.merges.items():
            target = _stored_commit_key(view, merge_key) if db == "commits" else merge_key
            if target is None:
                continue  # an update of a commit that is not stored: never make a row of it alone
            view.put(db, target, merge.apply_to(view.get(db, target) or {}))
            outcome.entries_written += 1
        for meta_key, value in self.meta.items():
            view.put("meta", meta_key, value)
            outcome.entries_written += 1
        for summary in self.summaries:  # last: the session's counters include this flush
            record = view.get("sessions", summary.session_id) or {}
            outcome.entries_written += view.insert("activities", summary.activity_key,
                                                   session_summary(record, summary))
        return outcome

    def _apply_op(self, view: WriteView, state: AgentState, op: list[Any], rules: ScoringRules) -> None:
        """Apply one operation; a commit, push or grade another process already wrote changes nothing."""
        kind = op[0]
        if kind == GAIN:
            earn(state, op[1], rules)
        elif kind == COMMIT:
            record_key, earned, session_id = op[1], op[2], op[3]
            if not _insert_commit(view, record_key, self.inserts[("commits", record_key)]):
                return
            state.total_commits += 1
            earn(state, earned, rules)
            _count_in_session(view, session_id, "commits", earned)
        elif kind == PUSH:
            earned, marker, head, session_id, at = op[1], op[2], op[3], op[4], op[5]
            if pushed_before(view, marker, head):
                return
            view.put("meta", marker, {"head": head, "sessionID": session_id, "at": at})
            state.total_pushes += 1
            earn(state, earned, rules)
            _count_in_session(view, session_id, "pushes", earned)
        elif kind == GRADE:
            record_key, prefixes = op[2], op[3]
            if any(True for prefix in prefixes for _ in view.scan("communication", prefix)):
                return  # this grader already graded this commit (another bridge)
            view.put("communication", record_key, self.inserts[("communication", record_key)])
            apply_grade(state, op[1], rules)
        elif kind == BUG:
            report_bug(state, rules)
        elif kind == REINSTATE:
            reinstate(state, rules)
        elif kind == REVERT:
            bug_key, bug = op[2], op[3]
            found = _stored_commit(view, op[1], bug["projectPath"], bug["commitHash"])
            if found is None or found[1].get("revertedBy"):
                return  # not stored after all, or its revert was counted already (another bridge)
            commit_key, commit = found
            view.put("commits", commit_key, {**commit, "revertedBy": bug["revertedBy"], "revertedAt": bug["createdAt"]})
            view.insert("activities", bug_key, bug)
            report_bug(state, rules)


def session_summary(record: dict[str, Any], summary: SessionSummary) -> dict[str, Any]:
    """What a session did, in one activity: its counters, how long it lasted, how it ended."""
    counts = {name: _count(record.get(name)) for name in SUMMARY_COUNTERS}
    # From its start to its last event (a session can sit open long after its work ended).
    duration = millis_between(record.get("createdAt"), record.get("updatedAt") or summary.ended_at)
    data: dict[str, Any] = {**counts, "durationMs": duration, "reason": summary.reason}
    if record.get("parentID"):
        data["parentID"] = record["parentID"]
    calls = counts["toolCalls"] + counts["failedToolCalls"]
    text = (f"{calls} tool call{'s' if calls != 1 else ''} ({counts['failedToolCalls']} failed), "
            f"{counts['commits']} commit{'s' if counts['commits'] != 1 else ''}")
    if duration is not None:
        text += f" in {_duration_text(duration)}"
    fields: dict[str, Any] = {"agentId": summary.agent_id, "kind": "session", "createdAt": summary.ended_at,
                              "sessionID": summary.session_id, "description": text + f" ({summary.reason})",
                              "data": data}
    for name in ("projectPath", "model", "provider"):
        if record.get(name):
            fields[name] = record[name]
    return fields


def _count(value: Any) -> float:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _duration_text(millis: int) -> str:
    seconds = max(0, millis) // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {seconds}s" if minutes else f"{seconds}s"


def _stored_commit(view: WriteView, commit_key: str, project: str, commit_hash: str) -> tuple[str, dict[str, Any]] | None:
    """The stored commit: under its key, else under another form of its hash in its project."""
    record = view.get("commits", commit_key)
    if record is not None:
        return commit_key, record
    for stored_key, stored in view.scan("commits", key(project, commit_hash[:4])):
        if hashes_match(str(stored.get("hash", "")), commit_hash):
            return stored_key, stored
    return None


def _keep_other_fields(stored: dict[str, Any] | None, record: dict[str, Any]) -> dict[str, Any]:
    """The agent record as scored, plus the stored fields scoring does not own (an agent imported
    from the older plugin keeps its ``legacy`` fields and ``migratedFrom`` after its next event)."""
    if not stored:
        return record
    return {**record, **{k: v for k, v in stored.items() if k not in record}}


def apply_op_to_projection(state: AgentState, op: list[Any], rules: ScoringRules) -> int:
    """The same rules on the in-memory projection (read-your-writes); returns levels gained."""
    kind = op[0]
    if kind == GAIN:
        return earn(state, op[1], rules)
    if kind == COMMIT:
        state.total_commits += 1
        return earn(state, op[2], rules)
    if kind == PUSH:
        state.total_pushes += 1
        return earn(state, op[1], rules)
    if kind == GRADE:
        apply_grade(state, op[1], rules)
    elif kind in (BUG, REVERT):
        report_bug(state, rules)
    elif kind == REINSTATE:
        reinstate(state, rules)
    return 0


def grade_prefix(commit_key: str, grader: str) -> str:
    """Where one grader's grade of one commit is stored: under the commit's key, whatever its hash became."""
    return commit_key + key("", grader, "")


def push_marker(project_path: str, head: str | None, session_id: str | None, branch: str | None) -> str:
    """A push is counted once per (project, head); without a head, once per (session, branch)."""
    if head:
        return key("push", project_path, head.lower())
    return key("push-without-head", session_id or "", branch or "")


def pushed_before(view: Any, marker: str, head: str | None) -> bool:
    """Whether the store holds this push already (a short and a full head of one commit match)."""
    if not head:
        return view.meta(marker) is not None
    prefix = marker[:len(marker) - len(head)] + head[:4]
    return any(hashes_match(str(value.get("head", "")), head) for _, value in view.scan("meta", prefix))


def _stored_commit_key(view: WriteView, record_key: str) -> str | None:
    """Where the commit an update names is stored: under its own key, or (if a flush in flight found it
    stored by another bridge under another form of its hash) under that one's."""
    if view.get("commits", record_key) is not None:
        return record_key
    project_part, _, commit_hash = record_key.rpartition(SEP)
    for stored_key, stored in view.scan("commits", f"{project_part}{SEP}{commit_hash[:4]}"):
        if hashes_match(str(stored.get("hash", "")), commit_hash):
            return stored_key
    return None


def _insert_commit(view: WriteView, record_key: str, record: dict[str, Any]) -> bool:
    """Insert a commit unless the project holds it already under another form of its hash.

    A short hash seen in bash output and the full hash from ``commit.completed`` (possibly in two
    bridges) are one commit: the stored record keeps its key and gets the longer hash.
    """
    project, commit_hash = record["projectPath"], record["hash"]
    for stored_key, stored in view.scan("commits", key(project, commit_hash[:4])):
        if hashes_match(str(stored.get("hash", "")), commit_hash):
            if len(commit_hash) > len(str(stored.get("hash", ""))):
                view.put("commits", stored_key, {**stored, "hash": commit_hash})
            return False
    return view.insert("commits", record_key, record)


def _count_in_session(view: WriteView, session_id: str | None, counter: str, earned: float) -> None:
    """A commit or push counts in its session when it counts for its agent: in the same transaction."""
    if not session_id:
        return
    record = view.get("sessions", session_id) or {"sessionID": session_id}
    record[counter] = record.get(counter, 0) + 1
    record["xpEarned"] = record.get("xpEarned", 0) + earned
    view.put("sessions", session_id, record)
