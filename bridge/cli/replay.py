"""`agent-tracker replay FILE...` and `agent-tracker demo`: recorded sessions into a database."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..wording import plural

from ..replay import replay_files
from .common import (
    ProgressBar,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WRITE,
    CommandError,
    command_config,
    make_console,
    open_for_writing,
    print_error,
    print_json,
)


def cmd_replay(args: argparse.Namespace) -> int:
    config = command_config(args)
    paths = [Path(name).expanduser() for name in args.files]
    for path in paths:
        if not path.is_file():
            raise CommandError(f"No such recording: {path}", EXIT_FAILED)
    with open_for_writing(config) as store, ProgressBar("replay", "files", enabled=not args.json and len(paths) > 1) as progress:
        result = replay_files(store, config, paths, progress)
    if args.json:
        print_json(result)
    else:
        from rich.text import Text

        from ..display import display_text

        console = make_console()
        # A line per file only where something was refused or unreadable (the rest is the total).
        for item in result["files"]:
            if item["problems"] or len(paths) == 1:
                console.print(Text(f"{display_text(str(item['file']))}: {item['events']:,} events replayed, {item['rejected']:,} rejected, "
                                   f"{item['skipped']:,} lines skipped"))
            for problem in item["problems"][:10]:
                console.print(Text.assemble("  ", (f"line {problem['line']}", "yellow"),
                                            f": {display_text(problem['message'])}"))
        console.print(Text(f"Replayed {result['events']:,} events from {plural(len(paths), 'file')} into "
                           f"{display_text(str(result['database']))}: {result['rejected']:,} rejected, "
                           f"{result['skipped']:,} lines skipped."))
    if result["flushErrors"]:
        for message in result["flushErrors"]:
            print_error(message)
        return EXIT_WRITE
    return EXIT_OK



# -- demo --------------------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import DemoError, run_demo

    try:
        if not args.json:
            return run_demo(keep=args.keep, chart=args.chart, console=make_console())
        import io

        summary: dict[str, Any] = {}
        code = run_demo(keep=args.keep, chart=args.chart, console=make_console(io.StringIO()), summary=summary)
        print_json(summary)
        return code
    except DemoError as exc:
        raise CommandError(str(exc), exc.code) from None
