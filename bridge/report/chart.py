"""`report --chart FILE.png|FILE.html`: each setup's score over time, drawn with matplotlib.

matplotlib is optional (``pip install 'agent-tracker-bridge[chart]'``) and imported only here,
with the Agg canvas (no display, no global pyplot state). ``.html`` is one self-contained page:
the chart as inline SVG, the report table and the recommendations.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from ..output_files import UnsafeOutput, refuse_database_files, replace_atomically
from .model import Report, SetupKey
from .rank import money
from .render import columns, table_rows
from .score import FORMULA
from .timeline import bucket_datetime, build_timeline

MAX_SETUPS = 8
SUFFIXES = (".png", ".html", ".htm")


class ChartError(Exception):
    """A chart that cannot be drawn; the message says why and what to do."""


def chart_setups(report: Report, limit: int = MAX_SETUPS) -> list[SetupKey]:
    """Ranked setups first (overall rank), then the most used others."""
    ranked = sorted((row for row in report.setups if row.ranked), key=lambda row: row.overall_rank or 0)
    others = sorted((row for row in report.setups if not row.ranked), key=lambda row: (-row.sessions, row.setup))
    return [(row.agent, row.model, row.stack) for row in (ranked + others)[:limit]]


def _figure(report: Report, store: Any) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartError("Drawing a chart needs matplotlib: pip install 'agent-tracker-bridge[chart]' "
                         "(or pip install matplotlib).") from None
    filters = report.filters
    timeline = build_timeline(store, project=filters.get("project"), stack=filters.get("stack"),
                              since=filters.get("since"), setups=chart_setups(report))
    figure = Figure(figsize=(11, 6), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    costs = {f"{row.agent} · {row.model} · {row.stack}": row.cost_per_commit for row in report.setups}
    for label, points in timeline.series.items():
        # matplotlib plots datetimes (its stub types x as arrays of numbers only).
        xs: Any = [bucket_datetime(stamp) for stamp, _ in points]
        ys = [score for _, score in points]
        per_commit = costs.get(label)  # what a commit costs, where usage was recorded
        if per_commit is not None:
            label = f"{label} ({money(per_commit)} $/commit)"
        axes.step(xs, ys, where="post", label=label, linewidth=1.8,
                  marker="o" if len(points) <= 40 else None, markersize=4)
    axes.set_ylim(0, 100)
    axes.set_ylabel("score (0-100), cumulative")
    axes.set_xlabel(f"time (per {timeline.granularity})")
    axes.grid(alpha=0.3)
    title = "Agent setups: score over time"
    if any(filters.values()):
        title += " (" + ", ".join(f"{k} {v}" for k, v in filters.items() if v) + ")"
    figure.suptitle(title)
    axes.set_title(FORMULA, fontsize=8, color="#555555")
    if timeline.series:
        axes.legend(fontsize=8, loc="lower left", title="agent · model · stack", title_fontsize=8)
    else:
        axes.text(0.5, 0.5, "no sessions to draw yet", ha="center", va="center", transform=axes.transAxes)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib leaves it unannotated
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    return figure


def draw_chart(store: Any, report: Report, target: Path) -> Path:
    """Write the chart to ``target`` (.png, or .html with inline SVG); returns the path."""
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise ChartError(f"--chart must name a .png or .html file; got {target}.")
    _refuse_database_files(target, getattr(store, "path", None))
    figure = _figure(report, store)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ChartError(f"Cannot create the folder for {target}: {exc.strerror or exc}.") from None
    try:
        with replace_atomically(target, binary=True) as handle:  # a failed write keeps the old chart
            if suffix == ".png":
                figure.savefig(handle, format="png")
            else:
                svg = io.StringIO()
                figure.savefig(svg, format="svg")
                handle.write(_page(report, svg.getvalue()).encode("utf-8"))
    except OSError as exc:
        raise ChartError(f"Cannot write {target}: {exc.strerror or exc}.") from None
    return target


def _refuse_database_files(target: Path, database: Path | None) -> None:
    try:
        refuse_database_files(target, database, what="the chart")
    except UnsafeOutput as exc:
        raise ChartError(str(exc)) from None


def _page(report: Report, svg: str) -> str:
    svg = svg[svg.find("<svg"):]  # drop the XML prolog and doctype: inline in HTML
    head = "".join(f"<th>{html.escape(name)}</th>" for name in columns(report))
    body = "\n".join(
        "<tr" + (' class="best"' if row.rank == 1 else (' class="unranked"' if not row.ranked else "")) + ">"
        + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"
        for cells, row in zip(table_rows(report), report.setups))
    recommendations = "\n".join(f"<li>{html.escape(rec.text)}</li>" for rec in report.recommendations)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>agent-tracker report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }}
th, td {{ padding: 0.2rem 0.6rem; border-bottom: 1px solid #ddd; text-align: right; }}
th:nth-child(2), th:nth-child(3), th:nth-child(4), td:nth-child(2), td:nth-child(3), td:nth-child(4) {{ text-align: left; }}
tr.best {{ background: #e8f5e9; font-weight: 600; }}
tr.unranked {{ color: #888; }}
code {{ background: #f4f4f4; padding: 0.1rem 0.3rem; }}
</style></head><body>
<h1>Which agent setup works best?</h1>
<p>Database <code>{html.escape(report.database)}</code>, generated {html.escape(report.generated_at)}:
{report.totals.get("sessions", 0)} sessions, {report.totals.get("commits", 0)} commits,
{report.totals.get("grades", 0)} grades.</p>
{svg}
<h2>Recommendations</h2>
<ul>
{recommendations}
</ul>
<h2>Setups</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
<p><code>{html.escape(FORMULA)}</code>; * = not ranked (fewer than {report.min_sessions} sessions,
or agent/model unknown). Ranks are per stack.</p>
</body></html>
"""
