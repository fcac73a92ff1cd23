"""`agent-tracker configs [AGENT]`: an agent's configuration versions, newest first, and what changed."""

from __future__ import annotations

import argparse

from ..wording import plural
from .common import EXIT_OK, CommandError, command_config, make_console, open_for_reading, print_json


def cmd_configs(args: argparse.Namespace) -> int:
    from rich.text import Text

    from ..report.versions import agent_versions

    config = command_config(args)
    with open_for_reading(config) as store:
        found = agent_versions(store, args.agent, rules=config.scoring, min_sessions=args.min_sessions)
        path = store.path
    if args.agent and not found.get(args.agent):
        raise CommandError(f"No configuration or session of agent {args.agent!r} in {path}.")
    if args.json:
        print_json({"database": str(path),
                    "agents": {name: [version.to_wire() for version in versions] for name, versions in found.items()}})
        return EXIT_OK
    console = make_console()
    if not found:
        console.print(Text(f"No sessions recorded yet in {path}."))
        return EXIT_OK
    for name, versions in found.items():
        console.print(Text(f"{name}: {plural(len(versions), 'configuration version')} (newest first)", style="bold"))
        for version in versions:
            wire = version.to_wire()
            seen = ""
            if wire["firstSeenAt"]:
                seen = (f"  first seen {_when(wire['firstSeenAt'])}, last {_when(wire['lastSeenAt'])}, "
                        f"{plural(len(wire['projects']), 'project')}")
            console.print(Text(f"  {wire['label']}{seen}"))
            best = version.best
            if best is None:
                console.print(Text("    no session of its own yet (it ran only as a subagent, or outside the filters)"))
            else:
                standing = f"rank {best.rank}" if best.ranked else (best.note or "not ranked")
                chance = "" if best.probability_best is None else f", P(best) {best.probability_best:.2f}"
                console.print(Text(f"    {plural(version.sessions, 'session')}; best: score {best.score:.1f}{chance} "
                                   f"with {best.model} ({standing})"))
            console.print(Text(f"    {'changed: ' if version.record and version.change != 'first version' else ''}"
                               f"{version.change}"))
    return EXIT_OK


def _when(stamp: object) -> str:
    return str(stamp or "-")[:16].replace("T", " ")
