"""`agent-tracker demo`: the real bridge, the example sessions, the report, in a throw-away home.

1. A temporary folder becomes the HOME of the demo (the real home is never read or written);
   ``--keep DIR`` uses DIR instead and leaves everything there.
2. Small manifest trees (pyproject.toml with FastAPI, package.json with React, Cargo.toml with
   axum) are created under ``<dir>/projects``: the example sessions were recorded in
   ``/demo/projects/<name>``, which is rewritten to these folders while replaying, so the stack
   comes from real files through bridge.tracking.stack, as it would in real use.
3. The recorded sessions of examples/sessions/*.jsonl (package data: bridge/data/sessions) are laid out over six simulated weeks
   ending yesterday (``timed_stream``): the sessions are interleaved across the files, a day or
   so apart, and each event carries its time in the protocol's ``at`` field, so the records
   (and the chart) show a history instead of one burst of milliseconds.
4. The real bridge runs as a subprocess (``python -m bridge serve --database <dir>/...``) and
   those events are sent to it over stdio with bridge.rpc.client; each recorded request waits
   for its answer. Its log goes to ``<dir>/bridge.log``.
5. The report of that database is printed, what ``recommend`` says for the project whose own
   stack has too few sessions, and where the database is.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs

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
WEEKS = 6
EVENT_GAP = timedelta(seconds=40)  # between two events of one session


class DemoError(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def examples_dir() -> Path:
    """The example sessions shipped as package data (``bridge/data/sessions``: in a checkout, a
    symlink to examples/sessions, the one copy; in a wheel, the files themselves)."""
    from importlib import resources

    return Path(str(resources.files("bridge") / "data" / "sessions"))


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


def _bridge_env(home: Path) -> dict[str, str]:
    """This environment with the demo's home and the checkout on PYTHONPATH (``-m bridge`` from anywhere)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_TRACKER_")}
    package_root = str(Path(__file__).resolve().parent.parent)
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)})
    return env


@attrs.frozen
class TimedEvent:
    method: str
    params: dict[str, Any]
    request: bool  # recorded as a request: wait for its answer


@attrs.define
class Stream:
    events: list[TimedEvent]
    sessions: int
    first: datetime
    last: datetime


def timed_stream(files: list[Path], projects_root: Path, now: datetime | None = None) -> Stream:
    """The recordings' events, session by session, spread over WEEKS weeks ending yesterday.

    A recording holds sessions one after the other; an event without a sessionID belongs to the
    session it follows, and so does a subagent's session (it runs inside its parent's). Sessions are interleaved across the recordings (the first of each file,
    then the second of each...), as someone alternating between setups would, a day or two apart;
    each event of a session follows the previous one by EVENT_GAP. Every event says when it
    happened (``at``); paths under /demo/projects/ point into ``projects_root``.
    """
    from .protocol.methods import EVENT_METHODS
    from .replay import read_recording, rewrite_paths
    from .timestamps import iso_utc

    new_prefix = str(projects_root) + "/"
    # (position of the session in its file, file index) -> its events
    sessions: dict[tuple[int, int], list[TimedEvent]] = {}
    for file_index, path in enumerate(files):
        position = -1
        for _, direction, message, problem in read_recording(path):
            method = message.get("method") if isinstance(message, dict) else None
            if problem or direction != "in" or not isinstance(method, str) or method in CONTROL_METHODS:
                continue
            params = rewrite_paths(message.get("params") or {}, PLACEHOLDER, new_prefix)
            # A subagent's session (parentID) runs inside the session that started it: same day.
            if (method == "session.created" and not params.get("parentID")) or position < 0:
                position += 1
            sessions.setdefault((position, file_index), []).append(TimedEvent(method, params, "id" in message))
    order = sorted(sessions)
    midnight = (now or datetime.now(timezone.utc)).replace(hour=0, minute=0, second=0, microsecond=0)
    origin = midnight - timedelta(weeks=WEEKS)
    span = WEEKS * 7 - 1  # the last session starts yesterday: never in the future
    events: list[TimedEvent] = []
    first = last = origin
    for number, session_key in enumerate(order):
        day = round(number * span / max(len(order) - 1, 1))
        moment = origin + timedelta(days=day, hours=9 + 2 * (number % 4), minutes=(17 * number) % 60)
        if number == 0:
            first = moment
        for event in sessions[session_key]:
            params = {**event.params, "at": iso_utc(moment)} if event.method in EVENT_METHODS else event.params
            events.append(TimedEvent(event.method, params, event.request))
            last = moment
            moment += EVENT_GAP
    return Stream(events, len(order), first, last)


async def replay_through_bridge(database: Path, home: Path, stream: Stream) -> dict[str, int]:
    """Start the real bridge on ``database`` and send it the stream's events over stdio."""
    from .rpc.client import BridgeProcess, RpcError

    counts = {"sessions": stream.sessions, "events": 0, "requests": 0, "rejected": 0}
    log_path = home.parent / "bridge.log"
    with open(log_path, "wb") as log:
        bridge = await BridgeProcess.spawn("--database", str(database), env=_bridge_env(home),
                                           cwd=home.parent, stderr=log)
        try:
            init = await bridge.request_raw("initialize", {
                "clientInfo": {"name": "agent-tracker-demo", "version": "1"}, "config": {}}, TIMEOUT)
            if "error" in init:
                raise DemoError(f"The bridge refused to start: {init['error'].get('message')}")
            for event in stream.events:
                counts["events"] += 1
                if event.request:
                    response = await bridge.request_raw(event.method, event.params, TIMEOUT)
                    counts["requests"] += 1
                    counts["rejected"] += "error" in response
                else:
                    bridge.notify(event.method, event.params)
            await bridge.request("shutdown", timeout=TIMEOUT)
            bridge.notify("exit")
            code = await bridge.wait(TIMEOUT)
        except (OSError, asyncio.TimeoutError, RpcError) as exc:
            raise DemoError(f"The bridge stopped unexpectedly ({exc}): {_last_line(log_path)}") from None
        finally:
            bridge.kill()
    if code != 0:
        raise DemoError(f"The bridge exited with code {code}: {_last_line(log_path)}")
    return counts


def _last_line(path: Path) -> str:
    lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return lines[-1] if lines else "(it logged nothing)"


def run_demo(*, keep: str | None = None, chart: str | None = None, console: Any = None,
             summary: dict[str, Any] | None = None) -> int:
    """Run the demo, printing on ``console``; ``summary``, when given, receives what `demo --json`
    prints: the replay's counts, the report, the recommendation and where the database is."""
    from rich.console import Console
    from rich.text import Text

    from .config import BridgeConfig
    from .report.build import build_report
    from .report.recommend import recommend_for
    from .report.render import render_rich
    from .store import Store
    from .wording import plural

    console = console or Console()
    source = examples_dir()
    files = sorted(source.glob("*.jsonl")) if source.is_dir() else []
    if not files:
        raise DemoError(
            f"The example sessions are not here ({source}): this installation is incomplete; "
            f"reinstall agent-tracker (pip install --force-reinstall agent-tracker).", 1)
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
        stream = timed_stream(files, projects_root)
        counts = asyncio.run(replay_through_bridge(database, home, stream))
        console.print(Text(
            f"Replayed {plural(counts['sessions'], 'recorded session')} ({plural(counts['events'], 'event')}) "
            f"through the real bridge in {time.perf_counter() - started:.1f} s, dated over {WEEKS} simulated weeks "
            f"({stream.first:%Y-%m-%d} to {stream.last:%Y-%m-%d}); {counts['rejected']} rejected by its rules."))
        store = Store.open(BridgeConfig(database_path=str(database)), readonly=True)
        if not store.available:
            raise DemoError(f"The demo database cannot be read: {store.error}")
        with store:
            report = build_report(store)
            render_rich(report, console)
            # The question of the next project: gateway's own stack (rust/axum) has one session.
            advice = recommend_for(store, projects["gateway"])
            if summary is not None:
                summary.update({"home": str(root), "database": str(database), "kept": bool(keep), **counts,
                                "from": stream.first.isoformat(), "to": stream.last.isoformat(),
                                "report": report.to_wire(), "recommend": advice.to_wire()})
            console.print(Text(f"\nagent-tracker recommend {projects['gateway']}:", style="bold"))
            for line in advice.lines()[1:]:
                console.print(Text(line))
            if chart:
                from .report.chart import ChartError
                from .report.html import save_chart

                try:
                    console.print(f"Chart: {save_chart(store, report, Path(chart).expanduser())}")
                except ChartError as exc:
                    raise DemoError(str(exc), 2) from None
        if keep:
            console.print(f"Database: {database}\nExplore it: agent-tracker report --database {database}"
                          f"  ·  agent-tracker usage daily --database {database}"
                          f"  ·  agent-tracker status --database {database}"
                          f"  ·  agent-tracker export --format csv --output demo-csv --database {database}")
        else:
            console.print(f"Database: {database} (temporary, deleted now; use --keep DIR to keep it)")
        return 0
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
