"""The report on screen (rich) and as plain text (what the bridge's ``report`` method returns)."""

from __future__ import annotations

from typing import Any

from .model import Report, fmt
from .score import FORMULA

# -- rendering -------------------------------------------------------------------------------------------

# Agent shows the workflow (``build → general`` when it started subagents). Fail% (tool calls that
# failed), Aband% (ended sessions without a commit), Fixup% (commits fixed up soon after) and
# Reverts (reverted commits, also counted in Bugs/C) are the signals nobody types: the columns a
# narrow terminal can drop first (their numbers are in --json).
COLUMNS = ["#", "Stack", "Agent", "Model", "Sessions", "Commits", "C/S", "XP/S", "Agent grade",
           "User grade", "5s", "-1s", "Bugs/C", "Fail%", "Aband%", "Fixup%", "Reverts", "SP", "CS",
           "Last used", "Score"]



def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"



def table_rows(report: Report) -> list[list[str]]:
    out = []
    for row in report.setups:
        out.append([
            str(row.rank) if row.ranked else "-", row.stack, row.workflow, row.model, str(row.sessions),
            str(row.commits), fmt(row.commits_per_session), fmt(row.xp_per_session, 1),
            f"{fmt(row.mean_agent_grade)} ({row.agent_grades})",
            f"{fmt(row.mean_user_grade)} ({row.user_grades})",
            _percent(row.excellence_share), _percent(row.bad_share), fmt(row.bugs_per_commit),
            _percent(row.tool_failure_rate), _percent(row.abandon_rate), _percent(row.fixup_rate), str(row.reverts),
            "-" if row.skill_points is None else f"{row.skill_points:g}",
            "-" if row.communication_score is None else f"{row.communication_score:g}",
            (row.last_used or "-")[:10], f"{row.score:.1f}" + ("" if row.ranked else "*"),
        ])
    return out



def render_rich(report: Report, console: Any, *, recommendations: bool = True) -> None:
    """The report as a rich table plus recommendations, on ``console``."""
    from rich import box
    from rich.table import Table

    filters = ", ".join(f"{k}={v}" for k, v in report.filters.items() if v) or "none"
    table = Table(title=f"Agent setups ({report.totals['sessions']} sessions, {report.totals['commits']} "
                        f"commits, {report.totals['grades']} grades; filters: {filters})",
                  box=box.SIMPLE_HEAVY, title_justify="left")
    for name in COLUMNS:
        numeric = name not in ("Stack", "Agent", "Model", "Last used")
        table.add_column(name, justify="right" if numeric else "left", no_wrap=name in ("Model", "Stack", "Agent"))
    previous_stack = None
    for cells, row in zip(table_rows(report), report.setups):
        if previous_stack is not None and row.stack != previous_stack:
            table.add_section()
        previous_stack = row.stack
        style = "bold green" if row.rank == 1 else ("dim" if not row.ranked else None)
        table.add_row(*cells, style=style)
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
    if report.unattributed_bugs:
        console.print(f"[dim]{report.unattributed_bugs} bug(s) named neither a commit nor a session "
                      f"and count for no setup.[/dim]", highlight=False)



# Wide enough for every column with long stack, workflow and model names (no wrapping when piped).
TEXT_WIDTH = 240


def render_text(report: Report, width: int = TEXT_WIDTH) -> str:
    """Plain text (no colour): what the bridge returns with the ``report`` method."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, color_system=None, force_terminal=False,
                      highlight=False, emoji=False)
    render_rich(report, console)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
