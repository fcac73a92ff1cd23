"""Classify a project's stack (language/framework) from its manifest files and AGENTS.md.

Files are only read (bounded), never executed. The fingerprint (names, sizes, mtimes) lets the
tracker refresh the stored classification only when those files change.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import threading
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any

import attrs

MAX_READ = 256 * 1024

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

    @property
    def name(self) -> str:
        return f"{self.language}/{self.framework}" if self.framework else self.language

    def to_record(self) -> dict[str, Any]:
        return {"stack": self.name, "language": self.language, "framework": self.framework,
                "sources": list(self.sources)}


def _read(path: Path) -> str | None:
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as handle:
            return handle.read(MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return None


def fingerprint(directory: Path) -> str:
    digest = hashlib.sha1()
    for name in FINGERPRINT_FILES:
        try:
            stat = (directory / name).stat()
        except OSError:
            continue
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def classify(directory: Path) -> Stack:
    agents_md = _read(directory / "AGENTS.md")
    if agents_md and (declared := declared_stack(agents_md)):
        language, _, declared_framework = declared.partition("/")
        return Stack(language, declared_framework or None, ("AGENTS.md",))
    package = _read(directory / "package.json")
    if package is not None:
        javascript = _classify_package_json(directory, package)
        # A package.json without a framework next to another manifest is usually tooling
        # (prettier, a CSS build) for a project in that other language.
        if javascript.framework is not None or not any((directory / name).is_file() for name, _, _ in _MANIFESTS):
            return javascript
    for name, language, frameworks in _MANIFESTS:
        text = _read(directory / name)
        if text is None:
            continue
        framework = next((fw for fw, pattern in frameworks if re.search(pattern, text, re.I)), None)
        if framework is None and agents_md:
            framework = next((fw for fw, pattern in frameworks if re.search(pattern, agents_md, re.I)), None)
        return Stack(language, framework, (name,))
    return Stack("unknown", None, ())


def _classify_package_json(directory: Path, text: str) -> Stack:
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
            stack = self._known[(str(directory), print_)] = classify(directory).to_record()
        return {**stack, "fingerprint": print_, "classifiedAt": now}


_WORKER = _Worker()


def _after_fork_in_child() -> None:
    """A forked process (import-opencode's second importer) has no worker thread: start afresh."""
    global _WORKER
    _WORKER = _Worker()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
