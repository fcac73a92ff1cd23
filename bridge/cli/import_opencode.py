"""`agent-tracker import-opencode [--db PATH] [--since DATE] [--dry-run]`: past OpenCode sessions in.

Reads OpenCode's own history database read-only (bridge.opencode.history) and feeds every past
session through the live tracking rules (bridge.history_import), with a progress bar and a
summary table as `migrate` has. ``--dry-run`` imports into a throw-away copy of the database
and reports exactly what a real run would add.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from ..wording import plural
from .common import (
    ProgressBar,
    EXIT_FAILED,
    EXIT_NO_DATABASE,
    EXIT_OK,
    EXIT_WRITE,
    CommandError,
    command_config,
    database_path,
    make_console,
    open_for_writing,
    print_error,
    print_json,
)


def cmd_import_opencode(args: argparse.Namespace) -> int:
    from ..history_import import import_history, scratch_copy
    from ..opencode.history import OpenCodeHistory
    from ..opencode.location import NoOpenCodeDatabase, OpenCodeHistoryError

    config = command_config(args)
    database_path(config)  # ':memory:' is refused here, before OpenCode's database is opened
    since = _since(args.since)
    try:
        history = OpenCodeHistory.open(args.db)
    except NoOpenCodeDatabase as exc:  # none there: the same exit code as a missing agent-tracker database
        raise CommandError(str(exc), EXIT_NO_DATABASE) from None
    except OpenCodeHistoryError as exc:  # not OpenCode's, or a layout we cannot read
        raise CommandError(str(exc), EXIT_FAILED) from None
    with history:
        with scratch_copy(config) if args.dry_run else open_for_writing(config) as store, \
                ProgressBar("OpenCode history", "parts", enabled=not args.json) as progress:
            try:
                result = import_history(store, history, config.scoring, dry_run=args.dry_run, since=since,
                                        progress=progress, waiting=lambda: print_error(
                                            f"another import-opencode is writing to {store.path}: waiting for it "
                                            f"to finish (then only what it did not bring in is added)."))
            except OpenCodeHistoryError as exc:  # the file went bad while it was read
                kept = "" if args.dry_run else " The sessions imported before that are kept; run it again to finish."
                raise CommandError(f"{exc}{kept}", EXIT_FAILED) from None
    result.database = str(database_path(config))  # a dry run worked on a copy: name the real one
    if args.json:
        print_json(result.to_wire())
    else:
        _print_summary(result.to_wire())
    for message in result.flush_errors:
        print_error(message)
    if result.flush_errors:
        return EXIT_WRITE
    # Rows OpenCode's database could not give, or events the rules refused: listed above, and
    # the import is not complete (as `migrate` with errors).
    return EXIT_FAILED if result.problems else EXIT_OK


def _since(text: str | None) -> datetime | None:
    """--since as the report reads it (YYYY-MM-DD, an ISO time, Nd), as a UTC datetime."""
    from ..report.filters import normalise_since

    normalised = normalise_since(text)
    if normalised is None:
        return None
    moment = datetime.fromisoformat(normalised.replace("Z", "+00:00"))
    return moment  # a date alone is naive: read as midnight UTC


def _print_summary(wire: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..display import display_text

    from ..report.rank import money
    from ..report.render import tokens_text

    console = make_console()
    dry = wire["dryRun"]
    # One source: a row per figure (what was read, what is new, what counted before) fits any width.
    table = Table(title="Import of OpenCode's history" + (" (dry run: nothing written)" if dry else ""),
                  title_justify="left")
    for column in ("", "read", "new" if not dry else "would be new", "counted before"):
        table.add_column(column, justify="right" if column else "left")
    sessions, calls, usage = wire["sessions"], wire["toolCalls"], wire["usage"]
    counted_before = calls["alreadyCounted"] + calls["countedBeforeCallIds"]
    table.add_row("sessions", f"{sessions['read']:,}", f"{sessions['new']:,}", f"{sessions['alreadyTracked']:,}")
    table.add_row("tool calls", f"{calls['counted'] + counted_before:,}", f"{calls['counted']:,}", f"{counted_before:,}")
    table.add_row("commits, pushes", "", f"{wire['commits']:,}, {wire['pushes']:,}", "")
    table.add_row("XP", "", f"{wire['xp']:,.0f}" if float(wire["xp"]).is_integer() else f"{wire['xp']:,.1f}", "")
    new = usage["new"]
    table.add_row("model calls", f"{usage['messages']:,}", f"{new['messages']:,}", f"{usage['messages'] - new['messages']:,}")
    table.add_row("cost $, tokens", f"{money(usage['cost'])}, {tokens_text(usage['tokens'])}",
                  f"{money(new['cost'])}, {tokens_text(new['tokens'])}", "")
    console.print(table)
    verb = "would bring in" if dry else "brought in"
    since = f" created since {wire['since']}" if wire["since"] else ""
    console.print(f"{plural(sessions['read'], 'session')}{since} read from {wire['source']} ({sessions['children']} "
                  f"of them subagents' sessions): this import {verb} {plural(sessions['new'], 'new session')} and "
                  f"the usage of {plural(new['messages'], 'new model call')} (a call recorded before is replaced, "
                  f"never added) into {wire['database']}.", highlight=False)
    if sessions["alreadyTracked"]:
        tracked = sessions["alreadyTracked"]
        console.print(f"{plural(tracked, 'session')} {'was' if tracked == 1 else 'were'} already tracked: nothing "
                      f"of theirs is counted twice (same session, message and call ids); what they lacked {'would be' if dry else 'was'} added.",
                      highlight=False)
    if calls["countedBeforeCallIds"]:
        console.print(f"{plural(calls['countedBeforeCallIds'], 'tool call')} of sessions tracked by an older "
                      f"agent-tracker (which kept no call ids) {'was' if calls['countedBeforeCallIds'] == 1 else 'were'} "
                      f"left as that bridge counted them.", highlight=False)
    if wire["skippedRows"] or wire["rejected"]:
        console.print(f"Skipped: {plural(wire['skippedRows'], 'row')} of OpenCode's database that could not be "
                      f"read, {plural(wire['rejected'], 'event')} the tracking rules refused; the rest was "
                      f"imported:", highlight=False)
    for problem in wire["problems"][:10]:
        console.print(Text.assemble("  ", (display_text(problem), "yellow")), highlight=False)
    if len(wire["problems"]) > 10:
        console.print(f"  … and {len(wire['problems']) - 10} more (--json lists up to 100).", highlight=False)
