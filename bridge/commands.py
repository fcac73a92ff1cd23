"""The `agent-tracker` commands other than `serve` (parsed by bridge.cli, run here).

Exit codes (documented in docs/README-report.md):
  0  done
  1  the command ran but could not do what was asked (unknown agent, unreadable file, ...)
  2  usage or configuration error
  3  no database at the path (nothing recorded yet)
  4  the file at the path is not a usable agent-tracker database (written by the older
     TypeScript plugin: run `agent-tracker migrate`; corrupt; another program's; no permission)
  5  the database could not be written (full, read-only)
130 interrupted
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections import deque
from pathlib import Path
from typing import Any, Callable, TextIO

import orjson

from .config import BridgeConfig, ConfigError, load_config
from .store import DatabaseFull, Store, StoreError, key

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_DATABASE, EXIT_UNUSABLE, EXIT_WRITE = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.message = message
        self.code = code


# -- output ------------------------------------------------------------------------------------

def _console(file: TextIO | None = None) -> Any:
    from rich.console import Console

    console = Console(file=file or sys.stdout, highlight=False)
    if not console.is_terminal:  # piped: wide enough for the report table, no wrapping
        console = Console(file=file or sys.stdout, highlight=False, width=max(console.width, 200))
    return console


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()


def _error(message: str) -> None:
    print(f"agent-tracker: {message}", file=sys.stderr, flush=True)


# -- configuration and opening ----------------------------------------------------------------------

def command_config(args: argparse.Namespace) -> BridgeConfig:
    """The same configuration as the bridge: defaults < environment < --database/--max-database-size."""
    from .cli import cli_overrides

    try:
        return load_config(None, cli_overrides(args))
    except ConfigError as exc:
        raise CommandError(f"Invalid configuration: {exc}", EXIT_USAGE) from None


def _unusable(store: Store) -> CommandError:
    info = store.info()
    message = store.error or f"Cannot open the database at {store.path}."
    foreign = info.foreign or _is_lmdbjs(store.path)
    if foreign and "agent-tracker migrate" not in message:
        message = (f"The database at {store.path} was written by the older TypeScript plugin (lmdb-js). "
                   f"Run `agent-tracker migrate` to move it aside and import its history.")
    if "has not been initialised yet" in message:
        return CommandError(f"{message} Nothing has been recorded there yet.", EXIT_NO_DATABASE)
    if "database is full" in message:
        return CommandError(message, EXIT_WRITE)
    return CommandError(message, EXIT_UNUSABLE)


def _is_lmdbjs(path: Path) -> bool:
    try:
        from .lmdbjs import is_lmdbjs_file
    except ImportError:
        return False
    try:
        return bool(is_lmdbjs_file(path))
    except Exception:  # a reader problem must not hide the real error
        return False


def _database_path(config: BridgeConfig) -> Path:
    path = config.resolved_database_path()
    if path is None:
        raise CommandError("':memory:' is a throw-away database that only lives inside one bridge; "
                           "there is nothing to read. Give --database PATH.", EXIT_NO_DATABASE)
    return path


def _missing(path: Path) -> CommandError:
    return CommandError(
        f"No agent-tracker database at {path}. It is created when OpenCode first runs the plugin "
        f"(see `agent-tracker install-plugin`); try `agent-tracker demo` for a sample, or pass "
        f"--database PATH.", EXIT_NO_DATABASE)


def open_for_reading(config: BridgeConfig) -> Store:
    """Open read-only, or CommandError with exit code 3 (missing) or 4 (not usable)."""
    path = _database_path(config)
    if not path.exists():
        raise _missing(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CommandError(f"The file at {path} is empty: no agent-tracker database there yet.",
                           EXIT_NO_DATABASE)
    from .report import open_readonly  # Store.open(readonly=True) with the read-only fix

    store = open_readonly(config)
    if not store.available:
        raise _unusable(store)
    return store


def open_for_writing(config: BridgeConfig, *, must_exist: bool = False) -> Store:
    path = _database_path(config)
    if must_exist and not path.exists():
        raise _missing(path)
    store = Store.open(config)
    if not store.available:
        raise _unusable(store)
    if store.read_only:
        store.close()
        raise CommandError(store.error or f"The database at {path} cannot be written.", EXIT_WRITE)
    return store


# -- dispatch -------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {
        "status": cmd_status, "report": cmd_report, "export": cmd_export, "replay": cmd_replay,
        "demo": cmd_demo, "reinstate": cmd_reinstate, "migrate": cmd_migrate,
        "install-plugin": cmd_install_plugin, "uninstall-plugin": cmd_uninstall_plugin,
    }
    handler = handlers.get(args.command)
    if handler is None:
        _error(f"unknown command {args.command!r}")
        return EXIT_USAGE
    from .report import ReportError

    try:
        return handler(args)
    except CommandError as exc:
        _fail(args, exc.message, exc.code)
        return exc.code
    except ReportError as exc:
        _fail(args, str(exc), EXIT_USAGE)
        return EXIT_USAGE
    except DatabaseFull as exc:
        _fail(args, str(exc), EXIT_WRITE)
        return EXIT_WRITE
    except StoreError as exc:
        _fail(args, str(exc), EXIT_UNUSABLE)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `agent-tracker export | head`
        return EXIT_OK
    except OSError as exc:
        return _os_error(args, exc)


def _os_error(args: argparse.Namespace, exc: OSError) -> int:
    """One sentence for an OSError no command explained; without a file name it is standard output
    that cannot be written (`status > /dev/full`, a full disk)."""
    if exc.filename is not None:
        _fail(args, f"{exc.strerror or exc}: {exc.filename}.", EXIT_FAILED)
        return EXIT_FAILED
    # What is still buffered for stdout would fail again when the interpreter flushes it at exit
    # (a second traceback): point the descriptor at /dev/null first.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real descriptor (tests capturing output): nothing is flushed at exit
    _error(f"Cannot write to standard output: {exc.strerror or exc}.")
    return EXIT_FAILED


def _resolved_argument(text: str) -> Path:
    """An absolute, resolved path from the command line; a symlink loop is a clear error."""
    try:
        return Path(text).expanduser().resolve()
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError for a loop, 3.13 OSError
        reason = getattr(exc, "strerror", None) or "it is a symbolic link loop"
        raise CommandError(f"Cannot use {text}: {reason}.", EXIT_FAILED) from None


def _fail(args: argparse.Namespace, message: str, code: int) -> None:
    _error(message)
    if getattr(args, "json", False):
        _print_json({"error": message, "exitCode": code})


# -- status ----------------------------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    config = command_config(args)
    with open_for_reading(config) as store:
        with store.read() as view:
            agents = {record.get("id", k): record for k, record in view.scan("agents")}
            recent: deque[dict[str, Any]] = deque(maxlen=5)
            if args.agent and args.agent in agents:
                for _, activity in view.scan("activities", key(args.agent, "")):
                    if activity.get("kind") in ("bug", "reinstate"):
                        recent.append(activity)
        if not args.agent:
            rows = [_agent_sheet(record, config) for _, record in sorted(agents.items())]
            if args.json:
                _print_json({"database": str(store.path), "agents": rows})
            else:
                _render_agents(rows, store.path)
            return EXIT_OK
        if args.agent not in agents:
            known = ", ".join(sorted(agents)) or "none yet"
            raise CommandError(f"No agent named {args.agent!r} in {store.path}. Known agents: {known}.")
        from .report import build_report

        report = build_report(store, agent=args.agent)
    sheet = _agent_sheet(agents[args.agent], config)
    if args.json:
        _print_json({"database": str(store.path), "agent": sheet,
                     "setups": [row.to_wire() for row in report.setups],
                     "recent": list(recent)})
        return EXIT_OK
    _render_agent(sheet, report, list(recent), store.path)
    return EXIT_OK


def _agent_sheet(record: dict[str, Any], config: BridgeConfig) -> dict[str, Any]:
    rules = config.scoring
    sp = record.get("skillPoints") or 0
    xp = record.get("experiencePoints") or 0
    return {
        "agentId": record.get("id"), "skillPoints": sp, "experiencePoints": xp,
        "nextLevelAt": rules.level_cost * sp if sp >= 1 else None,
        "communicationScore": record.get("communicationScore"),
        "communicationCap": rules.communication_cap_per_skill_point * max(sp, 0),
        "totalCommits": record.get("totalCommits", 0), "totalBugs": record.get("totalBugs", 0),
        "totalPushes": record.get("totalPushes", 0),
        "halted": bool(record.get("halted", sp <= 0)),
        "createdAt": record.get("createdAt"), "updatedAt": record.get("updatedAt"),
    }


def _render_agents(rows: list[dict[str, Any]], path: Path) -> None:
    from rich.table import Table

    console = _console()
    if not rows:
        console.print(f"No agents recorded yet in {path}.")
        return
    table = Table(title=f"Agents in {path}", title_justify="left")
    for name in ("Agent", "SP", "XP", "CS", "Commits", "Bugs", "Pushes", "State", "Last update"):
        table.add_column(name, justify="left" if name in ("Agent", "State", "Last update") else "right")
    for row in rows:
        table.add_row(str(row["agentId"]), f"{row['skillPoints']:g}", f"{row['experiencePoints']:g}",
                      f"{row['communicationScore']:g}", str(row["totalCommits"]), str(row["totalBugs"]),
                      str(row["totalPushes"]), "[red]halted[/red]" if row["halted"] else "active",
                      (row["updatedAt"] or "-")[:19].replace("T", " "))
    console.print(table)


def _render_agent(sheet: dict[str, Any], report: Any, recent: list[dict[str, Any]], path: Path) -> None:
    from rich.table import Table

    from .report import render_rich

    console = _console()
    state = "[red]HALTED[/red] (tools blocked; `agent-tracker reinstate " + str(sheet["agentId"]) + "`)" \
        if sheet["halted"] else "active"
    next_level = f" (next SP at {sheet['nextLevelAt']:g} XP)" if sheet["nextLevelAt"] else ""
    console.print(f"[bold]{sheet['agentId']}[/bold] in {path}: {state}")
    console.print(f"  SP {sheet['skillPoints']:g} · XP {sheet['experiencePoints']:g}{next_level} · "
                  f"CS {sheet['communicationScore']:g} of {sheet['communicationCap']:g} · "
                  f"{sheet['totalCommits']} commits · {sheet['totalBugs']} bugs · {sheet['totalPushes']} pushes")
    if report.setups:
        render_rich(report, console, recommendations=False)
    if recent:
        table = Table(title="Recent bugs and reinstatements", title_justify="left")
        for name in ("When", "Kind", "Details"):
            table.add_column(name)
        for event in recent:
            details = event.get("description") or event.get("reason") or event.get("commitHash") or ""
            table.add_row((event.get("createdAt") or "-")[:19].replace("T", " "), str(event.get("kind")), str(details))
        console.print(table)


# -- report ------------------------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report, render_rich

    config = command_config(args)
    with open_for_reading(config) as store:
        report = build_report(store, project=args.project, stack=args.stack, since=args.since,
                              min_sessions=args.min_sessions, parallel=True)
        chart = _chart(store, report, args.chart) if args.chart else None
    if args.json:
        _print_json({**report.to_wire(), "chart": str(chart) if chart else None})
        return EXIT_OK
    console = _console()
    render_rich(report, console)
    if chart:
        console.print(f"Chart: {chart}")
    return EXIT_OK


def _chart(store: Store, report: Any, target: str) -> Path:
    from .chart import ChartError, draw_chart

    try:
        return draw_chart(store, report, Path(target).expanduser())
    except ChartError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


# -- export ------------------------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportError, export_database

    config = command_config(args)
    with open_for_reading(config) as store:
        try:
            summary = export_database(store, args.format, args.output)
        except ExportError as exc:
            raise CommandError(str(exc), exc.code) from None
    if args.output:
        counts = ", ".join(f"{count} {table}" for table, count in summary.counts.items())
        print(f"Exported {counts} from {store.path} to {summary.target}", file=sys.stderr)
    return EXIT_OK


# -- replay ------------------------------------------------------------------------------------------------

def replay_files(store: Store, config: BridgeConfig, paths: list[Path]) -> dict[str, Any]:
    """Feed recordings into ``store`` in-process, one TrackingService per file (one bridge run).

    The ``in`` messages that are event methods are structured and handled exactly as the bridge
    does; ``initialize`` only sets the default project directory, ``flush`` flushes, and
    shutdown/exit/queries are skipped. Everything is flushed at the end of each file.
    """
    from .demo import read_recording
    from .messages import EVENT_METHODS, InvalidParams, structure_params
    from .tracking import EventRejected, TrackingService

    files = []
    flush_errors: list[str] = []
    for path in paths:
        service = TrackingService(store, config.scoring, journal_id=f"replay-{secrets.token_hex(6)}")
        events = rejected = skipped = 0
        problems: list[dict[str, Any]] = []
        for line, direction, message, problem in read_recording(path):
            if problem is not None:
                skipped += 1
                problems.append({"line": line, "message": problem})
                continue
            method = message.get("method") if isinstance(message, dict) else None
            if direction != "in" or not isinstance(method, str):
                skipped += 1  # responses and notifications the bridge sent
                continue
            params = message.get("params")
            if method == "initialize":
                project = (params or {}).get("project") if isinstance(params, dict) else None
                if isinstance(project, dict) and isinstance(project.get("directory"), str):
                    service.default_directory = project["directory"]
                skipped += 1
                continue
            if method == "flush":
                flush_errors.extend(service.flush().errors)
                continue
            if method not in EVENT_METHODS:
                skipped += 1  # shutdown, exit, agent.status, report, unknown methods
                continue
            try:
                service.handle(method, structure_params(method, params))
                events += 1
            except (InvalidParams, EventRejected) as exc:
                rejected += 1
                problems.append({"line": line, "message": f"{method}: {exc}"})
            if service.flush_requested:
                flush_errors.extend(service.flush().errors)
        flush_errors.extend(service.flush().errors)
        files.append({"file": str(path), "events": events, "rejected": rejected, "skipped": skipped,
                      "problems": problems})
    return {"database": str(store.path), "files": files, "events": sum(f["events"] for f in files),
            "rejected": sum(f["rejected"] for f in files), "flushErrors": flush_errors}


def cmd_replay(args: argparse.Namespace) -> int:
    config = command_config(args)
    paths = [Path(name).expanduser() for name in args.files]
    for path in paths:
        if not path.is_file():
            raise CommandError(f"No such recording: {path}", EXIT_FAILED)
    with open_for_writing(config) as store:
        result = replay_files(store, config, paths)
    if args.json:
        _print_json(result)
    else:
        console = _console()
        for item in result["files"]:
            console.print(f"{item['file']}: {item['events']} events replayed, {item['rejected']} rejected, "
                          f"{item['skipped']} lines skipped")
            for problem in item["problems"][:10]:
                console.print(f"  [yellow]line {problem['line']}[/yellow]: {problem['message']}")
        console.print(f"Replayed {result['events']} events into {result['database']}.")
    if result["flushErrors"]:
        for message in result["flushErrors"]:
            _error(message)
        return EXIT_WRITE
    return EXIT_OK


# -- demo --------------------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import DemoError, run_demo

    try:
        return run_demo(keep=args.keep, chart=args.chart, console=_console())
    except DemoError as exc:
        raise CommandError(str(exc), exc.code) from None


# -- reinstate ---------------------------------------------------------------------------------------------

def cmd_reinstate(args: argparse.Namespace) -> int:
    from .messages import structure_params
    from .tracking import TrackingService

    config = command_config(args)
    with open_for_writing(config, must_exist=True) as store:
        with store.read() as view:
            before = view.get("agents", args.agent)
            known = sorted(k for k, _ in view.scan("agents"))
        if before is None:
            raise CommandError(f"No agent named {args.agent!r} in {store.path}. Known agents: "
                               f"{', '.join(known) or 'none yet'}.")
        if not before.get("skillPoints", 1) <= 0 and not before.get("halted"):
            print(f"{args.agent} is not halted (SP {before.get('skillPoints'):g}); nothing to reinstate.")
            return EXIT_OK
        service = TrackingService(store, config.scoring, journal_id=f"cli-{secrets.token_hex(6)}")
        params = {"agentId": args.agent, **({"reason": args.reason} if args.reason else {})}
        service.handle("agent.reinstate", structure_params("agent.reinstate", params))
        result = service.flush()
        if result.errors:
            raise CommandError(result.errors[0], EXIT_WRITE)
        with store.read() as view:
            after = view.get("agents", args.agent) or {}
    print(f"{args.agent} reinstated in {store.path}: SP {before.get('skillPoints'):g} -> "
          f"{after.get('skillPoints'):g}, {'still halted' if after.get('halted') else 'active again'}"
          f"{' (reason: ' + args.reason + ')' if args.reason else ''}.")
    return EXIT_OK


# -- thin calls into modules written elsewhere --------------------------------------------------------------

def cmd_migrate(args: argparse.Namespace) -> int:
    from .migration import migrate_on_initialize, migrate_paths

    config = command_config(args)
    path = _database_path(config)
    sources = [_resolved_argument(p) for p in args.paths]
    results: list[dict[str, Any]] = []
    with _migration_progress(enabled=not args.json) as progress:
        store = Store.open(config)
        try:
            if not store.available and (store.foreign or _is_lmdbjs(path)):
                # The older plugin's database at the central path: moved aside, then imported.
                if args.dry_run:
                    with Store.open(BridgeConfig(database_path=":memory:")) as scratch:
                        results.append(migrate_paths(scratch, [path], dry_run=True, progress=progress).to_wire())
                else:
                    store, wire = migrate_on_initialize(store, config, None)
                    if wire:
                        results.append(wire)
            if sources:
                if not store.available:
                    raise _unusable(store)
                results.append(migrate_paths(store, sources, dry_run=args.dry_run, progress=progress).to_wire())
            elif not results:
                message = (f"The database at {path} is not from the older plugin; nothing to migrate there. "
                           f"Give project folders or lmdb-js database files: agent-tracker migrate ~/code/*")
                if args.json:
                    _print_json({"database": str(path), "sources": [], "message": message})
                else:
                    print(message)
                return EXIT_OK
        finally:
            store.close()
    errors = [error for wire in results for error in wire.get("errors", [])]
    if args.json:
        _print_json({"database": str(path), "results": results})
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
                                  console=_console(sys.stderr), transient=True)
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

    console = _console()
    title = "Migration (dry run: nothing written)" if dry_run else "Migration"
    table = Table(title=title, title_justify="left")
    for column in ("source", "layout", "agents", "commits", "grades", "retros", "activities", "projects",
                   "already there", "errors"):
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
                "agents", "commits", "communication", "retrospectives", "activities", "projects")),
                str(source.get("alreadyPresent", 0)), str(source.get("errorCount", 0)))
    console.print(table)
    for wire in results:
        console.print(wire.get("message", ""))
        for error in wire.get("errors", [])[:10]:
            console.print(f"  [yellow]{error}[/yellow]")


def cmd_install_plugin(args: argparse.Namespace) -> int:
    from .plugin_install import InstallError, install_plugin

    project = _resolved_argument(args.project) if args.project else None
    try:
        bridge_command = args.bridge_command.split() if args.bridge_command else None
        result = install_plugin(project, bridge_command=bridge_command, dry_run=args.dry_run)
    except InstallError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    print(getattr(result, "message", result))
    return EXIT_OK


def cmd_uninstall_plugin(args: argparse.Namespace) -> int:
    from .plugin_install import InstallError, uninstall_plugin

    project = _resolved_argument(args.project) if args.project else None
    try:
        result = uninstall_plugin(project)
    except InstallError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    print(getattr(result, "message", result))
    return EXIT_OK
