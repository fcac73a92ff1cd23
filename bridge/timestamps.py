"""The one timestamp format stored and sent: ISO-8601 UTC with milliseconds, e.g.
``2026-11-26T05:00:00.123Z``. It sorts lexicographically and JavaScript's Date parses it."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_last_now: tuple[int, str] = (0, "")


def utc_now() -> str:
    """Now, formatted once per millisecond (it is on the event hot path)."""
    global _last_now
    millis = time.time_ns() // 1_000_000
    if millis != _last_now[0]:
        _last_now = (millis, iso_utc(datetime.fromtimestamp(millis / 1000, tz=timezone.utc)))
    return _last_now[1]
