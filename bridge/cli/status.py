"""`agent-tracker status [AGENT]`: the agents' sheets, or one agent with its setups and recent events:
bugs and reinstatements, its latest other activities (a summary per session that ended) and its
latest retrospectives."""

from __future__ import annotations

import argparse
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

from ..store import key
from ..tracking.scoring import AgentState, agent_sheet_detail
from ..display import display_name, display_text
from .common import (
    EXIT_OK,
    command_config,
    make_console,
    open_for_reading,
    print_json,
    unknown_agent,
)

# -- status ----------------------------------------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    config = command_config(args)
    with open_for_reading(config) as store:
        with store.read() as view:
            agents = {record.get("id", k): record for k, record in view.scan("agents")}
            recent: deque[dict[str, Any]] = deque(maxlen=5)
            activities: list[dict[str, Any]] = []
            retrospectives: list[dict[str, Any]] = []
            if args.agent and args.agent in agents:
                for _, activity in view.scan("activities", key(args.agent, "")):
                    if activity.get("kind") in ("bug", "reinstate"):
                        recent.append(activity)
                activities = _latest(view.scan_backwards("activities", key(args.agent, "")), LATEST_ACTIVITIES,
                                     lambda record: record.get("kind") not in ("bug", "reinstate"))
                retrospectives = _latest(view.scan_backwards("retrospectives", key(args.agent, "")),
                                         LATEST_RETROSPECTIVES)
        if not args.agent:
            rows = [agent_sheet_detail(AgentState.from_record(record), config.scoring)
                    for _, record in sorted(agents.items())]
            if args.json:
                print_json({"database": str(store.path), "agents": rows})
            else:
                _render_agents(rows, store.path)
            return EXIT_OK
        from ..report.build import build_report

        report = build_report(store, agent=args.agent, since=args.since, until=args.until)
        if args.agent not in agents and not report.setups:
            raise unknown_agent(args.agent, agents, store.path)
    # An agent the report knows (its sessions) may have no sheet yet: a sheet is written when it
    # first earns or loses points, which a session whose every tool call failed never does.
    recorded = args.agent in agents
    state = AgentState.from_record(agents[args.agent]) if recorded else AgentState.new(args.agent, config.scoring)
    sheet = agent_sheet_detail(state, config.scoring)
    if args.json:
        print_json({"database": str(store.path), "agent": sheet, "sheetRecorded": recorded,
                     "setups": [row.to_wire() for row in report.setups],
                     "recent": list(recent), "activities": activities, "retrospectives": retrospectives})
        return EXIT_OK
    _render_agent(sheet, report, list(recent), store.path)
    if not recorded:
        make_console().print(f"{args.agent} has no sheet of its own yet: it has earned no XP (a sheet starts with "
                             f"its first successful tool call, commit or grade); its setups are above.",
                             markup=False)
    _render_latest(activities, retrospectives)
    return EXIT_OK


LATEST_ACTIVITIES, LATEST_RETROSPECTIVES = 5, 3


def _latest(records: Iterator[tuple[str, dict[str, Any]]], count: int,
            wanted: Callable[[dict[str, Any]], bool] = lambda record: True) -> list[dict[str, Any]]:
    """The first ``count`` wanted records of a newest-first scan, oldest first."""
    found: list[dict[str, Any]] = []
    for _, record in records:
        if wanted(record):
            found.append(record)
            if len(found) == count:
                break
    return found[::-1]


def _when(record: dict[str, Any]) -> str:
    return display_name(str(record.get("createdAt") or "-")[:19].replace("T", " "))


def _render_latest(activities: list[dict[str, Any]], retrospectives: list[dict[str, Any]]) -> None:
    from rich.table import Table

    console = make_console()
    if activities:
        table = Table(title="Latest activity (a summary per session that ended)", title_justify="left")
        for name in ("When", "Kind", "Session", "Details"):
            table.add_column(name)
        for event in activities:
            table.add_row(_when(event), display_name(event.get("kind")), display_name(event.get("sessionID") or "-"),
                          display_text(event.get("description") or ""))
        console.print(table)
    if retrospectives:
        table = Table(title="Latest retrospectives", title_justify="left")
        for name in ("When", "By", "Commit", "Summary"):
            table.add_column(name)
        for retro in retrospectives:
            parts = [display_text(retro.get("summary") or "")]
            for label, field in (("went well", "wentWell"), ("to improve", "toImprove"), ("lessons", "lessons")):
                if retro.get(field):
                    items = retro[field] if isinstance(retro[field], list) else [retro[field]]
                    parts.append(f"{label}: " + "; ".join(map(display_text, items)))
            table.add_row(_when(retro), display_name(retro.get("author") or "-"),
                          display_name(str(retro.get("commitHash") or "-")[:12]),
                          "\n".join(part for part in parts if part))
        console.print(table)


def _render_agents(rows: list[dict[str, Any]], path: Path) -> None:
    from ..report.render import agents_table

    console = make_console()
    if not rows:
        console.print(f"No agents recorded yet in {display_name(path, 400)}.")
        return
    console.print(agents_table(rows, f"Agents in {path}"))


def _render_agent(sheet: dict[str, Any], report: Any, recent: list[dict[str, Any]], path: Path) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..report.render import render_rich
    from ..wording import plural

    console = make_console()
    name = display_name(sheet["agentId"])
    state = Text.assemble(("HALTED", "red"), f" (tools blocked; `agent-tracker reinstate {name}`)") \
        if sheet["halted"] else Text("active")
    next_level = f" (next SP at {sheet['nextLevelAt']:g} XP)" if sheet["nextLevelAt"] else ""
    console.print(Text.assemble((name, "bold"), f" in {display_name(path, 400)}: ", state))
    console.print(f"  SP {sheet['skillPoints']:g} · XP {sheet['experiencePoints']:g}{next_level} · "
                  f"CS {sheet['communicationScore']:g} of {sheet['communicationCap']:g} · "
                  f"{plural(sheet['totalCommits'], 'commit')} · {plural(sheet['totalBugs'], 'bug')} · "
                  f"{plural(sheet['totalPushes'], 'push', 'pushes')}")
    if report.setups:
        render_rich(report, console, recommendations=False, agents=False)
    if recent:
        table = Table(title="Recent bugs and reinstatements", title_justify="left")
        for name in ("When", "Kind", "Details"):
            table.add_column(name)
        for event in recent:
            details = event.get("description") or event.get("reason") or event.get("commitHash") or ""
            table.add_row(_when(event), display_name(event.get("kind")), display_text(details))
        console.print(table)
