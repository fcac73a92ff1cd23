"""The command line: one argparse parser, every command and flag declared here."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
agent-tracker: which AI coding-agent setup (OpenCode agent, model, project stack) works best
for you, across all your projects. The OpenCode plugin records every session into one database;
these commands read it.

  agent-tracker recommend        which agent and model to configure for the project in this folder
  agent-tracker report           every setup, scored and ranked per stack
  agent-tracker configs [AGENT]  an agent's configuration versions (prompt, temperature, tools...) and what changed
  agent-tracker demo             the same on recorded example sessions, in a throw-away database
  agent-tracker import-opencode  your past OpenCode sessions in, so the answer does not wait for new ones
"""
WHEN = "a date (2026-10-01), an ISO timestamp (2026-10-01T14:00Z, UTC unless it says) or Nd (N days ago: 30d)"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="PATH",
                        help="database file (default: $XDG_CONFIG_HOME or ~/.config, /opencode/agent-tracker.lmdb; "
                             "relative paths resolve against the home directory; ':memory:' for a throw-away one)")
    parser.add_argument("--max-database-size", metavar="SIZE",
                        help="map size ceiling in bytes or like 256MiB (1 MiB..2 GiB, default 512 MiB)")


def _reading(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="agent-tracker", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"agent-tracker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _common(sub.add_parser("serve", help="run the bridge on stdio (what the OpenCode plugin spawns)"))
    status = sub.add_parser("status", help="an agent's sheet (or all agents)")
    _reading(status)
    status.add_argument("agent", nargs="?")
    from ..report.score import SCORE_HELP  # a light import (no matplotlib, no LMDB)

    recommend = sub.add_parser(
        "recommend", help="which agent and model to configure for a project (default: this folder)",
        description="Classifies DIR's stack from its manifest files and answers which agent and model to "
                    "configure, with the evidence and the runner-up. When no setup of that exact stack is "
                    "ranked yet, setups of the same language answer, then setups of all projects; the "
                    "answer says which level it comes from. Prints an OpenCode config snippet to copy.")
    _reading(recommend)
    recommend.add_argument("directory", nargs="?", default=".", metavar="DIR",
                           help="the project folder (default: the current folder)")
    recommend.add_argument("--min-sessions", type=int, default=None, metavar="N",
                           help="sessions a setup needs to be recommended (default 3)")
    recommend.add_argument("--as-file", action="store_true",
                           help="print the agent's definition as .opencode/agent/NAME.md (frontmatter and prompt) "
                                "instead of an opencode.json block")
    recommend.add_argument("--write", action="store_true",
                           help="write the recommended agent block into DIR's opencode.json (or opencode.jsonc; "
                                "comments and everything else are kept, a numbered backup is made; with --as-file: "
                                "write DIR/.opencode/agent/NAME.md)")
    recommend.epilog = ("examples:\n  agent-tracker recommend ~/code/shop\n  agent-tracker recommend --write\n"
                        "  agent-tracker recommend --as-file --write\n  agent-tracker recommend --json")
    recommend.formatter_class = argparse.RawDescriptionHelpFormatter
    report = sub.add_parser("report", help="which setup (agent, model, stack) does best",
                            description=SCORE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    _reading(report)
    report.add_argument("--project", metavar="PATH|NAME",
                        help="only this project: a path (., ~/code/shop) or a folder name (shop), which is "
                             "compared with each project's folder name, never looked up in the current folder")
    report.add_argument("--stack", help="only this stack: python (python and python/*) or python/fastapi")
    report.add_argument("--agent", help="only this OpenCode agent, e.g. build")
    report.add_argument("--model", help="only this model: provider/model, the model alone (gpt-5) or a provider")
    report.add_argument("--since", metavar="WHEN", help=f"only records from WHEN on: {WHEN}")
    report.add_argument("--until", metavar="WHEN", help=f"only records up to WHEN (a date counts whole): {WHEN}")
    report.add_argument("--min-sessions", type=int, default=None, metavar="N",
                        help="sessions a setup needs to be ranked (default 3)")
    report.add_argument("--by", choices=("setup", "agent-model"), default="setup",
                        help="setup (default): agent x model x configuration version (a changed prompt or "
                             "temperature is a new row); agent-model: the versions of one agent and model as one row")
    report.add_argument("--wide", action="store_true",
                        help="every column, even when wider than the terminal (default: what fits)")
    report.add_argument("--chart", metavar="FILE", help="draw scores over time to FILE.png (or a page: FILE.html)")
    report.add_argument("--html", metavar="FILE",
                        help="write the whole report as one self-contained HTML page: recommendations, a "
                             "sortable setups table, the agents and the chart")
    configs = sub.add_parser(
        "configs", help="an agent's configuration versions, newest first, and what changed between them",
        description="Every version of an agent's definition the plugin recorded (prompt, temperature, topP, tools, "
                    "permissions, instructions files, MCP servers, the parameters really sent), newest first, each "
                    "with its sessions, its score and a diff against the version before it. Sessions from before "
                    "versions were recorded are the version 'unknown'.",
        epilog="examples:\n  agent-tracker configs\n  agent-tracker configs build\n  agent-tracker configs build --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _reading(configs)
    configs.add_argument("agent", nargs="?", metavar="AGENT", help="only this agent (default: every agent)")
    configs.add_argument("--min-sessions", type=int, default=None, metavar="N",
                         help="sessions a setup needs to be ranked (default 3)")
    export = sub.add_parser("export", help="sessions, commits and grade events for spreadsheets/DuckDB/pandas")
    _common(export)
    export.add_argument("--format", choices=("json", "csv", "jsonl"), default="json")
    export.add_argument("--include-prompts", action="store_true",
                        help="include the agents' prompt texts in the configuration versions (default: only "
                             "each prompt's SHA-256 and length)")
    export.add_argument("--output", "-o", metavar="PATH",
                        help="file (json/jsonl) or folder (csv: one file per table); default stdout")
    migrate = sub.add_parser("migrate", help="import databases written by the older TypeScript plugin")
    _reading(migrate)
    migrate.add_argument("paths", nargs="*", metavar="PATH",
                         help="project folders or lmdb-js database files (default: the central path)")
    migrate.add_argument("--dry-run", action="store_true", help="read and count, write nothing")
    history = sub.add_parser("import-opencode", help="import your past sessions from OpenCode's own history database",
                             description="Reads OpenCode's history (opencode.db) read-only and feeds every past session "
                                         "through the same rules as live events: sessions, tool calls, commits and "
                                         "pushes, what each model call cost. Running it again, or on sessions the "
                                         "plugin tracked live, counts nothing twice.")
    _reading(history)
    history.add_argument("--db", metavar="PATH",
                         help="OpenCode's database (default: $OPENCODE_DB, else opencode.db in $XDG_DATA_HOME/opencode "
                              "or ~/.local/share/opencode)")
    history.add_argument("--since", metavar="WHEN", help=f"only sessions created from WHEN on: {WHEN}")
    history.add_argument("--dry-run", action="store_true",
                         help="import into a throw-away copy of the database and show what would be added")
    reinstate = sub.add_parser("reinstate", help="give a halted agent its SP back (recorded as an event)")
    _common(reinstate)
    reinstate.add_argument("agent")
    reinstate.add_argument("--reason")
    bug = sub.add_parser("bug", help="report a bug of an agent: SP -1; at SP 0 its tools are blocked",
                         description="Report a bug of AGENT (for a commit it made, with --commit): its skill points "
                                     "drop by 1 and the bug counts against its setup in the report. At SP 0 the agent "
                                     "is halted: OpenCode blocks its next tool call until `agent-tracker reinstate "
                                     "AGENT`.")
    _reading(bug)
    bug.add_argument("agent")
    bug.add_argument("--commit", metavar="HASH", help="the commit with the bug (short or full hash)")
    bug.add_argument("--project", metavar="DIR", help="the project of --commit, when the hash is in several")
    bug.add_argument("--reason", help="what is wrong (stored as the bug's description)")
    replay = sub.add_parser("replay", help="feed a recorded session (.jsonl) into a database")
    _reading(replay)
    replay.add_argument("files", nargs="+", metavar="FILE")
    demo = sub.add_parser("demo", help="replay the example sessions into a temporary database and report",
                          description="Replays the recorded example sessions through the real bridge, spread "
                                      "over six simulated weeks, into a throw-away database, and prints the report.")
    demo.add_argument("--keep", metavar="DIR", help="keep the demo database in DIR")
    demo.add_argument("--chart", metavar="FILE", help="also draw the chart")
    install = sub.add_parser("install-plugin", help="install the OpenCode plugin (global, or --project DIR)")
    install.add_argument("--project", metavar="DIR")
    install.add_argument("--dry-run", action="store_true")
    install.add_argument("--bridge-command", metavar="CMD",
                         help='how OpenCode starts the bridge (default: "agent-tracker serve" if on PATH, '
                              'else this Python with -m bridge serve)')
    uninstall = sub.add_parser("uninstall-plugin", help="remove the OpenCode plugin")
    uninstall.add_argument("--project", metavar="DIR")
    return parser


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-tracker serve",
                                     description="Run the bridge on stdio (what the OpenCode plugin spawns).")
    _common(parser)
    return parser
