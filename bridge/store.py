"""The central LMDB store: one environment, named sub-databases, one write entry point.

Key layout and value encoding are documented in protocol/storage.md. Values are JSON (orjson):
floats round-trip exactly (shortest repr), and any tool (jq, DuckDB) can read an export.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import attrs
import lmdb
import orjson

from .config import BridgeConfig, MiB
from .filesystem import Trouble, display
from .lmdbjs import is_lmdbjs_file

SCHEMA_VERSION = 1
SUB_DATABASES = (
    "agents", "sessions", "commits", "communication", "retrospectives",
    "activities", "projects", "migrations", "meta", "usage", "calls", "summaries", "configs",
)
# Added after the first release: a database written by an older bridge lacks them until a newer
# bridge (or any write) creates them. Opened read-only, it reads them as empty.
ADDED_LATER = frozenset(("usage", "calls", "summaries", "configs"))
# What bridge.summaries summarises: a write to one of these runs the write hooks before commit.
SUMMARISED = frozenset(("sessions", "commits", "communication", "activities"))
SUMMARIES_MARKER = "summaries"  # meta key: present while the summaries agree with the events

WriteHook = Callable[["WriteView"], None]
_WRITE_HOOKS: list[WriteHook] = []

def register_write_hook(hook: WriteHook) -> None:
    """Run ``hook`` inside every write transaction that changed a summarised record, just before
    it commits (bridge.summaries registers its maintainer; the store cannot import it)."""
    if hook not in _WRITE_HOOKS:
        _WRITE_HOOKS.append(hook)


SEP = "\x00"  # composite-key separator: cannot occur in ids or paths (validated on input)

T = TypeVar("T")


class StoreError(Exception):
    """A store problem with a message meant for the user."""


class StoreUnavailable(StoreError):
    """The database cannot be opened or used."""


class ForeignDatabase(StoreUnavailable):
    """The path holds a database this store must not write into (e.g. lmdb-js data format v2)."""


class NotInitialised(StoreUnavailable):
    """Opened read-only before any bridge created our sub-databases: nothing recorded there yet."""


class ReadOnlyDatabase(StoreError):
    """A write through a store opened read-only."""

class DatabaseFull(StoreError):
    """The map (maxDatabaseSize) is full: writes are refused until it is raised."""


class DiskTrouble(StoreError):
    """The file system refused the write (full, quota, read-only, I/O error): retry when it is back."""

    def __init__(self, trouble: Trouble):
        super().__init__(trouble.nothing_written())
        self.trouble = trouble

class DatabaseReplaced(StoreError):
    """The file at the database path is no longer the one this store has open (moved or deleted)."""


class CorruptRecord(StoreError):
    def __init__(self, db: str, record_key: str, cause: Exception):
        super().__init__(
            f"A record in the database is damaged ({db} {record_key!r}: {cause}); LMDB has no checksums, "
            f"so the file was changed behind its back. Nothing was written; pending changes are kept. "
            f"Restore the database from a backup or move it away.")


MAX_KEY_BYTES = 511  # LMDB's compiled-in limit
MAX_PART_BYTES = 96  # five parts and their separators stay under MAX_KEY_BYTES


def key_part(part: str) -> str:
    """A key part as stored: long ids and paths become a readable head plus a digest.

    Deterministic, so prefix scans built from the same parts still match; the full value
    is always kept in the record itself.
    """
    encoded = part.encode("utf-8", "surrogatepass")
    if len(encoded) <= MAX_PART_BYTES:
        return part
    head = encoded[:48].decode("utf-8", "ignore")
    return f"{head}~{hashlib.sha256(encoded).hexdigest()[:40]}"


def key(*parts: str) -> str:
    return SEP.join(key_part(part) for part in parts)


def _encode_key(k: str) -> bytes:
    encoded = k.encode()
    if len(encoded) > MAX_KEY_BYTES:  # a single long id used directly as a key
        encoded = key_part(k).encode()
    return encoded


def split_key(raw: str) -> list[str]:
    return raw.split(SEP)

def full_message(map_size: int) -> str:
    return (
        f"The agent-tracker database is full (maxDatabaseSize = {map_size} bytes, "
        f"{map_size / MiB:g} MiB). Nothing was lost: pending changes are kept in memory and in the "
        f"journal. Raise maxDatabaseSize (up to 2 GiB) in the plugin options or "
        f"AGENT_TRACKER_MAX_DATABASE_SIZE and restart OpenCode to apply them."
    )


@attrs.frozen
class DatabaseInfo:
    path: str
    map_size: int
    available: bool
    read_only: bool
    error: str | None = None
    foreign: bool = False

    def to_wire(self) -> dict[str, Any]:
        wire = {"path": self.path, "mapSize": self.map_size, "available": self.available,
                "readOnly": self.read_only}
        if self.error:
            wire["error"] = self.error
        return wire


class ReadView:
    """Read access inside one transaction (a consistent snapshot)."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any]):
        self._txn = txn
        self._dbs = dbs

    def get(self, db: str, k: str) -> dict[str, Any] | None:
        handle = self._dbs.get(db)
        if handle is None:  # a sub-database added later, absent from an older read-only database
            return None
        raw = self._txn.get(_encode_key(k), db=handle)
        if raw is None:
            return None
        try:
            record: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise CorruptRecord(db, k, exc) from None
        return record

    def meta(self, k: str) -> Any:
        """A value of the ``meta`` sub-database (plain JSON values, not records)."""
        raw = self._txn.get(_encode_key(k), db=self._dbs["meta"])
        return None if raw is None else orjson.loads(raw)

    def scan(self, db: str, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        """Entries whose key starts with prefix, in key order."""
        encoded = prefix.encode()
        if db not in self._dbs:
            return
        with self._txn.cursor(db=self._dbs[db]) as cursor:
            if not cursor.set_range(encoded):
                return
            for raw_key, raw_value in cursor:
                if not bytes(raw_key).startswith(encoded):
                    return
                try:
                    yield bytes(raw_key).decode(), orjson.loads(raw_value)
                except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise CorruptRecord(db, repr(raw_key), exc) from None

    def scan_backwards(self, db: str, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """Entries whose key starts with prefix, last key first (the latest of time-ordered keys)."""
        encoded = prefix.encode()
        with self._txn.cursor(db=self._dbs[db]) as cursor:
            # Just past the prefix's range: the prefix with its last byte raised by one (UTF-8
            # never holds 0xFF, so it can be raised).
            positioned = bool(encoded) and cursor.set_range(encoded[:-1] + bytes([encoded[-1] + 1]))
            if not (cursor.prev() if positioned else cursor.last()):
                return
            while True:
                raw_key = bytes(cursor.key())
                if not raw_key.startswith(encoded):
                    return
                try:
                    yield raw_key.decode(), orjson.loads(cursor.value())
                except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise CorruptRecord(db, repr(raw_key), exc) from None
                if not cursor.prev():
                    return

    def cursor(self, db: str) -> lmdb.Cursor:
        """A raw cursor (bytes in, bytes out) for bulk readers such as the report."""
        return self._txn.cursor(db=self._dbs[db])

    def txn_id(self) -> int:
        """Identifies the snapshot: two views with the same id saw the same data."""
        return self._txn.id()

    def raw_values(self, db: str) -> Iterator[bytes]:
        """Every value, undecoded: for reports that decode in bulk."""
        if db not in self._dbs:
            return
        with self._txn.cursor(db=self._dbs[db]) as cursor:
            # Values come back as bytes: the environment is opened without buffers=True.
            yield from cursor.iternext(keys=False, values=True)  # type: ignore[misc]

    def count(self, db: str) -> int:
        handle = self._dbs.get(db)
        return 0 if handle is None else self._txn.stat(handle)["entries"]


class WriteView(ReadView):
    """Write access inside the single write transaction of Store.write; ``touched``: each summarised
    record it changed, (db, key) -> its value before this transaction (None: new), for the hooks."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any]):
        super().__init__(txn, dbs)
        self.touched: dict[tuple[str, str], dict[str, Any] | None] = {}

    def _remember(self, db: str, k: str) -> None:
        if db in SUMMARISED and (db, k) not in self.touched:
            self.touched[(db, k)] = self.get(db, k)

    def put(self, db: str, k: str, value: Any) -> None:
        self._remember(db, k)
        self._txn.put(_encode_key(k), orjson.dumps(value), db=self._dbs[db])

    def insert(self, db: str, k: str, value: Any) -> bool:
        """Put only if the key is absent; True if written."""
        written: bool = self._txn.put(_encode_key(k), orjson.dumps(value), db=self._dbs[db], overwrite=False)
        if written and db in SUMMARISED and (db, k) not in self.touched:
            self.touched[(db, k)] = None
        return written

    def delete(self, db: str, k: str) -> bool:
        self._remember(db, k)
        return self._txn.delete(_encode_key(k), db=self._dbs[db])

    def run_hooks(self) -> None:
        if not self.touched:
            return
        if not _WRITE_HOOKS:
            # A writer that cannot maintain the summaries: they no longer describe the events, so
            # readers use the scan until a writer with them rebuilds (bridge.summaries).
            self._txn.delete(SUMMARIES_MARKER.encode(), db=self._dbs["meta"])
            return
        for hook in _WRITE_HOOKS:
            hook(self)


class Store:
    """One LMDB environment. Never raises on open: check ``available`` and ``error``."""

    def __init__(self, path: Path, map_size: int, *, readonly: bool = False,
                 temporary_dir: str | None = None):
        self.path = path
        self.requested_map_size = map_size
        self._temporary_dir = temporary_dir
        self._env: lmdb.Environment | None = None
        self._dbs: dict[str, Any] = {}
        self._opened_readonly = readonly
        self._writes_refused = readonly
        # Why the store is unavailable or refuses writes; its type says which kind of problem.
        self.failure: StoreError | None = None
        # (device, inode) of the file we opened: a different one at the path means it was replaced.
        self._identity: tuple[int, int] | None = None

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, config: BridgeConfig, *, readonly: bool = False) -> "Store":
        path = config.resolved_database_path()
        temporary_dir = None
        if path is None:  # ":memory:": py-lmdb has no in-memory mode, so a private temp dir
            temporary_dir = tempfile.mkdtemp(prefix="agent-tracker-memory-")
            path = Path(temporary_dir) / "agent-tracker.lmdb"
        store = cls(path, config.max_database_size, readonly=readonly, temporary_dir=temporary_dir)
        store._open()
        return store

    def _open(self) -> None:
        try:
            self._check_path()
            self._env = lmdb.open(
                str(self.path), subdir=False, map_size=self.requested_map_size,
                max_dbs=len(SUB_DATABASES) + 2, readonly=self._opened_readonly,
                lock=True, readahead=False, meminit=False, create=not self._opened_readonly,
            )
            self._open_sub_databases()
            opened = os.stat(self.path)
            self._identity = (opened.st_dev, opened.st_ino)
        except StoreError as exc:
            self._fail(exc)
        except lmdb.Error as exc:
            self._fail(self._explain_open_error(exc))
        except OSError as exc:
            self._fail(StoreUnavailable(f"Cannot use the database at {self.path}: {exc.strerror or exc}."))

    def _check_path(self) -> None:
        if self.path.exists() and not self.path.is_dir() and not self.path.is_file():
            raise StoreUnavailable(
                f"The database path {self.path} is not a regular file (a pipe, socket or device); "
                f"set databasePath to a file path.")
        if self.path.is_dir():
            raise StoreUnavailable(
                f"The database path {self.path} is a directory; agent-tracker needs a file path "
                f"there (set databasePath to a file such as {self.path / 'agent-tracker.lmdb'})."
            )
        if self._opened_readonly:
            if not self.path.exists():
                raise StoreUnavailable(f"No agent-tracker database at {self.path}.")
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in self.path.parents if p.is_file()), None)
            reason = f"{blocker} is a file, not a folder" if blocker else (exc.strerror or str(exc))
            raise StoreUnavailable(
                f"Cannot create the folder {self.path.parent} for the database: {reason}."
            ) from exc
        if self.path.exists() and self.path.stat().st_size > 0:
            if _looks_like_lmdbjs(self.path):
                raise ForeignDatabase(_foreign_message(self.path))
            _check_not_truncated(self.path)

    def _explain_open_error(self, exc: lmdb.Error) -> StoreError:
        text = str(exc)
        if "format v2" in text or (self.path.exists() and _looks_like_lmdbjs(self.path)):
            return ForeignDatabase(_foreign_message(self.path))
        if isinstance(exc, (lmdb.InvalidError, lmdb.CorruptedError, lmdb.VersionMismatchError)) \
                or "Invalid argument" in text:
            return StoreUnavailable(
                f"The file at {self.path} is not a readable agent-tracker database "
                f"(corrupt or another program's file: {text}). Tracking is disabled; move the "
                f"file away or choose another databasePath.")
        if isinstance(exc, lmdb.ReadonlyError) or getattr(exc, "errno", None) in (errno.EACCES, errno.EROFS) \
                or "Permission denied" in text or "Read-only" in text:
            return StoreUnavailable(f"No permission to open the database at {self.path}: {text}.")
        return StoreUnavailable(f"Cannot open the database at {self.path}: {text}.")

    def _open_sub_databases(self) -> None:
        assert self._env is not None
        with self._env.begin(write=False) as txn:
            existing = {k.split(b"\x00")[0] for k, _ in txn.cursor()}
        ours = {name.encode() for name in SUB_DATABASES}
        if existing - ours:
            strangers = ", ".join(sorted(k.decode(errors="replace") for k in existing - ours)[:5])
            if not {b"agents", b"sessions", b"meta"} <= existing:
                raise StoreUnavailable(
                    f"The LMDB database at {self.path} belongs to another program (it holds {strangers}); "
                    f"agent-tracker will not write into it. Choose another databasePath."
                )
            if not self._opened_readonly:
                # Ours, with sub-databases a newer agent-tracker added: its rules may depend on them.
                raise StoreUnavailable(
                    f"The database at {self.path} was written by a newer agent-tracker (it has the "
                    f"sub-databases {strangers}, which this one does not know); upgrade agent-tracker to "
                    f"record into it. Reading it (report, status, export) still works.")
        if self._opened_readonly:
            if any(name.encode() not in existing for name in SUB_DATABASES if name not in ADDED_LATER):
                raise NotInitialised(f"The database at {self.path} has not been initialised yet.")
            # No txn=: py-lmdb closes handles opened inside a read-only transaction when it ends.
            for name in SUB_DATABASES:
                if name.encode() in existing:  # one added later may be missing: it reads as empty
                    self._dbs[name] = self._env.open_db(name.encode(), create=False)
        else:
            try:
                with self._env.begin(write=True) as txn:
                    for name in SUB_DATABASES:
                        self._dbs[name] = self._env.open_db(name.encode(), txn=txn, create=True)
                    meta = self._dbs["meta"]
                    if txn.get(b"schemaVersion", db=meta) is None:
                        txn.put(b"schemaVersion", orjson.dumps(SCHEMA_VERSION), db=meta)
            except lmdb.MapFullError:
                self._writes_refused = True
                raise DatabaseFull(full_message(self.map_size)) from None
        with self._env.begin(write=False) as txn:
            version = txn.get(b"schemaVersion", db=self._dbs["meta"])
        if version is not None and orjson.loads(version) > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"The database at {self.path} has schema version {orjson.loads(version)}, newer than "
                f"this agent-tracker understands ({SCHEMA_VERSION}); upgrade agent-tracker."
            )

    def _fail(self, failure: StoreError) -> None:
        self.failure = failure
        if self._env is not None:
            self._env.close()
            self._env = None

    # -- state ---------------------------------------------------------------------------

    @property
    def error(self) -> str | None:
        return str(self.failure) if self.failure is not None else None

    @property
    def foreign(self) -> bool:
        return isinstance(self.failure, ForeignDatabase)

    @property
    def available(self) -> bool:
        return self._env is not None

    @property
    def read_only(self) -> bool:
        return self._writes_refused or not self.available

    @property
    def map_size(self) -> int:
        if self._env is None:
            return self.requested_map_size
        return self._env.info()["map_size"]

    def info(self) -> DatabaseInfo:
        return DatabaseInfo(str(self.path), self.map_size, self.available, self.read_only,
                            self.error, self.foreign)

    def last_txn_id(self) -> int:
        assert self._env is not None
        return self._env.info()["last_txnid"]

    # -- access ----------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[ReadView]:
        if self._env is None:
            raise StoreUnavailable(self.error or "The database is not open.")
        txn = self._begin(write=False)
        try:
            yield ReadView(txn, self._dbs)
        finally:
            txn.abort()

    def write(self, apply: Callable[[WriteView], T]) -> T:
        """The only way to write: ``apply`` runs inside one write transaction.

        Counters must be read-modified-written through the view, so concurrent processes
        (LMDB serialises writers with its lock file) never lose each other's updates. On
        MapFullError the transaction aborts as a whole and writes are refused from then on:
        the map is a hard ceiling, never grown automatically.
        """
        if self._env is None:
            raise StoreUnavailable(self.error or "The database is not open.")
        if self._writes_refused:
            if self.failure is not None:
                raise self.failure
            raise ReadOnlyDatabase(f"The database at {self.path} is open read-only.")
        txn = self._begin(write=True)
        try:
            view = WriteView(txn, self._dbs)
            result = apply(view)
            view.run_hooks()
            txn.commit()
            return result
        except lmdb.MapFullError as exc:
            txn.abort()
            self._writes_refused = True
            self.failure = DatabaseFull(full_message(self.map_size))
            raise self.failure from exc
        except lmdb.Error as exc:
            txn.abort()
            trouble = Trouble.of(exc, self.path.parent)
            if trouble is not None:
                raise DiskTrouble(trouble) from exc
            raise StoreError(f"The database refused the write: {exc}. Nothing was written.") from exc
        except BaseException:
            txn.abort()
            raise

    def _begin(self, write: bool) -> lmdb.Transaction:
        assert self._env is not None
        try:
            return self._env.begin(write=write)
        except lmdb.MapResizedError:
            # Another process with a larger maxDatabaseSize grew the map; adopt its size.
            self._env.set_mapsize(0)
            return self._env.begin(write=write)

    def copy_to(self, target: Path) -> None:
        """A consistent, compacted copy of the whole database at ``target`` (a file), e.g. for a dry
        run that must apply the real rules without changing the real database."""
        if self._env is None:
            raise StoreUnavailable(self.error or "The database is not open.")
        try:
            self._env.copy(str(target), compact=True)
        except lmdb.Error as exc:
            raise StoreError(f"Cannot copy the database to {target}: {exc}.") from None

    def replaced(self) -> bool:
        """True when the path no longer leads to the file we have open (moved, deleted, replaced).

        Writing on would put every later flush into a file nobody reads; checked before each flush
        and after its commit (one stat call).
        """
        if self._env is None or self._identity is None or self._temporary_dir is not None:
            return False
        try:
            now = os.stat(self.path)
        except OSError:
            return True
        return (now.st_dev, now.st_ino) != self._identity

    def reopen(self) -> str:
        """Open whatever is at the path now (creating a new database if nothing is); says what it found."""
        existed = self.path.exists()
        if self._env is not None:
            self._env.close()
            self._env = None
        self._dbs = {}
        self.failure, self._identity = None, None
        self._writes_refused = self._opened_readonly
        self._open()
        if not self.available:
            return f"it could not be reopened: {self.error}"
        return (f"the bridge reopened {display(self.path)} ("
                f"{'the database now at that path' if existed else 'a new, empty database'}) and writes there from now on")

    def close(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None
        if self._temporary_dir:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)
            self._temporary_dir = None

    def __enter__(self) -> "Store":
        return self
    def __exit__(self, *exc: object) -> None:
        self.close()


_LMDB_MAGIC = 0xBEEFC0DE


def _check_not_truncated(path: Path) -> None:
    """Refuse a data file shorter than its own meta page says (an interrupted copy or restore).

    LMDB trusts the meta page's last page number; reading past the end of a truncated file
    is a SIGBUS that would kill the bridge at every start. Layout of a meta page (LMDB 0.9,
    64-bit): 16-byte page header, then magic u32, version u32, address u64, mapsize u64, two
    48-byte MDB_db records (the first one's u32 pad is the page size), last_pg u64, txnid u64.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        first = handle.read(160)
        if len(first) < 160:
            raise StoreUnavailable(f"The file at {path} is too short to be an LMDB database ({size} bytes).")
        magic, version = struct.unpack_from("<II", first, 16)
        if magic != _LMDB_MAGIC:
            return  # not LMDB at all: py-lmdb's own error explains it
        page_size = struct.unpack_from("<I", first, 40)[0]
        handle.seek(page_size)
        second = handle.read(160)
    metas = [first] + ([second] if len(second) == 160 else [])
    newest = max(metas, key=lambda meta: struct.unpack_from("<Q", meta, 144)[0])
    last_page = struct.unpack_from("<Q", newest, 136)[0]
    if page_size <= 0 or (last_page + 1) * page_size > size:
        raise StoreUnavailable(
            f"The database file at {path} is truncated ({size} bytes, but its last page ends at byte "
            f"{(last_page + 1) * page_size}); it was probably copied or restored incompletely. Tracking "
            f"is disabled; restore a complete copy or move the file away.")


def _looks_like_lmdbjs(path: Path) -> bool:
    try:
        return is_lmdbjs_file(path)
    except OSError:
        return False


def _foreign_message(path: Path) -> str:
    return (
        f"The database at {path} was written by the older TypeScript plugin (lmdb-js, data format "
        f"v2), which this bridge cannot write into. Run `agent-tracker migrate` to move it aside "
        f"and import its history; nothing will be deleted."
    )
