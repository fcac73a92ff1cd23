"""Feeding recorded sessions into a database in-process: `agent-tracker replay`, shared with tests.

A recording (protocol/recordings/*.jsonl) is one message per line, ``{"dir": "in"|"out", "msg": ...}``.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any, Callable, Iterator

from .config import BridgeConfig
from .store import Store

# -- replay ------------------------------------------------------------------------------------------------

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



def replay_files(store: Store, config: BridgeConfig, paths: list[Path],
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Feed recordings into ``store`` in-process, one TrackingService per file (one bridge run).

    The ``in`` messages that are event methods are structured and handled exactly as the bridge
    does; ``initialize`` only sets the default project directory, ``flush`` flushes, and
    shutdown/exit/queries are skipped. At the end of each file its open sessions end (as at a
    bridge's shutdown) and everything is flushed.
    """
    from .protocol.methods import EVENT_METHODS
    from .protocol.structure import InvalidParams
    from .tracking.projects import project_path
    from .tracking.service import EventRejected, TrackingService

    files = []
    flush_errors: list[str] = []
    for path in paths:
        service = TrackingService(store, config.scoring, journal_id=f"replay-{secrets.token_hex(6)}",
                                  holds_events=False)
        events = rejected = skipped = 0
        problems: list[dict[str, Any]] = []
        for line, direction, message, problem in read_recording(path):
            if problem is not None:
                skipped += 1
                problems.append({"line": line, "message": problem})
                continue
            method = message.get("method") if isinstance(message, dict) else None
            if direction != "in" or not isinstance(method, str):
                skipped += 1  # responses and notifications the bridge sent
                continue
            params = message.get("params")
            if method == "initialize":
                project = (params or {}).get("project") if isinstance(params, dict) else None
                if isinstance(project, dict) and isinstance(project.get("directory"), str):
                    service.default_directory = project_path(project["directory"])
                skipped += 1
                continue
            if method == "flush":
                flush_errors.extend(service.flush().errors)
                continue
            if method not in EVENT_METHODS:
                skipped += 1  # shutdown, exit, agent.status, report, unknown methods
                continue
            try:
                service.handle(method, params)
                events += 1
            except (InvalidParams, EventRejected) as exc:
                rejected += 1
                problems.append({"line": line, "message": f"{method}: {exc}"})
            if service.flush_requested:
                flush_errors.extend(service.flush().errors)
        # The end of a recording is the end of that bridge run: its open sessions end, as they
        # would when the bridge shuts down.
        for session_id in service.open_sessions():
            service.handle("session.ended", {"sessionID": session_id, "reason": "shutdown"})
        flush_errors.extend(service.flush().errors)
        files.append({"file": str(path), "events": events, "rejected": rejected, "skipped": skipped,
                      "problems": problems})
        if progress is not None:
            progress(len(files), len(paths))
    return {"database": str(store.path), "files": files, "events": sum(f["events"] for f in files),
            "rejected": sum(f["rejected"] for f in files), "skipped": sum(f["skipped"] for f in files),
            "flushErrors": flush_errors}
