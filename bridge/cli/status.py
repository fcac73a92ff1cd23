"""`agent-tracker status [AGENT]`: the agents' sheets, or one agent with its setups and recent events."""

from __future__ import annotations

import argparse
from collections import deque
from pathlib import Path
from typing import Any

from ..config import BridgeConfig
from ..store import key
from .common import EXIT_OK, CommandError, make_console, print_json, command_config, open_for_reading



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
                print_json({"database": str(store.path), "agents": rows})
            else:
                _render_agents(rows, store.path)
            return EXIT_OK
        if args.agent not in agents:
            known = ", ".join(sorted(agents)) or "none yet"
            raise CommandError(f"No agent named {args.agent!r} in {store.path}. Known agents: {known}.")
        from ..report.build import build_report

        report = build_report(store, agent=args.agent)
    sheet = _agent_sheet(agents[args.agent], config)
    if args.json:
        print_json({"database": str(store.path), "agent": sheet,
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

    console = make_console()
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

    from ..report.render import render_rich

    console = make_console()
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
