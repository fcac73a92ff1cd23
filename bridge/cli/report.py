"""`agent-tracker report`: the ranked setups, recommendations and the optional chart."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..store import Store
from .common import EXIT_OK, EXIT_USAGE, CommandError, make_console, print_json, command_config, open_for_reading



# -- report ------------------------------------------------------------------------------------------------

def cmd_report(args: argparse.Namespace) -> int:
    from ..report.build import build_report
    from ..report.render import render_rich

    config = command_config(args)
    with open_for_reading(config) as store:
        report = build_report(store, project=args.project, stack=args.stack, since=args.since,
                              min_sessions=args.min_sessions, parallel=True)
        chart = _chart(store, report, args.chart) if args.chart else None
    if args.json:
        print_json({**report.to_wire(), "chart": str(chart) if chart else None})
        return EXIT_OK
    console = make_console()
    render_rich(report, console)
    if chart:
        console.print(f"Chart: {chart}")
    return EXIT_OK



def _chart(store: Store, report: Any, target: str) -> Path:
    from ..report.chart import ChartError, draw_chart

    try:
        return draw_chart(store, report, Path(target).expanduser())
    except ChartError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
