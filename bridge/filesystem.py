"""File-system trouble in one place: which write errors mean "full", "quota", "read-only" or "broken".

The journal (plain write(2) calls) and the store (LMDB) fail in different ways: an OSError with an
errno, or an lmdb.Error whose only trace of the cause is strerror's text. Both are turned into one
``Trouble`` here, so the user reads the same sentence, with the same numbers, whichever failed.
LMDB reports a short write (the disk filled up in the middle of its pwrite) as EIO: an EIO on a file
system with less than ``NEARLY_FULL`` bytes left is taken for what it is, a full disk.

Also the journal's space reserve: ``reserve`` asks the kernel for blocks beyond the end of a file
without changing its size (fallocate with FALLOC_FL_KEEP_SIZE), so appends keep working for a while
on a disk that another program filled up.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Callable

import attrs

FULL, QUOTA, READ_ONLY, BROKEN = "disk full", "quota", "read-only", "i/o error"
KIND_OF_ERRNO = {errno.ENOSPC: FULL, errno.EDQUOT: QUOTA, errno.EROFS: READ_ONLY, errno.EIO: BROKEN}
NEARLY_FULL = 1024 * 1024


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system of ``folder`` (0 if unknown)."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return 0
    return stats.f_bavail * stats.f_frsize


def device_of(folder: Path) -> int:
    try:
        return os.stat(folder).st_dev
    except OSError:
        return -1


def display(path: Path | str) -> str:
    """A path as the user would type it: the home directory as ``~``."""
    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/", "~") and (text == home or text.startswith(home.rstrip("/") + "/")):
        return "~" + text[len(home.rstrip("/")):]
    return text


def errno_of(error: BaseException) -> int | None:
    """The errno behind an OSError, or behind an lmdb.Error (which carries only strerror's text)."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno
    if type(error).__name__ == "DiskError":  # py-lmdb's class for ENOSPC
        return errno.ENOSPC
    text = str(error)
    for code in KIND_OF_ERRNO:
        if os.strerror(code) in text:
            return code
    return None


@attrs.frozen
class Trouble:
    """One failed write, classified: what kind, on which file system, how much room is left."""

    kind: str
    code: int
    folder: Path
    free: int
    device: int

    @classmethod
    def of(cls, error: BaseException, folder: Path, *, any_error: bool = False) -> "Trouble | None":
        """The trouble behind ``error`` when a write to ``folder`` failed; None if it is none of these
        four kinds, unless ``any_error`` (then any other error counts as a failing file system)."""
        code = errno_of(error)
        kind = KIND_OF_ERRNO.get(code) if code is not None else None
        if kind is None or code is None:
            if not any_error:
                return None
            kind, code = BROKEN, code or errno.EIO
        free = free_bytes(folder)
        if kind == BROKEN and free < NEARLY_FULL:
            kind = FULL  # LMDB's short write on a disk that just filled up
        return cls(kind, code, folder, free, device_of(folder))

    def held(self, events: int, where: str | None = None) -> str:
        """The sentence for the user while events wait in memory."""
        folder = display(where or self.folder)
        held = f"{events:,} events are" if events != 1 else "1 event is"
        if self.kind == FULL:
            return (f"No space left on the file system of {folder} ({self.free:,} bytes free); "
                    f"{held} held in memory and will be written when space returns.")
        if self.kind == QUOTA:
            return (f"The disk quota is exhausted on the file system of {folder} ({self.free:,} bytes free "
                    f"on the disk); {held} held in memory and will be written when the quota allows.")
        if self.kind == READ_ONLY:
            return (f"The file system of {folder} is read-only; {held} held in memory and will be written "
                    f"when it is writable again.")
        return (f"The file system of {folder} failed to write ({os.strerror(self.code)}); {held} held in "
                f"memory and will be written when it works again.")

    def recovered(self, events: int, where: str | None = None) -> str:
        folder = display(where or self.folder)
        held = f"the {events:,} events held in memory were" if events != 1 else "the 1 event held in memory was"
        if self.kind in (FULL, QUOTA):
            return f"Space returned on the file system of {folder}: {held} written."
        if self.kind == READ_ONLY:
            return f"The file system of {folder} is writable again: {held} written."
        return f"The file system of {folder} works again: {held} written."

    def nothing_written(self) -> str:
        """For writers that hold nothing in memory (the CLI): what failed, and that nothing changed."""
        folder = display(self.folder)
        reason = {FULL: f"no space is left on the file system of {folder} ({self.free:,} bytes free)",
                  QUOTA: f"the disk quota is exhausted on the file system of {folder}",
                  READ_ONLY: f"the file system of {folder} is read-only"}.get(
            self.kind, f"the file system of {folder} failed to write ({os.strerror(self.code)})")
        return f"The database refused the write: {reason}. Nothing was written."


# -- the journal's space reserve -------------------------------------------------------------------

FALLOC_FL_KEEP_SIZE = 1
_fallocate: Callable[..., int] | None = None
_get_errno: Callable[[], int] | None = None


def reserve(fd: int, offset: int, length: int) -> OSError | None:
    """Allocate ``length`` bytes from ``offset`` for ``fd`` without changing its size.

    Called from a worker thread (ctypes is imported on first use, off the start-up path). Returns
    the error instead of raising: a reserve is a best effort (not every file system has one).
    """
    global _fallocate, _get_errno
    if _fallocate is None:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)  # the C library the interpreter runs on
            function: Any = libc.fallocate
            function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
            function.restype = ctypes.c_int
            _fallocate, _get_errno = function, ctypes.get_errno
        except (OSError, AttributeError) as exc:  # no libc fallocate (not Linux): no reserve
            return OSError(errno.EOPNOTSUPP, f"fallocate is not available: {exc}")
    assert _get_errno is not None
    if _fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        code = _get_errno()
        return OSError(code, os.strerror(code))
    return None
