"""What every command shares: exit codes, errors, output, configuration, opening the database.

Exit codes (documented in docs/README-report.md):
  0  done
  1  the command ran but could not do what was asked (unknown agent, unreadable file, ...)
  2  usage or configuration error
  3  no database at the path (nothing recorded yet)
  4  the file at the path is not a usable agent-tracker database (written by the older
     TypeScript plugin: run `agent-tracker migrate`; corrupt; another program's; no permission)
  5  the database could not be written (full, read-only)
130 interrupted
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path
from typing import Any, Callable, TextIO, cast

import orjson

from ..config import BridgeConfig, ConfigError, load_config
from ..display import display_name
from ..store import DatabaseFull, NotInitialised, Store

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_DATABASE, EXIT_UNUSABLE, EXIT_WRITE = 0, 1, 2, 3, 4, 5


EXIT_INTERRUPTED = 130



class CommandError(Exception):
    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.message = message
        self.code = code



# -- output ------------------------------------------------------------------------------------

class Output:
    """What this invocation's output looks like: ``--no-color`` (and the NO_COLOR environment
    variable, which rich honours itself) turns colour off. Set once per command by cli.run."""

    color = True


class TrimmedLines(io.TextIOBase):
    """Writes lines without their trailing spaces: rich pads a table's lines to the console's
    width, which in a file or a pipe is only noise (and 200 columns of it)."""

    def __init__(self, target: TextIO):
        self.target = target
        self.pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        if lines:
            self.target.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        # A line without its newline yet (rich ends every print with one): written as it is.
        if self.pending:
            self.target.write(self.pending)
            self.pending = ""
        self.target.flush()

    def isatty(self) -> bool:
        return False


def make_console(file: TextIO | None = None) -> Any:
    """A rich console as wide as the terminal; piped output is 200 columns unless COLUMNS says,
    and never padded with trailing spaces."""
    import os

    from rich.console import Console

    # markup and emoji off: what is printed holds names and paths, which are data, never markup
    # ("[/]x" is an agent's name, ":x:" no emoji); styles come from Text objects.
    target = file or sys.stdout
    no_color = True if not Output.color else None
    console = Console(file=target, highlight=False, markup=False, emoji=False, no_color=no_color)
    if not console.is_terminal:
        width = None if os.environ.get("COLUMNS") else 200
        console = Console(file=cast(TextIO, TrimmedLines(target)), highlight=False, markup=False, emoji=False,
                          width=width, no_color=no_color)
    return console


def folds_prose(console: Any) -> bool:
    """Whether sentences are folded at the console's width: in a terminal (or at a width COLUMNS
    gives), yes; piped into a file or another program, each stays one line."""
    import os

    return bool(console.is_terminal or os.environ.get("COLUMNS"))



def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")
    sys.stdout.flush()



_SENTENCE_END = re.compile(r"(?<=[.!?:)])\s+(?=[A-Z`(])")


def error_lines(message: str, hint: str | None = None) -> tuple[str, str | None]:
    """(the error, the hint): the first sentence says what went wrong, the rest is what to do."""
    if hint is None:
        parts = _SENTENCE_END.split(message.strip(), maxsplit=1)
        if len(parts) == 2 and parts[0].endswith("."):
            return parts[0], parts[1]
    return message.strip(), hint


def print_error(message: str, hint: str | None = None) -> None:
    """One line for the error and at most one for the hint; in a terminal narrower than a line,
    folded between words (the terminal itself would cut a word in two)."""
    import os
    import shutil
    import textwrap

    error, hint = error_lines(message, hint)
    lines = [f"agent-tracker: {error}"] + ([f"hint: {hint}"] if hint else [])
    if sys.stderr.isatty():
        width = int(os.environ.get("COLUMNS") or shutil.get_terminal_size().columns)
        lines = [textwrap.fill(line, width=max(width, 20), subsequent_indent="  ", break_long_words=False,
                               break_on_hyphens=False) for line in lines]
    print("\n".join(lines), file=sys.stderr, flush=True)



def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"databasePath": getattr(args, "database", None),
            "maxDatabaseSize": getattr(args, "max_database_size", None)}


# -- configuration and opening ----------------------------------------------------------------------

def command_config(args: argparse.Namespace) -> BridgeConfig:
    """The same configuration as the bridge: defaults < environment < --database/--max-database-size."""
    try:
        return load_config(None, cli_overrides(args))
    except ConfigError as exc:
        raise CommandError(f"Invalid configuration: {exc}", EXIT_USAGE) from None



def unusable(store: Store) -> CommandError:
    """The store could not be opened: its failure's kind chooses the exit code."""
    failure = store.failure
    message = store.error or f"Cannot open the database at {store.path}."
    if isinstance(failure, NotInitialised):
        return CommandError(f"{message} Nothing has been recorded there yet.", EXIT_NO_DATABASE)
    if isinstance(failure, DatabaseFull):
        return CommandError(message, EXIT_WRITE)
    return CommandError(message, EXIT_UNUSABLE)


def resolved_argument(text: str) -> Path:
    """An absolute, resolved path from the command line; a symlink loop is a clear error."""
    try:
        return Path(text).expanduser().resolve()
    except FileNotFoundError as exc:
        if exc.filename is None:  # os.getcwd(): the folder the command runs in was deleted
            raise CommandError(f"Cannot use {display_name(text)}: the current folder no longer exists "
                               f"(it was deleted or moved); cd into the project's folder or name it.",
                               EXIT_FAILED) from None
        raise CommandError(f"Cannot use {display_name(text)}: {exc.strerror}.", EXIT_FAILED) from None
    except (RuntimeError, OSError) as exc:  # Python 3.11 raises RuntimeError for a loop, 3.13 OSError
        reason = getattr(exc, "strerror", None) or "it is a symbolic link loop"
        raise CommandError(f"Cannot use {display_name(text)}: {reason}.", EXIT_FAILED) from None


def database_path(config: BridgeConfig) -> Path:
    path = config.resolved_database_path()
    if path is None:
        raise CommandError("':memory:' is a throw-away database that only lives inside one bridge; "
                           "there is nothing to read. Give --database PATH.", EXIT_NO_DATABASE)
    return path



def missing(path: Path, given: str | None = None) -> CommandError:
    """No database at ``path``; ``given`` is what --database said, when it was relative (it is
    resolved against the home directory, as the bridge does: say so, and name the file of that
    name in the current folder, the one the user probably meant)."""
    import os

    if given is not None and not os.path.isabs(os.path.expanduser(given)):
        here = Path.cwd() / given
        meant = f" There is one at {here}: pass --database {here}." if here.exists() else ""
        return CommandError(f"No agent-tracker database at {path} (a relative --database is resolved against the "
                            f"home directory, not the current folder).{meant or ' Pass an absolute path.'}",
                            EXIT_NO_DATABASE)
    return CommandError(
        f"No agent-tracker database at {path}. It is created when OpenCode first runs the plugin "
        f"(agent-tracker install-plugin); try agent-tracker demo, or pass --database PATH.", EXIT_NO_DATABASE)



def open_for_reading(config: BridgeConfig) -> Store:
    """Open read-only, or CommandError with exit code 3 (missing) or 4 (not usable)."""
    path = database_path(config)
    if not path.exists():
        raise missing(path, config.database_path)
    if path.is_file() and path.stat().st_size == 0:
        raise CommandError(f"The file at {path} is empty: no agent-tracker database there yet.",
                           EXIT_NO_DATABASE)
    store = Store.open(config, readonly=True)
    if not store.available:
        raise unusable(store)
    return store



def open_for_writing(config: BridgeConfig, *, must_exist: bool = False) -> Store:
    path = database_path(config)
    if must_exist and not path.exists():
        raise missing(path, config.database_path)
    store = Store.open(config)
    if not store.available:
        raise unusable(store)
    if store.read_only:
        store.close()
        raise CommandError(store.error or f"The database at {path} cannot be written.", EXIT_WRITE)
    return store



def storable(text: str) -> bool:
    """Whether a command-line argument can name a stored record: a name that is not UTF-8 (a lone
    surrogate from the file system's encoding) never does."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def unknown_agent(agent_id: str, known: Any, path: Path) -> CommandError:
    """No such agent: the error lists the known ones, each as display text."""
    listed = ", ".join(display_name(name) for name in sorted(known)) or "none yet"
    return CommandError(f"No agent named '{display_name(agent_id)}' in {display_name(path, 400)}. "
                        f"Known agents: {listed}.")


def stored_agent(store: Store, agent_id: str) -> dict[str, Any]:
    """The agent's stored record; an unknown name is an error that lists the known ones."""
    with store.read() as view:
        record = view.get("agents", agent_id) if storable(agent_id) else None
        if record is not None:
            return dict(record)
        known = [k for k, _ in view.scan("agents")]
    raise unknown_agent(agent_id, known, store.path)


def write_event(store: Store, config: BridgeConfig, method: str, params: dict[str, Any]) -> Any:
    """One event through the tracking rules, as a bridge would take it, written at once.

    A one-shot writer: on a full disk or map it says so and exits (EXIT_WRITE) instead of holding
    the event as a bridge does.
    """
    import secrets

    from ..tracking.service import TrackingService

    service = TrackingService(store, config.scoring, journal_id=f"cli-{secrets.token_hex(6)}", holds_events=False)
    result = service.handle(method, params)
    flushed = service.flush()
    if flushed.errors:
        raise CommandError(flushed.errors[0], EXIT_WRITE)
    return result


def report_failure(args: argparse.Namespace, message: str, code: int) -> None:
    print_error(message)
    if getattr(args, "json", False):
        error, hint = error_lines(message)
        print_json({"error": message, "exitCode": code, "message": error, "hint": hint})


class ProgressBar:
    """A rich progress bar on standard error (off for --json): ``with ProgressBar(...) as advance``
    gives ``advance(done, total)``, or None when off. Started at the first report, not before: the
    import may fork a second process first, and rich's refresh thread must not exist when it does."""

    def __init__(self, label: str, unit: str, enabled: bool):
        self.label, self.unit, self.enabled = label, unit, enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        return self._advance if self.enabled else None

    def _advance(self, done: int, total: int) -> None:
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(),
                                      TextColumn(self.unit), TimeRemainingColumn(), console=make_console(sys.stderr),
                                      transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=total)
        self._progress.update(self._task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
