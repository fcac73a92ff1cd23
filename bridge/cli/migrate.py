"""`agent-tracker migrate`: import the databases of the older TypeScript plugin, with progress and a summary."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from ..config import BridgeConfig
from ..store import Store
from .common import (
    EXIT_FAILED,
    EXIT_NO_DATABASE,
    EXIT_OK,
    CommandError,
    command_config,
    database_path,
    make_console,
    print_json,
    resolved_argument,
    unusable,
)


def cmd_migrate(args: argparse.Namespace) -> int:
    from ..lmdbjs import is_lmdbjs_file
    from ..migration.importer import (
        import_at_start,
        migrate_paths,
        move_aside_if_lmdbjs,
    )

    config = command_config(args)
    path = database_path(config)
    sources = [resolved_argument(p) for p in args.paths]
    for source in sources:
        if not source.exists():
            raise CommandError(f"Nothing to migrate at {source}: no such file or folder.", EXIT_FAILED)
    old_at_central_path = path.is_file() and is_lmdbjs_file(path)
    if not sources and not path.exists():
        raise CommandError(f"There is no database at {path}, so nothing to migrate there. Give project folders or "
                           f"lmdb-js database files: agent-tracker migrate ~/code/*", EXIT_NO_DATABASE)
    if not sources and not old_at_central_path:
        message = (f"The database at {path} is not from the older plugin; nothing to migrate there. "
                   f"Give project folders or lmdb-js database files: agent-tracker migrate ~/code/*")
        if args.json:
            print_json({"database": str(path), "sources": [], "message": message})
        else:
            print(message)
        return EXIT_OK
    results: list[dict[str, Any]] = []
    with _migration_progress(enabled=not args.json) as progress:
        moved_aside = None
        if old_at_central_path and args.dry_run:
            with Store.open(BridgeConfig(database_path=":memory:")) as scratch:
                results.append(migrate_paths(scratch, [path], dry_run=True, progress=progress).to_wire())
        elif old_at_central_path:
            # Moved aside before the store opens, so it opens once, at the path, as ours.
            moved_aside = move_aside_if_lmdbjs(path)
        with Store.open(config) as store:
            if moved_aside is not None:
                wire = import_at_start(store, moved_aside, None)
                if wire:
                    results.append(wire)
            if sources:
                if not store.available:
                    raise unusable(store)
                results.append(migrate_paths(store, sources, dry_run=args.dry_run, progress=progress).to_wire())
    errors = [error for wire in results for error in wire.get("errors", [])]
    if args.json:
        print_json({"database": str(path), "results": results})
    else:
        _print_migration_summary(results, dry_run=args.dry_run)
    return EXIT_FAILED if errors else EXIT_OK



class _migration_progress:
    """A rich progress bar per source while records are imported (off for --json)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    def __enter__(self) -> Callable[[str, int, int], None] | None:
        if not self.enabled:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  console=make_console(sys.stderr), transient=True)
        self._progress.start()
        return self._advance

    def _advance(self, source: str, done: int, total: int) -> None:
        task = self._tasks.get(source)
        if task is None:
            task = self._tasks[source] = self._progress.add_task(Path(source).name, total=total)
        self._progress.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()



def _print_migration_summary(results: list[dict[str, Any]], dry_run: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..display import display_text

    console = make_console()
    title = "Migration (dry run: nothing written)" if dry_run else "Migration"
    table = Table(title=title, title_justify="left")
    for column in ("source", "layout", "agents", "commits", "grades", "retros", "activities", "projects",
                   "old migrations", "already there", "errors"):
        table.add_column(column, justify="left" if column in ("source", "layout") else "right")
    for wire in results:
        for source in wire.get("sources", []):
            imported = source.get("imported") or {}
            label = source.get("path", "")
            if source.get("movedAsideFrom"):
                label += f"\n(moved aside from {source['movedAsideFrom']})"
            if source.get("upToDate"):
                label += "\n(already imported)"
            table.add_row(label, source.get("layout", ""), *(str(imported.get(t, 0)) for t in (
                "agents", "commits", "communication", "retrospectives", "activities", "projects", "migrations")),
                str(source.get("alreadyPresent", 0)), str(source.get("errorCount", 0)))
    console.print(table)
    _print_skipped_agents(console, results)
    for wire in results:
        console.print(wire.get("message", ""))
        for error in wire.get("errors", [])[:10]:
            console.print(Text.assemble("  ", (display_text(error), "yellow")))


def _print_skipped_agents(console: Any, results: list[dict[str, Any]]) -> None:
    """Agents of an old database that were already in ours: ours were kept, these not imported."""
    from rich.table import Table

    skipped = [(source.get("path", ""), agent) for wire in results for source in wire.get("sources", [])
               for agent in source.get("skippedAgents", [])]
    if not skipped:
        return
    table = Table(title="Agents already in the database: kept as they are; these old records were not imported",
                  title_justify="left")
    for column in ("source", "agent", "SP", "XP", "CS", "commits", "bugs", "state"):
        table.add_column(column, justify="left" if column in ("source", "agent", "state") else "right")
    for path, agent in skipped:
        table.add_row(path, str(agent["agentId"]), f"{agent['skillPoints']:g}", f"{agent['experiencePoints']:g}",
                      f"{agent['communicationScore']:g}", f"{agent['totalCommits']:g}", f"{agent['totalBugs']:g}",
                      "halted" if agent["halted"] else "active")
    console.print(table)
