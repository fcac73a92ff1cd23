"""Read-only, pure-Python reader for databases written by the npm package ``lmdb`` (lmdb-js).

The old TypeScript OpenCode plugin stored its history with lmdb-js, which bundles
its own LMDB fork ("data format v2") that py-lmdb refuses to open. This package
reads such a file directly (pages, B-trees, lmdb-js compression, ordered-binary
keys, msgpackr values) without writing to it or to its ``-lock`` file.

Owns: the lmdb-js file format, read-only. Imports nothing of the bridge: the store uses it to
recognise (and refuse) such a file, the migration to import one.

    from bridge.lmdbjs import LmdbJsSnapshot, is_lmdbjs_file

    if is_lmdbjs_file(path):
        snap = LmdbJsSnapshot.read(path)
        for entry in snap.databases[None]:          # main (unnamed) database
            if entry.error is None:
                use(entry.key, entry.value)
        agents = snap.databases.get("agents", [])   # named sub-databases
"""

from .msgpackr import Decoder
from .snapshot import Entry, LmdbJsSnapshot, decode_value, is_lmdbjs_file
from .types import (
    ConcurrentWriteError,
    DecodeError,
    ForeignFormatError,
    InvalidDate,
    JsError,
    JsRegExp,
    JsTypedArray,
    LmdbJsError,
    Symbol,
    Undefined,
)

__all__ = [
    "ConcurrentWriteError",
    "DecodeError",
    "Decoder",
    "Entry",
    "ForeignFormatError",
    "InvalidDate",
    "JsError",
    "JsRegExp",
    "JsTypedArray",
    "LmdbJsError",
    "LmdbJsSnapshot",
    "Symbol",
    "Undefined",
    "decode_value",
    "is_lmdbjs_file",
]
