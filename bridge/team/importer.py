"""`agent-tracker import-export`: another database's export merged into this one, additively and idempotently.

Like bridge.migration: an entry is written only when it is not there yet, in one write
transaction (all or nothing), and nothing is ever deleted.

* a session is inserted when its id is absent. One present already is kept, unless it is itself an
  imported copy from the same origin database and the export's row is newer (a later export of
  that machine): then that copy is refreshed. A session the plugin recorded here is never replaced
  or added to, so nothing is counted twice;
* a commit is inserted unless its project holds it under its hash, short or full;
* a grade is inserted when its commit is here (imported now or before) and that commit has no
  grade by that grader yet (the store's one-grade-per-commit-and-grader rule);
* a bug is inserted unless its key, or a bug of that agent at that moment naming the same
  session, commit and description, is there;
* a project gets its stack when this database has no record of that path (its folder is on the
  other machine).

Agents' counters (SP, XP, CS, totalCommits, totalBugs) are not changed: they are this machine's
game state under its scoring rules (a bug on the laptop must not halt the desktop's agent, and a
round trip of exports must not add XP twice). The imported work counts where the comparison is
made, in the report's setups: sessions (with their XP), commits, grades, bugs.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import orjson

from ..store import ReadView, Store, WriteView, key
from ..timestamps import utc_now
from ..tracking.git_commands import hashes_match
from ..tracking.pending import grade_prefix
from ..protocol.grades import GRADE_NAMES
from .import_read import Export, ImportRefused, read_export

__all__ = ["ImportRefused", "ImportResult", "import_export", "read_export"]
KINDS = ("sessions", "commits", "grades", "bugs", "projects")


@attrs.define
class ImportResult:
    source: str
    dry_run: bool
    added: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(KINDS, 0))
    refreshed: int = 0
    already_present: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(KINDS, 0))
    skipped_grades: int = 0  # their commit is in neither database

    def to_wire(self) -> dict[str, Any]:
        return {"source": self.source, "dryRun": self.dry_run, "added": self.added,
                "refreshedSessions": self.refreshed, "alreadyPresent": self.already_present,
                "gradesWithoutCommit": self.skipped_grades}

    def sentence(self) -> str:
        added = ", ".join(f"{count} {kind}" for kind, count in self.added.items())
        present = sum(self.already_present.values())
        verb = "Would import" if self.dry_run else "Imported"
        tail = f"; {self.refreshed} imported sessions refreshed" if self.refreshed else ""
        skipped = f"; {self.skipped_grades} grades of commits that are in neither database left out" \
            if self.skipped_grades else ""
        return f"{verb} {added} from {self.source} ({present} entries were already here{tail}{skipped})."


class _Plan:
    """The writes an import makes, worked out against one view (a write transaction, or a read
    one for --dry-run), seeing its own earlier inserts."""

    def __init__(self, view: ReadView, export: Export, dry_run: bool):
        self.view = view
        self.result = ImportResult(export.source, dry_run)
        self.puts: dict[tuple[str, str], dict[str, Any]] = {}
        self.commit_keys: dict[tuple[str, str], str] = {}  # (project, hash) -> its key here

    def get(self, db: str, record_key: str) -> dict[str, Any] | None:
        return self.puts.get((db, record_key)) or self.view.get(db, record_key)

    def scan(self, db: str, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        found = list(self.view.scan(db, prefix))
        found += [(k, v) for (d, k), v in self.puts.items() if d == db and k.startswith(prefix)]
        return found

    def put(self, db: str, record_key: str, record: dict[str, Any], kind: str) -> None:
        self.puts[(db, record_key)] = record
        self.result.added[kind] += 1

    def present(self, kind: str) -> None:
        self.result.already_present[kind] += 1

    # -- the rules ---------------------------------------------------------------------------------

    def project(self, path: str, stack: str) -> None:
        if self.get("projects", path) is not None:
            return self.present("projects")
        language, _, framework = stack.partition("/")
        record = {"path": path, "stack": stack, "language": language, "sources": [], "importedAt": utc_now()}
        if framework:
            record["framework"] = framework
        self.put("projects", path, record, "projects")

    def session(self, record: dict[str, Any]) -> None:
        sid = record["sessionID"]
        stored = self.get("sessions", sid)
        if stored is None:
            return self.put("sessions", sid, record, "sessions")
        origin = stored.get("importedFrom")
        if isinstance(origin, dict) and origin.get("databaseId") == record["importedFrom"]["databaseId"] \
                and str(record.get("updatedAt") or "") > str(stored.get("updatedAt") or ""):
            self.puts[("sessions", sid)] = record
            self.result.refreshed += 1
            return None
        return self.present("sessions")

    def _stored_commit(self, project: str, commit_hash: str) -> str | None:
        exact = key(project, commit_hash)
        if self.get("commits", exact) is not None:
            return exact
        for stored_key, stored in self.scan("commits", key(project, commit_hash[:4])):
            if hashes_match(str(stored.get("hash", "")), commit_hash):
                return stored_key
        return None

    def commit(self, record: dict[str, Any]) -> None:
        project, commit_hash = record["projectPath"], record["hash"]
        found = self._stored_commit(project, commit_hash)
        if found is not None:
            self.commit_keys[(project, commit_hash)] = found
            return self.present("commits")
        record_key = key(project, commit_hash)
        self.commit_keys[(project, commit_hash)] = record_key
        return self.put("commits", record_key, record, "commits")

    def grade(self, event_id: str | None, record: dict[str, Any]) -> None:
        project, commit_hash, grader = record.get("projectPath"), record.get("commitHash"), record.get("grader")
        grade = record.get("grade")
        if not isinstance(project, str) or not isinstance(commit_hash, str) or not isinstance(grader, str) \
                or isinstance(grade, bool) or grade not in GRADE_NAMES:
            return None
        commit_key = self.commit_keys.get((project, commit_hash)) or self._stored_commit(project, commit_hash)
        if commit_key is None:
            self.result.skipped_grades += 1
            return None
        prefix = grade_prefix(commit_key, grader)
        if grader in ("user", "agent") and self.scan("communication", prefix):
            return self.present("grades")
        event = event_id or "import:" + _digest(record)
        record_key = prefix + key(str(record.get("createdAt") or ""), event)
        if self.get("communication", record_key) is not None:
            return self.present("grades")
        record = {**record, "gradeName": record.get("gradeName") or GRADE_NAMES[grade]}
        return self.put("communication", record_key, record, "grades")

    def bug(self, stored_key: str | None, record: dict[str, Any]) -> None:
        agent, created = str(record.get("agentId") or ""), str(record.get("createdAt") or "")
        same = ("sessionID", "commitHash", "description")
        for _, stored in self.scan("activities", key(agent, created, "")):
            if stored.get("kind") == "bug" and all(stored.get(name) == record.get(name) for name in same):
                return self.present("bugs")
        record_key = stored_key or key(agent, created, "import:" + _digest(record))
        if self.get("activities", record_key) is not None:
            return self.present("bugs")
        return self.put("activities", record_key, record, "bugs")


def _digest(record: dict[str, Any]) -> str:
    content = {k: v for k, v in record.items() if k != "importedFrom"}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


def _plan(view: ReadView, export: Export, dry_run: bool) -> _Plan:
    plan = _Plan(view, export, dry_run)
    for path, stack in sorted(export.projects.items()):
        plan.project(path, stack)
    for record in export.sessions:
        plan.session(record)
    for record in export.commits:
        plan.commit(record)
    for event_id, record in export.grades:
        plan.grade(event_id, record)
    for stored_key, record in export.bugs:
        plan.bug(stored_key, record)
    return plan


def import_export(store: Store, export: Export, *, dry_run: bool = False) -> ImportResult:
    """Merge ``export`` into ``store`` in one write transaction (``dry_run``: count only)."""
    if dry_run:
        with store.read() as view:
            return _plan(view, export, True).result

    def apply(view: WriteView) -> ImportResult:
        plan = _plan(view, export, False)
        for (db, record_key), record in plan.puts.items():
            view.put(db, record_key, record)
        return plan.result

    return store.write(apply)
