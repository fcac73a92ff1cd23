"""Bulk decoding of stored values: orjson or msgspec, grouping done in C where it can be.

A record that does not fit the fast path (a missing field, foreign data) is handed to a
record-by-record callback and the scan resumes after it.
"""

from __future__ import annotations

import os
from collections import Counter
from contextlib import contextmanager
from operator import attrgetter, itemgetter
from typing import Any, Callable, Iterable, Iterator

import orjson

from ..store import ReadView
from .model import ReportError

_loads = orjson.loads



# -- decoding ----------------------------------------------------------------------------------------

class OrjsonCodec:
    """Values → dicts with orjson; a missing field raises KeyError (handled record by record)."""

    name = "orjson"
    errors: tuple[type[BaseException], ...] = (KeyError, TypeError, AttributeError, orjson.JSONDecodeError)

    def decoder(self, fields: tuple[str, ...]) -> Callable[[bytes], Any]:
        return _loads

    def getter(self, fields: tuple[str, ...], optional: tuple[str, ...] = ()) -> Callable[[Any], Any]:
        """``fields`` (a missing one raises KeyError), then ``optional`` ones (missing: None)."""
        if not optional:
            return itemgetter(*fields)
        required = itemgetter(*fields)
        return lambda record: (*required(record), *map(record.get, optional))

    def keys(self, fields: tuple[str, ...], optional: tuple[str, ...] = ()
             ) -> tuple[Callable[[Iterator[bytes]], Iterable[Any]], Callable[[Any], Any]]:
        """(values → hashable group keys, group key → tuple of ``fields`` then ``optional``)."""
        getter = self.getter(fields, optional)
        return (lambda values: map(getter, map(_loads, values))), (lambda group: group)



class MsgspecCodec:
    """Values → structs holding only the fields the report reads (optional accelerator: the
    others are skipped without being allocated, ~35% faster than orjson). Missing fields are
    None, exactly what the record-by-record path (``dict.get``) sees."""

    name = "msgspec"

    def __init__(self) -> None:
        import msgspec

        self._msgspec = msgspec
        self.errors = (TypeError, AttributeError, msgspec.MsgspecError)
        self._decoders: dict[tuple[str, ...], Callable[[bytes], Any]] = {}

    def decoder(self, fields: tuple[str, ...]) -> Callable[[bytes], Any]:
        found = self._decoders.get(fields)
        if found is None:
            # gc=False: rows hold only scalars and lists of strings, never cycles.
            struct = self._msgspec.defstruct("Row", [(name, Any, None) for name in fields], gc=False)
            found = self._decoders[fields] = self._msgspec.json.Decoder(struct).decode
        return found

    def getter(self, fields: tuple[str, ...], optional: tuple[str, ...] = ()) -> Callable[[Any], Any]:
        return attrgetter(*fields, *optional)

    def keys(self, fields: tuple[str, ...], optional: tuple[str, ...] = ()
             ) -> tuple[Callable[[Iterator[bytes]], Iterable[Any]], Callable[[Any], Any]]:
        # A frozen struct of exactly ``fields`` is itself the group key: no tuple per record (a
        # missing field is None here, so the optional ones are fields like the others).
        fields = fields + optional
        found = self._decoders.get(("#keys",) + fields)
        if found is None:
            struct = self._msgspec.defstruct("Key", [(name, Any, None) for name in fields], gc=False, frozen=True)
            found = self._decoders[("#keys",) + fields] = self._msgspec.json.Decoder(struct).decode
        decode = found
        return (lambda values: map(decode, values)), attrgetter(*fields)


_CODECS: dict[str, Any] = {}



def codec_named(name: str | None = None) -> Any:
    """``msgspec`` when installed (faster), else ``orjson``; AGENT_TRACKER_REPORT_DECODER forces one."""
    name = name or os.environ.get("AGENT_TRACKER_REPORT_DECODER") or "auto"
    if name not in _CODECS:
        if name in ("auto", "msgspec"):
            try:
                _CODECS[name] = MsgspecCodec()
            except ImportError:
                if name == "msgspec":
                    raise ReportError("The msgspec decoder was asked for but msgspec is not installed.") from None
                _CODECS[name] = OrjsonCodec()
        elif name == "orjson":
            _CODECS[name] = OrjsonCodec()
        else:
            raise ReportError(f"Unknown report decoder {name!r}: use orjson or msgspec.")
    return _CODECS[name]



@contextmanager
def raw_cursor(view: ReadView, db: str) -> Iterator[Any]:
    """A raw py-lmdb cursor: the fast paths iterate it directly and, after a record fails,
    read the value it still points at (ReadView.cursor, closed here)."""
    cursor = view.cursor(db)
    try:
        yield cursor
    finally:
        cursor.close()



def scan_rows(view: ReadView, db: str, fields: tuple[str, ...], codec: Any,
          one_by_one: Callable[[dict[str, Any] | None], None],
          window: tuple[str, str] | None = None, optional: tuple[str, ...] = ()) -> Iterator[Any]:
    """``fields + optional`` tuples of every value of ``db``, decoded and picked in C.

    ``window``: only records with ``window[0] <= createdAt < window[1]``.
    A value that does not fit (a missing field, a non-string createdAt when filtering by date,
    not an object) is decoded with orjson and given to ``one_by_one``; the scan then resumes at
    the next record (the cursor still points at the one that failed). ``optional`` fields are
    None when missing (counters a record leaves out when they are 0, rare markers).
    """
    decode = codec.decoder(fields + optional + ("createdAt",))
    getter = codec.getter(fields, optional)
    created_of = codec.getter(("createdAt",))
    with raw_cursor(view, db) as cursor:
        if not cursor.first():
            return
        values: Iterator[bytes] = cursor.iternext(keys=False, values=True)
        while True:
            records: Iterable[Any] = map(decode, values)
            if window is not None:
                low, high = window
                records = filter(lambda r: low <= created_of(r) < high, records)
            try:
                yield from map(getter, records)
                return
            except codec.errors:
                try:
                    one_by_one(_loads(cursor.value()))
                except orjson.JSONDecodeError:
                    one_by_one(None)
                if not cursor.next():
                    return
                values = cursor.iternext(keys=False, values=True)



def count_groups(view: ReadView, db: str, fields: tuple[str, ...], codec: Any,
           one_by_one: Callable[[dict[str, Any] | None], None],
           window: tuple[str, str] | None = None, optional: tuple[str, ...] = ()) -> Counter[Any]:
    """Counter of ``fields + optional`` tuples: like scan_rows (``optional`` fields are None when
    missing), but the whole loop runs in C."""
    decode = codec.decoder(fields + optional + ("createdAt",))
    getter = codec.getter(fields, optional)
    created_of = codec.getter(("createdAt",))
    group_keys, as_tuple = codec.keys(fields, optional)
    counts: Counter[Any] = Counter()

    def result() -> Counter[Any]:
        if window is not None:
            return counts
        tuples: Counter[Any] = Counter()
        for group, count in counts.items():
            tuples[as_tuple(group)] += count
        return tuples

    with raw_cursor(view, db) as cursor:
        if not cursor.first():
            return counts
        values: Iterator[bytes] = cursor.iternext(keys=False, values=True)
        while True:
            if window is not None:
                low, high = window
                records = filter(lambda r: low <= created_of(r) < high, map(decode, values))
                keys: Iterable[Any] = map(getter, records)
            else:
                keys = group_keys(values)
            try:
                # An exception leaves the failing record uncounted (hashing comes before insertion).
                counts.update(keys)
                return result()
            except codec.errors:
                try:
                    one_by_one(_loads(cursor.value()))
                except orjson.JSONDecodeError:
                    one_by_one(None)
                if not cursor.next():
                    return result()
                values = cursor.iternext(keys=False, values=True)
