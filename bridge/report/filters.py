"""The report's filters: --since, --project and --stack as the report compares them."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone

from .model import UNKNOWN_MODEL, ReportError


_SINCE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?)?$")


_RELATIVE = re.compile(r"^(\d{1,5})d$")



# -- options ---------------------------------------------------------------------------------------

def normalise_since(since: str | None, now: datetime | None = None) -> str | None:
    """YYYY-MM-DD, an ISO timestamp, or Nd (N days ago) → an ISO prefix to compare with createdAt."""
    if since is None or since == "":
        return None
    text = since.strip()
    relative = _RELATIVE.match(text)
    if relative:
        moment = (now or datetime.now(timezone.utc)) - timedelta(days=int(relative.group(1)))
        return moment.strftime("%Y-%m-%d")
    if not _SINCE.match(text):
        raise ReportError(f"--since must be a date like 2026-01-31, an ISO timestamp, or Nd "
                          f"(N days ago, e.g. 30d); got {since!r}.")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise ReportError(f"--since is not a valid date: {since!r}.") from None
    if len(text) == 10:
        return text
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(timezone.utc)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"



def normalise_project(project: str | None) -> str | None:
    if not project:
        return None
    return os.path.normpath(os.path.abspath(os.path.expanduser(project)))



def stack_matches(stack: str, wanted: str | None) -> bool:
    """``python`` matches python and python/*; ``python/fastapi`` only itself (case-insensitive)."""
    if not wanted:
        return True
    stack, wanted = stack.lower(), wanted.lower().strip().rstrip("/")
    return stack == wanted or ("/" not in wanted and stack.startswith(wanted + "/"))



def model_name(provider: str | None, model: str | None) -> str:
    """Same naming as tracking.setup_name: provider/model, else model, else unknown-model."""
    if provider and model:
        return f"{provider}/{model}"
    return model or UNKNOWN_MODEL



def normal_path(path: str) -> str:
    return os.path.normpath(path)
