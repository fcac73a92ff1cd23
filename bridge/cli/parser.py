"""The command line: one argparse parser, every command and flag declared here."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

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
TEAM_HELP = """\
Reads the Parquet exports of several people (or machines) with DuckDB (the optional extra:
pip install 'agent-tracker[team]'), keeps one row per stable id (a session exported twice
counts once), sums each setup's statistics per person in SQL and scores them with the report's
formula. Setups are ranked per stack on everyone's numbers (as a report over one database holding
every export would), and compared within persons: withinPerson is how far a setup scores above
the same person's other setups of the stack, so one person's harsher grading does not decide.
"""
IMPORT_HELP = """\
Merges an export of another database (a Parquet folder, or `export --format jsonl`) into this one:
sessions, commits, grades, bugs and their projects' stacks, each written only when it is not there
yet, so a second import adds nothing and a session the plugin recorded here is never counted twice.
Nothing is deleted. Agents' SP, XP and CS stay this machine's own (see docs/team.md).
"""
WHEN = "a date (2026-10-01), an ISO timestamp (2026-10-01T14:00Z, UTC unless it says) or Nd (N days ago: 30d)"


# The one contract of every command, in each --help (and in the README's "Commands").
CONTRACT = """\
Every command: --json prints machine-readable output (an error as {"error", "exitCode", "hint"});
--no-color (or NO_COLOR=1) turns colour off; an error is one line, its hint one more.
Exit codes: 0 done, 1 failed, 2 usage error, 3 no database, 4 not a usable database, 5 cannot
write the database, 130 interrupted."""

# Examples for each command's --help, the first one the most common use.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "serve": ("agent-tracker serve            # what the OpenCode plugin spawns",),
    "status": ("agent-tracker status", "agent-tracker status build --json"),
    "doctor": ("agent-tracker doctor --summaries", "agent-tracker doctor --summaries --json",
               "agent-tracker doctor --rebuild"),
    "recommend": ("agent-tracker recommend", "agent-tracker recommend ~/code/payments --min-sessions 5",
                  "agent-tracker recommend --explore      # the setup to run the next session with (an experiment)",
                  "agent-tracker recommend --write", "agent-tracker recommend --as-file --write",
                  "agent-tracker recommend --json"),
    "report": ("agent-tracker report", "agent-tracker report --stack python --since 30d",
               "agent-tracker report --model gpt-5 --json", "agent-tracker report --html report.html"),
    "usage": ("agent-tracker usage daily", "agent-tracker usage monthly --breakdown",
              "agent-tracker usage weekly --since 2026-10-01 --timezone Europe/Berlin",
              "agent-tracker usage session --project shop-api --json"),
    "configs": ("agent-tracker configs", "agent-tracker configs build", "agent-tracker configs build --json"),
    "export": ("agent-tracker export --format csv --output tables/", "agent-tracker export --json > all.json",
               "agent-tracker export --json --include-prompts > all-with-prompts.json",
               "agent-tracker export --format jsonl --output sessions.jsonl"),
    "team-report": ("agent-tracker team-report ~/team/exports",
                    "agent-tracker team-report s3://bucket/team --json      # credentials from AWS_* variables",
                    "agent-tracker team-report ~/team/exports --html team.html",
                    "agent-tracker export --format parquet ~/team/exports --person alice   # each person's part"),
    "import-export": ("agent-tracker import-export ~/team/exports --dry-run",
                      "agent-tracker import-export ~/team/exports --person alice     # the laptop's rows",
                      "agent-tracker import-export laptop-export.jsonl"),
    "migrate": ("agent-tracker migrate ~/code/shop", "agent-tracker migrate --dry-run"),
    "import-opencode": ("agent-tracker import-opencode --dry-run", "agent-tracker import-opencode --since 90d"),
    "reinstate": ("agent-tracker reinstate build --reason 'reviewed the fix'",),
    "bug": ("agent-tracker bug build --commit abc1234 --reason 'breaks checkout'",),
    "replay": ("agent-tracker replay session.jsonl --database /tmp/try.lmdb",),
    "demo": ("agent-tracker demo", "agent-tracker demo --keep ~/agent-tracker-demo"),
    "install-plugin": ("agent-tracker install-plugin", "agent-tracker install-plugin --project . --dry-run"),
    "uninstall-plugin": ("agent-tracker uninstall-plugin", "agent-tracker uninstall-plugin --project ."),
}


class Parser(argparse.ArgumentParser):
    """A usage error is one line and one hint (argparse prints the whole usage block first)."""

    def error(self, message: str) -> NoReturn:
        from .common import EXIT_USAGE, print_error

        command = self.prog.removeprefix("agent-tracker").strip()
        where = f"{command}: " if command else ""
        print_error(f"{where}{message}", f"{self.prog} --help shows every option, with examples.")
        raise SystemExit(EXIT_USAGE)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help text folded between words only: never "agent-" at the end of a line and "tracker" on
    the next (argparse breaks on hyphens by default)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)


def epilog(command: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[command]) + "\n\n" + CONTRACT


def _command(sub: Any, name: str, **options: Any) -> argparse.ArgumentParser:
    """A subcommand with its examples and the contract in its --help, and --no-color."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, epilog=epilog(name), formatter_class=HelpFormatter, **options)
    parser.add_argument("--no-color", action="store_true", help="no colour (as NO_COLOR=1 does)")
    return parser


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _window(parser: argparse.ArgumentParser, what: str) -> None:
    """--since/--until, as the report reads them (UTC unless a timestamp says)."""
    parser.add_argument("--since", metavar="WHEN", help=f"{what} from WHEN on: {WHEN}")
    parser.add_argument("--until", metavar="WHEN", help=f"{what} up to WHEN (a date counts whole): {WHEN}")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="PATH",
                        help="database file (default: $XDG_CONFIG_HOME or ~/.config, /opencode/agent-tracker.lmdb; "
                             "relative paths resolve against the home directory; ':memory:' for a throw-away one)")
    parser.add_argument("--max-database-size", metavar="SIZE",
                        help="map size ceiling in bytes or like 256MiB (1 MiB..2 GiB, default 512 MiB)")


def _reading(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    _json(parser)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = Parser(prog="agent-tracker", description=DESCRIPTION, epilog=CONTRACT,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"agent-tracker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _common(_command(sub, "serve", help="run the bridge on stdio (what the OpenCode plugin spawns)"))
    status = _command(sub, "status", help="an agent's sheet (or all agents)")
    _reading(status)
    status.add_argument("agent", nargs="?", help="one agent's sheet, setups and recent events (default: every agent)")
    _window(status, "the agent's setups count only records")
    from ..report.score import SCORE_HELP  # a light import (no matplotlib, no LMDB)

    recommend = _command(sub, "recommend", help="which agent and model to configure for a project (default: this folder)",
        description="Classifies DIR's stack from its manifest files and answers which agent and model to "
                    "configure, how sure that is (P(best): the chance it is the best setup, from a posterior of "
                    "every setup's score) and, when it is not sure yet (P(best) below 0.8), which setups to "
                    "try next. When no setup was used on that exact stack, setups of the same language "
                    "answer, then setups of all projects; the answer says which level it comes from, and the "
                    "probability carries the doubt that setups differ between stacks. Prints an OpenCode "
                    "config snippet to copy.",
        )
    _reading(recommend)
    recommend.add_argument("directory", nargs="?", default=".", metavar="DIR",
                           help="the project folder (default: the current folder)")
    recommend.add_argument("--min-sessions", type=int, default=None, metavar="N",
                           help="sessions a setup needs to be a contender (default 1: every setup with a "
                                "session is one, with the probability its few sessions allow)")
    recommend.add_argument("--explore", action="store_true",
                           help="name the setup to run the next session with, drawn by Thompson sampling from "
                                "the same posterior (each setup as often as it may be the best)")
    _window(recommend, "only records")
    recommend.add_argument("--as-file", action="store_true",
                           help="print the agent's definition as .opencode/agent/NAME.md (frontmatter and prompt) "
                                "instead of an opencode.json block")
    recommend.add_argument("--write", action="store_true",
                           help="write the recommended agent block into DIR's opencode.json (or opencode.jsonc; "
                                "comments and everything else are kept, a numbered backup is made; with --as-file: "
                                "write DIR/.opencode/agent/NAME.md)")
    report = _command(sub, "report", help="which setup (agent, model, stack) does best", description=SCORE_HELP)
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
    usage = _command(sub, "usage", help="spend, tokens, sessions and commits per day, week, month or session",
        description="What your model calls cost over time, as ccusage shows it, plus what only agent-tracker "
                    "knows: commits, grades and bugs per period. Each message counts under the model that "
                    "produced it, at its own time, in --timezone (default: this machine's).")
    _reading(usage)
    usage.add_argument("view", choices=("daily", "weekly", "monthly", "session"),
                       help="one row per day, week (from Monday), month or session")
    usage.add_argument("--breakdown", action="store_true", help="a row per model under each period")
    usage.add_argument("--project", metavar="PATH|NAME", help="only this project (as report --project)")
    usage.add_argument("--since", metavar="WHEN", help=f"from WHEN on, in --timezone: {WHEN}")
    usage.add_argument("--until", metavar="WHEN", help=f"up to WHEN (a date counts whole), in --timezone: {WHEN}")
    usage.add_argument("--timezone", metavar="TZ",
                       help="local (default), UTC, an IANA name (Europe/Berlin) or an offset (+02:00)")
    configs = _command(
        sub, "configs", help="an agent's configuration versions, newest first, and what changed between them",
        description="Every version of an agent's definition the plugin recorded (prompt, temperature, topP, tools, "
                    "permissions, instructions files, MCP servers, the parameters really sent), newest first, each "
                    "with its sessions, its score and a diff against the version before it. Sessions from before "
                    "versions were recorded are the version 'unknown'.")
    _reading(configs)
    configs.add_argument("agent", nargs="?", metavar="AGENT", help="only this agent (default: every agent)")
    configs.add_argument("--min-sessions", type=int, default=None, metavar="N",
                         help="sessions a setup needs to be ranked (default 3)")
    export = _command(sub, "export", help="sessions, commits and grade events for spreadsheets/DuckDB/pandas")
    _common(export)
    _json(export)
    export.add_argument("--format", choices=("json", "csv", "jsonl", "parquet"), default=None,
                        help="json (one document, the default; as --json), csv (a file per table), jsonl, or "
                             "parquet (the optional team extra): one dataset per table, partitioned by month, "
                             "for team-report, DuckDB, Spark (docs/schema.md)")
    _window(export, "only the events (sessions, commits, grades, activities, usage); parquet: only rows recorded "
                    "or updated in that time (an incremental export)")
    export.add_argument("--output", "-o", metavar="PATH",
                        help="file (json/jsonl) or folder (csv: one file per table; parquet: one dataset per "
                             "table); default stdout")
    export.add_argument("folder", nargs="?", metavar="DIR", help="parquet: the folder (the same as --output)")
    export.add_argument("--person", metavar="NAME",
                        help="parquet: who the rows belong to (default: a stable pseudonym of the database id, "
                             "never your user name)")
    export.add_argument("--include-prompts", action="store_true",
                        help="include the agents' prompt texts in the configuration versions (default: only each "
                             "prompt's SHA-256 and length); parquet: also session titles and commit task descriptions")
    team = _command(
        sub, "team-report", help="several people's Parquet exports: setups scored and compared within persons",
        description=TEAM_HELP)
    team.add_argument("paths", nargs="+", metavar="PATH",
                      help="export folders (agent-tracker export --format parquet DIR), or s3://bucket/prefix")
    _json(team)
    team.add_argument("--html", metavar="FILE", help="write the team report as one self-contained HTML page")
    team.add_argument("--min-sessions", type=int, default=None, metavar="N",
                      help="sessions a setup needs to be ranked (default 3)")
    merge = _command(
        sub, "import-export", help="merge another machine's export (Parquet folder or JSONL file) into this database",
        description=IMPORT_HELP)
    _reading(merge)
    merge.add_argument("path", metavar="PATH", help="a Parquet export folder or an `export --format jsonl` file")
    merge.add_argument("--dry-run", action="store_true", help="read, check and count; write nothing")
    merge.add_argument("--person", metavar="NAME",
                       help="Parquet: only this person's rows (your other machine's, from a shared team folder)")
    migrate = _command(sub, "migrate", help="import databases written by the older TypeScript plugin")
    _reading(migrate)
    migrate.add_argument("paths", nargs="*", metavar="PATH",
                         help="project folders or lmdb-js database files (default: the central path)")
    migrate.add_argument("--dry-run", action="store_true", help="read and count, write nothing")
    history = _command(sub, "import-opencode", help="import your past sessions from OpenCode's own history database",
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
    reinstate = _command(sub, "reinstate", help="give a halted agent its SP back (recorded as an event)")
    _common(reinstate)
    _json(reinstate)
    reinstate.add_argument("agent", help="the halted agent, e.g. build")
    reinstate.add_argument("--reason", help="why (stored with the event)")
    bug = _command(sub, "bug", help="report a bug of an agent: SP -1; at SP 0 its tools are blocked",
                         description="Report a bug of AGENT (for a commit it made, with --commit): its skill points "
                                     "drop by 1 and the bug counts against its setup in the report. At SP 0 the agent "
                                     "is halted: OpenCode blocks its next tool call until `agent-tracker reinstate "
                                     "AGENT`.")
    _reading(bug)
    bug.add_argument("agent", help="the agent with the bug, e.g. build")
    bug.add_argument("--commit", metavar="HASH", help="the commit with the bug (short or full hash)")
    bug.add_argument("--project", metavar="DIR", help="the project of --commit, when the hash is in several")
    bug.add_argument("--reason", help="what is wrong (stored as the bug's description)")
    doctor = _command(
        sub, "doctor", help="check the report's summaries against the events (--summaries), or rebuild them",
        description="report and recommend read per-session summaries that every write keeps in its own "
                    "transaction. --summaries recomputes them from the events and lists what differs "
                    "(exit 1 when anything does); --rebuild rewrites them from the events in one transaction.")
    _reading(doctor)
    what = doctor.add_mutually_exclusive_group()
    what.add_argument("--summaries", action="store_true", help="compare the summaries with the events (the default)")
    what.add_argument("--rebuild", action="store_true", help="rewrite the summaries from the events")
    replay = _command(sub, "replay", help="feed a recorded session (.jsonl) into a database")
    _reading(replay)
    replay.add_argument("files", nargs="+", metavar="FILE")
    demo = _command(sub, "demo", help="replay the example sessions into a temporary database and report",
                          description="Replays the recorded example sessions through the real bridge, spread "
                                      "over six simulated weeks, into a throw-away database, and prints the report.")
    _json(demo)
    demo.add_argument("--keep", metavar="DIR", help="keep the demo database in DIR")
    demo.add_argument("--chart", metavar="FILE", help="also draw the chart")
    install = _command(sub, "install-plugin", help="install the OpenCode plugin (global, or --project DIR)")
    _json(install)
    install.add_argument("--project", metavar="DIR",
                         help="install for this project only (DIR/.opencode) instead of every project")
    install.add_argument("--dry-run", action="store_true", help="say what would be written, write nothing")
    install.add_argument("--bridge-command", metavar="CMD",
                         help='how OpenCode starts the bridge (default: "agent-tracker serve" if on PATH, '
                              'else this Python with -m bridge serve)')
    uninstall = _command(sub, "uninstall-plugin", help="remove the OpenCode plugin")
    _json(uninstall)
    uninstall.add_argument("--project", metavar="DIR", help="remove it from this project (DIR/.opencode) only")
    return parser


def serve_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="agent-tracker serve",
                                     description="Run the bridge on stdio (what the OpenCode plugin spawns).")
    _common(parser)
    return parser
