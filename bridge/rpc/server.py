"""The bridge: a pygls JSON-RPC server over stdio that feeds the tracking service.

Every method of protocol.methods.METHODS gets one entry point (``dispatch``): events go to the
tracking service, the bridge's own requests to the handlers below, each registered with
``ANSWERS`` next to its method name. protocol.py says what pygls does and what we replaced;
transport.py reads and writes the frames; flushing.py writes to the database off the event loop
(a request that flushes is answered with a future: when its transaction committed).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcServerError,
    JsonRpcServerNotInitialized,
)
from pygls.server import JsonRPCServer

from .. import SERVER_NAME, __version__
from ..config import BridgeConfig, ConfigError, ScoringRules, load_config, structure_config
from ..filesystem import display
from ..protocol.methods import METHODS, HandlerTable
from ..protocol.params import InitializeParams, NoParams, RecommendQuery, ReportQuery, StatusQuery
from ..protocol.structure import CONVERTER, InvalidParams, structure_params
from ..store import Store, StoreError
from ..tracking import faults
from ..tracking.journal import Journal, OrphanJournal, find_orphans, journal_dir_for
from ..tracking.sanitize import encode_params
from ..tracking.service import EventDropped, EventRejected, TrackingService
from ..tracking.trouble import Troubles
from ..wording import plural
from .flushing import Flusher, OrphanRecovery
from .protocol import PARSE_ERROR, BridgeProtocol
from .recorder import Recorder, recorder_from_env
from .transport import (
    MAX_FRAME_BYTES,
    GuardedReader,
    StdoutWriter,
    read_messages,
    stdin_reader,
)

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = -32001  # a request that needs the database while tracking is disabled

Answer = Callable[["BridgeServer", Any], Any]
ANSWERS: HandlerTable[Answer] = HandlerTable("bridge")


class BridgeServer(JsonRPCServer):
    def __init__(self, cli_overrides: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None):
        super().__init__(protocol_cls=BridgeProtocol, converter_factory=lambda: CONVERTER)
        self.protocol: BridgeProtocol
        self.cli_overrides = dict(cli_overrides or {})
        self.environ = environ
        self.config: BridgeConfig | None = None
        self.store: Store | None = None
        self.journal: Journal | None = None
        self.service: TrackingService | None = None
        self.flusher: Flusher | None = None
        self.shutdown_requested = False
        self.exit_code: int | None = None
        self.recorder: Recorder | None = recorder_from_env()
        self._main_task: asyncio.Task[Any] | None = None
        self._flush_task: asyncio.Task[Any] | None = None
        self._told_topics: set[str] = set()  # what the host was told once (shared by all services)
        self._finalized = False
        for name in METHODS:
            # pygls runs requests through the handler registered for their method name.
            self.feature(name)(self._request_entry(name))

    # -- host notifications ----------------------------------------------------------------

    def log(self, level: str, message: str, data: Any = None) -> None:
        print(f"agent-tracker [{level}] {message}", file=sys.stderr, flush=True)
        params: dict[str, Any] = {"level": level, "message": message}
        if data is not None:
            params["data"] = data
        self.protocol.notify("log", params)

    def _notify(self, method: str, params: dict[str, Any]) -> None:
        if method == "log":
            self.log(params["level"], params["message"], params.get("data"))
        else:
            self.protocol.notify(method, params)

    def _notify_recovered(self, method: str, params: dict[str, Any]) -> None:
        """While replaying a dead bridge's journal: its commits were announced by that bridge."""
        if method != "commit.recorded":
            self._notify(method, params)

    def _parse_error(self, error: Exception) -> None:
        """The body was not JSON (or not UTF-8, or nested too deep): answer -32700, go on."""
        self.protocol.send_error(None, PARSE_ERROR, f"Parse error: {error}"[:500])

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, JsonRpcException):
            return  # already answered to the requester with this error
        self.log("error", f"Internal error: {type(error).__name__}: {error}"[:1000])

    # -- dispatch -------------------------------------------------------------------------------

    @staticmethod
    def knows(method: str) -> bool:
        return method in METHODS

    def _request_entry(self, method: str) -> Callable[[Any], Any]:
        def entry(raw_params: Any) -> Any:
            return self.dispatch(method, raw_params, is_request=True)
        entry.__name__ = f"request_{method}"
        return entry

    def dispatch(self, method: str, raw_params: Any, *, is_request: bool) -> Any:
        """One message of a known method: an error answer for a request, a log line for a notification."""
        try:
            if METHODS[method].event:
                return self._event(method, raw_params, is_request)
            # A request's params are made storable as an event's are (a lone surrogate in agentId
            # becomes U+FFFD): the answer then looks up what could have been stored.
            return ANSWERS[method](self, structure_params(method, encode_params(raw_params)[1]))
        except (InvalidParams, EventRejected) as exc:
            if is_request:
                raise JsonRpcInvalidParams(message=str(exc)) from None
            self.log("warning", f"Dropped {method} notification: {exc}")
            return None

    def _event(self, method: str, raw_params: Any, is_request: bool) -> Any:
        if self.service is None or self.flusher is None:
            structure_params(method, raw_params)  # bad params are named even before initialize
            if is_request:
                raise JsonRpcServerNotInitialized(message=f"{method} before initialize: send initialize first.")
            self.log("warning", f"Dropped {method} notification: received before initialize.")
            return None
        try:
            result = self.service.handle(method, raw_params)
        except EventDropped as exc:  # told once already (trouble.Troubles.drop), counted at exit
            if is_request:
                raise JsonRpcServerError(  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
                    message=f"{method} {exc}", code=DATABASE_UNAVAILABLE) from None
            return None
        if self.service.flush_requested or self.flusher.retry_at is not None:
            self.flusher.after_event()
        return result if result is not None else {}

    def _require_service(self, method: str) -> TrackingService:
        if self.service is None:
            raise JsonRpcServerNotInitialized(message=f"{method} before initialize: send initialize first.")
        return self.service

    def _flush(self) -> "asyncio.Future[dict[str, Any]]":
        """Flush everything received so far; answered when the transaction committed."""
        assert self.flusher is not None
        return self.flusher.answer(self.flusher.flush())

    def _end_open_sessions(self) -> None:
        """The host is going away: every session still open ends now (each as a journaled
        ``session.ended`` event, so its summary is written exactly once, by this flush or a replay)."""
        if self.service is None:
            return
        for session_id in self.service.open_sessions():
            try:
                self.service.handle("session.ended", {"sessionID": session_id, "reason": "shutdown"})
            except EventDropped:  # past the memory bound on a full disk: counted in the exit line
                pass

    # -- the bridge's own requests ------------------------------------------------------------------

    @ANSWERS("initialize")
    def _initialize(self, params: InitializeParams) -> dict[str, Any]:
        if self.service is not None:
            raise JsonRpcInvalidRequest(message="initialize was already received.")
        try:
            config = load_config(params.config, self.cli_overrides, self.environ)
        except ConfigError as exc:
            raise JsonRpcInvalidParams(message=str(exc)) from None
        self.config = config
        directory = params.project.directory if params.project else None
        moved_aside = self._move_old_database_aside(config)
        self.store = Store.open(config)
        migration = self._migrate(moved_aside, directory)
        troubles = Troubles(self._notify, self.store.path.parent)
        recovered, deferred = self._recover_journals(troubles)
        self.journal = self._open_journal(directory, config.scoring)
        self.service = TrackingService(self.store, config.scoring, journal=self.journal,
                                       default_directory=directory, notify=self._notify,
                                       told=self._told_topics, troubles=troubles)
        troubles.accepted = lambda: self.service.events_accepted if self.service is not None else 0
        # Fault injection (tests/reliability) writes inline: see flushing.py.
        self.flusher = Flusher(self.service, self.log, sync_ms=config.journal_sync_milliseconds,
                               inline=faults.ENABLED)
        self.flusher.deferred = deferred
        self.flusher.maintain()  # the journal's space reserve, taken in the background
        if not self.store.available:
            self._told_topics.add("StoreUnavailable")  # the toast below says it; flushes need not
            self.log("error", f"Tracking disabled: {self.store.error}")
            self.protocol.notify("toast", {"message": f"agent-tracker: tracking disabled. {self.store.error}",
                                           "variant": "error"})
        if config.flush_interval_seconds:
            self._flush_task = asyncio.ensure_future(self._flush_periodically(config.flush_interval_seconds))
        info = self.store.info()
        return {
            "serverInfo": {"name": SERVER_NAME, "version": __version__},
            "database": info.to_wire(),
            "migration": migration,
            "recovered": recovered,
            "journal": {"path": str(self.journal.path) if self.journal else None},
        }

    @ANSWERS("shutdown")
    def _shutdown(self, params: NoParams) -> Any:
        self.shutdown_requested = True
        if self.service is None:
            return {"entriesWritten": 0, "durationMs": 0, "errors": [], "transactions": 0}
        self._end_open_sessions()
        return self._flush()

    @ANSWERS("exit")
    def _exit(self, params: NoParams) -> None:
        self.exit_code = 0 if self.shutdown_requested else 1
        self._stop()

    @ANSWERS("flush")
    def _flush_request(self, params: NoParams) -> Any:
        self._require_service("flush")
        return self._flush()

    @ANSWERS("agent.status")
    def _agent_status(self, params: StatusQuery) -> dict[str, Any]:
        service = self._require_service("agent.status")
        if not params.agent_id and not params.session_id:
            raise JsonRpcInvalidParams(message="agent.status: give params.agentId or params.sessionID")
        return service.status(params)

    def _after_flush(self, service: TrackingService, answer: Callable[[], dict[str, Any]]) -> Any:
        """``answer`` reads the database: run it once every event received so far was flushed
        (at once if nothing waits; else the request is answered when the flush committed)."""
        assert self.flusher is not None
        if service.pending or not self.flusher.idle:
            flushed = self.flusher.flush()
            if not flushed.done():
                async def later() -> dict[str, Any]:
                    await flushed
                    return answer()
                return asyncio.ensure_future(later())
        return answer()

    @ANSWERS("report")
    def _report(self, params: ReportQuery) -> Any:
        service = self._require_service("report")
        return self._after_flush(service, lambda: self._build_report(service, params))

    def _build_report(self, service: TrackingService, params: ReportQuery) -> dict[str, Any]:
        from ..report.build import build_report  # not needed at start-up
        from ..report.model import ReportError
        from ..report.render import render_text
        try:
            report = build_report(service.store, project=params.project_path, stack=params.stack,
                                  since=params.since, until=params.until, agent=params.agent,
                                  model=params.model, min_sessions=params.min_sessions, rules=service.rules)
        except ReportError as exc:
            raise JsonRpcInvalidParams(message=f"report: {exc}") from None
        except StoreError as exc:
            raise JsonRpcServerError(  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
                message=f"report: the database is unavailable: {exc}", code=DATABASE_UNAVAILABLE) from None
        return {**report.to_wire(), "text": render_text(report)}

    @ANSWERS("recommend")
    def _recommend(self, params: RecommendQuery) -> Any:
        service = self._require_service("recommend")
        directory = params.directory or service.default_directory
        if not directory:
            raise JsonRpcInvalidParams(message="recommend: give params.directory (the bridge was started "
                                               "without a project folder).")
        if not Path(directory).is_dir():
            raise JsonRpcInvalidParams(message=f"recommend: params.directory is not a folder: {directory}")
        if params.min_sessions is not None and params.min_sessions < 1:
            raise JsonRpcInvalidParams(message=f"recommend: params.minSessions must be at least 1; "
                                               f"got {params.min_sessions}")
        return self._after_flush(service, lambda: self._build_recommendation(service, directory, params))

    def _build_recommendation(self, service: TrackingService, directory: str,
                              params: RecommendQuery) -> dict[str, Any]:
        from ..report.model import ReportError
        from ..report.recommend import recommend_for
        try:
            advice = recommend_for(service.store, Path(directory), min_sessions=params.min_sessions,
                                   rules=service.rules)
        except ReportError as exc:
            raise JsonRpcInvalidParams(message=f"recommend: {exc}") from None
        except StoreError as exc:
            raise JsonRpcServerError(  # type: ignore[no-untyped-call]  # pygls leaves it unannotated
                message=f"recommend: the database is unavailable: {exc}", code=DATABASE_UNAVAILABLE) from None
        return advice.to_wire()

    # -- starting up ---------------------------------------------------------------------------------

    def _move_old_database_aside(self, config: BridgeConfig) -> Path | None:
        """An lmdb-js database at the central path is renamed (nothing deleted) so ours can open there."""
        from ..migration.importer import move_aside_if_lmdbjs

        try:
            return move_aside_if_lmdbjs(config.resolved_database_path())
        except OSError as exc:
            self.log("error", f"Migration failed: cannot move the old database aside: {exc}")
            return None

    def _migrate(self, moved_aside: Path | None, directory: str | None) -> dict[str, Any] | None:
        """Import the old TypeScript plugin's databases, never blocking start-up."""
        assert self.store is not None
        from ..migration.importer import import_at_start

        try:
            result = import_at_start(self.store, moved_aside, directory)
        except Exception as exc:  # a migration problem must never stop tracking
            self.log("error", f"Migration failed: {exc}")
            return {"error": str(exc)}
        if result and (result.get("imported") or result.get("errors")):
            self.log("info", result.get("message", "Migration finished."), result)
            self.protocol.notify("toast", {"message": result.get("message", "Migration finished."),
                                           "variant": "warning" if result.get("errors") else "success"})
        return result

    def _open_journal(self, directory: str | None, rules: ScoringRules) -> Journal | None:
        assert self.store is not None
        try:
            # The rules go with the events: a replay scores them as this bridge did.
            return Journal(journal_dir_for(self.store.path),
                           header={"directory": directory, "scoring": rules.to_wire()})
        except OSError as exc:
            self.log("warning", f"Crash journal unavailable ({exc}); events since the last flush "
                                f"would be lost if the bridge were killed.")
            return None

    def _recover_journals(self, troubles: Troubles) -> tuple[dict[str, int], list[OrphanRecovery]]:
        """Replay journals left by bridges that died, each exactly once, before accepting events.

        A journal the file system would not let us apply (full, read-only...) stays locked by us
        and is applied with the next write that works (flushing.OrphanRecovery)."""
        assert self.store is not None and self.config is not None
        recovered = {"journals": 0, "events": 0}
        deferred: list[OrphanRecovery] = []
        if not self.store.available or self.store.read_only:
            return recovered, deferred
        for orphan in find_orphans(journal_dir_for(self.store.path)):
            with self.store.read() as view:
                applied = view.meta(f"journal:{orphan.journal_id}") or 0
            header = orphan.header()
            service = TrackingService(self.store, self._rules_of(orphan, header), journal_id=orphan.journal_id,
                                      default_directory=header.get("directory"), notify=self._notify_recovered,
                                      told=self._told_topics, troubles=troubles)
            recovery = OrphanRecovery(orphan, service, service.replay(orphan, applied))
            result = recovery.apply()
            if result.errors:
                if result.retry:
                    deferred.append(recovery)
                    continue
                orphan.release()
                self.log("error", f"Could not apply journal {orphan.path.name}: {result.errors[0]}")
                continue
            recovered["journals"] += int(recovery.removed)  # one that stays (read-only folder) replays nothing
            recovered["events"] += recovery.events
        if recovered["events"]:
            self.log("info", f"Recovered {plural(recovered['events'], 'event')} from "
                             f"{plural(recovered['journals'], 'interrupted session')}.")
        return recovered, deferred

    def _rules_of(self, orphan: OrphanJournal, header: dict[str, Any]) -> ScoringRules:
        """The scoring rules that accepted the journal's events (older journals: ours)."""
        assert self.config is not None
        if "scoring" not in header:
            return self.config.scoring
        try:
            return structure_config({"scoring": header["scoring"]}).scoring
        except ConfigError as exc:
            self.log("warning", f"Journal {orphan.path.name} names scoring rules this bridge does not accept "
                                f"({exc}); its events are scored with this bridge's rules.")
            return self.config.scoring

    # -- running -----------------------------------------------------------------------------------

    def _stop(self) -> None:
        if self._main_task is not None:
            self._main_task.cancel()

    def _on_oversized(self, length: int) -> None:
        self.log("error", f"Rejected a frame of {length} bytes (limit {MAX_FRAME_BYTES}): the stream "
                          f"cannot be resynchronised, so the bridge flushes and exits.")
        self.exit_code = 1

    async def _flush_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self.service is not None and self.flusher is not None and self.service.pending:
                await self.flusher.flush()

    async def serve(self) -> int:
        loop = asyncio.get_running_loop()
        sender = StdoutWriter(record=self.recorder.outgoing if self.recorder else None)
        self.protocol.sender = sender  # _send_data writes through it; pygls' writer is unused
        reader = GuardedReader(await stdin_reader(), on_oversized=self._on_oversized,
                               record=self.recorder.incoming if self.recorder else None,
                               record_frame=self.recorder.incoming_frame if self.recorder else None)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)
        self._main_task = asyncio.ensure_future(read_messages(
            reader, self.protocol.handle_message, self._parse_error,
            lambda error: self.report_server_error(error, None)))
        try:
            await self._main_task
        except asyncio.CancelledError:
            pass
        await self.finalize()
        return self.exit_code if self.exit_code is not None else 0

    def _on_signal(self, signum: int) -> None:
        self.log("info", f"Received {signal.Signals(signum).name}: flushing and exiting.")
        self.exit_code = 0
        self._stop()

    async def finalize(self) -> None:
        """Flush and close. The journal is removed only once everything reached the database.

        If something could not be written (a full disk, say), the last log line says how many
        events the journal keeps for the next start and how many could not be saved at all.
        """
        if self._finalized:
            return
        self._finalized = True
        if self._flush_task is not None:
            self._flush_task.cancel()
        flushed = True
        service, flusher = self.service, self.flusher
        if service is not None and flusher is not None:
            await flusher.drain()
            self._end_open_sessions()
            flushed = not (await flusher.flush()).errors
            await flusher.close()
            for recovery in flusher.deferred:  # not applied: left for the next start
                recovery.orphan.release()
            for _ in range(3):  # answers of the flushes above go out through call_soon callbacks
                await asyncio.sleep(0)
            journal = service.journal
            if journal is not None:
                error = journal.close(remove=flushed)
                if error is not None:
                    self.log("warning", f"Could not remove the journal {display(journal.path)} ({error.strerror}): "
                                        f"its folder became read-only; it was emptied, so it replays nothing.")
            if flushed and self.journal is not None and self.store is not None and self.store.available \
                    and not self.store.read_only:
                marker = f"journal:{self.journal.journal_id}"
                try:  # the journal is gone, so its replay marker is no longer needed
                    self.store.write(lambda view: view.delete("meta", marker))
                except StoreError:
                    pass
            if not flushed or service.troubles.dropped_total:
                on_disk, lost = service.exit_counts()
                self.log("warning" if not lost else "error",
                         f"Exiting before every event reached the database: {on_disk:,} events are in the "
                         f"journal (the next start recovers them) and {lost:,} events could not be saved.")
        if self.store is not None:
            self.store.close()
        if self.recorder is not None:
            self.recorder.close()


def serve(cli_overrides: Mapping[str, Any] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="agent-tracker %(levelname)s %(name)s: %(message)s")
    # pygls logs every handled error with a traceback at ERROR; our own log() says it once.
    logging.getLogger("pygls").setLevel(logging.CRITICAL)
    from .. import summaries

    summaries.enable()  # every flush keeps the report's summaries (their code loads on the first write)
    server = BridgeServer(cli_overrides)
    return asyncio.run(server.serve())
