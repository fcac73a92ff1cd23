"""`agent-tracker recommend [DIR]`: which agent and model to configure for a project, and why."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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
    written = _write(advice, directory, args.as_file) if args.write else None
    if args.json:
        wire = advice.to_wire()  # what the bridge's `recommend` answers too; the options add to it
        if args.as_file:
            wire["agentFile"] = advice.agent_file()
        if written is not None:
            wire["written"] = {"path": str(written.path), "backup": str(written.backup) if written.backup else None,
                               "changed": written.changed}
        print_json(wire)
        return EXIT_OK
    explore = args.explore
    lines = advice.explore_lines() if explore else advice.lines()
    snippet = advice.snippet(advice.explore) if explore and advice.explore is not None else advice.snippet()
    from rich.syntax import Syntax
    from rich.text import Text

    console = make_console()
    for line in lines:  # folded between words at the terminal's width (80 columns stay readable)
        console.print(Text(line), soft_wrap=not folds_prose(console))
    leader = advice.explore if explore and advice.explore is not None else advice.best
    if args.as_file and advice.best is not None and not explore:
        console.print(Text(f"\nOpenCode agent file (.opencode/agent/{display_name(advice.best.agent)}.md in the project):"))
        console.print(Text(advice.agent_file() or ""), soft_wrap=True)
    elif snippet is not None:
        console.print(Text("\n" + CONFIG_HEADING))
        # Plain text, no box: copied as it is shown.
        console.print(Syntax(snippet, "json", theme="ansi_dark", background_color="default"))
    if written is not None:
        backup = f" (the previous file is kept as {written.backup})" if written.backup else ""
        console.print(Text(f"Wrote agent {display_name(leader.agent) if leader else ''} to {written.path}{backup}."
                           if written.changed else
                           f"{written.path} already holds this agent definition; nothing was changed."))
    return EXIT_OK


def _write(advice: Any, directory: Path, as_file: bool) -> Any:
    """`--write`: the recommended agent into the project's OpenCode configuration."""
    from ..opencode.agent_config import AgentConfigError, write_agent

    best = advice.best
    config = advice.config()
    if best is None or config is None:
        raise CommandError("Nothing to write: there is no recommendation yet (see the reasons with "
                           "agent-tracker recommend).", EXIT_FAILED)
    try:
        return write_agent(directory, best.agent, config["agent"][best.agent],
                           markdown=advice.agent_file() if as_file else None)
    except AgentConfigError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
