"""`agent-tracker recommend [DIR]`: which agent and model to configure for a project, and why."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import (EXIT_FAILED, EXIT_OK, CommandError, command_config, folds_prose, make_console,
                     open_for_reading, print_json)


def cmd_recommend(args: argparse.Namespace) -> int:
    from ..report.recommend import recommend_for

    directory = Path(args.directory).expanduser().resolve()
    if not directory.is_dir():
        raise CommandError(f"No folder at {directory}: give the project's folder (default: the current one).",
                           EXIT_FAILED)
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
    from rich.syntax import Syntax
    from rich.text import Text

    console = make_console()
    for line in advice.lines():  # folded between words at the terminal's width (80 columns stay readable)
        console.print(Text(line), soft_wrap=not folds_prose(console))
    best = advice.best
    if args.as_file and best is not None:
        console.print(Text(f"\nOpenCode agent file (.opencode/agent/{best.agent}.md in the project):"))
        console.print(Text(advice.agent_file() or ""), soft_wrap=True)
    else:
        snippet = advice.snippet()
        if snippet is not None:
            console.print(Text("\nOpenCode configuration (opencode.json in the project, or your global one):"))
            # Plain text, no box: copied as it is shown.
            console.print(Syntax(snippet, "json", theme="ansi_dark", background_color="default"))
    if written is not None:
        backup = f" (the previous file is kept as {written.backup})" if written.backup else ""
        console.print(Text(f"Wrote agent {best.agent if best else ''} to {written.path}{backup}." if written.changed
                           else f"{written.path} already holds this agent definition; nothing was changed."))
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
