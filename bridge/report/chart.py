"""`report --chart FILE.png`: each setup's score over time, drawn with matplotlib.

matplotlib is optional (``pip install 'agent-tracker[chart]'``) and imported only here,
with the Agg canvas (no display, no global pyplot state). The HTML page (html.py) inlines the
same chart as SVG.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any, Iterator

from ..display import chart_text, display_name
from ..output_files import UnsafeOutput, refuse_database_files, replace_atomically
from .model import Report, SetupKey
from .rank import money
from .score import FORMULA
from .timeline import bucket_datetime, build_timeline

MAX_SETUPS = 8
LABEL_LIMIT = 120  # a legend entry: agent · model · stack
SUFFIXES = (".png", ".html", ".htm")


class ChartError(Exception):
    """A chart that cannot be drawn; the message says why and what to do."""


def chart_setups(report: Report, limit: int = MAX_SETUPS) -> list[SetupKey]:
    """Ranked setups first (overall rank), then the most used others."""
    ranked = sorted((row for row in report.setups if row.ranked), key=lambda row: row.overall_rank or 0)
    others = sorted((row for row in report.setups if not row.ranked), key=lambda row: (-row.sessions, row.setup))
    return [(row.agent, row.model, row.stack, row.config_version) for row in (ranked + others)[:limit]]


def _figure(report: Report, store: Any) -> Any:
    try:
        from matplotlib import rc_context
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartError("Drawing a chart needs matplotlib: pip install 'agent-tracker[chart]' "
                         "(or pip install matplotlib).") from None
    # Names are data: never LaTeX (a matplotlibrc may turn usetex on), never math text (chart_text).
    with rc_context({"text.usetex": False}):
        return _draw(report, store, FigureCanvasAgg, AutoDateLocator, ConciseDateFormatter, Figure)


def _draw(report: Report, store: Any, FigureCanvasAgg: Any, AutoDateLocator: Any, ConciseDateFormatter: Any,
          Figure: Any) -> Any:
    filters = report.filters
    timeline = build_timeline(store, report.selection, setups=chart_setups(report),
                              by_version=report.by_version)
    figure = Figure(figsize=(11, 6), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    costs = {f"{row.agent} · {row.model} · {row.stack}": row.cost_per_commit for row in report.setups}
    for label, points in timeline.series.items():
        # matplotlib plots datetimes (its stub types x as arrays of numbers only).
        xs: Any = [bucket_datetime(stamp) for stamp, _ in points]
        ys = [score for _, score in points]
        per_commit = costs.get(label)  # what a commit costs, where usage was recorded
        shown = display_name(label, LABEL_LIMIT)
        if per_commit is not None:
            shown = f"{shown} ({money(per_commit)} $/commit)"
        # chart_text: a "$" in a name ("gpt-$\\foo{$") never opens matplotlib's math text.
        axes.step(xs, ys, where="post", label=chart_text(shown), linewidth=1.8,
                  marker="o" if len(points) <= 40 else None, markersize=4)
    axes.set_ylim(0, 100)
    axes.set_ylabel("score (0-100), cumulative")
    axes.set_xlabel(f"time (per {timeline.granularity})")
    axes.grid(alpha=0.3)
    title = "Agent setups: score over time"
    if any(filters.values()):
        title += " (" + ", ".join(f"{k} {display_name(v)}" for k, v in filters.items() if v) + ")"
    figure.suptitle(chart_text(title))
    axes.set_title(FORMULA, fontsize=8, color="#555555")
    if timeline.series:
        axes.legend(fontsize=8, loc="lower left", title="agent · model · stack", title_fontsize=8)
    else:
        axes.text(0.5, 0.5, "no sessions to draw yet", ha="center", va="center", transform=axes.transAxes)
    locator = AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    return figure


def svg_chart(store: Any, report: Report) -> str:
    """The chart as an SVG element, to inline in an HTML page (no XML prolog, no doctype)."""
    figure = _figure(report, store)
    svg = io.StringIO()
    with _no_glyph_warnings():
        figure.savefig(svg, format="svg")
    text = svg.getvalue()
    return text[text.find("<svg"):]


def draw_chart(store: Any, report: Report, target: Path) -> Path:
    """Write the chart to ``target`` (.png; html.save_chart also writes .html pages); returns the path."""
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise ChartError(f"--chart must name a .png or .html file; got {target}.")
    if suffix != ".png":
        raise ChartError(f"draw_chart writes PNG files; {target} is a page: use html.save_chart.")
    refuse_database_target(target, store)
    figure = _figure(report, store)
    make_folder(target)
    try:
        # A failed write keeps the old chart.
        with replace_atomically(target, binary=True) as handle, _no_glyph_warnings():
            figure.savefig(handle, format="png")
    except OSError as exc:
        raise ChartError(f"Cannot write {target}: {exc.strerror or exc}.") from None
    return target


@contextlib.contextmanager
def _no_glyph_warnings() -> Iterator[None]:
    """A name in a script the font lacks is drawn as a box; matplotlib's warning per glyph is noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        yield


def make_folder(target: Path) -> None:
    """The folder a chart or page goes into must exist: a typo in its path is an error, not a
    tree of new folders somewhere unexpected."""
    if not target.parent.is_dir():
        raise ChartError(f"The folder {target.parent} does not exist. Create it first (mkdir -p {target.parent}) "
                         f"or name a file in an existing folder.")


def refuse_database_target(target: Path, store: Any, what: str = "the chart") -> None:
    """A chart or page must never be written over the database or its lock and journal."""
    try:
        refuse_database_files(target, getattr(store, "path", None), what=what)
    except UnsafeOutput as exc:
        raise ChartError(str(exc)) from None
