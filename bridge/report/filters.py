"""The report's filters (--project, --stack, --since, --until, --agent, --model) as the report compares them.

``Filters.parse`` checks and normalises what a user typed once; the scan then only compares
strings. Everything here is plain data (the forked helper receives it pickled).
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs

from .model import ReportError

_DATE_OR_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?)?$")
_RELATIVE = re.compile(r"^(\d{1,5})d$")
# Above every timestamp: the open end of a window without --until.
_END = "\U0010ffff"


def _moment(option: str, text: str | None, now: datetime | None) -> tuple[datetime, bool] | None:
    """(the moment, whether it names a whole day) of YYYY-MM-DD, an ISO timestamp, or Nd."""
    if text is None or text.strip() == "":
        return None
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        moment = (now or datetime.now(timezone.utc)) - timedelta(days=int(relative.group(1)))
        return moment.replace(hour=0, minute=0, second=0, microsecond=0), True
    if not _DATE_OR_TIME.match(value):
        raise ReportError(f"{option} must be a date like 2026-01-31, an ISO timestamp like 2026-01-31T14:00Z, "
                          f"or Nd (N days ago, e.g. 30d); got {text!r}.")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise ReportError(f"{option} is not a valid date: {text!r}.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)  # stored times are UTC
    return parsed.astimezone(timezone.utc), len(value) == 10


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def normalise_since(since: str | None, now: datetime | None = None) -> str | None:
    """--since: the first moment counted, as a prefix to compare with createdAt (a day: YYYY-MM-DD)."""
    found = _moment("--since", since, now)
    if found is None:
        return None
    moment, whole_day = found
    return moment.strftime("%Y-%m-%d") if whole_day else _stamp(moment)


def normalise_until(until: str | None, now: datetime | None = None) -> tuple[str, str] | None:
    """--until: (what to show, the exclusive upper bound). A day counts whole; a timestamp is included."""
    found = _moment("--until", until, now)
    if found is None:
        return None
    moment, whole_day = found
    if whole_day:
        day = moment.strftime("%Y-%m-%d")
        return day, (moment + timedelta(days=1)).strftime("%Y-%m-%d")
    return _stamp(moment), _stamp(moment + timedelta(milliseconds=1))


def normal_path(path: str) -> str:
    return os.path.normpath(path)


@attrs.frozen
class ProjectFilter:
    """--project: a path (``.``, ``~/code/shop``, ``/srv/shop``, ``../shop``) or a folder name (``shop``).

    A bare name is compared with the last part of each project's path and never resolved
    against the current folder: ``--project shop-api`` means every project folder named so.
    """

    given: str
    path: str | None = None
    name: str | None = None

    @classmethod
    def parse(cls, project: str | None) -> "ProjectFilter | None":
        if not project or not project.strip():
            return None
        text = project.strip()
        is_name = os.sep not in text and text not in (".", "..") and not text.startswith("~") \
            and (os.altsep is None or os.altsep not in text)
        if is_name:
            return cls(text, name=text)
        # Stored project paths are canonical (symlinks resolved): the filter must be too.
        return cls(text, path=os.path.realpath(os.path.expanduser(text)))

    def matches(self, path: str) -> bool:
        normal = normal_path(path)
        if self.path is not None:
            return normal == self.path
        return os.path.basename(normal) == self.name

    @property
    def label(self) -> str:
        return self.path if self.path is not None else str(self.name)


def stack_matches(stack: str, wanted: str | None, exact: bool = False) -> bool:
    """``python`` matches python and python/* (``exact``: python only); ``python/fastapi`` only
    itself (case-insensitive)."""
    if not wanted:
        return True
    stack, wanted = stack.lower(), wanted.lower().strip().rstrip("/")
    return stack == wanted or (not exact and "/" not in wanted and stack.startswith(wanted + "/"))


def model_matches(model: str, wanted: str | None) -> bool:
    """``openai/gpt-5``, ``gpt-5`` (the model without its provider) or ``openai`` (every model of
    that provider) match ``openai/gpt-5``; case-insensitive, never a substring."""
    if not wanted:
        return True
    model, wanted = model.lower(), wanted.lower().strip()
    provider, _, name = model.partition("/")
    return wanted in (model, name) or (wanted.rstrip("/") == provider and bool(name))


@attrs.frozen
class Filters:
    """What the report counts; every field None = everything."""

    project: ProjectFilter | None = None
    stack: str | None = None
    exact_stack: bool = False       # stack "python" without python/* (recommend's first level)
    since: str | None = None        # the first moment counted (a prefix of createdAt)
    until: str | None = None        # as shown (a day, or a timestamp)
    until_bound: str | None = None  # the first moment no longer counted
    agent: str | None = None
    model: str | None = None

    @classmethod
    def parse(cls, *, project: str | None = None, stack: str | None = None, since: str | None = None,
              until: str | None = None, agent: str | None = None, model: str | None = None,
              exact_stack: bool = False, now: datetime | None = None) -> "Filters":
        since_key = normalise_since(since, now)
        until_pair = normalise_until(until, now)
        if since_key and until_pair and since_key >= until_pair[1]:
            raise ReportError(f"--since {since} is after --until {until}: no time is left between them.")
        return cls(project=ProjectFilter.parse(project), stack=(stack or "").strip() or None,
                   exact_stack=exact_stack, since=since_key,
                   until=until_pair[0] if until_pair else None, until_bound=until_pair[1] if until_pair else None,
                   agent=(agent or "").strip() or None, model=(model or "").strip() or None)

    def window(self) -> tuple[str, str] | None:
        """(lowest createdAt counted, first createdAt not counted), or None without a time filter."""
        if self.since is None and self.until_bound is None:
            return None
        # "0" sorts after "" and before every timestamp: a record without a time is never inside.
        return self.since or "0", self.until_bound or _END

    def whole_days(self) -> bool:
        """Whether the time filters (if any) start and end at midnight: --since/--until dates or Nd."""
        return all(bound is None or len(bound) == 10 for bound in (self.since, self.until_bound))

    def given(self) -> list[str]:
        """The wire names of the filters that were given."""
        return [name for name, value in self.to_wire().items() if value is not None]

    def to_wire(self) -> dict[str, Any]:
        return {"project": self.project.label if self.project else None, "stack": self.stack,
                "since": self.since, "until": self.until, "agent": self.agent, "model": self.model}
