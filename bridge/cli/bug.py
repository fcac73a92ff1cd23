"""`agent-tracker bug AGENT [--commit HASH] [--project DIR] [--reason TEXT]`: report a bug by hand.

Written through the tracking service, as `reinstate` is, so the rules are the bridge's: SP -1,
`totalBugs` +1, a `bug` activity; at SP 0 the agent is halted and a running OpenCode blocks its
next tool call (the plugin asks the bridge, which reads the database).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..display import display_name, display_text
from ..store import Store
from .common import (EXIT_OK, CommandError, command_config, open_for_writing, print_json, resolved_argument,
                     stored_agent, write_event)


def cmd_bug(args: argparse.Namespace) -> int:
    config = command_config(args)
    with open_for_writing(config, must_exist=True) as store:
        before = stored_agent(store, args.agent)
        params: dict[str, Any] = {"agentId": args.agent}
        if args.commit:
            project, commit = _find_commit(store, args.commit, args.project)
            if commit.get("agentId") and commit["agentId"] != args.agent:
                maker = display_name(commit["agentId"])
                raise CommandError(f"Commit {display_name(commit['hash'][:12])} in {display_name(project, 400)} was "
                                   f"made by {maker}, not {display_name(args.agent)}: report the bug for {maker}.")
            params.update({"commitHash": commit["hash"], "projectPath": project})
        elif args.project:
            params["projectPath"] = str(resolved_argument(args.project))
        if args.reason:
            params["description"] = args.reason
        status = write_event(store, config, "bug.reported", params)
    sp_before = before.get("skillPoints")
    if args.json:
        print_json({"database": str(store.path), "agent": status,
                    "bug": {k: v for k, v in params.items() if k != "agentId"}})
        return EXIT_OK
    name = display_name(args.agent)
    state = (f"halted: its tools are blocked until `agent-tracker reinstate {name}`" if status["halted"]
             else "still active")
    commit_text = f" for commit {display_name(params['commitHash'][:12])}" if "commitHash" in params else ""
    reason = f" (reason: {display_text(args.reason)})" if args.reason else ""
    print(f"Bug recorded for {name}{commit_text} in {display_name(store.path, 400)}: SP {_number(sp_before)} -> "
          f"{status['skillPoints']:g}, {state}{reason}.")
    return EXIT_OK


def _find_commit(store: Store, commit_hash: str, project: str | None) -> tuple[str, dict[str, Any]]:
    """The recorded commit a hash (short or full) names, in --project or in any project."""
    from ..tracking.git_commands import hashes_match

    wanted = commit_hash.strip().lower()
    if len(wanted) < 4 or any(c not in "0123456789abcdef" for c in wanted):
        raise CommandError(f"--commit {commit_hash!r} is not a commit hash (4 to 40 hex digits).", 2)
    folder = str(resolved_argument(project)) if project else None
    found: list[tuple[str, dict[str, Any]]] = []
    with store.read() as view:
        for _, record in view.scan("commits"):
            path, stored = record.get("projectPath"), str(record.get("hash") or "")
            if isinstance(path, str) and (folder is None or path == folder) and hashes_match(stored, wanted):
                found.append((path, record))
    if not found:
        where = f" in {folder}" if folder else ""
        raise CommandError(f"No commit {wanted} was recorded{where}: bugs name commits the tracker recorded "
                           f"(see `agent-tracker export`).")
    projects = sorted({path for path, _ in found})
    if len(found) > 1:
        raise CommandError(f"Commit {wanted} matches {len(found)} recorded commits (in {', '.join(projects)}): "
                           f"give more of the hash, or --project DIR.")
    return found[0]


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"
