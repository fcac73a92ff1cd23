"""The write buffer: everything accepted since the last flush, applied in one transaction.

Counters are kept as an ordered list of operations per agent (consecutive XP gains collapse
into one, so do consecutive tool calls of one session), records under their final keys
(repeated updates of one key collapse). ``apply`` runs inside Store.write: it reads the stored
agents and re-applies the operations on them, so concurrent bridges merge exactly and level-ups
are computed on the merged state. A tool call counts once per session and callID whichever
process saw it (a live bridge and ``import-opencode`` may both): the ``calls`` ledger is checked
and extended in the same transaction. Message usage replaces what was stored for its message;
the touched sessions' usage totals are then summed again from their message records.
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
from .usage_totals import session_usage

# Operation kinds (first element of each op list).
GAIN, COMMIT, PUSH, GRADE, BUG, REINSTATE = "gain", "commit", "push", "grade", "bug", "reinstate"
# [CALLS, xp, {sessionID: {callID: xp earned}}, the calls' xp summed]: successful tool calls, each
# counted at flush unless its session's ledger holds its callID already, plus XP gained meanwhile
# (commands): a run of XP gains and tool calls is one operation (adding XP is order-free between
# other operations). The running sum keeps the projection's cost per operation constant: agent.status
# re-applies the buffer's operations, which may hold 100,000 calls.
CALLS = "calls"


# "When was the latest ..." fields never go back, with the fields that go with them: importing
# past sessions (or a late journal replay) leaves what happened later as it is.
LATEST = {"updatedAt": (), "lastSeenAt": (), "lastIdleAt": (), "endedAt": (), "lastCommitAt": ("lastCommit",),
          "lastPushAt": ("lastPushedHead",)}
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
    # Lists that gain the values they lack (a configuration version's projects), order kept.
    union: dict[str, list[Any]] = attrs.Factory(dict)

    def then(self, later: "Merge") -> None:
        """This merge followed by ``later`` (no handler both sets and adds one field)."""
        for name, value in later.set_default.items():
            self.set_default.setdefault(name, value)
        self.set.update(later.set)
        for name, delta in later.add.items():
            self.add[name] += delta
        for name, values in later.union.items():
            mine = self.union.setdefault(name, [])
            mine.extend(value for value in values if value not in mine)

    def apply_to(self, record: dict[str, Any]) -> dict[str, Any]:
        for name, value in self.set_default.items():
            record.setdefault(name, value)
        values = self.set
        for name, companions in LATEST.items():
            new, old = values.get(name), record.get(name)
            if new.__class__ is str and old.__class__ is str and old > new:
                values = {k: v for k, v in values.items() if k != name and k not in companions}
        record.update(values)
        for name, delta in self.add.items():
            record[name] = record.get(name, 0) + delta
        for name, added in self.union.items():
            stored = record.get(name)
            merged = list(stored) if isinstance(stored, list) else []
            merged.extend(value for value in added if value not in merged)
            record[name] = merged
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
    # Failed tool calls per session, in order: counted at flush like successful ones (they earn
    # nothing, so they are no agent operation).
    failed_calls: dict[str, list[str]] = attrs.Factory(dict)
    # Per session with calls in this buffer: the chunks of its stored call ledger the events were
    # checked against (state._read_ledger). Absorbing a later buffer keeps the older (smaller) number.
    ledger_chunks: dict[str, int] = attrs.Factory(dict)
    summaries: list[SessionSummary] = attrs.Factory(list)
    events: int = 0
    # Events per agent in this buffer (agent.status shows them as pendingChanges).
    counts: dict[str, int] = attrs.Factory(dict)

    def __bool__(self) -> bool:
        return bool(self.agent_ops or self.inserts or self.merges or self.meta or self.failed_calls or self.summaries)

    def size(self) -> int:
        return (sum(map(len, self.agent_ops.values())) + len(self.inserts) + len(self.merges)
                + len(self.failed_calls))

    def add_op(self, agent_id: str, op: list[Any]) -> None:
        ops = self.agent_ops.setdefault(agent_id, [])
        kind = op[0]
        if not ops or kind not in (GAIN, CALLS) or ops[-1][0] not in (GAIN, CALLS):
            ops.append(op)
            return
        last = ops[-1]
        if kind == GAIN and last[0] == GAIN:
            last[1] += op[1]
            return
        if last[0] == GAIN:  # the run now holds tool calls: it becomes one CALLS operation
            last = ops[-1] = [CALLS, last[1], {}, 0.0]
        last[1] += op[1]
        if kind == CALLS:
            for session_id, calls in op[2].items():
                found = last[2].get(session_id)
                if found is None:
                    last[2][session_id] = dict(calls)
                    last[3] += sum(calls.values())
                    continue
                for call_id, xp in calls.items():
                    last[3] += xp - found.get(call_id, 0.0)
                    found[call_id] = xp

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
        for session_id, call_ids in later.failed_calls.items():
            self.failed_calls.setdefault(session_id, []).extend(call_ids)
        for session_id, chunks in later.ledger_chunks.items():
            # checked against fewer chunks: the flush reads the whole ledger when they differ
            self.ledger_chunks[session_id] = min(chunks, self.ledger_chunks.get(session_id, chunks))
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
        ledgers = CallLedgers(view, now, self.ledger_chunks)
        for agent_id, ops in self.agent_ops.items():
            stored = view.get("agents", agent_id)
            before = AgentState.from_record(stored) if stored else None
            state = before.copy() if before else AgentState.new(agent_id, rules, now)
            for op in ops:
                self._apply_op(view, state, op, rules, ledgers)
            state.updated_at = now
            view.put("agents", agent_id, _keep_other_fields(stored, state.to_record()))
            outcome.entries_written += 1
            outcome.agents.append(AgentChange(before, state))
        for session_id, call_ids in self.failed_calls.items():
            ledgers.count(session_id, 0, 0.0, len(ledgers.fresh(session_id, call_ids)))
        outcome.entries_written += ledgers.write()
        for (db, record_key), record in self.inserts.items():
            if db in ("commits", "communication"):
                continue  # written by their agent operation, which also counts them
            outcome.entries_written += view.insert(db, record_key, record)
        usage_sessions: dict[str, None] = {}
        for (db, merge_key), merge in self.merges.items():
            target = _stored_commit_key(view, merge_key) if db == "commits" else merge_key
            if target is None:
                continue  # an update of a commit that is not stored: never make a row of it alone
            view.put(db, target, merge.apply_to(view.get(db, target) or {}))
            outcome.entries_written += 1
            if db == "usage":
                usage_sessions[merge.set["sessionID"]] = None
        for session_id in usage_sessions:
            _sum_usage_in_session(view, session_id)
        for meta_key, value in self.meta.items():
            view.put("meta", meta_key, value)
            outcome.entries_written += 1
        for summary in self.summaries:  # last: the session's counters include this flush
            record = view.get("sessions", summary.session_id) or {}
            outcome.entries_written += view.insert("activities", summary.activity_key,
                                                   session_summary(record, summary))
        return outcome

    def _apply_op(self, view: WriteView, state: AgentState, op: list[Any], rules: ScoringRules,
                  ledgers: "CallLedgers") -> None:
        """Apply one operation; a commit, push, grade or tool call another process already wrote
        changes nothing."""
        kind = op[0]
        if kind == GAIN:
            earn(state, op[1], rules)
        elif kind == CALLS:
            gained = op[1]
            for session_id, calls in op[2].items():
                fresh = ledgers.fresh(session_id, calls)
                if fresh:
                    earned = sum(calls.values()) if len(fresh) == len(calls) else sum(calls[c] for c in fresh)
                    gained += earned
                    ledgers.count(session_id, len(fresh), earned, 0)
            earn(state, gained, rules)
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
    if kind == CALLS:
        return earn(state, op[1] + op[3], rules)
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


class CallLedgers:
    """Which callIDs each session has counted, read and extended inside the flush.

    Sub-database ``calls``: per session, chunks under ``sessionID \0 NNNNNNNN`` (numbered from 0)
    of ``{sessionID, callIDs[]}``; a flush that counts new calls of a session adds one chunk with
    just those, so it writes what it adds, never the whole ledger again. A session whose stored
    counters show tool calls but that has no ledger was counted by a bridge that kept no callIDs:
    its first chunk gets ``countedWithoutIdsBefore`` = now, so an import knows that calls which
    ended before then are counted already. The session's counters (toolCalls, failedToolCalls,
    xpEarned) grow by what counted, once per session and flush.
    """

    def __init__(self, view: WriteView, now: str, checked: dict[str, int] | None = None):
        self._view = view
        self._now = now
        # sessions whose buffered calls were checked against their first N chunks (at intake)
        self._checked = checked or {}
        # None: the buffered calls were checked against the whole stored ledger at intake
        self._known: dict[str, set[str] | None] = {}
        self._chunks: dict[str, int] = {}
        self._legacy: set[str] = set()
        self._added: dict[str, list[str]] = {}
        self._counts: dict[str, list[float]] = {}  # session -> [succeeded, xp, failed]

    def fresh(self, session_id: str, call_ids: Any) -> list[str]:
        """The callIDs (in order) this session has not counted yet; they count from now on."""
        if session_id in self._known:
            known = self._known[session_id]
        else:
            known = self._known[session_id] = self._load(session_id)
        if known is None:  # checked at intake against all there is, and never buffered twice
            fresh = list(call_ids)
        else:
            fresh = [call_id for call_id in call_ids if call_id not in known]
            known.update(fresh)
        if fresh:
            self._added.setdefault(session_id, []).extend(fresh)
        return fresh

    def count(self, session_id: str, succeeded: int, earned: float, failed: int) -> None:
        counts = self._counts.setdefault(session_id, [0, 0, 0])
        counts[0] += succeeded
        counts[1] += earned
        counts[2] += failed

    def _load(self, session_id: str) -> set[str] | None:
        prefix = ledger_prefix(session_id)
        chunks = _count_keys(self._view, "calls", prefix)
        known: set[str] | None = None  # the buffered calls were checked against exactly these chunks
        if self._checked.get(session_id) != chunks:
            # Another process added to the ledger since the events were checked (or they never
            # were: the buffer of a journal being replayed): read it all.
            known = set()
            for _, chunk in self._view.scan("calls", prefix):
                if chunk.get("sessionID") == session_id and isinstance(chunk.get("callIDs"), list):
                    known.update(str(call_id) for call_id in chunk["callIDs"])
        self._chunks[session_id] = chunks
        if not chunks:
            session = self._view.get("sessions", session_id) or {}
            if session.get("toolCalls") or session.get("failedToolCalls"):
                self._legacy.add(session_id)
        return known

    def write(self) -> int:
        for session_id, (succeeded, earned, failed) in self._counts.items():
            if succeeded or failed:
                _count_calls_in_session(self._view, session_id, int(succeeded), earned, int(failed))
        for session_id, added in self._added.items():
            chunk: dict[str, Any] = {"sessionID": session_id, "callIDs": added}
            if session_id in self._legacy:
                chunk["countedWithoutIdsBefore"] = self._now
            self._view.put("calls", ledger_prefix(session_id) + f"{self._chunks[session_id]:08d}", chunk)
        return len(self._added)


def _count_keys(view: WriteView, db: str, prefix: str) -> int:
    """How many keys start with ``prefix`` (their values are not read)."""
    encoded = prefix.encode()
    count = 0
    with view.cursor(db) as cursor:
        if cursor.set_range(encoded):
            for raw_key in cursor.iternext(keys=True, values=False):
                if not bytes(raw_key).startswith(encoded):
                    break
                count += 1
    return count


def ledger_prefix(session_id: str) -> str:
    """Where a session's ledger chunks are stored (``calls`` sub-database)."""
    return key(session_id, "")


def _count_calls_in_session(view: WriteView, session_id: str, succeeded: int, earned: float, failed: int) -> None:
    """Tool calls count in their session when they count at all: in the same transaction."""
    record = view.get("sessions", session_id) or {"sessionID": session_id}
    if succeeded:
        record["toolCalls"] = record.get("toolCalls", 0) + succeeded
        record["xpEarned"] = record.get("xpEarned", 0) + earned
    if failed:
        record["failedToolCalls"] = record.get("failedToolCalls", 0) + failed
    view.put("sessions", session_id, record)


def _sum_usage_in_session(view: WriteView, session_id: str) -> None:
    """The session's ``usage`` per setup, summed again from its message records (never adjusted
    by differences: a replaced message leaves no rounding trace)."""
    records = (record for _, record in view.scan("usage", key(session_id, ""))
               if record.get("sessionID") == session_id)
    session = view.get("sessions", session_id) or {"sessionID": session_id}
    session["usage"] = session_usage(records)
    view.put("sessions", session_id, session)
