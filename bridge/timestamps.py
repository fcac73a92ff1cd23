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


def parse_iso(text: object) -> datetime | None:
    """A stored timestamp back as a datetime; None when it is not one (foreign or damaged data)."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def millis_between(start: object, end: object) -> int | None:
    """Milliseconds from one stored timestamp to another, or None if either is not one."""
    first, last = parse_iso(start), parse_iso(end)
    if first is None or last is None:
        return None
    return round((last - first).total_seconds() * 1000)
