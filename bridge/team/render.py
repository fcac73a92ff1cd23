"""The team report in a terminal (rich tables) and as one self-contained HTML page.

Every name and path in it is data: rich prints it as plain Text (no markup), the page escapes it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..output_files import replace_atomically
from ..report.model import SetupRow, fmt
from ..report.score import FORMULA
from .ranking import Comparison
from .report import TeamReport, setup_key


def _delta(comparison: Comparison | None) -> str:
    if comparison is None or comparison.delta is None:
        return "-"
    return f"{comparison.delta:+.1f} ({comparison.persons})"


def _cells(report: TeamReport, row: SetupRow) -> list[str]:
    key = setup_key(row)
    team_rank = report.team_ranks.get(key)
    cells = [str(team_rank) if team_rank else "-", str(row.rank) if row.rank else "-", row.stack, row.agent,
             row.model, str(sum(any(setup_key(r) == key for r in rows) for rows in report.persons.values())),
             str(row.sessions), str(row.commits), f"{fmt(row.mean_user_grade)} ({row.user_grades})",
             f"{row.score:.1f}" + ("" if row.ranked else "*"), _delta(report.comparisons.get(key))]
    if report.probability_best is not None:
        found = report.probability_best.get(key)
        cells.append("-" if found is None else f"{100 * found:.0f}%")
    return cells


HEADERS = ["Team", "#", "Stack", "Agent", "Model", "People", "Sessions", "Commits", "User grade", "Score",
           "Within person"]


def render_team(report: TeamReport, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    counts = report.counts
    console.print(Text(f"Team setups ({counts['persons']} people, {counts['sessions']} session rows, "
                       f"{counts['commits']} commits, {counts['grades']} grades; from {', '.join(report.paths)})"))
    headers = HEADERS + (["P(best)"] if report.probability_best is not None else [])
    table = Table(box=None, header_style="bold")
    for header in headers:
        table.add_column(header, justify="left" if header in ("Stack", "Agent", "Model") else "right")
    for row in report.rows:
        table.add_row(*(Text(cell) for cell in _cells(report, row)))
    console.print(table)
    console.print(Text(f"{FORMULA}. #: the rank on everyone's numbers, as one report over every export; Team: "
                       f"the rank by Within person, the score above the same people's other setups of the stack "
                       f"(how many people compared it); * = not ranked (fewer than {report.min_sessions} "
                       f"sessions, or agent/model unknown)."))
    people = Table(title="Per person", box=None, header_style="bold")
    for header in ("Person", "Stack", "Agent", "Model", "Sessions", "Score", "#"):
        people.add_column(header, justify="left" if header in ("Person", "Stack", "Agent", "Model") else "right")
    for person, rows in report.persons.items():
        for row in rows:
            people.add_row(*(Text(cell) for cell in (person, row.stack, row.agent, row.model, str(row.sessions),
                                                     f"{row.score:.1f}", str(row.rank or "-"))))
    console.print(people)
    stacks = Table(title="Per stack", box=None, header_style="bold")
    for header in ("Stack", "People", "Setups", "Sessions", "Commits", "Best (everyone)", "Best (within persons)"):
        stacks.add_column(header, justify="left" if header.startswith(("Stack", "Best")) else "right")
    for entry in report.stacks():
        stacks.add_row(*(Text(str(cell if cell is not None else "-")) for cell in (
            entry["stack"], entry["persons"], entry["setups"], entry["sessions"], entry["commits"], entry["best"],
            entry["teamBest"])))
    console.print(stacks)


def write_team_html(report: TeamReport, target: Path) -> Path:
    """One page, no script or external resource; every value escaped."""
    def table(headers: list[str], rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    headers = HEADERS + (["P(best)"] if report.probability_best is not None else [])
    people = [[person, row.stack, row.agent, row.model, str(row.sessions), f"{row.score:.1f}", str(row.rank or "-")]
              for person, rows in report.persons.items() for row in rows]
    stacks = [[str(entry[name] if entry[name] is not None else "-") for name in
               ("stack", "persons", "setups", "sessions", "commits", "best", "teamBest")] for entry in report.stacks()]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>agent-tracker team report</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left}</style></head><body>"
        f"<h1>Team setups</h1><p>{html.escape(', '.join(report.paths))} &middot; {report.counts['persons']} people "
        f"&middot; generated {html.escape(report.generated_at)}</p>"
        + table(headers, [_cells(report, row) for row in report.rows])
        + f"<p>{html.escape(FORMULA)}</p><h2>Per person</h2>"
        + table(["Person", "Stack", "Agent", "Model", "Sessions", "Score", "#"], people)
        + "<h2>Per stack</h2>"
        + table(["Stack", "People", "Setups", "Sessions", "Commits", "Best (everyone)", "Best (within persons)"], stacks)
        + "</body></html>\n")
    with replace_atomically(target) as handle:
        handle.write(page)
    return target
