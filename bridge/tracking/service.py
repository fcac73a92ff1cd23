"""The tracking service: events in, buffered changes out, one transaction per flush.

Hook-driven events never write to LMDB. Each accepted event is appended to the crash
journal, applied to the write buffer (pending) and to an in-memory projection of each touched
agent (state). ``flush`` applies the buffer in one Store.write transaction together with the
journal sequence it covers. The event handlers live in sessions, work, feedback and usage.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from ..config import ScoringRules
from ..protocol.params import StatusQuery
from ..protocol.structure import InvalidParams, structure_params
from ..store import DatabaseFull, Store, StoreError
from ..timestamps import utc_now
from . import faults
from .feedback import FeedbackEvents
from .journal import Journal, OrphanJournal
from .pending import PendingChanges
from .sanitize import encode_params
from .sessions import SessionEvents
from .state import CHECKS, EVENTS, AlreadyCounted, EventRejected, Notify
from .usage import UsageEvents
from .work import WorkEvents

__all__ = ["EventRejected", "FlushResult", "TrackingService"]


@attrs.frozen
class FlushResult:
    entries_written: int
    duration_ms: float
    errors: list[str]
    transactions: int

    def to_wire(self) -> dict[str, Any]:
        return {"entriesWritten": self.entries_written, "durationMs": round(self.duration_ms, 3),
                "errors": self.errors, "transactions": self.transactions}


class TrackingService(SessionEvents, WorkEvents, FeedbackEvents, UsageEvents):
    def __init__(self, store: Store, rules: ScoringRules, *, journal: Journal | None = None,
                 journal_id: str | None = None, default_directory: str | None = None,
                 notify: Notify | None = None, told: set[str] | None = None):
        super().__init__(store, rules, journal=journal, journal_id=journal_id,
                         default_directory=default_directory, notify=notify, told=told)
        self._events_accepted = 0
        self._journal_seq = 0

    # -- intake ----------------------------------------------------------------------------

    def handle(self, method: str, raw_params: Any, received_at: str | None = None) -> Any:
        """Structure, check, journal, then apply one event given as its wire params.

        The event's time is its ``at`` param if given, else ``received_at``, else now.

        Raises InvalidParams (params that do not match the contract) or EventRejected (the
        rules refuse it) with nothing journaled or changed. Values orjson cannot write are
        replaced first, once, so every later step (store lookups included) sees what is stored.
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
        if self.journal is not None:
            self._journal_seq = self.journal.append(received_at, method, encoded)
        if faults.ENABLED:
            faults.crash_point("event")
        self.pending.events += 1
        self._events_accepted += 1
        event_id = f"{self.journal_id}:{self._journal_seq if self.journal is not None else self._events_accepted}"
        return EVENTS[method](self, params, received_at, event_id, context)

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

    # -- flushing ------------------------------------------------------------------------------

    def flush(self) -> FlushResult:
        """Apply the buffer in one write transaction; on failure keep everything."""
        started = time.perf_counter()
        self.flush_requested = False
        self._add_classifications()
        if not self.pending:
            return FlushResult(0, (time.perf_counter() - started) * 1000, [], 0)
        if self.journal is not None or self._journal_seq:
            self.pending.meta[f"journal:{self.journal_id}"] = self._journal_seq
        now = utc_now()

        def apply(view: Any) -> Any:
            outcome = self.pending.apply(view, self.rules, now)
            if faults.ENABLED:
                faults.crash_point("in-flush")
            return outcome

        try:
            outcome = self.store.write(apply)
        except StoreError as exc:
            self._tell_once(type(exc).__name__, str(exc), "error" if isinstance(exc, DatabaseFull) else "warning")
            return FlushResult(0, (time.perf_counter() - started) * 1000, [str(exc)], 0)
        if faults.ENABLED:
            faults.crash_point("after-commit")
        if self.journal is not None:
            self.journal.truncate()
        self.pending = PendingChanges()
        self._pending_pushes.clear()
        self._projected.clear()
        self._pending_events.clear()
        for change in outcome.agents:
            # The merged state may include another bridge's halt or reinstatement.
            if change.after.halted != self._told_halted.get(change.after.agent_id, False):
                self._tell_state(change.after.agent_id)
        return FlushResult(outcome.entries_written, (time.perf_counter() - started) * 1000, [], 1)
