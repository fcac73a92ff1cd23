"""The one bounded reader of files the tracker does not own: a project's manifests and AGENTS.md
(tracking.stack), OpenCode's opencode.json and package.json (opencode.install).

Such a path may be anything a repository or a dotfiles setup holds: a FIFO (an ``open`` would
wait forever for a writer), a device, a folder, a symlink loop, a file of gigabytes. Only a
regular file is read, and at most ``limit`` bytes of it: its type is checked before opening,
the open does not block (O_NONBLOCK), and the opened file is checked again (it may have been
swapped in between). Anything else is refused with one sentence (``FileRefused``); an absent
file is simply absent (None).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class FileRefused(Exception):
    """A path that is not a readable regular file; the message says why in one sentence."""


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refused(path: Path, exc: OSError) -> FileRefused:
    if exc.errno == errno.ELOOP:
        return FileRefused(f"{path} is a symbolic link loop")
    return FileRefused(f"{path} cannot be read: {exc.strerror or exc}")


def _mode(path: Path) -> int | None:
    """The file type and mode bits at ``path`` (through symlinks), None when nothing is there;
    FileRefused when it cannot be looked at."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _refused(path, exc) from None
    except ValueError:  # a NUL in the path
        raise FileRefused(f"{path!r} holds a NUL character") from None


def check_regular(path: Path) -> bool:
    """True for a regular file (through symlinks), False when nothing is there (a dangling symlink
    included: writing creates its target); FileRefused for anything else."""
    mode = _mode(path)
    if mode is None:
        return False
    if not stat.S_ISREG(mode):
        raise FileRefused(f"{path} is {_kind(mode)}, not a regular file")
    return True


def check_folder(path: Path) -> bool:
    """True for a folder (through symlinks), False when nothing is there; FileRefused otherwise."""
    mode = _mode(path)
    if mode is None:
        return False
    if not stat.S_ISDIR(mode):
        raise FileRefused(f"{path} is {_kind(mode)}, not a folder")
    return True


def read_regular(path: Path, limit: int, *, whole: bool = False) -> bytes | None:
    """The first ``limit`` bytes of the regular file at ``path`` (None when absent). With
    ``whole``, a longer file is refused instead of cut (a file that is rewritten must be whole)."""
    if not check_regular(path):
        return None
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _refused(path, exc) from None
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise FileRefused(f"{path} is {_kind(mode)}, not a regular file")
        chunks: list[bytes] = []
        left = limit + 1 if whole else limit
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as exc:
        raise _refused(path, exc) from None
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    if whole and len(data) > limit:
        raise FileRefused(f"{path} is larger than {limit:,} bytes")
    return data
