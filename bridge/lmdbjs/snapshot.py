"""Reading a whole lmdb-js database file into Python objects, consistently.

The file may belong to a live OpenCode process that is still writing with lmdb-js,
and we must not touch its lock file (registering as an LMDB reader would mean
writing to it). Without a reader slot nothing protects our snapshot's pages, so:

1. read both meta pages and pick the newest (txnid T);
2. copy the file up to T's last page with one read (the shortest possible window);
3. read the meta pages again. LMDB never overwrites a page of the newest snapshot,
   and a page that leaves the tree in commit T+1 can be reused only by a writer that
   started after commit T+2 (mdb_page_alloc only takes pages freed by transactions
   older than the last committed one; lmdb-js' overlapping sync only delays this).
   Commit T+2 rewrites meta page T % 2, so if that page still holds exactly the
   meta we started from, every page of snapshot T was intact during the copy;
4. otherwise retry (bounded, with short back-off), then give up with
   ConcurrentWriteError.

Everything after that works on the private copy, so decoding never races a writer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from . import compression, keys, msgpackr, pages
from .types import ConcurrentWriteError, DecodeError, ForeignFormatError, Symbol

DEFAULT_ATTEMPTS = 5
# pauses before each attempt: a bursty writer (the plugin writes on events) goes quiet soon
_BACKOFF_SECONDS = (0.0, 0.02, 0.1, 0.3, 0.6, 1.0)


@dataclass(frozen=True, slots=True)
class Entry:
    """One key/value pair. ``error`` is set (and ``value`` is None) if the value is undecodable."""

    key: Any
    raw_key: bytes
    value: Any
    error: str | None = None


@dataclass(slots=True)
class LmdbJsSnapshot:
    """All entries of every database in one committed snapshot of an lmdb-js file."""

    path: str
    txnid: int
    page_size: int
    databases: dict[str | None, list[Entry]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: str | os.PathLike[str], *, attempts: int = DEFAULT_ATTEMPTS) -> LmdbJsSnapshot:
        """Read ``path`` (never writing to it or its ``-lock`` file).

        Raises ForeignFormatError if it is not an lmdb-js file or is corrupt, and
        ConcurrentWriteError if a writer committed during every one of ``attempts``
        reads. Undecodable values do not raise: see ``Entry.error`` and ``errors``.
        """
        path = os.fspath(path)
        with open(path, "rb") as handle:
            buf, metas, meta, quiet = _stable_copy(handle, path, max(1, attempts))
        return _decode_snapshot(path, buf, metas, meta, quiet)


def is_lmdbjs_file(path: str | os.PathLike[str]) -> bool:
    """Cheap check of the meta pages: True for an lmdb-js (data format v2) file."""
    try:
        with open(path, "rb") as handle:
            head = _pread(handle, 0x10000 + pages.META_OFFSET + pages.META_SIZE, 0)
        meta0 = pages.parse_meta(head, 0, 0, None) if pages.describe_foreign(head) is None else None
        if meta0 is None:
            return False
        pages.parse_meta(head, meta0.page_size, 1, meta0.page_size)
        return True
    except (OSError, ForeignFormatError):
        return False


# ---------------------------------------------------------------------- reading


def _pread(handle: BinaryIO, size: int, offset: int) -> bytes:
    """Read without moving shared state; loops because a read may return less."""
    pread = getattr(os, "pread", None)
    chunks = []
    while size > 0:
        if pread is not None:
            chunk = pread(handle.fileno(), min(size, 1 << 30), offset)
        else:  # Windows
            handle.seek(offset)
            chunk = handle.read(min(size, 1 << 30))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
        offset += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_metas(handle: BinaryIO, path: str) -> tuple[pages.Meta, pages.Meta]:
    head = _pread(handle, pages.META_OFFSET + pages.META_SIZE, 0)
    problem = pages.describe_foreign(head)
    if problem:
        raise ForeignFormatError(f"{path}: {problem}")
    page_size = pages.DbRecord.parse(head[pages.META_OFFSET + 24 : pages.META_OFFSET + 72]).pad
    if page_size < 512 or page_size > 0x10000 or page_size & (page_size - 1):
        raise ForeignFormatError(f"{path}: meta page 0 has an impossible page size {page_size}")
    both = _pread(handle, 2 * page_size, 0)
    try:
        return pages.parse_metas(both)
    except ForeignFormatError as error:
        raise ForeignFormatError(f"{path}: {error}") from None


def _stable_copy(
    handle: BinaryIO, path: str, attempts: int
) -> tuple[bytes, tuple[pages.Meta, pages.Meta], pages.Meta, bool]:
    """Copy the newest snapshot; the flag says no commit at all happened meanwhile."""
    for attempt in range(attempts):
        time.sleep(_BACKOFF_SECONDS[min(attempt, len(_BACKOFF_SECONDS) - 1)])
        metas = _read_metas(handle, path)
        meta = pages.newest(metas)
        if meta.env_flags & pages.MDB_ENCRYPT:
            raise ForeignFormatError(f"{path}: the database is encrypted (lmdb-js encryptionKey)")
        size = (meta.last_pgno + 1) * meta.page_size
        if meta.last_pgno > (1 << 40):
            raise ForeignFormatError(f"{path}: impossible last page number {meta.last_pgno}")
        buf = _pread(handle, size, 0)
        after = _read_metas(handle, path)
        if after[meta.page].raw == meta.raw:
            quiet = after[1 - meta.page].raw == metas[1 - meta.page].raw
            return buf, metas, meta, quiet
    raise ConcurrentWriteError(
        f"{path}: a writer committed during each of {attempts} reads; "
        "close the program using the database (OpenCode) and try again"
    )


# ---------------------------------------------------------------------- decoding


def _decode_snapshot(
    path: str,
    buf: bytes,
    metas: tuple[pages.Meta, pages.Meta],
    meta: pages.Meta,
    quiet: bool = True,
) -> LmdbJsSnapshot:
    errors: list[str] = []
    try:
        raw = _collect(buf, meta)
    except ForeignFormatError as newest_error:
        # A crash with lmdb-js' overlapping sync can leave the newest snapshot's pages
        # unwritten; LMDB then falls back to the previous snapshot, and so do we. Its
        # pages are only guaranteed intact if nothing committed while we copied.
        other = metas[1 - meta.page]
        if not quiet or other.txnid >= meta.txnid or other.txnid == 0:
            raise ForeignFormatError(f"{path}: {newest_error}") from None
        try:
            raw = _collect(buf, other)
        except ForeignFormatError:
            raise ForeignFormatError(f"{path}: {newest_error}") from None
        errors.append(
            f"the newest snapshot (txn {meta.txnid}) is damaged ({newest_error}); "
            f"read the previous one (txn {other.txnid}) instead"
        )
        meta = other
    snapshot = LmdbJsSnapshot(path=path, txnid=meta.txnid, page_size=meta.page_size, errors=errors)
    for name, db, leaves in raw:
        snapshot.databases[name] = _decode_database(name, db, leaves, errors)
    return snapshot


def _collect(
    buf: bytes, meta: pages.Meta
) -> list[tuple[str | None, pages.DbRecord, list[pages.Leaf]]]:
    """Walk the main DB and every named DB; raises ForeignFormatError on corruption."""
    walker = pages.TreeWalker(buf, meta)
    if meta.main_db.flags & pages.MDB_DUPSORT:
        # a dupSort main database cannot hold named databases either
        return [(None, meta.main_db, [])]
    main: list[pages.Leaf] = []
    named: list[tuple[str | None, pages.DbRecord, list[pages.Leaf]]] = []
    for leaf in walker.leaves(meta.main_db, "main database"):
        if leaf.flags & pages.F_SUBDATA and not leaf.flags & pages.F_DUPDATA:
            if len(leaf.data) != 48:
                raise ForeignFormatError("main database: bad sub-database record")
            named.append((_db_name(leaf.key), pages.DbRecord.parse(bytes(leaf.data)), []))
        else:
            main.append(leaf)
    result: list[tuple[str | None, pages.DbRecord, list[pages.Leaf]]] = [
        (None, meta.main_db, main)
    ]
    for name, db, leaves in named:
        label = f"database {name!r}"
        if db.flags & pages.MDB_DUPSORT:
            # its duplicates live in sub-pages/sub-trees we do not decode; do not walk
            result.append((name, db, []))
            continue
        leaves.extend(walker.leaves(db, label))
        result.append((name, db, leaves))
    return result


def _db_name(raw: bytes) -> str:
    # mdb_dbi_open stores strlen(name) + 1 bytes: the name and its NUL terminator
    if raw.endswith(b"\0"):
        raw = raw[:-1]
    return bytes(raw).decode("utf-8", "replace")


def _decode_database(
    name: str | None, db: pages.DbRecord, leaves: Sequence[pages.Leaf], errors: list[str]
) -> list[Entry]:
    label = "main database" if name is None else f"database {name!r}"
    if db.flags & pages.MDB_DUPSORT:
        errors.append(
            f"{label}: dupSort databases (several values per key) are not supported; "
            f"its {db.entries} entries were skipped"
        )
        return []
    integer_keys = bool(db.flags & pages.MDB_INTEGERKEY)
    entries_keys: list[tuple[Any, bytes]] = []
    for leaf in leaves:
        raw_key = bytes(leaf.key)
        try:
            key = keys.decode_uint32_key(raw_key) if integer_keys else keys.decode_key(raw_key)
        except Exception:  # a key we cannot parse stays usable as raw bytes
            key = raw_key
        entries_keys.append((key, raw_key))

    shared, shared_error = _find_shared_structures(name, entries_keys, leaves)
    if shared_error:
        errors.append(f"{label}: {shared_error}")
    decoder = msgpackr.Decoder(shared)
    entries: list[Entry] = []
    failures = 0
    for (key, raw_key), leaf in zip(entries_keys, leaves):
        try:
            value = decode_value(bytes(leaf.data), decoder)
        except DecodeError as error:
            failures += 1
            entries.append(Entry(key, raw_key, None, str(error)))
            continue
        entries.append(Entry(key, raw_key, value))
    if failures:
        errors.append(f"{label}: {failures} of {len(entries)} values could not be decoded")
    if decoder.unknown_record_ids:
        errors.append(
            f"{label}: {decoder.unknown_record_ids} record references had no known structure "
            "and were read as integers (as msgpackr does); shared structures may be missing"
        )
    return entries


def decode_value(data: bytes, decoder: msgpackr.Decoder) -> Any:
    """Decompress (if lmdb-js compressed it) and decode one stored value."""
    if not data:
        raise DecodeError("empty value")
    if compression.is_compressed(data):
        data = compression.decompress(data)
    elif data[0] >= 0xFA and len(data) > 1:
        raise DecodeError(f"value starts with reserved status byte 0x{data[0]:02x}")
    return decoder.decode(data)


def _find_shared_structures(
    name: str | None, entries_keys: Sequence[tuple[Any, bytes]], leaves: Sequence[pages.Leaf]
) -> tuple[dict[int, msgpackr.Structure], str | None]:
    """Locate the msgpackr shared structures stored in this database.

    lmdb-js keeps them in the same database under its ``sharedStructuresKey``; the
    plugin used ``Symbol.for('structures:' + name)``, lmdb-js' docs suggest
    ``Symbol.for('structures')``. Prefer those, then any symbol key whose value
    has the shape of a structures list.
    """
    candidates: list[tuple[int, int]] = []  # (preference, index)
    for index, (key, _raw) in enumerate(entries_keys):
        if not isinstance(key, Symbol):
            continue
        if name is not None and key.description == f"structures:{name}":
            candidates.append((0, index))
        elif key.description == "structures":
            candidates.append((1, index))
        elif "structures" in key.description:
            candidates.append((2, index))
    plain = msgpackr.Decoder()
    for _preference, index in sorted(candidates):
        try:
            value = decode_value(bytes(leaves[index].data), plain)
        except DecodeError as error:
            return {}, f"shared structures under {entries_keys[index][0]!r} are unreadable: {error}"
        if msgpackr.looks_like_shared_structures(value):
            try:
                return msgpackr.shared_structures_from(value), None
            except DecodeError as error:
                return {}, f"shared structures under {entries_keys[index][0]!r}: {error}"
    return {}, None
