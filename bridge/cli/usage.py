"""`agent-tracker usage daily|weekly|monthly|session`: spend and work over time (report/spending.py)."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, command_config, make_console, open_for_reading, print_json


def cmd_usage(args: argparse.Namespace) -> int:
    from ..report.spending import build_usage
    from ..report.spending_render import render_usage

    config = command_config(args)
    with open_for_reading(config) as store:
        view = build_usage(store, args.view, since=args.since, until=args.until, project=args.project,
                           timezone_name=args.timezone)
    if args.json:
        print_json(view.to_wire())
    else:
        render_usage(view, make_console(), breakdown=args.breakdown)
    return EXIT_OK
