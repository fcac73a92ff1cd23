"""`agent-tracker export --format parquet`, `import-export` and `team-report` (bridge.team, the optional extra)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    command_config,
    make_console,
    open_for_reading,
    open_for_writing,
    print_json,
)


def _missing_extra(exc: Exception) -> CommandError:
    return CommandError(str(exc), EXIT_USAGE)


def cmd_export_parquet(args: argparse.Namespace) -> int:
    from ..report.filters import normalise_since
    from ..report.model import ReportError
    from ..team.extra import ExtraMissing, require
    from ..team.parquet_out import ParquetExportError, database_id, ensure_database_id, export_parquet

    target = args.folder or args.output
    if not target or target == "-":
        raise CommandError("--format parquet writes a folder: agent-tracker export --format parquet DIR.", EXIT_USAGE)
    if args.person is not None and not args.person.strip():
        raise CommandError("--person needs a name (or leave it out for the database's pseudonym).", EXIT_USAGE)
    try:
        require("pyarrow")
        since = normalise_since(args.since)
    except ExtraMissing as exc:
        raise _missing_extra(exc) from None
    except ReportError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    config = command_config(args)
    store = open_for_reading(config)
    if database_id(store) is None:  # its first team export: give it its stable id
        store.close()
        with open_for_writing(config, must_exist=True) as writable:
            ensure_database_id(writable)
        store = open_for_reading(config)
    with store:
        try:
            summary = export_parquet(store, Path(target).expanduser(), person=args.person, since=since,
                                     include_prompts=args.include_prompts)
        except ParquetExportError as exc:
            raise CommandError(str(exc), exc.code) from None
    counts = ", ".join(f"{count} {table}" for table, count in summary.counts.items())
    print(f"Exported {counts} from {store.path} to {summary.folder} as {summary.person} "
          f"({len(summary.files)} files)", file=sys.stderr)
    return EXIT_OK


def cmd_team_report(args: argparse.Namespace) -> int:
    from ..team.engine import TeamDataError
    from ..team.extra import ExtraMissing
    from ..team.render import render_team, write_team_html
    from ..team.report import build_team_report

    if args.min_sessions is not None and args.min_sessions < 1:
        raise CommandError(f"--min-sessions must be at least 1; got {args.min_sessions}.", EXIT_USAGE)
    try:
        report = build_team_report(list(args.paths), min_sessions=args.min_sessions)
    except ExtraMissing as exc:
        raise _missing_extra(exc) from None
    except TeamDataError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    page = None
    if args.html:
        from ..output_files import UnsafeOutput, refuse_database_files

        try:
            refuse_database_files(Path(args.html).expanduser(), None, what="the HTML page")
        except UnsafeOutput as exc:
            raise CommandError(str(exc), EXIT_USAGE) from None
        try:
            page = write_team_html(report, Path(args.html).expanduser())
        except OSError as exc:
            raise CommandError(f"Cannot write {args.html}: {exc.strerror or exc}.", EXIT_FAILED) from None
    if args.json:
        print_json({**report.to_wire(), "html": str(page) if page else None})
        return EXIT_OK
    console = make_console()
    render_team(report, console)
    if page:
        console.print(f"HTML report: {page}")
    return EXIT_OK


def cmd_import_export(args: argparse.Namespace) -> int:
    from ..team.extra import ExtraMissing
    from ..team.importer import ImportRefused, import_export, read_export

    source = Path(args.path).expanduser()
    try:
        export = read_export(source, person=args.person)
    except ExtraMissing as exc:
        raise _missing_extra(exc) from None
    except ImportRefused as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    if args.person and not export.sessions and not export.commits:
        raise CommandError(f"No rows of {args.person!r} in {source}.", EXIT_FAILED)
    config = command_config(args)
    if args.dry_run:
        with open_for_reading(config) as store:
            result = import_export(store, export, dry_run=True)
    else:
        with open_for_writing(config) as store:
            result = import_export(store, export)
    if args.json:
        print_json(result.to_wire())
    else:
        print(result.sentence())
    return EXIT_OK
