"""The usage views on screen: one row per period (or session), ccusage's columns plus commits,
grades and bugs, fitted to the terminal in priority order; ``--breakdown`` adds a row per model."""

from __future__ import annotations

import os
from typing import Any, Callable

from rich.text import Text

from .rank import money
from .spending import Spend, UsageView


def count(value: int) -> str:
    return f"{value:,}"


# (key, header, cell): most telling first. The first column (the period) is always shown.
COLUMNS: list[tuple[str, str, Callable[[Spend], str]]] = [
    ("cost", "Cost ($)", lambda s: money(s.cost)),
    ("totalTokens", "Total tokens", lambda s: count(s.total_tokens)),
    ("sessions", "Sessions", lambda s: count(len(s.sessions))),
    ("commits", "Commits", lambda s: count(s.commits)),
    ("input", "Input", lambda s: count(s.tokens["input"])),
    ("output", "Output", lambda s: count(s.tokens["output"])),
    ("cacheWrite", "Cache create", lambda s: count(s.tokens["cacheWrite"])),
    ("cacheRead", "Cache read", lambda s: count(s.tokens["cacheRead"])),
    ("grades", "Grades", lambda s: count(s.grades)),
    ("bugs", "Bugs", lambda s: count(s.bugs)),
    ("models", "Models", lambda s: ", ".join(sorted(s.models)) or "-"),
]
# Shown left to right in this order (ccusage's order, then what only this tool knows).
ORDER = ("models", "input", "output", "cacheWrite", "cacheRead", "totalTokens", "cost", "sessions", "commits",
         "grades", "bugs")
# Counted per period, not per model: blank on a --breakdown row.
PER_PERIOD = ("models", "commits", "grades", "bugs")
HEADING = {"daily": "Date", "weekly": "Week of", "monthly": "Month", "session": "Session"}


def _first_cell(view: UsageView, name: str) -> str:
    if view.kind != "session":
        return name
    info = view.sessions.get(name)
    title = (info.title if info else None) or name
    project = os.path.basename(info.project) if info and info.project else "-"
    last = (info.last or "-")[:10] if info else "-"
    return f"{title}\n{project} · {last}"


def _table(view: UsageView, keys: list[str], breakdown: bool) -> Any:
    from rich import box
    from rich.table import Table

    cells = {key: (header, cell) for key, header, cell in COLUMNS}
    shown = [key for key in ORDER if key in keys]
    table = Table(box=box.SIMPLE_HEAVY, pad_edge=False, collapse_padding=True, show_footer=True)
    table.add_column(HEADING[view.kind], footer="Total", overflow="fold", no_wrap=view.kind != "session")
    for key in shown:
        header, cell = cells[key]
        table.add_column(header, justify="left" if key == "models" else "right", footer=cell(view.totals),
                         no_wrap=key != "models", overflow="fold")
    for name, spend in view.rows.items():
        # Names and titles are untrusted text: Text() cells, never markup.
        table.add_row(Text(_first_cell(view, name)), *(Text(cells[key][1](spend)) for key in shown))
        if breakdown:
            for model, part in sorted(spend.models.items(), key=lambda item: -item[1].cost):
                table.add_row(Text(f"  └ {model}"), *(Text("" if key in PER_PERIOD else cells[key][1](part))
                                                      for key in shown), style="dim")
    return table


def skipped(view: UsageView) -> tuple[str, ...]:
    """Columns that say nothing in this view: each row of the session view is one session."""
    return ("sessions",) if view.kind == "session" else ()


def choose(view: UsageView, console: Any, width: int, breakdown: bool) -> list[str]:
    """The columns that fit, added in COLUMNS' order and never one after another that did not."""
    from rich.measure import Measurement

    chosen: list[str] = []
    for key, _, _ in COLUMNS:
        if key in skipped(view):
            continue
        table = _table(view, chosen + [key], breakdown)
        if Measurement.get(console, console.options.update_width(10_000), table).maximum > width:
            break
        chosen.append(key)
    return chosen


def render_usage(view: UsageView, console: Any, *, breakdown: bool = False) -> None:
    if not view.rows:
        given = ", ".join(f"{k}={v}" for k, v in view.filters.items() if v)
        console.print(Text(f"No usage recorded{' for ' + given if given else ''}. Usage is what each model call cost: "
                           f"the plugin records it live; agent-tracker import-opencode reads your past sessions."))
        return
    filters = ", ".join(f"{k}={v}" for k, v in view.filters.items() if v) or "none"
    console.print(Text(f"Usage {view.kind} (time zone {view.zone.label}; filters: {filters})"))
    keys = choose(view, console, console.width, breakdown)
    console.print(_table(view, keys, breakdown))
    hidden = [header for key, header, _ in COLUMNS if key not in keys and key not in skipped(view)]
    if hidden:
        console.print(Text(f"Not shown at this width: {', '.join(hidden)} (--json has every number).", style="dim"))
    console.print(Text("Each message counts under the model that produced it, at its own time; sessions are those "
                       "with a model call in the period (a subagent's is part of its root session's).", style="dim"))
