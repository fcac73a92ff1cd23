"""`agent-tracker report`: the ranked setups, recommendations, the optional chart and HTML page."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..store import Store
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    command_config,
    make_console,
    open_for_reading,
    print_json,
)

# -- report ------------------------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from ..report.build import build_report
    from ..report.render import render_rich

    config = command_config(args)
    with open_for_reading(config) as store:
        report = build_report(store, project=args.project, stack=args.stack, since=args.since, until=args.until,
                              agent=args.agent, model=args.model, min_sessions=args.min_sessions,
                              rules=config.scoring, parallel=True, by_version=args.by == "setup")
        chart = _chart(store, report, args.chart) if args.chart else None
        page = _html(store, report, args.html) if args.html else None
    if args.json:
        print_json({**report.to_wire(), "chart": str(chart) if chart else None,
                    "html": str(page) if page else None})
        return EXIT_OK
    console = make_console()
    if not (chart or page):  # asked for a file: its path is the answer, not the whole report again
        render_rich(report, console, wide=args.wide)
    if chart:
        console.print(f"Chart: {chart}")
    if page:
        console.print(f"HTML report: {page}")
    return EXIT_OK



def _chart(store: Store, report: Any, target: str) -> Path:
    from ..report.chart import ChartError
    from ..report.html import save_chart

    try:
        return save_chart(store, report, Path(target).expanduser())
    except ChartError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None


def _html(store: Store, report: Any, target: str) -> Path:
    from ..report.chart import ChartError
    from ..report.html import write_html

    try:
        page: Path = write_html(store, report, Path(target).expanduser())
        return page
    except ChartError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
