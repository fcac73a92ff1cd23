"""The stored form of the summaries (protocol/storage.md, sub-database ``summaries``) and the roll-ups.

Keys (parts joined as store.key does):
  ``A kind identity``       all-time row of a setup identity (kind "a"), of a tuple of them a
                            session counted for (kind "m"), or of the unattributed bugs (kind "u")
  ``D kind identity day``   the same row for one day (the record's createdAt, YYYY-MM-DD)
  ``T root``                a session tree with subagents or dependent records: its member sessions
                            and the records whose attribution reads its sessions (maintain)
  ``W parent root``         a tree whose root names a parent session not recorded yet
Row values (see pack): ``s`` the accumulator slots, a list in the order of report.score.SLOT_NAMES
(whose names the meta marker records: other names, a rebuild); ``n`` the counts (``n.sessions``,
``n.subagentSessions``, ``n.grades``, ``n.unattributed``, ``imported.commits|grades``); ``l`` the
latest use; ``b`` (day rows) each session tree's latest use, by root session id; ``g`` the
subagents' work ({agent: [sessions, tool calls, failed, commits, XP]}); all-time rows also ``id``
and ``kind`` (keys may be digests). A row that holds nothing is removed.
"""

from __future__ import annotations

from typing import Any, Iterator

import orjson

from ..store import SEP, ReadView, WriteView, key
from ..report.score import SLOT_NAMES
from .identity import Contribution, Identity, Row

DB = "summaries"
NUMBERS_ZERO = 1e-12  # below this a sum that went up and down again is 0 (float residue)


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
    for _, stored in view.scan(DB, "A" + SEP):
        yield stored["kind"], as_identity(stored["id"]), unpack(stored)


def day_rows(view: ReadView, kind: str, identity: Identity, first: str, after: str,
             with_days: bool = False) -> Iterator[Any]:
    """The identity's day rows with first <= day < after (``with_days``: as (day, row))."""
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
            row = unpack(orjson.loads(raw_value))
            yield (raw_key[len(encoded_prefix):].decode(), row) if with_days else row


# -- the stored form: slots as one list in SLOT_ORDER (names kept once, in the meta marker), the
# counts under "n", the rest under one letter; whole numbers as integers. About a third of the
# size of the same row with every name spelled out.

SLOT_ORDER = tuple(SLOT_NAMES)
_SLOT_AT = {name: index for index, name in enumerate(SLOT_ORDER)}
_SHORT = {"lastUsed": "l", "lastUsedBy": "b", "subagents": "g", "subagentVersions": "v"}
_LONG = {short: name for name, short in _SHORT.items()}


def _compact(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 53 else value


def pack(row: Row) -> dict[str, Any]:
    slots: list[Any] = []
    packed: dict[str, Any] = {}
    for name, value in row.items():
        index = _SLOT_AT.get(name)
        if index is not None:
            if len(slots) <= index:
                slots.extend([0] * (index + 1 - len(slots)))
            slots[index] = _compact(value)
        elif name in _SHORT:
            packed[_SHORT[name]] = value
        elif name in ("id", "kind"):
            packed[name] = value
        else:  # n.sessions, imported.commits, ...
            packed.setdefault("n", {})[name] = _compact(value)
    if slots:
        packed["s"] = slots
    return packed


def unpack(packed: dict[str, Any]) -> Row:
    row: Row = {}
    for index, value in enumerate(packed.get("s", ())):
        if value:
            row[SLOT_ORDER[index]] = value
    row.update(packed.get("n", {}))
    for short, name in _LONG.items():
        if short in packed:
            row[name] = packed[short]
    return row


def add_rows(target: Contribution, rows: Contribution, sign: int = 1) -> None:
    """``target`` += sign x ``rows`` (in memory; lastUsed is the maximum of what was added)."""
    for row_key, row in rows.items():
        _add_row(target.setdefault(row_key, {}), row, sign)


def _add_row(stored: Row, row: Row, sign: int) -> None:
    for name, value in row.items():
        if name == "lastUsed":
            if sign > 0 and value > stored.get("lastUsed", ""):
                stored["lastUsed"] = value
        elif name == "lastUsedBy":  # each session tree's latest use, so the maximum can go down
            mine = stored.setdefault("lastUsedBy", {})
            for root in value:
                if sign > 0:
                    mine[root] = value[root]
                else:
                    mine.pop(root, None)
            if not mine:
                del stored["lastUsedBy"]
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
        elif name == "subagentVersions":  # {agent: {configuration version: sessions}}
            ran = stored.setdefault("subagentVersions", {})
            for agent, versions in value.items():
                counted = ran.setdefault(agent, {})
                for version, sessions in versions.items():
                    total = counted.get(version, 0) + sign * sessions
                    if abs(total) < NUMBERS_ZERO:
                        counted.pop(version, None)
                    else:
                        counted[version] = total
                if not counted:
                    del ran[agent]
            if not ran:
                del stored["subagentVersions"]
        else:
            total = stored.get(name, 0) + sign * value
            if abs(total) < NUMBERS_ZERO:
                stored.pop(name, None)
            else:
                stored[name] = total


def _meaningful(row: Row) -> bool:
    return any(name not in ("lastUsed", "lastUsedBy", "id", "kind") for name in row)


def apply_change(view: WriteView, before: Contribution, after: Contribution) -> None:
    """The stored roll-ups (all-time and per day) -= ``before``, += ``after``, in this transaction.

    A day row keeps each session tree's latest use (``lastUsedBy``), so its lastUsed is exact when
    one leaves; an all-time row whose latest use left takes the latest of its day rows.
    """
    stale: set[tuple[str, Identity]] = set()
    for row_key in before.keys() | after.keys():
        old, new = before.get(row_key, {}), after.get(row_key, {})
        if old == new:
            continue
        kind, identity, day = row_key
        stored_key = day_key(kind, identity, day)
        found = view.get(DB, stored_key)
        stored = unpack(found) if found is not None else {}
        _add_row(stored, old, -1)
        _add_row(stored, new, 1)
        if stored.get("lastUsedBy"):
            stored["lastUsed"] = max(stored["lastUsedBy"].values())
        else:
            stored.pop("lastUsed", None)
        _put_or_drop(view, stored_key, stored)
        found = view.get(DB, all_time_key(kind, identity))
        all_time = unpack(found) if found is not None else {}
        held = all_time.get("lastUsed")
        if held is not None and old.get("lastUsed", "") >= held > new.get("lastUsed", ""):
            stale.add((kind, identity))
        _add_row(all_time, {name: value for name, value in old.items() if name != "lastUsedBy"}, -1)
        _add_row(all_time, {name: value for name, value in new.items() if name != "lastUsedBy"}, 1)
        _put_or_drop(view, all_time_key(kind, identity), {**all_time, "id": identity, "kind": kind})
    for kind, identity in stale:
        found = view.get(DB, all_time_key(kind, identity))
        if found is None:
            continue
        all_time = unpack(found)
        latest = max((row.get("lastUsed", "") for row in day_rows(view, kind, identity, "", "\U0010ffff")),
                     default="")
        if latest:
            all_time["lastUsed"] = latest
        else:
            all_time.pop("lastUsed", None)
        view.put(DB, all_time_key(kind, identity), pack({**all_time, "id": identity, "kind": kind}))


def _put_or_drop(view: WriteView, stored_key: str, stored: Row) -> None:
    if _meaningful(stored):
        view.put(DB, stored_key, pack(stored))
    else:
        view.delete(DB, stored_key)


def write_all(view: WriteView, rows: Contribution) -> int:
    """Every roll-up of ``rows`` (the whole database's contribution) written afresh; how many."""
    written = 0
    all_time: Contribution = {}
    for (kind, identity, day), row in rows.items():
        if not _meaningful(row):
            continue
        view.put(DB, day_key(kind, identity, day), pack(row))
        _add_row(all_time.setdefault((kind, identity, ""), {}),
                 {name: value for name, value in row.items() if name != "lastUsedBy"}, 1)
        written += 1
    for (kind, identity, _), row in all_time.items():
        if _meaningful(row):
            view.put(DB, all_time_key(kind, identity), pack({**row, "id": identity, "kind": kind}))
            written += 1
    return written


def stored_rollups(view: ReadView) -> Contribution:
    """The stored day rows as a contribution (doctor compares it with a recomputed one)."""
    found: Contribution = {}
    for kind, identity, _ in all_time_rows(view):
        for day, row in day_rows(view, kind, identity, "", "\U0010ffff", with_days=True):
            found[(kind, identity, day)] = row
    return found
