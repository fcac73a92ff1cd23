"""The report on screen (rich) and as plain text (what the bridge's ``report`` method returns).

The setups table fits the console: rank, agent, model, sessions, P(best) and score are always shown
and never cut;
the other columns are added in order of importance while the table still fits (``wide=True``
shows them all). When the stack column does not fit, each stack gets a table of its own. The
agents' own numbers (SP, XP, CS, halted) are per agent, not per setup: they have their own table.
"""

from __future__ import annotations

import io
from typing import Any, Callable

import attrs

from ..display import display_name
from ..tracking.configs import UNKNOWN_VERSION
from ..wording import plural
from .model import Report, SetupRow, fmt
from .rank import money
from .score import FORMULA


def probability_text(value: float | None) -> str:
    """P(best) in two decimals; a chance below 0.005 is "<0.01", never a flat 0."""
    if value is None:
        return "-"
    return "<0.01" if 0 < value < 0.005 else (">0.99" if 0.995 <= value < 1 else f"{value:.2f}")


def interval_cell(interval: tuple[float, float] | None) -> str:
    return "-" if interval is None else f"{interval[0]:.0f}-{interval[1]:.0f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def tokens_text(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 999_500_000:  # never "5965.06M"
        return f"{value / 1_000_000_000:,.2f}B"
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


def _value_text(row: SetupRow) -> str:
    """Score per dollar a session costs; ``-`` for a zero-cost model (a ratio to nothing is no
    figure) or a setup without recorded usage."""
    return "-" if row.value is None else f"{row.value:,.0f}"


@attrs.frozen
class Column:
    key: str                                   # stable name (HTML data-col, tests)
    header: str                                # may hold a line break: narrower columns
    cell: Callable[[SetupRow], str]
    numeric: bool = True
    value: Callable[[SetupRow], Any] = lambda row: None  # what the HTML table sorts by


SETUP_COLUMNS: list[Column] = [
    Column("rank", "#", lambda r: str(r.rank) if r.ranked else "-",
           value=lambda r: r.rank if r.ranked else None),
    Column("stack", "Stack", lambda r: display_name(r.stack), numeric=False, value=lambda r: r.stack),
    # The agent and the subagents its sessions started: "build → general".
    Column("agent", "Agent", lambda r: display_name(r.workflow), numeric=False, value=lambda r: r.workflow),
    Column("model", "Model", lambda r: display_name(r.model), numeric=False, value=lambda r: r.model),
    Column("sessions", "Sessions", lambda r: str(r.sessions), value=lambda r: r.sessions),
    Column("commits", "Commits", lambda r: str(r.commits), value=lambda r: r.commits),
    Column("commitsPerSession", "C/S", lambda r: fmt(r.commits_per_session), value=lambda r: r.commits_per_session),
    Column("xpPerSession", "XP/S", lambda r: fmt(r.xp_per_session, 1), value=lambda r: r.xp_per_session),
    Column("agentGrade", "Agent\ngrade", lambda r: f"{fmt(r.mean_agent_grade)} ({r.agent_grades})",
           value=lambda r: r.mean_agent_grade),
    Column("userGrade", "User\ngrade", lambda r: f"{fmt(r.mean_user_grade)} ({r.user_grades})",
           value=lambda r: r.mean_user_grade),
    Column("excellenceShare", "5s", lambda r: _percent(r.excellence_share), value=lambda r: r.excellence_share),
    Column("badShare", "-1s", lambda r: _percent(r.bad_share), value=lambda r: r.bad_share),
    Column("bugsPerCommit", "Bugs/C", lambda r: fmt(r.bugs_per_commit), value=lambda r: r.bugs_per_commit),
    # The signals nobody types (score.SCORE_HELP): failed tool calls, abandoned sessions, commits
    # fixed up soon after, reverted commits (each also one of the setup's bugs).
    Column("toolFailureRate", "Fail%", lambda r: _percent(r.tool_failure_rate), value=lambda r: r.tool_failure_rate),
    Column("abandonRate", "Aband%", lambda r: _percent(r.abandon_rate), value=lambda r: r.abandon_rate),
    Column("fixupRate", "Fixup%", lambda r: _percent(r.fixup_rate), value=lambda r: r.fixup_rate),
    Column("revertedCommits", "Reverts", lambda r: str(r.reverts), value=lambda r: r.reverts),
    # What the model calls cost (usage.recorded): dollars per session and per commit, tokens per
    # commit, the agent's working time per session, score per dollar a session costs.
    Column("costPerSession", "$/S", lambda r: money(r.cost_per_session), value=lambda r: r.cost_per_session),
    Column("costPerCommit", "$/C", lambda r: money(r.cost_per_commit), value=lambda r: r.cost_per_commit),
    Column("tokensPerCommit", "Tok/C", lambda r: tokens_text(r.tokens_per_commit), value=lambda r: r.tokens_per_commit),
    Column("timePerSession", "Time/S", lambda r: duration_text(r.time_per_session_ms),
           value=lambda r: r.time_per_session_ms),
    Column("value", "Value", _value_text, value=lambda r: r.value),
    Column("lastUsed", "Last used", lambda r: (r.last_used or "-")[:10], numeric=False, value=lambda r: r.last_used),
    # What the posterior says (posterior.py): the chance it is the best of its stack, and an 80 %
    # interval of its score.
    Column("probabilityBest", "P(best)", lambda r: probability_text(r.probability_best),
           value=lambda r: r.probability_best),
    Column("scoreInterval", "80%\ninterval", lambda r: interval_cell(r.score_interval),
           value=lambda r: r.score_interval[0] if r.score_interval else None),
    Column("score", "Score", lambda r: f"{r.score:.1f}" + ("" if r.ranked else "*"), value=lambda r: r.score),
]
COLUMN = {column.key: column for column in SETUP_COLUMNS}
# Shown at every width, never cut: what a row is, how much evidence it has (sessions), how sure
# the report is of it (P(best)) and its score. The stack, when it does not fit, becomes a table per stack.
KEY_COLUMNS = ("rank", "agent", "model", "sessions", "probabilityBest", "score")
# The others, most telling first: added in this order while the table still fits, and never one
# after another that did not fit (a reader must not get $/C without the user's grade). What a
# commit costs comes right after the user's grade: "good commits per dollar" is the question.
PRIORITY = ("stack", "scoreInterval", "userGrade", "costPerCommit", "commits", "bugsPerCommit", "agentGrade",
            "commitsPerSession", "lastUsed", "xpPerSession", "excellenceShare", "badShare", "abandonRate",
            "toolFailureRate", "fixupRate", "revertedCommits", "value", "costPerSession", "tokensPerCommit",
            "timePerSession")
# Shown only when some setup has usage recorded (else every cell would be "-").
USAGE_COLUMNS = ("costPerSession", "costPerCommit", "tokensPerCommit", "timePerSession", "value")


PROBABILITY_NOTE = ("P(best): the chance the setup is truly the best of its stack, given its sessions so far "
                    "(every setup with a session, ranked or not); 80% interval: its score lies there with 80 % "
                    "probability. agent-tracker recommend acts on it.")
SPEND_RULE = ("A subagent's session counts for its root session's setup: a setup's cost includes its "
              "subagents' spend, whatever model they ran on; the total spend above counts each message under "
              "the model that produced it (agent-tracker usage daily --breakdown).")


def has_usage(report: Report) -> bool:
    return any(row.usage.messages for row in report.setups)
COLUMNS = [column.header.replace("\n", " ") for column in SETUP_COLUMNS]  # every header, one line each


def table_rows(report: Report, keys: tuple[str, ...] | None = None) -> list[list[str]]:
    """The cells of every setup row (all columns, or ``keys``), as shown."""
    columns = SETUP_COLUMNS if keys is None else [COLUMN[key] for key in keys]
    return [[column.cell(row) for column in columns] for row in report.setups]


def _row_style(row: SetupRow) -> str | None:
    return "bold green" if row.rank == 1 else ("dim" if not row.ranked else None)


def _table(rows: list[SetupRow], keys: list[str], title: Any) -> Any:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, box=box.SIMPLE_HEAVY, title_justify="left", pad_edge=False, collapse_padding=True)
    for key in keys:
        column = COLUMN[key]
        # Model names are long and must never be cut: at worst (a very narrow console) they wrap.
        table.add_column(column.header, justify="right" if column.numeric else "left",
                         no_wrap=key != "model", overflow="fold")
    stack_shown = "stack" in keys
    previous = None
    for row in rows:
        if stack_shown and previous is not None and row.stack != previous:
            table.add_section()
        previous = row.stack
        # Text, never markup: a cell is data ("[/]x" is an agent's name, not a closing tag).
        table.add_row(*(Text(COLUMN[key].cell(row)) for key in keys), style=_row_style(row))
    return table


def _width_of(console: Any, renderable: Any) -> int:
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(10_000), renderable).maximum


def choose_columns(report: Report, console: Any, width: int, wide: bool = False) -> list[str]:
    """The columns that fit in ``width`` (all of them with ``wide``), in display order."""
    unused = () if has_usage(report) else USAGE_COLUMNS
    if wide:
        return [column.key for column in SETUP_COLUMNS if column.key not in unused]
    chosen = set(KEY_COLUMNS)
    for key in PRIORITY:
        if key in unused:
            continue
        keys = [column.key for column in SETUP_COLUMNS if column.key in chosen | {key}]
        if _width_of(console, _table(report.setups, keys, None)) <= width:
            chosen.add(key)
        elif key != "stack":  # the stack has its fallback (a table per stack); the rest stop here
            break
    return [column.key for column in SETUP_COLUMNS if column.key in chosen]


def agents_table(sheets: list[dict[str, Any]], title: str | None) -> Any:
    """The agents' own numbers: skill points, experience, communication score, halted."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(title=None if title is None else Text(display_name(title, 400)), box=box.SIMPLE_HEAVY,
                  title_justify="left", pad_edge=False, collapse_padding=True)
    for name in ("Agent", "SP", "XP", "CS", "Commits", "Bugs", "Pushes", "State", "Last update"):
        table.add_column(name, justify="left" if name in ("Agent", "State", "Last update") else "right",
                         no_wrap=name != "Agent", overflow="fold")
    for sheet in sheets:
        cells = [display_name(sheet["agentId"]), f"{sheet['skillPoints']:g}", f"{sheet['experiencePoints']:g}",
                 f"{sheet['communicationScore']:g}", str(sheet["totalCommits"]), str(sheet["totalBugs"]),
                 str(sheet["totalPushes"])]
        table.add_row(*map(Text, cells), Text("halted", style="red") if sheet["halted"] else Text("active"),
                      Text(display_name(str(sheet.get("updatedAt") or "-")[:10])))
    return table


def _bullets(lines: list[str]) -> Any:
    """Bullet points whose wrapped lines stay indented under their text."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column()
    for line in lines:
        grid.add_row("•", Text(line))
    return grid


def no_match_text(report: Report) -> str:
    """What a report whose filters matched nothing says, with the values the database holds."""
    given = ", ".join(f"{name}={display_name(value)}" for name, value in report.filters.items() if value is not None)
    if not given:
        return "No sessions recorded yet: nothing to report. Use OpenCode with the plugin " \
               "(agent-tracker install-plugin), or try agent-tracker demo."
    parts = [f"No sessions match {given}."]
    known = report.known or {}
    if "projects" in known:
        import os

        listed = ", ".join(f"{display_name(os.path.basename(path))} ({display_name(path)})"
                           for path in known["projects"])
        parts.append(f"Known projects: {listed or 'none yet'}.")
    for key, label in (("stacks", "stacks"), ("agents", "agents"), ("models", "models")):
        if key in known:
            parts.append(f"Known {label}: {', '.join(map(display_name, known[key])) or 'none yet'}.")
    if "sessionsFrom" in known:
        if known["sessionsFrom"]:
            parts.append(f"Sessions were recorded from {known['sessionsFrom']} to {known['sessionsTo']}.")
        else:
            parts.append("No session has a recorded time.")
    return " ".join(parts)


def render_rich(report: Report, console: Any, *, recommendations: bool = True, wide: bool = False,
                agents: bool = True) -> None:
    """The report as rich tables plus recommendations, on ``console``, fitting its width."""
    from rich.text import Text

    if not report.setups:
        console.print(Text(no_match_text(report)))
        return
    filters = ", ".join(f"{k}={display_name(v)}" for k, v in report.filters.items() if v) or "none"
    spent = (f", {money(report.usage.cost)} $ over {tokens_text(report.usage.tokens)} tokens"
             if has_usage(report) else "")
    title = (f"Agent setups ({plural(report.totals['sessions'], 'session')}, "
             f"{plural(report.totals['commits'], 'commit')}, {plural(report.totals['grades'], 'grade')}{spent}; "
             f"filters: {filters})")
    width = console.width
    keys = choose_columns(report, console, width, wide)
    if wide:
        width = max(width, _width_of(console, _table(report.setups, keys, None)))
    printed = _print_wide if width > console.width else _print
    if "stack" in keys:
        printed(console, width, _table(report.setups, keys, Text(title)))
    else:
        console.print(Text(title))
        for stack in dict.fromkeys(row.stack for row in report.setups):
            rows = [row for row in report.setups if row.stack == stack]
            printed(console, width, _table(rows, keys, Text(display_name(stack), style="bold")))
    unused = () if has_usage(report) else USAGE_COLUMNS
    hidden = [COLUMN[key].header.replace("\n", " ") for key in PRIORITY
              if key not in keys and key != "stack" and key not in unused]
    if hidden:
        console.print(Text(f"Not shown at this width: {', '.join(hidden)} (--wide shows them, --json has "
                           f"every number).", style="dim"))
    if recommendations and report.recommendations:
        console.print(_bullets([rec.text for rec in report.recommendations]))
    console.print(Text(f"{FORMULA}; * = not ranked (fewer than {plural(report.min_sessions, 'session')}, or "
                       f"agent/model unknown). Ranks are per stack. Details: agent-tracker report --help.",
                       style="dim"))
    if "probabilityBest" in keys:
        console.print(Text(PROBABILITY_NOTE, style="dim"))
    if any(key in keys for key in USAGE_COLUMNS):
        console.print(Text("$/S, $/C: dollars per session and per commit; Tok/C: tokens per commit; Time/S: the "
                           "agent's working time per session; Value: score per dollar a session costs (- for a "
                           "model that costs nothing).", style="dim"))
    if has_usage(report):
        console.print(Text(SPEND_RULE, style="dim"))
    if report.imported["commits"] or report.imported["grades"]:
        console.print(Text(f"Includes {plural(report.imported['commits'], 'commit')} and "
                           f"{plural(report.imported['grades'], 'grade')} imported from the older TypeScript "
                           f"plugin (agent-tracker migrate); --json shows them per setup.", style="dim"))
    if any(row.version_label for row in report.setups):
        unknown = any(row.version_label and row.config_version == UNKNOWN_VERSION for row in report.setups)
        console.print(Text("agent@version: a version of the agent's whole configuration (prompt, temperature, tools, "
                           "permissions...; the date it first appeared), shown where an agent has more than one; "
                           "agent-tracker configs AGENT shows what changed, --by agent-model merges them."
                           + (" @unknown: sessions from before the plugin recorded configurations (imported from "
                              "OpenCode's history, migrated, or tracked by an older plugin)." if unknown else ""),
                           style="dim"))
    if report.unattributed_bugs:
        console.print(Text(f"{plural(report.unattributed_bugs, 'bug')} named neither a commit nor a session "
                           f"and count for no setup.", style="dim"))
    sheets = _agents_of(report)
    if agents and sheets:
        console.print()
        printed(console, width, agents_table(sheets, "Agents: SP skill points, XP experience, CS communication "
                                                     "score (per agent, across its setups)"))


def _agents_of(report: Report) -> list[dict[str, Any]]:
    shown = {row.agent for row in report.setups}
    return [sheet for sheet in report.agents if sheet["agentId"] in shown]


def _print(console: Any, width: int, renderable: Any) -> None:
    console.print(renderable)


def _print_wide(console: Any, width: int, renderable: Any) -> None:
    """--wide: wider than the console; the terminal wraps the lines instead of rich cutting cells."""
    before = console.width
    console.width = width
    try:
        console.print(renderable)
    finally:
        console.width = before


def render_text(report: Report, width: int = 200, *, wide: bool = False) -> str:
    """Plain text (no colour): what the bridge returns with the ``report`` method."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, color_system=None, force_terminal=False,
                      highlight=False, emoji=False, markup=False)
    render_rich(report, console, wide=wide)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"
