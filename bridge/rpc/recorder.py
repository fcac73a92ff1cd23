"""AGENT_TRACKER_RECORD=<file>: append every message, both directions, as replayable JSON lines.

Format (protocol/recordings/*.jsonl): ``{"dir": "in"|"out", "msg": {...}}``; an incoming body
that is not JSON is kept as ``{"dir": "in", "raw": "<text>"}`` (``"rawBase64"`` if it is not UTF-8),
and header bytes that never became a body as ``{"dir": "in", "frame": "<latin-1 text>"}``, so bad
input replays too. Replay files may also hold ``{"dir": "restart"}`` (stdin closed, bridge
started again on the same home) and ``{"dir": "exit", "code": N}`` (expected exit code).
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any

import orjson

from ..output_files import UnsafeOutput, refuse_database_files

ENV_RECORD = "AGENT_TRACKER_RECORD"


class Recorder:
    def __init__(self, path: str):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)

    def incoming(self, body: bytes) -> None:
        try:
            line = {"dir": "in", "msg": orjson.loads(body)}
        except orjson.JSONDecodeError:
            try:
                line = {"dir": "in", "raw": body.decode("utf-8")}
            except UnicodeDecodeError:
                line = {"dir": "in", "rawBase64": base64.b64encode(body).decode()}
        self._write(line)

    def incoming_frame(self, frame: bytes) -> None:
        """Bytes that never became a body (e.g. an oversized header), replayed verbatim."""
        self._write({"dir": "in", "frame": frame.decode("latin-1")})

    def outgoing(self, message: Any) -> None:
        self._write({"dir": "out", "msg": message})

    def _write(self, line: dict[str, Any]) -> None:
        os.write(self._fd, orjson.dumps(line) + b"\n")

    def close(self) -> None:
        os.close(self._fd)


def recorder_from_env() -> Recorder | None:
    path = os.environ.get(ENV_RECORD)
    if not path:
        return None
    try:
        # Appending to a database file would corrupt it: only LMDB writes those.
        refuse_database_files(Path(path), None, what="the recording")
        return Recorder(path)
    except (UnsafeOutput, OSError) as exc:
        reason = f"{exc.strerror}: {path}." if isinstance(exc, OSError) else str(exc)
        print(f"agent-tracker [error] {ENV_RECORD}: {reason} The session is not recorded.", file=sys.stderr, flush=True)
        return None
