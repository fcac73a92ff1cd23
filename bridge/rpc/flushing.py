"""Writing off the event loop: flushes in a worker thread, retries with backoff, group commit.

While another process holds LMDB's write lock, beginning a write transaction blocks; py-lmdb
releases the GIL meanwhile, so with the write in a worker thread intake, ``agent.status`` and
every other request go on. The tracking service does the bookkeeping (service.take_batch /
write_batch / finish_batch); this module decides when and where:

* one write at a time, in one thread (LMDB ties a write transaction to the thread that began it),
  batches in the order they were taken: a flush request takes its batch when it arrives, so its
  answer covers exactly the events before it, and is answered when its transaction committed;
* a write refused by the file system (full, quota, read-only, I/O error) is retried on a timer
  with backoff (RETRY_FIRST doubling up to RETRY_MAX), on the next event once that time has come,
  and on every flush; so is a journal that could not take every line;
* group commit: the journal is fdatasync'd at most every ``journalSyncMilliseconds`` while appends
  are unsynced, in a second thread; the same job keeps the journal's space reserve topped up;
* journals of dead bridges that could not be applied at start-up because the file system refused
  the write (``OrphanRecovery``) are applied before the next write.

With fault injection on (tests/reliability) the write runs inline, as one step with the message
that asked for it, so that "killed in the N-th flush" names exactly the events before it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import attrs

from ..filesystem import reserve
from ..store import StoreError
from ..tracking.journal import OrphanJournal
from ..tracking.pending import FlushOutcome
from ..tracking.service import RETRY_NOW, FlushBatch, FlushResult, TrackingService

logger = logging.getLogger(__name__)

RETRY_FIRST, RETRY_MAX = 0.25, 30.0  # seconds


@attrs.define
class OrphanRecovery:
    """A dead bridge's journal, replayed into its own service, waiting to be written."""

    orphan: OrphanJournal
    service: TrackingService
    events: int
    removed: bool = False

    def apply(self) -> FlushResult:
        result = self.service.flush()
        if result.errors:
            return result
        self.removed = self.orphan.remove() is None
        if self.removed:
            marker = f"journal:{self.orphan.journal_id}"
            try:  # the journal is gone, so its replay marker is no longer needed
                self.service.store.write(lambda view: view.delete("meta", marker))
            except StoreError:
                pass
        # A journal that could not be removed (read-only folder) keeps its marker: it replays nothing more.
        return result


def _write(service: TrackingService, batch: FlushBatch) -> tuple[FlushOutcome | None, StoreError | None]:
    try:
        return service.write_batch(batch), None
    except StoreError as exc:
        return None, exc
    except Exception as exc:  # a bug: keep the batch (finish_batch puts it back), say what happened
        logger.error("flush failed", exc_info=exc)
        return None, StoreError(f"Internal error while writing: {type(exc).__name__}: {exc}")


def _sync_and_reserve(fd: int | None, space: tuple[int, int, int] | None) -> tuple[OSError | None, OSError | None]:
    synced = reserved = None
    if fd is not None:
        try:
            os.fdatasync(fd)
        except OSError as exc:
            synced = exc
        finally:
            os.close(fd)
    if space is not None:
        handle, offset, length = space
        try:
            reserved = reserve(handle, offset, length)
        finally:
            os.close(handle)
    return synced, reserved


class Flusher:
    def __init__(self, service: TrackingService, log: Callable[[str, str], None], *,
                 sync_ms: float, inline: bool):
        self.service = service
        self._log = log
        self._loop = asyncio.get_running_loop()
        self._inline = inline
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmdb-writer")
        self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-sync")
        self._queue: deque[tuple[FlushBatch, asyncio.Future[FlushResult]]] = deque()
        self._writing = False
        self.deferred: list[OrphanRecovery] = []
        self._retry_handle: asyncio.TimerHandle | None = None
        self.retry_at: float | None = None
        self._backoff = 0
        self._sync_seconds = sync_ms / 1000
        self._sync_busy = False
        self._sync_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._last_sync = 0.0
        self._told_sync_failure = False
        if service.journal is not None:
            service.journal.wake = self._journal_woke

    # -- flushing --------------------------------------------------------------------------------

    def flush(self) -> asyncio.Future[FlushResult]:
        """Take the buffer now; the future resolves when its transaction committed (or failed)."""
        journal = self.service.journal
        if journal is not None and journal.backlog_bytes:  # a flush is also a retry of the journal
            journal.write_backlog()
            self.service.journal_state()
        batch = self.service.take_batch()
        future: asyncio.Future[FlushResult] = self._loop.create_future()
        self._queue.append((batch, future))
        if not self._writing:
            self._next()
        return future

    @property
    def idle(self) -> bool:
        return not self._queue

    def _next(self) -> None:
        while self._queue:
            batch, future = self._queue[0]
            if self.deferred:  # dead bridges' journals first: they are older
                self._recover_deferred()
            if batch.empty:
                self._finish(None, None)
                continue
            self._writing = True
            self.service.check_database()
            if self._inline:
                self._finish(*_write(self.service, batch))
                continue
            task = self._loop.run_in_executor(self._writer, _write, self.service, batch)
            task.add_done_callback(self._written)
            return
        self._writing = False

    def _written(self, task: asyncio.Future[tuple[FlushOutcome | None, StoreError | None]]) -> None:
        self._finish(*task.result())
        self._next()

    def _finish(self, outcome: FlushOutcome | None, error: StoreError | None) -> None:
        batch, future = self._queue.popleft()
        result = self.service.finish_batch(batch, outcome, error)
        if not future.done():
            future.set_result(result)
        if result.retry:
            self._schedule_retry(now=result.retry == RETRY_NOW)
        elif result.transactions:
            self._backoff = 0
            journal = self.service.journal
            if self._retry_handle is not None and not self.deferred and not (journal and journal.backlog_bytes):
                self._retry_handle.cancel()  # nothing waits any more
                self._retry_handle = self.retry_at = None
            self.maintain()  # the truncation gave the reserve back: take it again

    async def drain(self) -> None:
        """Wait until every batch taken so far finished."""
        while self._queue:
            await asyncio.wait([self._queue[-1][1]])

    def _recover_deferred(self) -> None:
        while self.deferred:
            recovery = self.deferred[0]
            result = recovery.apply()
            if result.errors:
                if self._retry_handle is None:
                    self._schedule_retry()
                return
            self.deferred.pop(0)
            self._log("info", f"Recovered {recovery.events} events from the interrupted session "
                              f"{recovery.orphan.path.name}, now that the database takes writes again.")

    # -- retries ---------------------------------------------------------------------------------

    def _schedule_retry(self, now: bool = False) -> None:
        delay = 0.0 if now else min(RETRY_MAX, RETRY_FIRST * 2 ** self._backoff)
        self._backoff += 0 if now else 1
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        self.retry_at = self._loop.time() + delay
        self._retry_handle = self._loop.call_later(delay, self.retry)

    def retry(self) -> None:
        """Write what waits in memory: the journal's lines, then the buffer (and dead journals)."""
        if self._retry_handle is not None:
            self._retry_handle.cancel()
        self._retry_handle = self.retry_at = None
        service = self.service
        journal = service.journal
        if journal is not None and journal.backlog_bytes:
            journal.write_backlog()
            service.journal_state()
        if service.pending or self.deferred:
            self.flush()
        elif journal is not None and journal.backlog_bytes:
            self._schedule_retry()

    def after_event(self) -> None:
        """After an accepted event: flush if it asked for it, or retry if a retry is due."""
        if self.service.flush_requested:
            self.flush()
        elif self.retry_at is not None and self._loop.time() >= self.retry_at:
            self.retry()

    def _journal_woke(self) -> None:
        """The journal has work for us (see Journal.wake): a sync, its reserve, or lines in memory."""
        journal = self.service.journal
        if journal is not None and journal.backlog_bytes and self._retry_handle is None:
            self._schedule_retry()  # lines wait in memory: a flush puts their events on disk
        if not self._sync_busy:
            self.maintain()

    # -- group commit and the journal's reserve --------------------------------------------------

    def maintain(self) -> None:
        """Start a sync (if due) and a reserve top-up (if low) in the sync thread."""
        journal = self.service.journal
        if journal is None or self._sync_busy or self._closed:
            return
        sync_due = self._sync_seconds > 0 and journal.unsynced
        if not sync_due and not journal.reserve_low:
            return
        self._sync_busy = True
        delay = max(0.0, self._last_sync + self._sync_seconds - self._loop.time()) if sync_due else 0.0
        self._sync_timer = self._loop.call_later(delay, self._start_sync)

    def _start_sync(self) -> None:
        self._sync_timer = None
        journal = self.service.journal
        if journal is None or self._closed:
            self._sync_busy = False
            return
        fd = journal.sync_handle() if self._sync_seconds > 0 else None
        space = journal.reserve_handle()
        if fd is None and space is None:
            self._sync_busy = False
            return
        self._last_sync = self._loop.time()
        task = self._loop.run_in_executor(self._syncer, _sync_and_reserve, fd, space)
        task.add_done_callback(self._synced)

    def _synced(self, task: asyncio.Future[tuple[OSError | None, OSError | None]]) -> None:
        self._sync_busy = False
        synced, reserved = task.result()
        journal = self.service.journal
        if reserved is not None and journal is not None:
            journal.reserve_failed(reserved)
        if synced is not None and not self._told_sync_failure:
            self._told_sync_failure = True
            self._log("warning", f"fdatasync of the journal failed ({synced.strerror or synced}): a power cut "
                                 f"could lose the events since the last flush (a crash of the bridge would not).")
        if journal is not None and journal.unsynced and self._sync_seconds > 0:
            self.maintain()

    async def close(self) -> None:
        self._closed = True
        for timer in (self._retry_handle, self._sync_timer):
            if timer is not None:
                timer.cancel()
        self._retry_handle = self.retry_at = self._sync_timer = None
        for executor in (self._writer, self._syncer):
            await self._loop.run_in_executor(None, executor.shutdown)

    def answer(self, future: asyncio.Future[FlushResult]) -> "asyncio.Future[dict[str, Any]]":
        """The wire answer of a flush, resolved as soon as the flush is (at once if it already is)."""
        answer: asyncio.Future[dict[str, Any]] = self._loop.create_future()

        def done(finished: asyncio.Future[FlushResult]) -> None:
            if not answer.done():
                answer.set_result(finished.result().to_wire())

        if future.done():
            done(future)
        else:
            future.add_done_callback(done)
        return answer
