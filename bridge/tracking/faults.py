"""Fault injection for the reliability suite: AGENT_TRACKER_CRASH_AT=<point>[:<n>] kills the process.

Points: ``event`` (after the n-th event was journaled, before it is applied), ``in-flush``
(inside the write transaction, before commit), ``in-summaries`` (inside it too, when
bridge.summaries updates the summaries of what the flush wrote), ``after-commit`` (after the n-th flush committed,
before the journal is truncated). The process dies with SIGKILL, exactly as ``kill -9`` would.
Unset in normal use; reading one environment variable at start-up is the whole cost.
"""

from __future__ import annotations

import os
import signal

ENV_CRASH_AT = "AGENT_TRACKER_CRASH_AT"

_point, _, _count = os.environ.get(ENV_CRASH_AT, "").partition(":")
_remaining = int(_count) if _count.isdigit() else 1
ENABLED = bool(_point)


def crash_point(point: str) -> None:
    global _remaining
    if point != _point:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
