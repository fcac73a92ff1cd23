"""`agent-tracker demo`: the real bridge, the example sessions, the report, in a throw-away home.

1. A temporary folder becomes the HOME of the demo (the real home is never read or written);
   ``--keep DIR`` uses DIR instead and leaves everything there.
2. Small manifest trees (pyproject.toml with FastAPI, package.json with React, Cargo.toml with
   axum) are created under ``<dir>/projects``: the example sessions were recorded in
   ``/demo/projects/<name>``, which is rewritten to these folders while replaying, so the stack
   comes from real files through bridge.stack, as it would in real use.
3. The real bridge runs as a subprocess (``python -m bridge serve --database <dir>/...``) and the
   ``in`` messages of examples/sessions/*.jsonl are sent to it over stdio (JSON-RPC with
   Content-Length framing, written here by hand); each recorded request waits for its answer.
4. The report of that database is printed, and where the database is.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator

PLACEHOLDER = "/demo/projects/"
DEMO_PROJECTS: dict[str, dict[str, str]] = {
    "shop-api": {
        "pyproject.toml": (
            '[project]\nname = "shop-api"\nversion = "0.3.0"\nrequires-python = ">=3.11"\n'
            'dependencies = ["fastapi>=0.115", "uvicorn[standard]>=0.30", "sqlalchemy>=2.0", "pydantic>=2.7"]\n\n'
            '[project.optional-dependencies]\ntest = ["pytest>=8", "httpx>=0.27"]\n'),
    },
    "web": {
        "package.json": json.dumps({
            "name": "web", "version": "1.4.0", "private": True, "type": "module",
            "scripts": {"dev": "vite", "build": "tsc -b && vite build", "test": "vitest run"},
            "dependencies": {"react": "^18.3.1", "react-dom": "^18.3.1", "@tanstack/react-query": "^5.51.0"},
            "devDependencies": {"typescript": "^5.5.4", "vite": "^5.4.0", "vitest": "^2.0.5",
                                "@types/react": "^18.3.3"},
        }, indent=2) + "\n",
        "tsconfig.json": '{\n  "compilerOptions": {"target": "ES2022", "jsx": "react-jsx", "strict": true}\n}\n',
    },
    "gateway": {
        "Cargo.toml": ('[package]\nname = "gateway"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
                       'axum = "0.7"\ntokio = { version = "1", features = ["full"] }\ntower-http = "0.5"\n'),
    },
}
CONTROL_METHODS = ("initialize", "shutdown", "exit")
TIMEOUT = 30.0


class DemoError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def examples_dir() -> Path:
    """examples/sessions of the checkout this package runs from (an editable install)."""
    return Path(__file__).resolve().parent.parent / "examples" / "sessions"


# -- recordings ------------------------------------------------------------------------------------

def read_recording(path: Path) -> Iterator[tuple[int, str | None, Any, str | None]]:
    """(line number, direction, message, problem) for each non-empty line of a recording.

    Format (protocol/recordings): ``{"dir": "in"|"out", "msg": {...}}`` per line; a line that is
    not JSON or has no message comes back with ``problem`` set.
    """
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                yield number, None, None, f"not JSON ({exc})"
                continue
            if not isinstance(entry, dict):
                yield number, None, None, "not an object"
                continue
            direction = entry.get("dir")
            if "msg" not in entry:
                yield number, direction, None, "no msg (a raw or marker line)"
                continue
            yield number, direction, entry["msg"], None


def rewrite_paths(value: Any, old: str, new: str) -> Any:
    """Every string starting with ``old`` (e.g. /demo/projects/) starts with ``new`` instead."""
    if isinstance(value, str):
        return new + value[len(old):] if value.startswith(old) else value
    if isinstance(value, dict):
        return {k: rewrite_paths(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_paths(v, old, new) for v in value]
    return value


# -- a small JSON-RPC client over the bridge's stdio -------------------------------------------------

class BridgeProcess:
    """The real bridge as a subprocess, spoken to with Content-Length framed JSON-RPC."""

    def __init__(self, database: Path, home: Path, *, extra_env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_TRACKER_")}
        package_root = str(Path(__file__).resolve().parent.parent)
        env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PYTHONUNBUFFERED": "1",
                    "PYTHONPATH": os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)})
        env.update(extra_env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bridge", "serve", "--database", str(database)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=str(cwd or home))
        self.notifications: list[dict[str, Any]] = []
        self.stderr_lines: list[str] = []
        self._responses: dict[Any, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._next_id = 0
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_reader.start()

    def _read_stdout(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            length = None
            while True:
                line = stdout.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii", errors="replace").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length is None:
                continue
            body = stdout.read(length)
            try:
                message = json.loads(body)
            except ValueError:
                continue
            if "method" in message:
                self.notifications.append(message)
                continue
            with self._lock:
                waiter = self._responses.get(message.get("id"))
            if waiter is not None:
                waiter.put(message)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr_lines.append(line.decode(errors="replace").rstrip())

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise DemoError(f"The bridge stopped unexpectedly: {self.last_error()}") from None

    def notify(self, method: str, params: Any = None) -> None:
        self._send({"jsonrpc": "2.0", "method": method, **({"params": params} if params is not None else {})})

    def request(self, method: str, params: Any = None, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The whole response (``result`` or ``error``)."""
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
            waiter: queue.Queue[dict[str, Any]] = queue.Queue()
            self._responses[msg_id] = waiter
        self._send({"jsonrpc": "2.0", "id": msg_id, "method": method,
                    **({"params": params} if params is not None else {})})
        try:
            return waiter.get(timeout=timeout)
        except queue.Empty:
            raise DemoError(f"The bridge did not answer {method} within {timeout:g} s: "
                            f"{self.last_error()}") from None
        finally:
            with self._lock:
                self._responses.pop(msg_id, None)

    def last_error(self) -> str:
        return self.stderr_lines[-1] if self.stderr_lines else f"exit code {self.process.poll()}"

    def shutdown(self, timeout: float = TIMEOUT) -> int:
        response = self.request("shutdown", timeout=timeout)
        if "error" in response:
            raise DemoError(f"shutdown failed: {response['error'].get('message')}")
        self.notify("exit")
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DemoError("The bridge did not exit after shutdown.") from None
        self._reader.join(timeout)
        self._err_reader.join(timeout)
        return code

    def kill(self) -> None:
        """Stop the process if it still runs, and close our ends of its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)  # they see end-of-file now that the process is gone
        self._err_reader.join(5)
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


# -- the demo ---------------------------------------------------------------------------------------

def create_projects(root: Path) -> dict[str, Path]:
    projects = {}
    for name, files in DEMO_PROJECTS.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for file_name, text in files.items():
            (folder / file_name).write_text(text, encoding="utf-8")
        projects[name] = folder
    return projects


def replay_through_bridge(bridge: BridgeProcess, files: list[Path], projects_root: Path) -> dict[str, int]:
    """Send each file's ``in`` messages (control messages excepted) to the running bridge."""
    counts = {"files": 0, "notifications": 0, "requests": 0, "rejected": 0, "skipped": 0}
    new_prefix = str(projects_root) + "/"
    for path in files:
        counts["files"] += 1
        for _, direction, message, problem in read_recording(path):
            if problem or direction != "in" or not isinstance(message, dict):
                counts["skipped"] += 1
                continue
            method = message.get("method")
            if not isinstance(method, str) or method in CONTROL_METHODS:
                counts["skipped"] += 1
                continue
            params = rewrite_paths(message.get("params"), PLACEHOLDER, new_prefix)
            if "id" in message:
                response = bridge.request(method, params)
                counts["requests"] += 1
                counts["rejected"] += "error" in response
            else:
                bridge.notify(method, params)
                counts["notifications"] += 1
    return counts


def run_demo(*, keep: str | None = None, chart: str | None = None, console: Any = None) -> int:
    from rich.console import Console

    from .config import BridgeConfig
    from .report import build_report, render_rich

    console = console or Console()
    source = examples_dir()
    files = sorted(source.glob("*.jsonl")) if source.is_dir() else []
    if not files:
        raise DemoError(
            f"The example sessions are not here ({source}): the demo needs a checkout of the project "
            f"(git clone, then `pip install -e .` in it), where they live in examples/sessions/.", 2)
    if keep:
        try:
            root = Path(keep).expanduser().resolve()
        except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
            reason = getattr(exc, "strerror", None) or "it is a symbolic link loop"
            raise DemoError(f"Cannot use {keep} for --keep: {reason}.", 2) from None
        if (root / "agent-tracker.lmdb").exists():
            raise DemoError(f"{root} already holds a demo database; choose an empty folder for --keep.", 2)
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="agent-tracker-demo-"))
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    database = root / "agent-tracker.lmdb"
    projects_root = root / "projects"
    try:
        projects = create_projects(projects_root)
        console.print(f"Demo home: {root} (your own home directory is not touched)")
        console.print("Projects: " + ", ".join(f"{name} ({', '.join(DEMO_PROJECTS[name])})" for name in projects))
        started = time.perf_counter()
        bridge = BridgeProcess(database, home, cwd=root)
        try:
            init = bridge.request("initialize", {"clientInfo": {"name": "agent-tracker-demo", "version": "1"},
                                                 "config": {}})
            if "error" in init:
                raise DemoError(f"The bridge refused to start: {init['error'].get('message')}")
            counts = replay_through_bridge(bridge, files, projects_root)
            code = bridge.shutdown()
        finally:
            bridge.kill()
        if code != 0:
            raise DemoError(f"The bridge exited with code {code}: {bridge.last_error()}")
        console.print(f"Replayed {counts['notifications']} notifications and {counts['requests']} requests "
                      f"from {counts['files']} recorded sessions through the real bridge in "
                      f"{time.perf_counter() - started:.1f} s ({counts['rejected']} rejected by its rules).")
        from .report import open_readonly

        store = open_readonly(BridgeConfig(database_path=str(database)))
        if not store.available:
            raise DemoError(f"The demo database cannot be read: {store.error}")
        with store:
            report = build_report(store)
            render_rich(report, console)
            if chart:
                from .chart import ChartError, draw_chart

                try:
                    console.print(f"Chart: {draw_chart(store, report, Path(chart).expanduser())}")
                except ChartError as exc:
                    raise DemoError(str(exc), 2) from None
        if keep:
            console.print(f"Database: {database}\nExplore it: agent-tracker report --database {database}"
                          f"  ·  agent-tracker status --database {database}"
                          f"  ·  agent-tracker export --format csv --output demo-csv --database {database}")
        else:
            console.print(f"Database: {database} (temporary, deleted now; use --keep DIR to keep it)")
        return 0
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
