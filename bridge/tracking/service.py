"""The tracking service: events in, buffered changes out, one transaction per flush.

Hook-driven events never write to LMDB. Each accepted event is appended to the crash
journal, applied to the write buffer (pending) and to an in-memory projection of each touched
agent (state). The event handlers live in sessions, work, feedback and usage.

A flush has three steps, so that the server can run the write in a worker thread while intake and
reads go on (another process may hold LMDB's write lock for a while):
  * ``take_batch`` (event loop): the buffer becomes a batch in flight, new events go to a fresh
    buffer; lookups see both (state._flushing) until the batch committed;
  * ``write_batch`` (any thread): one Store.write, with the journal sequence it covers;
  * ``finish_batch`` (event loop): truncate the journal through the batch, or put the batch back in
    front of what arrived meanwhile. Batches finish in the order they were taken.
``flush`` runs the three in a row. A failed write keeps everything; a full, read-only or failing
file system is told once per episode (trouble.Troubles) and retried by the server.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from ..config import ScoringRules
from ..filesystem import Trouble, display
from ..protocol.params import StatusQuery
from ..protocol.structure import InvalidParams, structure_params
from ..store import DatabaseFull, DatabaseReplaced, DiskTrouble, Store, StoreError
from ..timestamps import utc_now
from . import faults
from .feedback import FeedbackEvents
from .journal import Journal, OrphanJournal
from .pending import FlushOutcome, PendingChanges
from .sanitize import encode_params
from .sessions import SessionEvents
from .state import CHECKS, EVENTS, AlreadyCounted, EventRejected, Notify
from .trouble import DATABASE, JOURNAL, MAX_HELD_BYTES, MAX_HELD_EVENTS, Troubles
from .usage import UsageEvents
from .work import WorkEvents

__all__ = ["EventDropped", "EventRejected", "FlushBatch", "FlushResult", "TrackingService"]

RETRY_SOON, RETRY_NOW = "soon", "now"


class EventDropped(Exception):
    """Nothing can be written and the memory bound for unjournaled events is reached."""


@attrs.frozen
class FlushResult:
    entries_written: int
    duration_ms: float
    errors: list[str]
    transactions: int
    # For the server, not the wire: retry "soon" (a file system trouble) or "now" (the file moved).
    retry: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"entriesWritten": self.entries_written, "durationMs": round(self.duration_ms, 3),
                "errors": self.errors, "transactions": self.transactions}


@attrs.define(eq=False)
class FlushBatch:
    """A buffer taken by a flush: written as one transaction, then finished on the event loop."""

    changes: PendingChanges
    mark: tuple[int, int | None] | None  # the journal's mark when taken (see Journal.mark)
    pushes: int = 0  # how many of state._pending_pushes it holds (the oldest ones not yet written)
    started: float = attrs.Factory(time.perf_counter)

    @property
    def empty(self) -> bool:
        return not self.changes


class TrackingService(SessionEvents, WorkEvents, FeedbackEvents, UsageEvents):
    def __init__(self, store: Store, rules: ScoringRules, *, journal: Journal | None = None,
                 journal_id: str | None = None, default_directory: str | None = None,
                 notify: Notify | None = None, told: set[str] | None = None,
                 troubles: Troubles | None = None, holds_events: bool = True):
        super().__init__(store, rules, journal=journal, journal_id=journal_id,
                         default_directory=default_directory, notify=notify, told=told)
        self.events_accepted = 0
        self._journal_seq = 0
        self._batches: list[FlushBatch] = []  # taken, not finished; oldest first (parallel to _flushing)
        # A bridge keeps what it could not write and retries; a one-shot writer (the CLI) does not.
        self.holds_events = holds_events
        # Shared by the bridge's services (like ``told``): one episode, one message.
        self.troubles = troubles if troubles is not None else Troubles(self._notify, store.path.parent)
        self._journal_failing = False

    # -- intake ----------------------------------------------------------------------------

    def handle(self, method: str, raw_params: Any, received_at: str | None = None) -> Any:
        """Structure, check, journal, then apply one event given as its wire params.

        The event's time is its ``at`` param if given, else ``received_at``, else now.

        Raises InvalidParams (params that do not match the contract) or EventRejected (the
        rules refuse it) with nothing journaled or changed, and EventDropped past the memory
        bound while nothing can be written. Values orjson cannot write are replaced first, once,
        so every later step (store lookups included) sees what is stored.
        """
        encoded, raw_params = encode_params(raw_params)
        params = structure_params(method, raw_params)
        # A replayed event says when it happened (params.at, validated): that is its time, and
        # the journal keeps it, so a crash replay stores the same time again.
        received_at = params.at or received_at or utc_now()
        check = CHECKS.get(method)
        try:
            context = check(self, params) if check is not None else None
        except AlreadyCounted as counted:
            return counted.result  # changes nothing, so it is not journaled either
        journal = self.journal
        if journal is not None:
            if journal.backlog_bytes:
                self._check_held(journal)
            self._journal_seq = journal.append(received_at, method, encoded)
        elif self.pending.events >= MAX_HELD_EVENTS and (self.troubles.failing(DATABASE) or not self.store.available):
            # No journal, and the database refuses writes: these events are in memory only.
            self.troubles.drop(self.held_events, 0)
            raise EventDropped(f"dropped: {self.held_events:,} events wait in memory for a database that "
                               f"refuses writes and there is no journal, the limit.")
        if faults.ENABLED:
            faults.crash_point("event")
        self.pending.events += 1
        self.events_accepted += 1
        if self._journal_failing or (journal is not None and journal.trouble is not None):
            self.journal_state()
        event_id = f"{self.journal_id}:{self._journal_seq if journal is not None else self.events_accepted}"
        return EVENTS[method](self, params, received_at, event_id, context)

    def _check_held(self, journal: Journal) -> None:
        """Lines wait in memory for the journal: past the bound, drop the event (and count it)."""
        if journal.unjournaled < MAX_HELD_EVENTS and journal.backlog_bytes < MAX_HELD_BYTES:
            return
        if journal.write_backlog():
            self.journal_state()
            return
        self.troubles.drop(journal.unjournaled, journal.backlog_bytes)
        raise EventDropped(f"dropped: {journal.unjournaled:,} events wait in memory for a file system "
                           f"that refuses writes, the limit.")

    def journal_state(self) -> None:
        """Tell the start or the end of the journal's trouble (once each)."""
        journal = self.journal
        if journal is None:
            return
        if journal.trouble is not None:
            if not self._journal_failing:
                self._journal_failing = True
                trouble = Trouble.of(journal.trouble, journal.directory, any_error=True)
                assert trouble is not None
                self.troubles.failed(JOURNAL, trouble, self.held_events)
        elif self._journal_failing:
            self._journal_failing = False
            self.troubles.succeeded(JOURNAL)

    def replay(self, orphan: OrphanJournal, after_seq: int) -> int:
        """Re-apply an orphan journal's entries after ``after_seq`` (exactly-once replay)."""
        replayed = 0
        for entry in orphan.entries():
            if entry.seq <= after_seq or entry.method not in EVENTS:
                continue
            try:
                params = structure_params(entry.method, entry.params)
                check = CHECKS.get(entry.method)
                context = check(self, params) if check is not None else None
            except (InvalidParams, EventRejected, AlreadyCounted):
                continue
            self._journal_seq = entry.seq
            self.pending.events += 1
            EVENTS[entry.method](self, params, entry.received_at, f"{self.journal_id}:{entry.seq}", context)
            replayed += 1
        return replayed

    # -- queries -------------------------------------------------------------------------------

    def status(self, query: StatusQuery) -> dict[str, Any]:
        agent_id = self._agent_for(query.agent_id, query.session_id)
        self.refresh_agent(agent_id)
        return self.status_of(agent_id)

    @property
    def held_events(self) -> int:
        """Events accepted that the database does not hold yet (buffered or in flight)."""
        return self.pending.events + sum(batch.changes.events for batch in self._batches)

    def exit_counts(self) -> tuple[int, int]:
        """(events in the journal for the next start to recover, events that could not be saved)."""
        held = self.held_events
        on_disk = min(held, self.journal.events_on_disk) if self.journal is not None else 0
        return on_disk, held - on_disk + self.troubles.dropped_total

    # -- flushing ------------------------------------------------------------------------------

    def flush(self) -> FlushResult:
        """Apply the buffer in one write transaction, here and now; on failure keep everything."""
        batch = self.take_batch()
        self.check_database()
        try:
            outcome = self.write_batch(batch)
        except StoreError as exc:
            return self.finish_batch(batch, error=exc)
        return self.finish_batch(batch, outcome)

    def take_batch(self) -> FlushBatch:
        """(Event loop) The buffer becomes the next batch; an empty one keeps the flush's place in line."""
        self.flush_requested = False
        self._add_classifications()  # stacks classified in the background since the last flush
        changes = self.pending
        if changes and (self.journal is not None or self._journal_seq):
            changes.meta[f"journal:{self.journal_id}"] = self._journal_seq
        # Pushes counted since the last flush stay in _pending_pushes until their batch committed.
        pushes = len(self._pending_pushes) - sum(taken.pushes for taken in self._batches)
        batch = FlushBatch(changes, self.journal.mark() if self.journal is not None else None, pushes)
        self._batches.append(batch)
        self._flushing.append(changes)
        self.pending = PendingChanges()
        return batch

    def check_database(self) -> None:
        """(Event loop, before a write) Is the file at the path still the one we write? If it was
        moved or deleted, open what is there now: every bridge then writes into the same file."""
        if not self.store.replaced():
            return
        path = self.store.path
        what = self.store.reopen()
        message = f"The database file {display(path)} was moved or deleted while this bridge ran; {what}."
        self._notify("log", {"level": "warning", "message": message})
        self._notify("toast", {"message": message, "variant": "warning"})

    def write_batch(self, batch: FlushBatch) -> FlushOutcome | None:
        """(Any thread) One write transaction; raises StoreError with nothing written."""
        if batch.empty:
            return None
        now = utc_now()

        def apply(view: Any) -> FlushOutcome:
            outcome = batch.changes.apply(view, self.rules, now)
            if faults.ENABLED:
                faults.crash_point("in-flush")
            return outcome

        outcome = self.store.write(apply)
        if self.store.replaced():
            # Committed into a file that is no longer at the path: nobody will read it. The batch
            # goes back and is written again into the file now there; the journal keeps it.
            raise DatabaseReplaced(f"The database file {display(self.store.path)} was moved or deleted "
                                   f"during a flush; the flush is repeated in the file now at that path.")
        if faults.ENABLED:
            faults.crash_point("after-commit")
        return outcome

    def finish_batch(self, batch: FlushBatch, outcome: FlushOutcome | None = None,
                     error: StoreError | None = None) -> FlushResult:
        """(Event loop) After the write: truncate the journal through the batch, or keep everything."""
        assert self._batches and self._batches[0] is batch, "batches finish in the order they were taken"
        del self._batches[0], self._flushing[0]
        elapsed = (time.perf_counter() - batch.started) * 1000
        if error is not None:
            return self._keep(batch, error, elapsed)
        if batch.empty or outcome is None:
            return FlushResult(0, elapsed, [], 0)
        if batch.mark is not None and self.journal is not None:
            self.journal.truncate_through(batch.mark)
            self.journal_state()
            if self.journal.seq == batch.mark[0] and not self.journal.folder_writable():
                self._give_up_journal()
        self.troubles.succeeded(DATABASE)
        del self._pending_pushes[:batch.pushes]  # the store has them now
        for agent_id, count in batch.changes.counts.items():
            left = self._pending_events.get(agent_id, 0) - count
            if left > 0:
                self._pending_events[agent_id] = left
            else:
                self._pending_events.pop(agent_id, None)
        for agent_id in list(self._projected):
            if not self._pending_events.get(agent_id):
                del self._projected[agent_id]  # read again when needed: other bridges may have changed it
        for change in outcome.agents:
            agent_id = change.after.agent_id
            self._reproject(agent_id)
            # The merged state may include another bridge's halt or reinstatement; compared with what
            # the host was told, after the events that arrived while this batch was written.
            if self._projection(agent_id).halted != self._told_halted.get(agent_id, False):
                self._tell_state(agent_id)
        return FlushResult(outcome.entries_written, elapsed, [], 1)

    def _keep(self, batch: FlushBatch, error: StoreError, elapsed: float) -> FlushResult:
        """A failed write: the batch goes back in front of what arrived meanwhile; tell the user."""
        if self._batches:
            following = self._batches[0]
            batch.changes.absorb(following.changes)
            following.changes = self._flushing[0] = batch.changes
            following.pushes += batch.pushes
        else:
            batch.changes.absorb(self.pending)
            self.pending = batch.changes
        retry: str | None = None
        message = str(error)
        if isinstance(error, DiskTrouble) and self.holds_events:
            retry = RETRY_SOON
            message = error.trouble.held(self.held_events, str(self.store.path.parent))
            self.troubles.failed(DATABASE, error.trouble, self.held_events)
        elif isinstance(error, DatabaseReplaced):
            retry = RETRY_NOW
            self._notify("log", {"level": "warning", "message": message})
        else:
            self._tell_once(type(error).__name__, message, "error" if isinstance(error, DatabaseFull) else "warning")
        return FlushResult(0, elapsed, [message], 0, retry)

    def _give_up_journal(self) -> None:
        """The journal's folder became read-only: go on without a journal, said once."""
        assert self.journal is not None
        folder = display(self.journal.directory)
        self.journal.abandon()
        self.journal = None
        self._journal_failing = False
        self._notify("log", {"level": "warning", "message": (
            f"The journal folder {folder} became read-only; the bridge goes on without a crash journal: "
            f"events wait in memory until the next flush, and a bridge killed before it would lose them.")})
