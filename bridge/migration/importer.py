"""Import every database the older TypeScript plugin wrote, additively and idempotently.

Sources: per-project databases created by its ``~`` bug at
``<project>/~/.config/opencode/agent-tracker.lmdb``, and an lmdb-js database at the central
path itself (moved aside first, nothing deleted). Sources are only read (bridge.lmdbjs reads
the file without taking its lock). Every entry is written only if its key is absent; grade
events are deduplicated by content (the old plugin stored the same grade again on each run),
so a second migration adds nothing. One write transaction per source.
"""

from __future__ import annotations

import hashlib
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import attrs

from .. import __version__
from ..config import DATABASE_FILE_NAME
from ..store import DatabaseFull, Store, StoreError, WriteView, key, split_key
from ..timestamps import iso_utc, utc_now

LEGACY_RELATIVE = Path("~") / ".config" / "opencode" / DATABASE_FILE_NAME
VALID_GRADES = {-1, 1, 2, 5}
TABLES = ("agents", "commits", "communication", "retrospectives", "activities", "projects")
Progress = Callable[[str, int, int], None]


@attrs.define
class SourceResult:
    path: str
    layout: str = "unknown"
    fingerprint: str = ""
    imported: dict[str, int] = attrs.Factory(lambda: {t: 0 for t in TABLES})
    already_present: int = 0
    skipped: int = 0
    errors: list[str] = attrs.Factory(list)
    backup_of: str | None = None
    up_to_date: bool = False

    def to_wire(self) -> dict[str, Any]:
        wire = {"path": self.path, "layout": self.layout, "imported": self.imported,
                "alreadyPresent": self.already_present, "skipped": self.skipped,
                "errors": self.errors[:50], "errorCount": len(self.errors), "upToDate": self.up_to_date}
        if self.backup_of:
            wire["movedAsideFrom"] = self.backup_of
        return wire


@attrs.define
class MigrationReport:
    sources: list[SourceResult] = attrs.Factory(list)
    dry_run: bool = False

    @property
    def imported(self) -> int:
        return sum(sum(s.imported.values()) for s in self.sources)

    @property
    def errors(self) -> list[str]:
        return [f"{s.path}: {e}" for s in self.sources for e in s.errors]

    def message(self) -> str:
        if not self.sources:
            return "No databases from the older TypeScript plugin found."
        verb = "Would import" if self.dry_run else "Imported"
        parts = [f"{verb} {self.imported} records from {len(self.sources)} old database(s)"]
        if self.errors:
            parts.append(f"{len(self.errors)} entries could not be imported (see the migration result)")
        return "; ".join(parts) + "."

    def to_wire(self) -> dict[str, Any]:
        return {"sources": [s.to_wire() for s in self.sources], "imported": self.imported,
                "errors": self.errors[:50], "dryRun": self.dry_run, "message": self.message()}


# -- finding sources ------------------------------------------------------------------------------

def legacy_path_for(project: Path) -> Path:
    return project / LEGACY_RELATIVE


def find_sources(paths: Iterable[Path]) -> list[Path]:
    """Project folders (their ``~/.config/...`` database) or database files given directly."""
    found: list[Path] = []
    for path in paths:
        candidate = legacy_path_for(path) if path.is_dir() else path
        if candidate.is_file() and candidate not in found:
            found.append(candidate)
    return found


def move_aside(path: Path) -> Path:
    """Rename an lmdb-js database (and its lock file) so ours can take its place; nothing deleted."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    backup = path.with_name(f"{path.name}.lmdbjs-backup-{stamp}")
    counter = 1
    while backup.exists():
        backup = path.with_name(f"{path.name}.lmdbjs-backup-{stamp}-{counter}")
        counter += 1
    os.rename(path, backup)
    lock = path.with_name(path.name + "-lock")
    if lock.exists():
        os.rename(lock, backup.with_name(backup.name + "-lock"))
    return backup


# -- entry points -------------------------------------------------------------------------------

def move_aside_if_lmdbjs(path: Path | None) -> Path | None:
    """Before the store opens: an lmdb-js database at ``path`` is renamed aside; returns where to."""
    from ..lmdbjs import is_lmdbjs_file

    if path is None or not path.is_file() or not is_lmdbjs_file(path):
        return None
    return move_aside(path)


def import_at_start(store: Store, moved_aside: Path | None, directory: str | None) -> dict[str, Any] | None:
    """At bridge start: the database moved aside from the central path, and the project's own."""
    report = MigrationReport()
    if moved_aside is not None and store.available:
        result = migrate_source(store, moved_aside)
        result.backup_of = str(store.path)
        report.sources.append(result)
    if directory and store.available and not store.read_only:
        for source in find_sources([Path(directory)]):
            result = migrate_source(store, source)
            if not result.up_to_date:  # imported on an earlier start: nothing to tell
                report.sources.append(result)
    if not report.sources:
        return None
    return report.to_wire()


def migrate_paths(store: Store, paths: list[Path], *, dry_run: bool = False,
                  progress: Progress | None = None) -> MigrationReport:
    """For `agent-tracker migrate PATH...` (project folders or lmdb-js files)."""
    report = MigrationReport(dry_run=dry_run)
    for source in find_sources(paths):
        report.sources.append(migrate_source(store, source, dry_run=dry_run, progress=progress))
    return report


def migrate_source(store: Store, source: Path, *, dry_run: bool = False,
                   progress: Progress | None = None) -> SourceResult:
    from ..lmdbjs import LmdbJsError, LmdbJsSnapshot

    result = SourceResult(str(source))
    started = utc_now()
    try:
        snapshot = LmdbJsSnapshot.read(source)
    except (LmdbJsError, OSError) as exc:
        result.errors.append(f"cannot read: {exc}")
        return result
    stat = source.stat()
    result.fingerprint = hashlib.sha256(
        f"{stat.st_size}:{stat.st_mtime_ns}:{snapshot.txnid}".encode()).hexdigest()[:16]
    result.errors.extend(snapshot.errors)
    result.layout = "subdatabases" if any(name for name in snapshot.databases if name) else "flat"
    record_key = key(str(source), result.fingerprint)
    with store.read() as view:
        if view.get("migrations", record_key) is not None:
            result.up_to_date = True
            return result
    rows = list(_rows(snapshot, result))

    def apply(view: WriteView) -> None:
        importer = _Importer(view, result, dry_run)
        for done, (table, value) in enumerate(rows, 1):
            importer.add(table, value)
            if progress and (done % 1000 == 0 or done == len(rows)):
                progress(str(source), done, len(rows))
        if not dry_run:
            view.put("migrations", record_key, {
                "sourcePath": str(source), "fingerprint": result.fingerprint, "layout": result.layout,
                "counts": result.imported, "alreadyPresent": result.already_present,
                "errors": result.errors[:100], "startedAt": started, "finishedAt": utc_now(),
                "version": __version__, "txnid": snapshot.txnid})

    if dry_run:
        with store.read() as view:
            apply(view)  # type: ignore[arg-type]  # _Importer never writes in dry-run mode
        return result
    try:
        store.write(apply)
    except DatabaseFull as exc:
        result.imported = {t: 0 for t in TABLES}
        result.errors.append(str(exc))
    except StoreError as exc:
        result.imported = {t: 0 for t in TABLES}
        result.errors.append(f"cannot write: {exc}")
    return result


# -- reading the old layouts --------------------------------------------------------------------

_FLAT_PREFIXES = {"agent:": "agents", "commit:": "commits", "communication:": "communication",
                  "retrospective:": "retrospectives", "activity:": "activities", "project:": "projects"}
_SKIPPED_DATABASES = {"migrations"}  # the old plugin's own bookkeeping


def _rows(snapshot: Any, result: SourceResult) -> Iterable[tuple[str, Any]]:
    for name, entries in snapshot.databases.items():
        for entry in entries:
            if not isinstance(entry.key, (str, int, float)):  # symbols: msgpackr shared structures
                result.skipped += 1
                continue
            label = f"{name or 'main'}[{entry.key!r}]"
            if entry.error is not None:
                result.errors.append(f"{label}: {entry.error}")
                continue
            if name in _SKIPPED_DATABASES:
                result.skipped += 1
                continue
            table = name if name in TABLES else None
            if name is None and isinstance(entry.key, str):
                table = next((t for prefix, t in _FLAT_PREFIXES.items() if entry.key.startswith(prefix)), None)
                if entry.key.startswith("migration"):
                    result.skipped += 1
                    continue
            if table is None:
                result.errors.append(f"{label}: unknown key, not imported")
                continue
            if not isinstance(entry.value, dict):
                result.errors.append(f"{label}: expected an object, got {type(entry.value).__name__}")
                continue
            yield table, (label, _plain(entry.value))


def _plain(value: Any) -> Any:
    """lmdb-js/msgpackr values → JSON-safe values (dates as ISO strings, undefined dropped)."""
    from ..lmdbjs import JsError, JsRegExp, JsTypedArray, Symbol, Undefined

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if v is not Undefined}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value)
    if value is Undefined:
        return None
    if isinstance(value, Symbol):
        return str(value)
    if isinstance(value, (JsError, JsRegExp)):
        return str(value)
    if isinstance(value, JsTypedArray):
        return {"typedArray": value.type, "hex": value.data.hex()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # e.g. InvalidDate


class _Importer:
    """Maps old records onto our layout, inserting only what is absent."""

    def __init__(self, view: WriteView, result: SourceResult, dry_run: bool):
        self.view = view
        self.result = result
        self.dry_run = dry_run
        self.source = result.path
        self.grade_contents: set[str] = set()

    def add(self, table: str, item: tuple[str, dict[str, Any]]) -> None:
        label, value = item
        try:
            record_key, record = getattr(self, "_" + table)(value)
        except (KeyError, TypeError, ValueError) as exc:
            self.result.errors.append(f"{label}: {exc}")
            return
        if record_key is None:
            self.result.already_present += 1
            return
        if self.view.get(table, record_key) is not None:
            self.result.already_present += 1
            return
        if not self.dry_run:
            self.view.insert(table, record_key, record)
        self.result.imported[table] += 1

    def _legacy(self, value: dict[str, Any], known: set[str]) -> dict[str, Any]:
        extra = {k: v for k, v in value.items() if k not in known}
        return {"migratedFrom": self.source, **({"legacy": extra} if extra else {})}

    def _agents(self, v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        agent_id = _text(v, "id")
        sp = _number(v, "skillPoints", 1)
        known = {"id", "skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                 "totalBugs", "totalPushes", "halted", "createdAt", "updatedAt"}
        return agent_id, {
            "id": agent_id, "skillPoints": sp,
            "experiencePoints": _number(v, "experiencePoints", 0),
            "communicationScore": _number(v, "communicationScore", 60),
            "totalCommits": int(_number(v, "totalCommits", 0)), "totalBugs": int(_number(v, "totalBugs", 0)),
            "totalPushes": int(_number(v, "totalPushes", 0)),
            "halted": bool(v.get("halted", sp <= 0)),
            "createdAt": v.get("createdAt"), "updatedAt": v.get("updatedAt"),
            **self._legacy(v, known)}

    def _commits(self, v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        project, commit_hash = _text(v, "projectPath"), _text(v, "hash").lower()
        known = {"hash", "projectPath", "agentId", "taskDescription", "timestamp", "createdAt", "pushed",
                 "sessionID", "model", "provider"}
        return key(project, commit_hash), {
            "hash": commit_hash, "projectPath": project, "agentId": v.get("agentId"),
            "sessionID": v.get("sessionID"), "model": v.get("model"), "provider": v.get("provider"),
            "taskDescription": v.get("taskDescription"),
            "createdAt": v.get("timestamp") or v.get("createdAt"), "pushed": v.get("pushed"),
            "source": "migration", **self._legacy(v, known)}

    def _communication(self, v: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
        grade = v.get("grade")
        if isinstance(grade, bool) or not isinstance(grade, (int, float)) or grade not in VALID_GRADES:
            raise ValueError(f"grade {grade!r} is not one of -1, 1, 2, 5; not imported")
        project, commit_hash = _text(v, "projectPath"), _text(v, "commitHash").lower()
        grader = str(v["grader"]) if v.get("grader") in ("agent", "user") else "unknown"
        content = [v.get("agentId"), project, commit_hash, int(grade), grader, v.get("reason")]
        digest = hashlib.sha1(repr(content).encode()).hexdigest()[:16]
        prefix = key(project, commit_hash, grader, "")
        # Same content already stored (any timestamp) or seen earlier in this source: a duplicate.
        if digest in self.grade_contents or any(
                split_key(k)[-1] == f"m:{digest}" for k, _ in self.view.scan("communication", prefix)):
            return None, {}
        self.grade_contents.add(digest)
        created = v.get("timestamp") or v.get("createdAt") or ""
        known = {"agentId", "commitHash", "projectPath", "grade", "grader", "reason", "timestamp", "createdAt"}
        return prefix + key(str(created), f"m:{digest}"), {
            "agentId": v.get("agentId"), "projectPath": project, "commitHash": commit_hash,
            "grade": int(grade), "gradeName": {-1: "bad", 1: "neutral", 2: "good", 5: "excellence"}[int(grade)],
            "grader": grader, "reason": v.get("reason"), "createdAt": created or None,
            **self._legacy(v, known)}

    def _retrospectives(self, v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        agent_id = str(v.get("agentId") or "unknown")
        created = str(v.get("createdAt") or v.get("timestamp") or "")
        ident = str(v.get("id") or hashlib.sha1(repr(sorted(v.items())).encode()).hexdigest()[:16])
        return key(agent_id, created, f"m:{ident}"), {**v, "agentId": agent_id, "createdAt": created or None,
                                                        "migratedFrom": self.source}

    def _activities(self, v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        agent_id = str(v.get("agentId") or "unknown")
        created = str(v.get("timestamp") or v.get("createdAt") or "")
        ident = str(v.get("id") or hashlib.sha1(repr(sorted(v.items())).encode()).hexdigest()[:16])
        kind = v.get("kind") or v.get("type") or "activity"
        return key(agent_id, created, f"m:{ident}"), {**v, "agentId": agent_id, "kind": str(kind),
                                                        "createdAt": created or None, "migratedFrom": self.source}

    def _projects(self, v: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        path = _text(v, "path")
        known = {"path", "firstSeen", "lastSeen"}
        return path, {"path": path, "firstSeenAt": v.get("firstSeen"), "lastSeenAt": v.get("lastSeen"),
                      **self._legacy(v, known)}


def _text(value: dict[str, Any], name: str) -> str:
    found = value.get(name)
    if not isinstance(found, str) or not found or "\x00" in found:
        raise ValueError(f"field {name!r} missing or not a string")
    return found


def _number(value: dict[str, Any], name: str, default: float) -> float:
    found = value.get(name, default)
    if isinstance(found, bool) or not isinstance(found, (int, float)):
        raise ValueError(f"field {name!r} is not a number: {found!r}")
    return found


__all__ = ["MigrationReport", "SourceResult", "find_sources", "import_at_start", "legacy_path_for",
           "migrate_paths", "migrate_source", "move_aside", "move_aside_if_lmdbjs"]
