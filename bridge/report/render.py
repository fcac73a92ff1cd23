"""The report on screen (rich) and as plain text (what the bridge's ``report`` method returns)."""

from __future__ import annotations

from typing import Any

from .model import Report, SetupRow, fmt
from .rank import money
from .score import FORMULA

# -- rendering -------------------------------------------------------------------------------------------

COLUMNS = ["#", "Stack", "Agent", "Model", "Sessions", "Commits", "C/S", "XP/S", "Agent grade",
           "User grade", "5s", "-1s", "Bugs/C", "SP", "CS", "Last used", "Score"]
# What the model calls cost: shown when some setup has usage recorded, and the first columns a
# console too narrow for the table drops (--json and export always carry them).
USAGE_COLUMNS = ["$/S", "$/C", "Tok/C", "Time/S", "Value"]


def has_usage(report: Report) -> bool:
    return any(row.usage.messages for row in report.setups)


def columns(report: Report, usage: bool | None = None) -> list[str]:
    return COLUMNS + (USAGE_COLUMNS if (has_usage(report) if usage is None else usage) else [])


def tokens_text(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 999_500:
        return f"{value / 1_000_000:.2f}M"
    if value >= 1_000:
        return f"{value / 1_000:.1f}k"
    return f"{value:.0f}"


def duration_text(ms: float | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def usage_cells(row: SetupRow) -> list[str]:
    """$/session, $/commit, tokens/commit, time/session, value (score per dollar a session costs;
    ``-`` for a zero-cost model: a ratio to nothing is no figure)."""
    return [money(row.cost_per_session), money(row.cost_per_commit), tokens_text(row.tokens_per_commit),
            duration_text(row.time_per_session_ms), "-" if row.value is None else f"{row.value:,.0f}"]



def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"



def table_rows(report: Report, usage: bool | None = None) -> list[list[str]]:
    """The cells of every setup row; with the usage columns when ``usage`` (default: when some
    setup has usage)."""
    usage = has_usage(report) if usage is None else usage
    out = []
    for row in report.setups:
        out.append([
            str(row.rank) if row.ranked else "-", row.stack, row.agent, row.model, str(row.sessions),
            str(row.commits), fmt(row.commits_per_session), fmt(row.xp_per_session, 1),
            f"{fmt(row.mean_agent_grade)} ({row.agent_grades})",
            f"{fmt(row.mean_user_grade)} ({row.user_grades})",
            _percent(row.excellence_share), _percent(row.bad_share), fmt(row.bugs_per_commit),
            "-" if row.skill_points is None else f"{row.skill_points:g}",
            "-" if row.communication_score is None else f"{row.communication_score:g}",
            (row.last_used or "-")[:10], f"{row.score:.1f}" + ("" if row.ranked else "*"),
        ] + (usage_cells(row) if usage else []))
    return out



def render_rich(report: Report, console: Any, *, recommendations: bool = True) -> None:
    """The report as a rich table plus recommendations, on ``console``."""
    from rich.measure import Measurement

    usage = has_usage(report)
    table = _table(report, usage)
    # The width the table wants unwrapped (measured as if the console were unbounded).
    if usage and Measurement.get(console, console.options.update_width(1 << 20), table).maximum > console.width:
        usage = False  # too narrow: the cost columns go first (--json keeps them)
        table = _table(report, usage)
    if report.setups:
        console.print(table)
    else:
        console.print("No sessions match: nothing to report yet.")
    for rec in report.recommendations if recommendations else []:
        console.print(f"• {rec.text}", highlight=False)
    console.print(
        f"[dim]{FORMULA}; * = not ranked (fewer than {report.min_sessions} sessions, or agent/model "
        f"unknown). Ranks are per stack. Details: agent-tracker report --help.[/dim]", highlight=False)
    if report.imported["commits"] or report.imported["grades"]:
        console.print(f"[dim]Includes {report.imported['commits']} commit(s) and "
                      f"{report.imported['grades']} grade(s) imported from the older TypeScript plugin "
                      f"(agent-tracker migrate); `--json` shows them per setup.[/dim]", highlight=False)
    if usage:
        console.print("[dim]$/S, $/C: dollars per session and per commit; Tok/C: tokens per commit; Time/S: "
                      "the agent's working time per session; Value: score per dollar a session costs (- for a "
                      "model that costs nothing). A subagent's session counts for its root session's setup."
                      "[/dim]", highlight=False)
    if report.unattributed_bugs:
        console.print(f"[dim]{report.unattributed_bugs} bug(s) named neither a commit nor a session "
                      f"and count for no setup.[/dim]", highlight=False)



def _table(report: Report, usage: bool) -> Any:
    from rich import box
    from rich.table import Table

    filters = ", ".join(f"{k}={v}" for k, v in report.filters.items() if v) or "none"
    title = (f"Agent setups ({report.totals['sessions']} sessions, {report.totals['commits']} commits, "
             f"{report.totals['grades']} grades")
    if usage:
        title += f", {money(report.usage.cost)} $ over {tokens_text(report.usage.tokens)} tokens"
    table = Table(title=f"{title}; filters: {filters})", box=box.SIMPLE_HEAVY, title_justify="left")
    for name in columns(report, usage):
        numeric = name not in ("Stack", "Agent", "Model", "Last used")
        table.add_column(name, justify="right" if numeric else "left", no_wrap=name in ("Model", "Stack"))
    previous_stack = None
    for cells, row in zip(table_rows(report, usage), report.setups):
        if previous_stack is not None and row.stack != previous_stack:
            table.add_section()
        previous_stack = row.stack
        style = "bold green" if row.rank == 1 else ("dim" if not row.ranked else None)
        table.add_row(*cells, style=style)
    return table


def render_text(report: Report, width: int = 200) -> str:
    """Plain text (no colour): what the bridge returns with the ``report`` method."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, color_system=None, force_terminal=False,
                      highlight=False, emoji=False)
    render_rich(report, console)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
