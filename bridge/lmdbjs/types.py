"""Python stand-ins for JavaScript values that have no direct Python equivalent.

lmdb-js stores JavaScript values (via msgpackr), so a faithful reader needs a few
small types: ``undefined`` is not ``None`` (``null``), symbols appear as keys
(e.g. ``Symbol.for('structures:agents')``), and msgpackr's optional extensions
can carry Error, RegExp and typed-array objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class LmdbJsError(Exception):
    """Base class of every error raised by :mod:`bridge.lmdbjs`."""


class ForeignFormatError(LmdbJsError):
    """The file is not an lmdb-js (LMDB data format v2) database, or it is corrupt."""


class DecodeError(LmdbJsError):
    """One key or value could not be decoded (reported per entry, never fatal)."""


class ConcurrentWriteError(LmdbJsError):
    """A live writer kept committing while we read, and no stable snapshot was obtained."""


class _Undefined:
    """JavaScript ``undefined`` (msgpack extension 0), distinct from ``None`` (``null``)."""

    __slots__ = ()
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Undefined"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "Undefined"


Undefined = _Undefined()


class _InvalidDate:
    """A JavaScript ``Date`` whose time is NaN (``new Date('garbage')``).

    msgpackr stores it as a 1-byte timestamp extension; keeping it distinct lets a
    caller treat it like a missing date instead of losing the whole record.
    """

    __slots__ = ()
    _instance: _InvalidDate | None = None

    def __new__(cls) -> _InvalidDate:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "InvalidDate"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "InvalidDate"


InvalidDate = _InvalidDate()


class Symbol:
    """A JavaScript registered symbol (``Symbol.for(description)``), as used in keys."""

    __slots__ = ("description",)

    def __init__(self, description: str) -> None:
        self.description = description

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Symbol) and other.description == self.description

    def __hash__(self) -> int:
        return hash(("Symbol", self.description))

    def __repr__(self) -> str:
        return f"Symbol({self.description!r})"


@dataclass(frozen=True, slots=True)
class JsError:
    """An ``Error`` stored with msgpackr's ``moreTypes``/``structuredClone`` (extension 0x65)."""

    name: Any
    message: Any
    cause: Any = Undefined


@dataclass(frozen=True, slots=True)
class JsRegExp:
    """A ``RegExp`` stored with msgpackr's ``moreTypes`` (extension 0x78)."""

    source: Any
    flags: Any


@dataclass(frozen=True, slots=True)
class JsTypedArray:
    """A typed array / ArrayBuffer / DataView stored with ``moreTypes`` (extension 0x74).

    ``type`` is the JavaScript constructor name (``'Float64Array'``...), ``data`` the
    raw bytes in the platform byte order that wrote them (little-endian in practice).
    """

    type: str
    data: bytes
