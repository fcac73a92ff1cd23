"""What later commits say about earlier ones: a fix-up soon after in the same session, a revert.

Both are signals nobody has to type: a commit that needed a fix-up (`git commit --amend`, or a
`fixup!`/`squash!`/`amend!` commit) within FIXUP_WINDOW in its own session is marked
``fixedUpBy`` (the report counts them per setup); a commit that is reverted (`git revert <hash>`,
or a commit whose message says "This reverts commit <hash>") counts as a bug against the agent
that made it: SP -1 and a ``bug`` activity naming the commit, once per commit.
"""

from __future__ import annotations

from typing import Any

from ..store import key
from ..timestamps import parse_iso
from .git_commands import FIXUP_WINDOW, HEAD, fixup_subject
from .pending import REVERT
from .state import CommitSeen, SessionRuntime, TrackingState


class OutcomeEvents(TrackingState):
    # -- fix-ups ------------------------------------------------------------------------------------

    def _note_fixup(self, runtime: SessionRuntime, record: dict[str, Any], amend: bool, now: str) -> None:
        """Mark the commit ``record`` (just recorded) fixes, if it is a fix-up of one of this session's
        recent commits: an amend fixes the session's previous commit, a `fixup! <subject>` the latest
        commit of the session with that subject (else the previous one)."""
        fixup = fixup_subject(record.get("taskDescription"))
        if not amend and fixup is None:
            return
        kind = "amend" if amend else fixup[0] if fixup else "fixup"
        earlier = [seen for seen in runtime.commits if seen.hash != record["hash"]]
        if not earlier and runtime.last_commit and runtime.last_commit[1] != record["hash"]:
            earlier = self._adopted_commit(*runtime.last_commit)
        target = None
        if fixup is not None and not amend:
            target = next((seen for seen in reversed(earlier) if seen.subject == fixup[1]), None)
        target = target or (earlier[-1] if earlier else None)
        if target is None or not _soon_after(target.created_at, now):
            return
        record["fixupOf"] = target.hash
        record["fixupKind"] = kind
        if self._mark_commit(target.key, {"fixedUpBy": record["hash"], "fixedUpAt": now, "fixupKind": kind},
                             only_if_absent="fixedUpBy"):
            # Counted on the session too (the fix-up is in the same session): the report reads it
            # with the session's other counters instead of scanning every commit.
            self.pending.merge("sessions", runtime.session_id).add["fixedUpCommits"] += 1

    def _adopted_commit(self, project: str, commit_hash: str) -> list[CommitSeen]:
        """The session's last commit before this bridge started (its runtime was adopted)."""
        found = self._find_commit(project, commit_hash)
        if found is None:
            return []
        record_key, record = found
        return [CommitSeen(record_key, str(record.get("hash", commit_hash)), record.get("taskDescription"),
                           str(record.get("createdAt") or ""))]

    def _mark_commit(self, record_key: str, fields: dict[str, Any], only_if_absent: str) -> bool:
        """Add fields to a commit pending or stored, unless it has ``only_if_absent`` already;
        whether it was marked now."""
        pending = self.pending.inserts.get(("commits", record_key))
        if pending is not None:
            if only_if_absent in pending:
                return False
            pending.update(fields)
            return True
        stored = self._read("commits", record_key)
        merge = self.pending.merges.get(("commits", record_key))
        if (stored and only_if_absent in stored) or (merge and only_if_absent in merge.set):
            return False
        self.pending.merge("commits", record_key).set.update(fields)
        return True

    # -- reverts ------------------------------------------------------------------------------------

    def _note_reverts(self, runtime: SessionRuntime | None, project: str, revert_hash: str,
                      reverted: tuple[str, ...], head_before: str | None, now: str, event_id: str) -> None:
        """A bug for each recorded commit ``revert_hash`` reverts, against the agent that made it."""
        for number, named in enumerate(reverted):
            commit_hash = head_before if named == HEAD else named
            if not commit_hash:
                continue
            found = self._find_commit(project, commit_hash)
            if found is None or found[1].get("hash") == revert_hash:
                continue  # not a commit the tracker recorded (made by hand): nobody to blame
            commit_key, commit = found
            if self._already_reverted(commit_key, commit):
                continue
            agent_id = str(commit.get("agentId") or self._agent_for(None, commit.get("sessionID")))
            bug = {
                "agentId": agent_id, "kind": "bug", "createdAt": now, "source": "revert",
                "description": f"commit {str(commit.get('hash'))[:12]} was reverted by {revert_hash[:12]}",
                "commitHash": commit.get("hash"), "projectPath": project, "revertedBy": revert_hash,
                "sessionID": runtime.session_id if runtime else None,
                "model": commit.get("model"), "provider": commit.get("provider"),
            }
            # Its own key part keeps two reverts in one event apart.
            self._add_op(agent_id, [REVERT, commit_key, key(agent_id, now, f"{event_id}.{number}"), bug])

    def _already_reverted(self, commit_key: str, commit: dict[str, Any]) -> bool:
        if commit.get("revertedBy"):
            return True
        stored = self._read("commits", commit_key)
        if stored and stored.get("revertedBy"):
            return True
        return any(op[0] == REVERT and op[1] == commit_key for ops in self.pending.agent_ops.values() for op in ops)


def _soon_after(earlier: str, now: str) -> bool:
    start, end = parse_iso(earlier), parse_iso(now)
    return start is not None and end is not None and end - start <= FIXUP_WINDOW
