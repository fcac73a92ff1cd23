"""Crash journal: every accepted event is appended here before it is acknowledged.

One file per running bridge, ``<database>-journal/<journalId>.jsonl``, held with an
exclusive flock for the bridge's lifetime, so a starting bridge can tell orphans (their
owner died) from journals in use. Each line is ``{"s": seq, "t": receivedAt, "m": method,
"p": params}``; the first (seq 0, method ``journal.opened``) holds what a replay needs that no
event carries: the bridge's project directory (for sessions that never sent ``session.created``)
and the scoring rules that accepted the events (a replay must score them the same way, whatever
the replaying bridge is configured with).

Appends are plain write(2) calls: they survive kill -9 (the kernel has the bytes) at ~1 µs each,
which keeps intake above 50,000 events/s. Power loss is covered by group commit: the server
fdatasyncs the file at most every ``journalSyncMilliseconds`` while appends are unsynced, from a
worker thread (``sync_handle``). The flush stores the last applied seq in the database in the same
transaction as the data (meta key ``journal:<journalId>``), so replay is exactly-once even if the
process dies between commit and truncation, or if the truncation fails.

A write that fails (disk full, quota, read-only, I/O error) never loses the event: its line waits
in memory (``backlog``, the part of a line a short write left out included) and is written, in
order, by the next append or ``write_backlog``; the flush drops what the database now holds. A
1 MiB reserve beyond the end of the file (``reserve_handle``, fallocate KEEP_SIZE) keeps appends
working for a while on a disk that filled up.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterator

import attrs
import orjson


@attrs.frozen
class JournalEntry:
    seq: int
    received_at: str
    method: str
    params: dict[str, Any]


def journal_dir_for(database_path: Path) -> Path:
    return database_path.with_name(database_path.name + "-journal")


class Journal:
    """The running bridge's own journal (append, truncate, and keep what the disk refused)."""

    HEADER_METHOD = "journal.opened"
    RESERVE = 1024 * 1024      # bytes kept allocated beyond the end of the file
    LOW_WATER = 256 * 1024     # top the reserve up when less than this is left

    def __init__(self, directory: Path, journal_id: str | None = None,
                 header: dict[str, Any] | None = None):
        self.directory = directory
        # Context a replay needs that no event carries (project directory, scoring rules).
        self.header = header or {}
        self.journal_id = journal_id or secrets.token_hex(6)
        self.path = directory / f"{self.journal_id}.jsonl"
        self.seq = 0
        self.written_seq = 0    # the last event whose line is wholly in the file
        self.flushed_seq = 0    # the last event the database holds (truncate_through)
        self.size = 0           # bytes in the file
        self._base = 0          # where the file starts in the stream of everything ever appended
        self.reserved_to = 0    # file offset up to which blocks were reserved
        self.unsynced = False   # appended since the last sync_handle
        # Called (by the server's flusher) when there is work for it: the first append since a sync,
        # the reserve running low, a write refused. Keeps the per-event cost to two comparisons.
        self.wake: Callable[[], None] | None = None
        self._alarm = -self.LOW_WATER  # size at which the reserve runs low
        # Lines the file refused, oldest first: (seq, line); the first may be partly written.
        self._backlog: deque[tuple[int, bytes]] = deque()
        self._head_written = 0
        self.backlog_bytes = 0  # bytes of the backlog not in the file yet
        self.unjournaled = 0    # events in the backlog (the header line is not an event)
        self.trouble: OSError | None = None  # why the backlog is not empty
        directory.mkdir(parents=True, exist_ok=True)
        # Lock under a name orphan scans ignore, then rename: a starting bridge must never
        # mistake our fresh, not yet locked journal for an orphan.
        claiming = directory / f"{self.journal_id}.claiming"
        self._fd = os.open(claiming, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(claiming, self.path)
        except OSError:
            os.close(self._fd)
            self._fd = -1
            raise
        self._write_header()

    def _header_line(self) -> bytes:
        return orjson.dumps({"s": 0, "t": "", "m": self.HEADER_METHOD, "p": self.header}) + b"\n"

    def _write_header(self) -> None:
        self._backlog.appendleft((0, self._header_line()))
        self.backlog_bytes += len(self._backlog[0][1])
        self.write_backlog()

    # -- appending -----------------------------------------------------------------------------

    def append(self, received_at: str, method: str, params_json: bytes) -> int:
        """Append one accepted event (its params already encoded as JSON); returns its seq.

        Never raises: a line the file refuses waits in memory (see the module docstring).
        """
        self.seq += 1
        # Same line as orjson.dumps({"s", "t", "m", "p"}) would write, without building the dict
        # (method and timestamp are JSON-safe: a known method name and our own ISO string).
        line = b'{"s":%d,"t":"%s","m":"%s","p":%s}\n' % (
            self.seq, received_at.encode(), method.encode(), params_json)
        if not self._backlog:
            try:
                written = os.write(self._fd, line)
            except OSError as exc:
                written, self.trouble = 0, exc
            self.size += written
            if written == len(line):
                self.written_seq = self.seq
                if self.unsynced and self.size < self._alarm:
                    return self.seq
                self.unsynced = True
                if self.wake is not None:
                    self.wake()
                return self.seq
            self.unsynced = True
            self._head_written = written  # a short write: the disk filled up inside this line
            self.backlog_bytes += len(line) - written
        else:
            self.backlog_bytes += len(line)
        self._backlog.append((self.seq, line))
        self.unjournaled += 1
        self.write_backlog()
        if self.wake is not None:
            self.wake()
        return self.seq

    def write_backlog(self) -> bool:
        """Write what waits in memory, in order; True when nothing is left waiting."""
        while self._backlog:
            seq, line = self._backlog[0]
            rest = memoryview(line)[self._head_written:]
            try:
                written = os.write(self._fd, rest)
            except OSError as exc:
                self.trouble = exc
                return False
            self.size += written
            self.backlog_bytes -= written
            self.unsynced = True
            if written < len(rest):
                self._head_written += written
                continue  # the next write says why (ENOSPC), or finishes the line
            self._backlog.popleft()
            self._head_written = 0
            if seq:
                self.written_seq = seq
                self.unjournaled -= 1
        self.trouble = None
        return True

    @property
    def events_on_disk(self) -> int:
        """Events in the file that the database does not hold: what the next start recovers."""
        return max(0, self.written_seq - self.flushed_seq)

    # -- after a flush -------------------------------------------------------------------------

    def mark(self) -> tuple[int, int | None]:
        """(seq, where the lines after it start, or None if not known): taken when a flush takes its
        batch, handed back to ``truncate_through`` once it committed. The position counts every byte
        ever appended (a rotation in between moves the lines, not their position)."""
        return self.seq, (self._base + self.size if not self._backlog else None)

    def truncate(self) -> None:
        """After a committed flush of everything: the database holds every event up to self.seq."""
        self.truncate_through(self.mark())

    def truncate_through(self, mark: tuple[int, int | None]) -> None:
        """The database now holds every event up to ``mark``'s seq: drop them, keep the rest.

        Events accepted while the flush ran (after the mark) stay: the file is rewritten with
        only them (a new file renamed over the old one, so a crash in between loses nothing).
        Whatever fails here only leaves old lines in the file, which the replay marker skips.
        """
        covered, start = mark
        self.flushed_seq = max(self.flushed_seq, covered)
        if self.seq <= covered:
            # Nothing newer anywhere: empty the file, and forget what waited in memory (a line
            # torn by a short write goes too: the truncation removes its first part).
            self._backlog.clear()
            self._head_written = self.backlog_bytes = self.unjournaled = 0
            try:
                os.ftruncate(self._fd, 0)
            except OSError as exc:
                self.trouble = exc
                return
            self._base += self.size
            self.size = 0
            self._reserved(0)
            self._write_header()
            return
        kept: deque[tuple[int, bytes]] = deque()
        for index, (seq, line) in enumerate(self._backlog):
            if seq > covered or (index == 0 and self._head_written):
                kept.append((seq, line))  # a torn first line must be finished, or it spoils the next
            else:
                self.backlog_bytes -= len(line)
                if seq:
                    self.unjournaled -= 1
        self._backlog = kept
        if not self._backlog and start is not None and self.written_seq > covered:
            self._rotate(start)

    def _rotate(self, position: int) -> None:
        start = position - self._base
        if not 0 <= start <= self.size:
            return  # not a place in this file: keep it as it is (the replay marker covers it)
        try:
            tail = os.pread(self._fd, self.size - start, start)
        except OSError:
            return
        claiming = self.directory / f"{self.journal_id}.claiming"
        content = self._header_line() + tail
        try:
            fd = os.open(claiming, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.rename(claiming, self.path)
        except OSError:
            os.close(fd)
            try:
                claiming.unlink()
            except OSError:
                pass
            return
        os.close(self._fd)
        self._fd = fd
        self._base = position - (len(content) - len(tail))  # the tail keeps its position
        self.size, self.unsynced = len(content), True
        self._reserved(0)

    # -- group commit and the reserve (the work itself runs in a worker thread) ----------------

    def sync_handle(self) -> int | None:
        """A duplicate of the file descriptor to fdatasync, if anything was appended since the
        last one (a duplicate: the journal may rotate its own descriptor meanwhile)."""
        if not self.unsynced or self._fd < 0:
            return None
        self.unsynced = False
        return os.dup(self._fd)

    @property
    def reserve_low(self) -> bool:
        return self._fd >= 0 and self.size >= self._alarm

    def reserve_handle(self) -> tuple[int, int, int] | None:
        """(descriptor, offset, length) to reserve when less than LOW_WATER is left, else None."""
        if not self.reserve_low:
            return None
        self._reserved(self.size + self.RESERVE)
        return os.dup(self._fd), self.size, self.RESERVE

    def reserve_failed(self, error: OSError) -> None:
        if error.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            self._reserved(1 << 62)  # this file system has no reserve: never ask again
        else:
            # The disk is full right now: ask again after 128 KiB more appends, not at every event.
            self._reserved(self.size + self.LOW_WATER + self.LOW_WATER // 2)

    def _reserved(self, to: int) -> None:
        self.reserved_to = to
        self._alarm = to - self.LOW_WATER

    # -- ending --------------------------------------------------------------------------------

    def close(self, remove: bool) -> OSError | None:
        """Close; with ``remove`` (everything reached the database) delete the file.

        A file that cannot be deleted (its folder became read-only) is emptied instead, so it
        replays nothing; the error is returned for the caller to tell.
        """
        if self._fd < 0:
            return None
        error = None
        if remove:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                error = exc
                self.abandon()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        return error

    def abandon(self) -> None:
        """Stop journaling (the folder became read-only): empty the file and close it."""
        if self._fd < 0:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = -1
        self._backlog.clear()
        self._head_written = self.backlog_bytes = self.unjournaled = 0

    def folder_writable(self) -> bool:
        """False once files can no longer be created or removed in the folder (read-only)."""
        return os.access(self.directory, os.W_OK)


class OrphanJournal:
    """A journal whose bridge is gone; locked by us while we replay it."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.journal_id = path.stem
        self._fd = fd

    def _lines(self) -> Iterator[JournalEntry]:
        # Read through our locked descriptor: the path may be gone if another bridge won a race.
        with os.fdopen(os.dup(self._fd), "rb") as handle:
            handle.seek(0)
            for line in handle:
                try:
                    raw = orjson.loads(line)
                    yield JournalEntry(raw["s"], raw["t"], raw["m"], raw["p"])
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    # A line torn by kill -9 mid-write was never acknowledged: skip it.
                    continue

    def header(self) -> dict[str, Any]:
        for entry in self._lines():
            if entry.method == Journal.HEADER_METHOD and isinstance(entry.params, dict):
                return entry.params
        return {}

    def entries(self) -> Iterator[JournalEntry]:
        return (entry for entry in self._lines() if entry.method != Journal.HEADER_METHOD)

    def remove(self) -> OSError | None:
        """Delete the applied journal; a folder that became read-only keeps it (returned error)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            self.release()
            return exc
        self.release()
        return None

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def find_orphans(directory: Path) -> list[OrphanJournal]:
    """Journals not locked by a live bridge, oldest first."""
    if not directory.is_dir():
        return []
    orphans = []
    for path in sorted(directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if os.fstat(fd).st_nlink == 0:  # another bridge recovered and removed it meanwhile
            os.close(fd)
            continue
        orphans.append(OrphanJournal(path, fd))
    return orphans
