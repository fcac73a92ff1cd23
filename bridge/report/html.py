"""`report --html FILE`: the whole report as one self-contained HTML page.

One file, nothing fetched: the style and the script are inline, the chart is inline SVG, and a
Content-Security-Policy forbids every other source, so the page shows the same offline, from
an e-mail attachment or a CI artifact. It holds the recommendations, the setups table (sortable:
each header is a button; cells carry their raw value in ``data-value``), the agents table and
the chart. tests/test_report_html.py loads it in a real headless Chromium.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..display import display_name, display_text
from ..output_files import replace_atomically
from ..tracking.configs import describe_change
from .chart import ChartError, draw_chart, make_folder, refuse_database_target, svg_chart
from ..wording import plural
from .model import Report, SetupRow
from .render import COLUMN, KEY_COLUMNS, PRIORITY, PROBABILITY_NOTE, SETUP_COLUMNS, Column, interval_cell, no_match_text
from .score import FORMULA

PAGE_SUFFIXES = (".html", ".htm")
RAW_LIMIT = 100_000  # a sort value is never shown: only a name beyond any use is cut
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1rem; color: #222; max-width: 110rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.78rem; }
th, td { padding: 0.2rem 0.2rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
/* Headers and cells wrap between words ("User / grade"), names after a "/" (<wbr>): the setups
   table fits a 1280 px window; a narrower one scrolls the table, never the page. */
th { white-space: normal; vertical-align: bottom; font-size: 0.68rem; }
#setups td.wrap { white-space: normal; }  /* "4.00 (3)" may become two lines in a narrow window */
.nowrap { white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
th.text, td.text { text-align: left; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
tr.best { background: #e8f5e9; font-weight: 600; }
tr.unranked { color: #888; }
tr.halted td { color: #b71c1c; }
#recommendations li { margin: 0.3rem 0; }
code { background: #f4f4f4; padding: 0.1rem 0.3rem; }
.note { color: #555; font-size: 0.85rem; }
svg { max-width: 100%; height: auto; }
.interval { position: relative; display: block; width: 2.4rem; height: 0.4rem; background: #eee;
  margin: 0.15rem 0 0 auto; border-radius: 2px; }
.interval .range { position: absolute; top: 0; bottom: 0; background: #64b5f6; border-radius: 2px; }
.interval .tick { position: absolute; top: -2px; bottom: -2px; width: 2px; margin-left: -1px; background: #0d47a1; }
"""

# Sorting: a click on a header sorts by that column (again: the other way). Numbers compare as
# numbers, text as text; an empty value (no data) sorts last either way; ties keep their order.
SCRIPT = """
for (const table of document.querySelectorAll("table.sortable")) {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((th, index) => {
    th.querySelector("button").addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      headers.forEach((other) => other.removeAttribute("aria-sort"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const numeric = th.dataset.type === "number";
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((a, b) => {
        const x = a.cells[index].dataset.value, y = b.cells[index].dataset.value;
        if (x === "" || y === "") return (x === "") - (y === "");
        const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
        return ascending ? order : -order;
      });
      for (const row of rows) body.appendChild(row);
    });
  });
}
"""


def _raw(value: Any) -> str:
    """An attribute's value (what a column sorts by): whole, but as display text (no control byte)."""
    return "" if value is None else html.escape(display_text(value, RAW_LIMIT), quote=True)


def page_columns() -> list[Column]:
    """The setups table's columns in the terminal's priority order (render.KEY_COLUMNS, then
    PRIORITY): the score comes right after the sessions, never at the far right edge."""
    first = [key for key in COLUMN if key in KEY_COLUMNS or key == "stack"]
    order = first + [key for key in PRIORITY if key not in first]
    # The 80 % interval is drawn under the score, in its cell (the table fits 1280 px).
    return [COLUMN[key] for key in order if key != "scoreInterval"] + [
        c for c in SETUP_COLUMNS if c.key not in order and c.key != "scoreInterval"]


# Cells that may wrap between words (a grade and its count, "build → general").
WRAPPING = ("agent", "userGrade", "agentGrade")


def _breakable(text: str) -> str:
    """Escaped text that may wrap after each "/" (a long model name), never inside a part (a
    browser would break "claude-sonnet-4-5" at its hyphens)."""
    parts = text.split("/")
    return "<wbr>".join(f'<span class="nowrap">{html.escape(part)}{"/" if n < len(parts) - 1 else ""}</span>'
                        for n, part in enumerate(parts))


def _setups_table(report: Report) -> str:
    columns = page_columns()
    head = "".join(
        f'<th scope="col" class="{"number" if c.numeric else "text"}" data-key="{c.key}" '
        f'data-type="{"number" if c.numeric else "text"}"><button type="button">'
        f'{html.escape(c.header.replace(chr(10), " "))}</button></th>'
        for c in columns)
    rows = []
    for row in report.setups:
        kind = "best" if row.rank == 1 else ("unranked" if not row.ranked else "ranked")
        cells = "".join(
            f'<td class="{"number" if c.numeric else "text"}{" wrap" if c.key in WRAPPING else ""}" '
            f'data-key="{c.key}" data-value="{_raw(c.value(row))}">'
            f"{_cell_html(c, row)}</td>"
            for c in columns)
        rows.append(f'<tr class="{kind}" data-setup="{_raw(row.setup + "|" + row.stack)}">{cells}</tr>')
    return (f'<div class="scroll"><table id="setups" class="sortable"><thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table></div>")


def _cell_html(column: Column, row: SetupRow) -> str:
    if column.key == "score":
        return html.escape(column.cell(row)) + _interval_bar(row)
    return _breakable(column.cell(row)) if column.key in ("model", "stack") else html.escape(column.cell(row))


def _interval_bar(row: SetupRow) -> str:
    """The 80 % interval drawn on the 0-100 score scale, the score a tick on it, its numbers beside."""
    interval = row.score_interval
    if interval is None:
        return ""
    low, high = (max(0.0, min(100.0, value)) for value in interval)
    tick = max(0.0, min(100.0, row.score))
    label = html.escape(interval_cell(interval))
    return (f'<span class="interval" role="img" title="80 % interval {label}" data-interval="{label}" '
            f'aria-label="80 % interval {label}, score {row.score:.1f}">'
            f'<span class="range" style="left:{low:.1f}%;width:{max(high - low, 0.5):.1f}%"></span>'
            f'<span class="tick" style="left:{tick:.1f}%"></span></span>')


def _agents_table(report: Report) -> str:
    shown = {row.agent for row in report.setups}
    sheets = [sheet for sheet in report.agents if sheet["agentId"] in shown]
    columns = [("Agent", "agentId", False), ("SP", "skillPoints", True), ("XP", "experiencePoints", True),
               ("CS", "communicationScore", True), ("Commits", "totalCommits", True), ("Bugs", "totalBugs", True),
               ("Pushes", "totalPushes", True), ("State", "halted", False), ("Last update", "updatedAt", False)]
    head = "".join(f'<th scope="col" class="{"number" if numeric else "text"}" data-key="{key}" '
                   f'data-type="{"number" if numeric else "text"}"><button type="button">{name}</button></th>'
                   for name, key, numeric in columns)
    rows = []
    for sheet in sheets:
        cells = []
        for _, key, numeric in columns:
            value = sheet.get(key)
            if key == "halted":
                shown_value = value = "halted" if value else "active"
            elif key == "updatedAt":
                shown_value = display_name(str(value or "-")[:10])
            else:
                shown_value = f"{value:g}" if isinstance(value, float) else display_name(value)
            cells.append(f'<td class="{"number" if numeric else "text"}" data-key="{key}" data-value="{_raw(value)}">'
                         f"{html.escape(shown_value)}</td>")
        state = ' class="halted"' if sheet.get("halted") else ""
        rows.append(f"<tr{state}>{''.join(cells)}</tr>")
    return (f'<table id="agents" class="sortable"><thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table>")


def readable_time(stamp: str) -> str:
    """2026-12-04T21:25:07.123Z as 2026-12-04 21:25 UTC (the raw value stays in <time datetime>)."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _versions_section(report: Report) -> str:
    """Where an agent has several configuration versions among the rows: what changed from each to
    the next, in words (describe_change), never the prompt itself (it may hold private text)."""
    by_agent: dict[str, dict[str, Any]] = {}
    for row in report.setups:
        if row.version_label and row.config_version:
            by_agent.setdefault(row.agent, {}).setdefault(row.config_version, row)
    if not by_agent:
        return ""
    items = []
    for agent, rows in sorted(by_agent.items()):
        ordered = sorted(rows.values(), key=lambda row: (row.config_first_seen is not None, row.config_first_seen or ""))
        previous = None
        for row in ordered:
            if row.configuration is None:
                change = "sessions from before configurations were recorded"
            else:
                change = describe_change(previous, row.configuration)
                previous = row.configuration
            items.append(f'<li data-version="{_raw(row.config_version)}"><code>{html.escape(str(row.version_label))}'
                         f"</code>: {html.escape(change)}</li>")
    return ('<h2>Configuration versions</h2>\n<p class="note">What changed from each version of an agent to the '
            'next (agent-tracker configs AGENT has them all; prompts are not shown).</p>\n'
            f'<ul id="versions">\n{chr(10).join(items)}\n</ul>')


def page(report: Report, svg: str | None, chart_note: str | None = None) -> str:
    """The page's text; ``svg`` is the chart (None: ``chart_note`` says why there is none)."""
    totals = report.totals
    filters = ", ".join(f"{k}={display_name(v)}" for k, v in report.filters.items() if v) or "none"
    summary = (f"{totals.get('sessions', 0)} sessions, {totals.get('commits', 0)} commits, "
               f"{totals.get('grades', 0)} grades; filters: {filters}")
    if report.setups:
        recommendations = "\n".join(f"<li>{html.escape(rec.text)}</li>" for rec in report.recommendations)
        body = f"""<h2>Recommendations</h2>
<ul id="recommendations">
{recommendations}
</ul>
<h2>Setups</h2>
<p class="note">Click a header to sort. * = not ranked (fewer than {plural(report.min_sessions, 'session')}, or agent or
model unknown). Ranks are per stack. <code>{html.escape(FORMULA)}</code></p>
<p class="note">{html.escape(PROBABILITY_NOTE)} The bar under each score is that interval on the 0-100 scale (its numbers: hover it, or --json); its tick the score.</p>
{_setups_table(report)}
{_versions_section(report)}
<h2>Agents</h2>
<p class="note">Per agent, across its setups: SP skill points, XP experience points, CS communication score.</p>
{_agents_table(report)}
<h2>Score over time</h2>
{svg if svg is not None else f'<p class="note" id="no-chart">{html.escape(chart_note or "")}</p>'}"""
    else:
        body = f'<p id="no-match">{html.escape(no_match_text(report))}</p>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agent-tracker report</title>
<style>{STYLE}</style></head><body>
<h1>Which agent setup works best?</h1>
<p>Database <code>{html.escape(report.database)}</code>, generated
<time datetime="{html.escape(report.generated_at)}">{html.escape(readable_time(report.generated_at))}</time>:
{html.escape(summary)}.</p>
{body}
<script>{SCRIPT}</script>
</body></html>
"""


def write_html(store: Any, report: Report, target: Path) -> Path:
    """Write the page to ``target``; without matplotlib the page says the chart needs it."""
    if target.suffix.lower() not in PAGE_SUFFIXES:
        raise ChartError(f"--html must name a .html file; got {target}.")
    refuse_database_target(target, store, "the HTML report")
    svg, note = None, None
    if report.setups:
        try:
            svg = svg_chart(store, report)
        except ChartError as exc:
            note = f"No chart: {exc}"
    make_folder(target)
    try:
        with replace_atomically(target, binary=True) as handle:  # a failed write keeps the old page
            handle.write(page(report, svg, note).encode("utf-8"))
    except OSError as exc:
        raise ChartError(f"Cannot write {target}: {exc.strerror or exc}.") from None
    return target


def save_chart(store: Any, report: Report, target: Path) -> Path:
    """--chart FILE: a PNG, or for .html the whole page (the chart with the tables around it)."""
    if target.suffix.lower() in PAGE_SUFFIXES:
        return write_html(store, report, target)
    return draw_chart(store, report, target)
