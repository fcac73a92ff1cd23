"""Files the commands write for the user (an export, a chart): never a database, never half-written.

`agent-tracker export -o <the database file>` once opened the live LMDB file for writing: the
truncation killed the export and the running bridges with SIGBUS, and the next bridge silently
started an empty database. Only LMDB may write the database, so before writing a file:

* ``refuse_database_files`` refuses the database, its lock file and anything in its journal folder,
  by resolved path and by inode (a hard link or another mount of the same file), and any file that
  is an LMDB environment or inside any database's journal folder (another database: the user's real
  one while the demo's is open, an old lmdb-js database waiting to be migrated);
* ``replace_atomically`` writes a temporary file beside the target and renames it into place, so a
  full disk or an interruption leaves the previous file as it was. Symlinks are written through
  to their target; a hard-linked target is rewritten in place from that complete temporary file
  (a rename would leave its other names with the old content); a target that is not a regular file (``/dev/stdout``, ``/dev/null``, a FIFO) is
  written directly, as it cannot be replaced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Any, Iterator

LMDB_MAGIC = b"\xde\xc0\xef\xbe"  # 0xBEEFC0DE, little-endian: lock file at 0, meta page at 16 or 24
JOURNAL_SUFFIX = "-journal"


class UnsafeOutput(Exception):
    """The target is (part of) a database: one sentence saying which, nothing written."""


def refuse_database_files(target: Path, database: Path | None, *, what: str = "the output") -> None:
    """Raise UnsafeOutput when writing ``target`` would write into ``database`` or any LMDB file."""
    real = Path(os.path.realpath(target))
    if database is not None:
        db = Path(os.path.realpath(database))
        lock = Path(os.path.realpath(database.with_name(database.name + "-lock")))
        journal = Path(os.path.realpath(database.with_name(database.name + JOURNAL_SUFFIX)))
        identity = _identity(target)
        if real == db or (identity is not None and identity == _identity(database)):
            raise UnsafeOutput(f"Refusing to write {what} to {target}: it is the agent-tracker database "
                               f"{database}; only LMDB may write that file. Choose another file.")
        if real == lock or (identity is not None and identity == _identity(lock)):
            raise UnsafeOutput(f"Refusing to write {what} to {target}: it is the lock file of the "
                               f"agent-tracker database {database}. Choose another file.")
        journal_identity = _identity(journal)
        if real == journal or journal in real.parents or (journal_identity is not None and any(
                _identity(folder) == journal_identity for folder in _existing_folders(target))):
            raise UnsafeOutput(f"Refusing to write {what} to {target}: it is inside the crash journal "
                               f"folder of the agent-tracker database {database}. Choose another file.")
    if _is_lmdb_file(real):
        raise UnsafeOutput(f"Refusing to write {what} to {target}: it is an LMDB database (or its lock "
                           f"file); only LMDB may write it. Choose another file.")
    for folder in real.parents:
        if folder.name.endswith(JOURNAL_SUFFIX) and _is_lmdb_file(folder.with_name(folder.name[:-len(JOURNAL_SUFFIX)])):
            raise UnsafeOutput(f"Refusing to write {what} to {target}: it is inside the crash journal "
                               f"folder of the database {folder.with_name(folder.name[:-len(JOURNAL_SUFFIX)])}. "
                               f"Choose another file.")


@contextlib.contextmanager
def replace_atomically(target: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A handle whose content replaces ``target`` when the block ends without an exception.

    OSError (a full disk, no permission) propagates with the previous file untouched and no
    temporary file left behind.
    """
    mode = "wb" if binary else "w"
    encoding = None if binary else "utf-8"
    newline = None if binary else ""
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with open(target, mode, encoding=encoding, newline=newline) as handle:
            yield handle
        return
    real = Path(os.path.realpath(target))  # a symlink (dotfiles) keeps pointing at the new content
    temporary = real.with_name(f".{real.name}.{secrets.token_hex(4)}.tmp")
    # Created as a new file with the usual 0666 & ~umask, or the replaced file's mode.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                 stat.S_IMODE(existing.st_mode) if existing else 0o666)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as handle:
            yield handle
            handle.flush()
            if existing is not None:
                keep_mode_and_owner(handle.fileno(), existing)
            os.fsync(handle.fileno())
        if existing is not None and existing.st_nlink > 1:
            _copy_into(temporary, real)
            os.unlink(temporary)
        else:
            os.replace(temporary, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _copy_into(source: Path, target: Path) -> None:
    """Rewrite a hard-linked ``target`` in place: a rename would give only this one of its names
    the new content (the others would keep the old file). The whole content is on disk in
    ``source`` first, so only the copy itself can still fail."""
    import shutil

    with open(source, "rb") as reading, open(target, "r+b") as writing:
        shutil.copyfileobj(reading, writing)
        writing.truncate()
        writing.flush()
        os.fsync(writing.fileno())


def keep_mode_and_owner(fd: int, original: os.stat_result) -> None:
    """Give the file open at ``fd`` the original's owner (where allowed) and exact mode."""
    if (original.st_uid, original.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):  # only root may give a file away
            os.fchown(fd, original.st_uid, original.st_gid)
    os.fchmod(fd, stat.S_IMODE(original.st_mode))  # after chown, which clears set-id bits


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _existing_folders(target: Path) -> Iterator[Path]:
    for folder in Path(os.path.abspath(target)).parents:
        if folder.is_dir():
            yield folder


def _is_lmdb_file(path: Path) -> bool:
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as handle:
            head = handle.read(32)
    except OSError:
        return False
    return LMDB_MAGIC in (head[0:4], head[16:20], head[24:28])
