"""The stored form of the summaries (protocol/storage.md, sub-database ``summaries``) and the roll-ups.

Keys (parts joined as store.key does):
  ``A kind identity``       all-time row of a setup identity (kind "a"), of a tuple of them a
                            session counted for (kind "m"), or of the unattributed bugs (kind "u")
  ``D kind identity day``   the same row for one day (the record's createdAt, YYYY-MM-DD)
  ``T root``                a session tree with subagents or dependent records: its member sessions
                            and the records whose attribution reads its sessions (maintain)
  ``W parent root``         a tree whose root names a parent session not recorded yet
Row values: accumulator slots by name (report.score.SLOT_NAMES), ``n.<count>`` (sessions,
subagentSessions, grades, unattributed), ``imported.commits|grades``, ``lastUsed``,
``subagents`` ({agent: [sessions, tool calls, failed, commits, XP]}); a number that is 0 is left
out, and so is a row that holds nothing. ``id`` and ``kind`` name the row (keys may be digests).
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from ..store import SEP, ReadView, WriteView, key
from .identity import Contribution, Identity, Row

DB = "summaries"
NUMBERS_ZERO = 1e-12  # below this a sum that went up and down again is 0 (float residue)


class StaleMaximum(Exception):
    """A row's lastUsed may have gone down (the session that held it left): only a rebuild knows it."""


def identity_text(identity: Identity) -> str:
    return orjson.dumps(identity).decode()


def all_time_key(kind: str, identity: Identity) -> str:
    return key("A", kind, identity_text(identity))


def day_prefix(kind: str, identity: Identity) -> str:
    return key("D", kind, identity_text(identity)) + SEP


def day_key(kind: str, identity: Identity, day: str) -> str:
    return day_prefix(kind, identity) + day


def as_identity(value: Any) -> Identity:
    """A stored identity (JSON lists) back as the tuples the contributions use."""
    if isinstance(value, list):
        return tuple(as_identity(part) for part in value)
    return value  # type: ignore[no-any-return]


def all_time_rows(view: ReadView) -> Iterator[tuple[str, Identity, Row]]:
    for _, row in view.scan(DB, "A" + SEP):
        yield row["kind"], as_identity(row["id"]), row


def day_rows(view: ReadView, kind: str, identity: Identity, first: str, after: str) -> Iterator[Row]:
    """The identity's day rows with first <= day < after."""
    prefix = day_prefix(kind, identity)
    start, end = prefix + first, prefix + after
    with view.cursor(DB) as cursor:
        if not cursor.set_range(start.encode()):
            return
        encoded_prefix, encoded_end = prefix.encode(), end.encode()
        for raw_key, raw_value in cursor:
            raw_key = bytes(raw_key)
            if not raw_key.startswith(encoded_prefix) or raw_key >= encoded_end:
                return
            yield orjson.loads(raw_value)


def add_rows(target: Contribution, rows: Contribution, sign: int = 1) -> None:
    """``target`` += sign x ``rows`` (in memory; lastUsed is the maximum of what was added)."""
    for row_key, row in rows.items():
        _add_row(target.setdefault(row_key, {}), row, sign)


def _add_row(stored: Row, row: Row, sign: int) -> None:
    for name, value in row.items():
        if name == "lastUsed":
            if sign > 0 and value > stored.get("lastUsed", ""):
                stored["lastUsed"] = value
        elif name == "subagents":
            mine = stored.setdefault("subagents", {})
            for agent, numbers in value.items():
                found = mine.setdefault(agent, [0.0] * len(numbers))
                for index, number in enumerate(numbers):
                    found[index] += sign * number
                if all(abs(number) < NUMBERS_ZERO for number in found):
                    del mine[agent]
            if not mine:
                del stored["subagents"]
        else:
            total = stored.get(name, 0) + sign * value
            if abs(total) < NUMBERS_ZERO:
                stored.pop(name, None)
            else:
                stored[name] = total


def _meaningful(row: Row) -> bool:
    return any(name not in ("lastUsed", "id", "kind", "day") for name in row)


def apply_change(view: WriteView, before: Contribution, after: Contribution) -> None:
    """The stored roll-ups (all-time and per day) -= ``before``, += ``after``, in this transaction.

    Raises StaleMaximum when a row's lastUsed came from ``before`` and ``after`` no longer reaches it.
    """
    for row_key in before.keys() | after.keys():
        old, new = before.get(row_key, {}), after.get(row_key, {})
        if old == new:
            continue
        kind, identity, day = row_key
        for stored_key, fresh in ((all_time_key(kind, identity), {"id": identity, "kind": kind}),
                                  (day_key(kind, identity, day), {"id": identity, "kind": kind, "day": day})):
            stored = view.get(DB, stored_key) or fresh
            held = stored.get("lastUsed")
            if "lastUsed" in old and held is not None and old["lastUsed"] >= held \
                    and new.get("lastUsed", "") < old["lastUsed"]:
                raise StaleMaximum(stored_key)
            _add_row(stored, old, -1)
            _add_row(stored, new, 1)
            if _meaningful(stored):
                view.put(DB, stored_key, stored)
            else:
                view.delete(DB, stored_key)


def write_all(view: WriteView, rows: Contribution) -> int:
    """Every roll-up of ``rows`` (the whole database's contribution) written afresh; how many."""
    written = 0
    all_time: Contribution = {}
    for (kind, identity, day), row in rows.items():
        if not _meaningful(row):
            continue
        view.put(DB, day_key(kind, identity, day), {"id": identity, "kind": kind, "day": day, **row})
        _add_row(all_time.setdefault((kind, identity, ""), {}), row, 1)
        written += 1
    for (kind, identity, _), row in all_time.items():
        if _meaningful(row):
            view.put(DB, all_time_key(kind, identity), {"id": identity, "kind": kind, **row})
            written += 1
    return written


def stored_rollups(view: ReadView) -> Contribution:
    """The stored day rows as a contribution (doctor compares it with a recomputed one)."""
    found: Contribution = {}
    for _, row in view.scan(DB, "D" + SEP):
        found[(row["kind"], as_identity(row["id"]), str(row.get("day", "")))] = _plain(row)
    return found


def _plain(row: Row) -> Row:
    return {name: value for name, value in row.items() if name not in ("id", "kind", "day")}
