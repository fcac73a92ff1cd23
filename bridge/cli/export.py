"""`agent-tracker export`: every table for spreadsheets, DuckDB or pandas."""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_OK, EXIT_USAGE, CommandError, command_config, open_for_reading

# -- export ------------------------------------------------------------------------------------------------

def cmd_export(args: argparse.Namespace) -> int:
    from ..report.export import ExportError, export_database

    if args.format == "parquet":
        from .team import cmd_export_parquet
        return cmd_export_parquet(args)
    if args.json and args.format not in (None, "json"):
        raise CommandError(f"--json is --format json; it cannot be combined with --format {args.format}.", EXIT_USAGE)
    if args.folder or args.person:
        raise CommandError("DIR and --person are for --format parquet.", EXIT_USAGE)
    config = command_config(args)
    with open_for_reading(config) as store:
        try:
            summary = export_database(store, args.format or "json", args.output, since=args.since, until=args.until,
                                      include_prompts=args.include_prompts)
        except ExportError as exc:
            raise CommandError(str(exc), exc.code) from None
    if args.output:
        counts = ", ".join(f"{count} {table}" for table, count in summary.counts.items())
        print(f"Exported {counts} from {store.path} to {summary.target}", file=sys.stderr)
    return EXIT_OK
