"""`agent-tracker recommend [DIR]`: which agent and model to configure for a project, and why."""

from __future__ import annotations

import argparse

from ..display import display_name
from .common import (EXIT_FAILED, EXIT_OK, CommandError, command_config, folds_prose, make_console,
                     open_for_reading, print_json, resolved_argument)


def cmd_recommend(args: argparse.Namespace) -> int:
    from ..report.recommend import CONFIG_HEADING, recommend_for

    directory = resolved_argument(args.directory)
    if not directory.is_dir():
        raise CommandError(f"No folder at {display_name(directory, 400)}: give the project's folder "
                           f"(default: the current one).", EXIT_FAILED)
    config = command_config(args)
    with open_for_reading(config) as store:
        advice = recommend_for(store, directory, min_sessions=args.min_sessions, rules=config.scoring,
                               since=args.since, until=args.until)
    if args.json:
        print_json(advice.to_wire())
        return EXIT_OK
    explore = args.explore
    lines = advice.explore_lines() if explore else advice.lines()
    snippet = advice.snippet(advice.explore) if explore and advice.explore is not None else advice.snippet()
    from rich.syntax import Syntax
    from rich.text import Text

    console = make_console()
    for line in lines:  # folded between words at the terminal's width (80 columns stay readable)
        console.print(Text(line), soft_wrap=not folds_prose(console))
    if snippet is not None:
        console.print(Text("\n" + CONFIG_HEADING))
        # Plain text, no box: copied as it is shown.
        console.print(Syntax(snippet, "json", theme="ansi_dark", background_color="default"))
    return EXIT_OK
