"""`agent-tracker demo`: the real bridge, the example sessions, the report, in a throw-away home.

1. A temporary folder becomes the HOME of the demo (the real home is never read or written);
   ``--keep DIR`` uses DIR instead and leaves everything there.
2. Small manifest trees (pyproject.toml with FastAPI, package.json with React, Cargo.toml with
   axum) are created under ``<dir>/projects``: the example sessions were recorded in
   ``/demo/projects/<name>``, which is rewritten to these folders while replaying, so the stack
   comes from real files through bridge.tracking.stack, as it would in real use.
3. The real bridge runs as a subprocess (``python -m bridge serve --database <dir>/...``) and the
   ``in`` messages of examples/sessions/*.jsonl are sent to it over stdio with bridge.rpc.client;
   each recorded request waits for its answer. Its log goes to ``<dir>/bridge.log``.
4. The report of that database is printed, and where the database is.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

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


async def replay_through_bridge(database: Path, home: Path, files: list[Path],
                                projects_root: Path) -> dict[str, int]:
    """Start the real bridge on ``database`` and send it each file's ``in`` messages over stdio."""
    from .replay import read_recording, rewrite_paths
    from .rpc.client import BridgeProcess, RpcError

    counts = {"files": 0, "notifications": 0, "requests": 0, "rejected": 0, "skipped": 0}
    new_prefix = str(projects_root) + "/"
    log_path = home.parent / "bridge.log"
    with open(log_path, "wb") as log:
        bridge = await BridgeProcess.spawn("--database", str(database), env=_bridge_env(home),
                                           cwd=home.parent, stderr=log)
        try:
            init = await bridge.request_raw("initialize", {
                "clientInfo": {"name": "agent-tracker-demo", "version": "1"}, "config": {}}, TIMEOUT)
            if "error" in init:
                raise DemoError(f"The bridge refused to start: {init['error'].get('message')}")
            for path in files:
                counts["files"] += 1
                for _, direction, message, problem in read_recording(path):
                    method = message.get("method") if isinstance(message, dict) else None
                    if problem or direction != "in" or not isinstance(method, str) or method in CONTROL_METHODS:
                        counts["skipped"] += 1
                        continue
                    params = rewrite_paths(message.get("params"), PLACEHOLDER, new_prefix)
                    if "id" in message:
                        response = await bridge.request_raw(method, params, TIMEOUT)
                        counts["requests"] += 1
                        counts["rejected"] += "error" in response
                    else:
                        bridge.notify(method, params)
                        counts["notifications"] += 1
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


def run_demo(*, keep: str | None = None, chart: str | None = None, console: Any = None) -> int:
    from rich.console import Console

    from .config import BridgeConfig
    from .report.build import build_report
    from .report.render import render_rich
    from .store import Store

    console = console or Console()
    source = examples_dir()
    files = sorted(source.glob("*.jsonl")) if source.is_dir() else []
    if not files:
        raise DemoError(
            f"The example sessions are not here ({source}): the demo needs a checkout of the project "
            f"(git clone, then `pip install -e .` in it), where they live in examples/sessions/.", 2)
    if keep:
        root = Path(keep).expanduser().resolve()
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
        counts = asyncio.run(replay_through_bridge(database, home, files, projects_root))
        console.print(f"Replayed {counts['notifications']} notifications and {counts['requests']} requests "
                      f"from {counts['files']} recorded sessions through the real bridge in "
                      f"{time.perf_counter() - started:.1f} s ({counts['rejected']} rejected by its rules).")
        store = Store.open(BridgeConfig(database_path=str(database)), readonly=True)
        if not store.available:
            raise DemoError(f"The demo database cannot be read: {store.error}")
        with store:
            report = build_report(store)
            render_rich(report, console)
            if chart:
                from .report.chart import ChartError
                from .report.html import save_chart

                try:
                    console.print(f"Chart: {save_chart(store, report, Path(chart).expanduser())}")
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
