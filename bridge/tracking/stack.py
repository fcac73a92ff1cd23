"""Classify a project's stack (language/framework) from its manifest files and AGENTS.md.

Files are only read, never executed, and only through ``read_project_file`` (bridge.safe_read,
the one bounded reader): regular files only (a FIFO, a device, a socket, a folder is refused
without anything that could block), at most MAX_READ bytes; a symlink loop or an unreadable
file is refused. Nothing parses user data recursively: a
package.json nested deeper than MAX_JSON_DEPTH is not parsed (its depth is measured by a flat
scan first). The fingerprint (names, sizes, mtimes) lets the tracker refresh the stored
classification only when those files change.

The stack is recorded when a session starts (the projects record); the report never reads a
project's files (a hostile repository cannot break the report for every project).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import queue
import re
import stat
import threading
from itertools import accumulate
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import attrs

from ..safe_read import FileRefused, read_regular

MAX_READ = 256 * 1024
MAX_JSON_DEPTH = 64  # package.json nests 3 or 4 levels; json.loads recurses once per level

_PYTHON_IN_CODE = [
    ("fastapi", r"\bfastapi\b"), ("django", r"\bdjango\b"), ("flask", r"\bflask\b"),
]
# (manifest file, language, [(framework, pattern in the file's text)...]) in priority order.
_MANIFESTS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("pyproject.toml", "python", [
        ("fastapi", r"\bfastapi\b"), ("django", r"\bdjango\b"), ("flask", r"\bflask\b"),
        ("pytorch", r"\btorch\b"), ("streamlit", r"\bstreamlit\b"), ("pygls", r"\bpygls\b"),
    ]),
    ("requirements.txt", "python", [
        ("fastapi", r"(?im)^fastapi\b"), ("django", r"(?im)^django\b"), ("flask", r"(?im)^flask\b"),
    ]),
    ("setup.py", "python", _PYTHON_IN_CODE),
    ("setup.cfg", "python", _PYTHON_IN_CODE),
    ("Pipfile", "python", _PYTHON_IN_CODE),
    ("Cargo.toml", "rust", [
        ("axum", r"\baxum\b"), ("actix-web", r"\bactix-web\b"), ("rocket", r"\brocket\b"),
        ("bevy", r"\bbevy\b"), ("tauri", r"\btauri\b"),
    ]),
    ("go.mod", "go", [
        ("gin", r"gin-gonic/gin"), ("echo", r"labstack/echo"), ("fiber", r"gofiber/fiber"),
    ]),
    ("composer.json", "php", [("laravel", r"laravel/framework"), ("symfony", r"symfony/")]),
    ("pom.xml", "java", [("spring-boot", r"spring-boot"), ("quarkus", r"quarkus")]),
    ("build.gradle.kts", "kotlin", [("spring-boot", r"spring-boot"), ("android", r"com\.android")]),
    ("build.gradle", "java", [("spring-boot", r"spring-boot"), ("android", r"com\.android")]),
    ("Gemfile", "ruby", [("rails", r"""gem\s+['"]rails['"]"""), ("sinatra", r"""gem\s+['"]sinatra['"]""")]),
    ("mix.exs", "elixir", [("phoenix", r":phoenix\b")]),
    ("pubspec.yaml", "dart", [("flutter", r"(?m)^[ \t]*flutter[ \t]*:")]),
    ("Package.swift", "swift", [("vapor", r"vapor/vapor")]),
]
_JS_FRAMEWORKS = [
    ("next", "next"), ("nuxt", "nuxt"), ("sveltekit", "@sveltejs/kit"), ("svelte", "svelte"),
    ("angular", "@angular/core"), ("nestjs", "@nestjs/core"), ("remix", "@remix-run/react"),
    ("react", "react"), ("vue", "vue"), ("express", "express"), ("fastify", "fastify"),
    ("electron", "electron"),
]
# Project files are anyone's text (a cloned repository's AGENTS.md): everything here runs in time
# linear in what is read. The framework patterns above are literals, anchored at line starts with
# [ \t]* or followed by one run of \s: each character is looked at a bounded number of times. The
# stack line is parsed line by line (declared_stack), not with one pattern over the whole file.
_STACK_WORD = re.compile(r"[\w.+#-]+")
_BOLD = ("**", "__")
FINGERPRINT_FILES = [name for name, _, _ in _MANIFESTS] + ["package.json", "tsconfig.json", "AGENTS.md"]


@attrs.frozen
class Stack:
    language: str
    framework: str | None
    sources: tuple[str, ...]
    # Why the folder could not be read (one sentence), when it could not: a symlink loop, not a folder.
    refused: str | None = None

    @property
    def name(self) -> str:
        return f"{self.language}/{self.framework}" if self.framework else self.language

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"stack": self.name, "language": self.language, "framework": self.framework,
                                  "sources": list(self.sources)}
        if self.refused is not None:
            record["refused"] = self.refused
        return record


def read_project_file(path: Path, limit: int = MAX_READ) -> str | None:
    """The first ``limit`` bytes of a project file as text, or None: absent, not a regular file
    (a FIFO never blocks the reader), a symlink loop, unreadable (safe_read, the one bounded reader)."""
    try:
        data = read_regular(path, limit)
    except FileRefused:
        return None
    return None if data is None else data.decode("utf-8", errors="replace")


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep ``text``'s arrays and objects nest, measured flat (no recursion, linear time):
    strings are blanked out first, then the brackets are counted."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_NESTING.__getitem__, brackets)), default=0)


def folder_refusal(directory: Path) -> str | None:
    """Why ``directory`` cannot be classified, in one sentence, or None when it is a folder."""
    try:
        mode = os.stat(directory).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{directory} is a symbolic link loop: its stack is not classified."
        if exc.errno == errno.ENOENT:
            return None  # a folder that is gone: simply unknown
        return f"{directory} cannot be read ({exc.strerror}): its stack is not classified."
    except ValueError:
        return f"{directory!r} holds a NUL character: its stack is not classified."
    if not stat.S_ISDIR(mode):
        return f"{directory} is not a folder: its stack is not classified."
    return None


def fingerprint(directory: Path) -> str:
    digest = hashlib.sha1()
    for name in FINGERPRINT_FILES:
        try:
            info = (directory / name).stat()
        except (OSError, ValueError):
            continue
        digest.update(f"{name}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()


def classify(directory: Path) -> Stack:
    refused = folder_refusal(directory)
    if refused is not None:
        return Stack("unknown", None, (), refused)
    agents_md = read_project_file(directory / "AGENTS.md")
    if agents_md and (declared := declared_stack(agents_md)):
        language, _, declared_framework = declared.partition("/")
        return Stack(language, declared_framework or None, ("AGENTS.md",))
    package = read_project_file(directory / "package.json")
    if package is not None:
        javascript = _classify_package_json(directory, package)
        # A package.json without a framework next to another manifest is usually tooling
        # (prettier, a CSS build) for a project in that other language.
        if javascript.framework is not None or not any((directory / name).is_file() for name, _, _ in _MANIFESTS):
            return javascript
    for name, language, frameworks in _MANIFESTS:
        text = read_project_file(directory / name)
        if text is None:
            continue
        framework = next((fw for fw, pattern in frameworks if re.search(pattern, text, re.I)), None)
        if framework is None and agents_md:
            framework = next((fw for fw, pattern in frameworks if re.search(pattern, agents_md, re.I)), None)
        return Stack(language, framework, (name,))
    return Stack("unknown", None, ())


def _classify_package_json(directory: Path, text: str) -> Stack:
    deps: dict[str, Any] = {}
    if json_depth(text) <= MAX_JSON_DEPTH:  # deeper: not a package.json anyone wrote, not parsed
        try:
            manifest = json.loads(text)
            deps = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
        except (ValueError, AttributeError, TypeError):
            deps = {}
    typescript = "typescript" in deps or (directory / "tsconfig.json").is_file()
    framework = next((fw for fw, dep in _JS_FRAMEWORKS if dep in deps), None)
    sources = ("package.json", "tsconfig.json") if (directory / "tsconfig.json").is_file() else ("package.json",)
    return Stack("typescript" if typescript else "javascript", framework, sources)


def declared_stack(text: str) -> str | None:
    """The first "Stack: language[/framework]" line of an AGENTS.md, lower-cased, or None.

    Also as a list item or in bold: "- **Stack:** Python / FastAPI", "**Stack**: `go/gin`". One
    line, scanned line by line: the regular expression this replaces let its leading ``\\s*`` run
    across lines, so a run of blank lines cost quadratic time (20,000 lines took 17 s, for every
    session in that project), and ``stack:`` followed by 100,000 spaces took minutes.
    """
    if "stack" not in text.casefold():
        return None
    for line in text.split("\n"):
        value = _stack_line_value(line) if ":" in line else None
        if value is not None:
            return value
    return None


def _stack_line_value(line: str) -> str | None:
    """What the old pattern accepted on one line, with str methods that each scan it once."""
    rest = line.strip()
    if rest[:1] in ("-", "*", "+") and rest[1:2].isspace():  # a list item
        rest = rest[1:].lstrip()
    rest = _unbold(rest)
    if rest[:5].casefold() != "stack":
        return None
    rest = _unbold(rest[5:]).lstrip()
    if not rest.startswith(":"):
        return None
    rest = rest[1:].lstrip()
    value = _stack_value(_unbold(rest).lstrip())
    if value is None and rest.startswith("__"):
        value = _stack_value(rest)  # "__" is a word too: "stack: __" declares the stack "__"
    return value


def _stack_value(rest: str) -> str | None:
    """``language`` or ``language / framework``, optionally in backticks."""
    if rest.startswith("`"):
        rest = rest[1:]
    if rest.endswith("`"):
        rest = rest[:-1]
    language, slash, framework = rest.partition("/")
    if slash:
        language, framework = language.rstrip(), framework.lstrip()
        if not _STACK_WORD.fullmatch(framework):
            return None
    if not _STACK_WORD.fullmatch(language):
        return None
    return f"{language}/{framework}".lower() if slash else language.lower()


def _unbold(text: str) -> str:
    return text[2:] if text[:2] in _BOLD else text


# -- classification off the event loop ---------------------------------------------------------------

class BackgroundClassifier:
    """Fingerprints and classifies project folders in a worker thread, for one tracking service.

    The bridge's event loop must never wait on a project's files: reading them can take long (up
    to MAX_READ per manifest, a slow or hung network mount), and every host request waits behind
    the loop. ``submit`` only queues; ``finished`` hands over what is done, waiting at most
    ``patience`` seconds, once per folder, for a classification still running (a flush calls it:
    a normal project is classified in well under a millisecond, long before its first flush).
    """

    def __init__(self, patience: float = 2.0):
        self.patience = patience
        self._running: dict[str, Future[dict[str, Any] | None]] = {}
        self._waited: set[str] = set()  # folders a flush already waited for: never again

    def submit(self, directory: str, stored_fingerprint: str | None, now: str) -> None:
        """Classify ``directory`` unless its fingerprint still equals the stored one."""
        if directory not in self._running:
            self._running[directory] = _WORKER.submit(Path(directory), stored_fingerprint, now)

    def finished(self) -> list[tuple[str, dict[str, Any]]]:
        """(folder, project fields to set) for each classification done since the last call."""
        if not self._running:
            return []
        fresh = [f for d, f in self._running.items() if d not in self._waited]
        if fresh:
            wait(fresh, timeout=self.patience)
            self._waited.update(self._running)
        done: list[tuple[str, dict[str, Any]]] = []
        for directory, future in list(self._running.items()):
            if not future.done():
                continue
            del self._running[directory]
            self._waited.discard(directory)
            if future.exception() is None and future.result() is not None:
                done.append((directory, future.result()))  # type: ignore[arg-type]
        return done


class _Worker:
    """One daemon thread for the process: a folder stuck in a hung read never holds up exit."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Path, str | None, str]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        # (folder, fingerprint) -> stack fields: a second session in an unchanged project reads
        # nothing. Only the worker thread touches it.
        self._known: dict[tuple[str, str], dict[str, Any]] = {}

    def submit(self, directory: Path, stored_fingerprint: str | None, now: str) -> Future[dict[str, Any] | None]:
        future: Future[dict[str, Any] | None] = Future()
        self._queue.put((future, directory, stored_fingerprint, now))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="classify", daemon=True)
                self._thread.start()
        return future

    def _run(self) -> None:
        while True:
            future, directory, stored_fingerprint, now = self._queue.get()
            try:
                future.set_result(self._project_fields(directory, stored_fingerprint, now))
            except Exception as exc:  # a classification problem must never stop the worker
                future.set_exception(exc)

    def _project_fields(self, directory: Path, stored_fingerprint: str | None, now: str) -> dict[str, Any] | None:
        print_ = fingerprint(directory)
        if print_ == stored_fingerprint:
            return None
        stack = self._known.get((str(directory), print_))
        if stack is None:
            if len(self._known) >= 1024:
                self._known.clear()
            try:
                found = classify(directory)
            except Exception as exc:  # a classification problem is the project's, recorded, never raised
                found = Stack("unknown", None, (), f"{directory} could not be classified: {exc!r}"[:300])
            stack = self._known[(str(directory), print_)] = found.to_record()
        return {**stack, "fingerprint": print_, "classifiedAt": now}


_WORKER = _Worker()


def _after_fork_in_child() -> None:
    """A forked process (import-opencode's second importer) has no worker thread: start afresh."""
    global _WORKER
    _WORKER = _Worker()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
