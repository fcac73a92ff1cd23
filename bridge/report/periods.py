"""Periods of time as a person reads them: days, weeks and months in a time zone (`usage`).

Stored times are UTC (``2026-10-01T22:30:00.000Z``); a user in Berlin calls that moment
2026-10-02. ``TimeZone.parse`` reads ``--timezone`` (``local``, the default; ``UTC``; an IANA
name such as ``Europe/Berlin``; an offset such as ``+02:00``); ``period_of`` names the day
(``2026-10-02``), the week (its Monday: ``2026-09-28``, ISO weeks as ``date`` counts them) or the
month (``2026-10``) a moment falls in there. ``window`` turns ``--since``/``--until`` into the UTC
bounds the stored times are compared with: a date means that whole day in the time zone.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone, tzinfo

import attrs

from .model import ReportError

KINDS = ("daily", "weekly", "monthly", "session")
_OFFSET = re.compile(r"^([+-])(\d{1,2}):?(\d{2})?$")
_DAY = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")  # 2026-10-01 or, as ccusage takes it, 20261001
_RELATIVE = re.compile(r"^(\d{1,5})d$")
_END = "\U0010ffff"  # above every timestamp


@attrs.frozen
class TimeZone:
    """A time zone by the name the user gave; ``zone`` None is the machine's local time (whose
    offset may change over the year: each moment is converted with its own)."""

    name: str
    zone: tzinfo | None

    @classmethod
    def parse(cls, text: str | None) -> "TimeZone":
        value = (text or "local").strip()
        if value.lower() == "local":
            return cls("local", None)
        if value.upper() in ("UTC", "Z", "GMT"):
            return cls("UTC", timezone.utc)
        offset = _OFFSET.match(value)
        if offset:
            sign, hours, minutes = offset.groups()
            delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
            if delta >= timedelta(hours=24):
                raise ReportError(f"--timezone {value}: an offset must be less than 24 hours.")
            return cls(value, timezone(-delta if sign == "-" else delta))
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            return cls(value, ZoneInfo(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise ReportError(f"--timezone {value!r} is not a time zone: give local, UTC, an IANA name like "
                              f"Europe/Berlin, or an offset like +02:00.") from None

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone) if self.zone is not None else moment.astimezone()

    def start_of(self, day: date) -> datetime:
        """The first moment of ``day`` in this time zone, in UTC."""
        naive = datetime.combine(day, time())
        aware = naive.replace(tzinfo=self.zone) if self.zone is not None else naive.astimezone()
        return aware.astimezone(timezone.utc)

    @property
    def label(self) -> str:
        if self.zone is None:
            return f"local ({datetime.now().astimezone().tzname()})"
        return self.name


def parse_stamp(stamp: object) -> datetime | None:
    """A stored UTC timestamp, or None for anything that is not one."""
    if not isinstance(stamp, str) or len(stamp) < 10:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def period_of(moment: datetime, kind: str, zone: TimeZone) -> str:
    """The name of the day, week (its Monday) or month ``moment`` falls in, in ``zone``."""
    local = zone.local(moment)
    if kind == "monthly":
        return f"{local:%Y-%m}"
    day = local.date()
    if kind == "weekly":
        day -= timedelta(days=day.weekday())
    return day.isoformat()


def _bound(option: str, text: str, zone: TimeZone, now: datetime) -> tuple[datetime, bool]:
    """(the moment, whether it names a whole day) of a --since/--until value."""
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        today = zone.local(now).date()
        return zone.start_of(today - timedelta(days=int(relative.group(1)))), True
    day = _DAY.match(value)
    if day:
        try:
            return zone.start_of(date(*map(int, day.groups()))), True
        except ValueError:
            raise ReportError(f"{option} is not a valid date: {text!r}.") from None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise ReportError(f"{option} must be a date like 2026-01-31 (or 20260131), an ISO timestamp like "
                          f"2026-01-31T14:00Z, or Nd (N days ago, e.g. 30d); got {text!r}.") from None
    if moment.tzinfo is None:  # a wall-clock time in the chosen time zone
        moment = moment.replace(tzinfo=zone.zone) if zone.zone is not None else moment.astimezone()
    return moment.astimezone(timezone.utc), False


def stamp(moment: datetime) -> str:
    """A UTC moment as the stored timestamps are written (they compare as strings)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def window(since: str | None, until: str | None, zone: TimeZone,
           now: datetime | None = None) -> tuple[str, str] | None:
    """(first stored time counted, first not counted) for --since/--until in ``zone``, or None.

    A date counts whole: ``--until 2026-10-31`` includes that day until its midnight in ``zone``.
    """
    now = now or datetime.now(timezone.utc)
    low = high = None
    if since and since.strip():
        low = _bound("--since", since, zone, now)[0]
    if until and until.strip():
        moment, whole_day = _bound("--until", until, zone, now)
        if whole_day:
            high = zone.start_of(zone.local(moment).date() + timedelta(days=1))
        else:
            high = moment + timedelta(milliseconds=1)
    if low is None and high is None:
        return None
    if low is not None and high is not None and low >= high:
        raise ReportError(f"--since {since} is after --until {until}: no time is left between them.")
    return (stamp(low) if low is not None else "0"), (stamp(high) if high is not None else _END)
