"""Import every database the older TypeScript plugin wrote, additively and idempotently.

Sources: per-project databases created by its ``~`` bug at
``<project>/~/.config/opencode/agent-tracker.lmdb``, and an lmdb-js database at the central
path itself (moved aside first, nothing deleted). Sources are only read (bridge.lmdbjs reads
the file without taking its lock). One write transaction per source.

What the plugin stored (its ``src/types.ts`` and ``src/lmdb-database.ts``; the fixtures in
tests/fixtures/lmdbjs are written by the same calls): msgpackr records with snake_case fields,
``Date`` fields as msgpack timestamps, either in named sub-databases (``agents``, ``commits``,
``communication``, ``retrospectives``, ``activities``, ``migrations``, ``projects``) or, in its
first versions, in one database with the record type as a key prefix (``agent:``, ``commit:``,
``communication:``). The field mapping is in protocol/storage.md; the rules:

* Only the plugin's shapes are imported. An entry of a database or key prefix the plugin never
  wrote, or a record without a field its type requires, is reported as an error for that entry
  (never guessed at); the rest of the source is still imported.
* Values are kept exactly as stored, even where they break today's rules (a negative
  communication score, a fractional SP); our rules apply from the next event on. Fields we have
  no column for are kept, under their original names, in the record's ``legacy`` object; every
  imported record names its source in ``migratedFrom``. An agent with SP <= 0 is halted, as the
  plugin's status said.
* Commits and grades carry the setup the report needs: the agent, and the model of the source's
  agent record (the plugin recorded no model per commit; its placeholder ``unknown`` means none).
* Additive at the key level: an entry is written only if its key is absent, so a second run adds
  nothing. An agent already in our database is kept as it is; the source's record is listed in
  the result (``skippedAgents``, with its totals) so nothing is silently ignored. Grade events
  are keyed by their content: the plugin's own keys hold the Date.now() of the write, and its
  own migration copied events under new keys, so the same event can appear several times.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import __version__
from ..config import DATABASE_FILE_NAME
from ..store import DatabaseFull, Store, StoreError, WriteView, key
from ..timestamps import utc_now
from .records import Importer, agent_models, read_rows
from .results import TABLES, MigrationReport, SourceResult

LEGACY_RELATIVE = Path("~") / ".config" / "opencode" / DATABASE_FILE_NAME


Progress = Callable[[str, int, int], None]



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
    rows = read_rows(snapshot, result)
    stacks = {} if dry_run else _project_stacks(rows, started)

    def apply(view: WriteView) -> None:
        importer = Importer(view, result, dry_run, agent_models(rows))
        for done, row in enumerate(rows, 1):
            importer.add(row)
            if progress and (done % 1000 == 0 or done == len(rows)):
                progress(str(source), done, len(rows))
        if not dry_run:
            for path, record in stacks.items():  # the report reads stacks, never project files
                if view.get("projects", path) is None:
                    view.put("projects", path, record)
            view.put("migrations", record_key, {
                "sourcePath": str(source), "fingerprint": result.fingerprint, "layout": result.layout,
                "counts": result.imported, "alreadyPresent": result.already_present,
                "skippedAgents": [agent["agentId"] for agent in result.skipped_agents][:100],
                "errors": result.errors[:100], "startedAt": started, "finishedAt": utc_now(),
                "version": __version__, "txnid": snapshot.txnid})

    if dry_run:
        with store.read() as view:
            apply(view)  # type: ignore[arg-type]  # Importer never writes in dry-run mode
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


def _project_stacks(rows: list[Any], now: str) -> dict[str, dict[str, Any]]:
    """The stack of each project folder the old records name, classified before the write
    transaction (bounded reads, tracking.stack): a project without an old profile gets the
    stack its folder shows now, as a session there would record it (none when it shows none)."""
    from ..tracking.stack import classify, fingerprint

    paths = {value.get("project_path") for row in rows if isinstance(value := getattr(row, "value", None), dict)}
    stacks: dict[str, dict[str, Any]] = {}
    for path in sorted(path for path in paths if isinstance(path, str)):
        if os.path.isabs(path) and "\x00" not in path:
            folder = Path(path)
            stack = classify(folder)
            if stack.sources:  # an unknown stack is what the report says anyway: no record for it
                stacks[path] = {"path": path, **stack.to_record(), "fingerprint": fingerprint(folder),
                                "classifiedAt": now, "firstSeenAt": now}
    return stacks


__all__ = ["MigrationReport", "SourceResult", "find_sources", "import_at_start", "legacy_path_for",
           "move_aside_if_lmdbjs",
           "migrate_paths", "migrate_source", "move_aside"]
