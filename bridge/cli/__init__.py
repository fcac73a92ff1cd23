"""cli: `agent-tracker`, the bridge (`serve`) and the commands that answer "which setup works for me?".

Owns: argument parsing (parser), what every command shares (common: exit codes, errors, output,
opening the database) and one module per command family. May import everything below it;
nothing imports cli. Command modules are imported lazily, per command: `serve` is what OpenCode
spawns and must start fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_UNUSABLE,
    EXIT_USAGE,
    EXIT_WRITE,
    CommandError,
    cli_overrides,
    print_error,
    report_failure,
)
from .parser import build_parser, serve_parser

# command -> (module in this package, function): imported only when that command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "status": ("status", "cmd_status"),
    "report": ("report", "cmd_report"),
    "recommend": ("recommend", "cmd_recommend"),
    "usage": ("usage", "cmd_usage"),
    "configs": ("configs", "cmd_configs"),
    "export": ("export", "cmd_export"),
    "team-report": ("team", "cmd_team_report"),
    "import-export": ("team", "cmd_import_export"),
    "replay": ("replay", "cmd_replay"),
    "demo": ("replay", "cmd_demo"),
    "reinstate": ("reinstate", "cmd_reinstate"),
    "bug": ("bug", "cmd_bug"),
    "doctor": ("doctor", "cmd_doctor"),
    "migrate": ("migrate", "cmd_migrate"),
    "import-opencode": ("import_opencode", "cmd_import_opencode"),
    "install-plugin": ("plugin", "cmd_install_plugin"),
    "uninstall-plugin": ("plugin", "cmd_uninstall_plugin"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["serve"]:
        # What OpenCode spawns: skip building every subcommand (the report's help text alone
        # imports bridge.report), because start-up time is part of each OpenCode session.
        from ..rpc.server import serve
        return serve(cli_overrides(serve_parser().parse_args(argv[1:])))
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return EXIT_USAGE
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run one parsed command; every failure becomes one sentence and its documented exit code."""
    found = COMMANDS.get(args.command)
    if found is None:
        print_error(f"unknown command {args.command!r}")
        return EXIT_USAGE
    module, function = found
    from .. import summaries

    summaries.enable()  # every command that writes keeps the report's summaries in its transaction
    from .common import Output

    Output.color = not getattr(args, "no_color", False)
    handler: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(f"{__name__}.{module}"), function)
    from ..report.model import ReportError
    from ..store import DatabaseFull, StoreError

    try:
        return handler(args)
    except CommandError as exc:
        report_failure(args, exc.message, exc.code)
        return exc.code
    except ReportError as exc:
        report_failure(args, str(exc), EXIT_USAGE)
        return EXIT_USAGE
    except DatabaseFull as exc:
        report_failure(args, str(exc), EXIT_WRITE)
        return EXIT_WRITE
    except StoreError as exc:
        report_failure(args, str(exc), EXIT_UNUSABLE)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `agent-tracker export | head`
        return EXIT_OK
    except OSError as exc:
        return _os_error(args, exc)


def _os_error(args: argparse.Namespace, exc: OSError) -> int:
    """One sentence for an OSError no command explained; without a file name it is standard output
    that cannot be written (`status > /dev/full`, a full disk)."""
    if exc.filename is not None:
        report_failure(args, f"{exc.strerror or exc}: {exc.filename}.", EXIT_FAILED)
        return EXIT_FAILED
    # What is still buffered for stdout would fail again when the interpreter flushes it at exit
    # (a second traceback): point the descriptor at /dev/null first.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real descriptor (tests capturing output): nothing is flushed at exit
    print_error(f"Cannot write to standard output: {exc.strerror or exc}.")
    return EXIT_FAILED
