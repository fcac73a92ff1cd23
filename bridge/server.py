"""The bridge: a pygls JSON-RPC server over stdio that feeds the tracking service.

Protocol: ``BridgeProtocol`` keeps pygls' dispatch (handlers registered by method name) but
structures params itself, only for known methods, into the attrs classes of bridge.messages,
so bad params get an error naming the field instead of a generic failure, and nested params
are not turned into namedtuples on the hot path. Transport: bridge.transport.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import signal
import sys
from typing import Any, Mapping

from pygls.exceptions import (JsonRpcException, JsonRpcInvalidParams, JsonRpcInvalidRequest,
                              JsonRpcServerError, JsonRpcServerNotInitialized)
from pygls.protocol.json_rpc import JsonRPCProtocol
from pygls.server import JsonRPCServer

from . import SERVER_NAME, __version__
from . import messages as m
from .config import BridgeConfig, ConfigError, load_config
from .journal import Journal, find_orphans, journal_dir_for
from .recorder import Recorder, recorder_from_env
from .store import Store, StoreError
from .tracking import EventRejected, TrackingService
from .transport import MAX_FRAME_BYTES, GuardedReader, StdoutWriter, read_messages, stdin_reader

logger = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, INTERNAL_ERROR = -32700, -32600, -32603
DATABASE_UNAVAILABLE = -32001  # a request that needs the database while tracking is disabled


def valid_id(msg_id: Any) -> bool:
    """A string or a number. The read loop's stdlib fallback parses NaN and Infinity, which JSON
    has no way to write: such a request was executed and answered with id null, so the host could
    not match the answer. It is an invalid request, not executed."""
    if isinstance(msg_id, float):
        return math.isfinite(msg_id)
    return isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool)


class BridgeProtocol(JsonRPCProtocol):
    """JSON-RPC protocol with fast message structuring and plain-dict output."""

    def __init__(self, server: "BridgeServer", converter: Any):
        super().__init__(server, converter)
        self.bridge = server
        self.sender: StdoutWriter | None = None
        self._unknown_notified: set[str] = set()

    # -- input ---------------------------------------------------------------------------------

    def handle_message(self, message: Any) -> None:
        # Dispatch here, on the parsed JSON: pygls' version checks runtime Protocols with
        # isinstance, which cost more than everything else per notification (measured 2 s of
        # 5.7 s for 30,000), and params stay plain dicts until structured for their method.
        if type(message) is not dict or "jsonrpc" not in message or not isinstance(message.get("method"), str):
            self._invalid_message(message)
            return
        method, params = message["method"], message.get("params")
        if "id" not in message:
            if message["jsonrpc"] != self.VERSION:
                self.bridge.log("warning", f'Dropped a notification whose jsonrpc is not "2.0": {method}')
                return
            self._handle_notification(method, params)
            return
        msg_id = message["id"]
        if not valid_id(msg_id):
            self.send_error(None, INVALID_REQUEST, "Invalid Request: id must be a string or a number.")
        elif message["jsonrpc"] != self.VERSION:
            self.send_error(msg_id, INVALID_REQUEST, 'Invalid Request: jsonrpc must be "2.0".')
        else:
            # Each request runs in its own context so handlers can tell requests (msg_id set).
            contextvars.copy_context().run(self._handle_request, msg_id, method, params)

    def _invalid_message(self, message: Any) -> None:
        msg_id = message.get("id") if isinstance(message, dict) else None
        if not valid_id(msg_id):
            msg_id = None
        if isinstance(message, dict) and ("result" in message or "error" in message):
            self.bridge.log("warning", "Ignored a response: the bridge sends no requests.")
            return
        kind = "a batch (arrays are not supported)" if isinstance(message, list) else type(message).__name__
        self.send_error(msg_id, INVALID_REQUEST,
                        f"Invalid Request: expected a JSON-RPC 2.0 object with a string method, got {kind}.")

    def _handle_notification(self, method_name: str, params: Any) -> None:
        handler = self.fm.features.get(method_name)
        if handler is None:
            if method_name not in self._unknown_notified:
                self._unknown_notified.add(method_name)
                self.bridge.log("warning", f"Ignoring unknown notification {method_name!r} "
                                           f"(logged once per method).")
            return
        # Our handlers are synchronous: call them directly instead of pygls' per-message
        # uuid4 + Future bookkeeping, which is most of the per-notification cost.
        try:
            handler(params)
        except Exception as error:  # never let one event take the bridge down
            self.bridge.report_server_error(error, None)

    # -- output --------------------------------------------------------------------------------

    def _send_data(self, data: Any) -> None:
        if self.sender is not None and data:
            self.sender.send(data)

    def _send_response(self, msg_id: Any, result: Any = None, error: Any = None) -> None:
        if error is not None:
            body: dict[str, Any] = {"code": error.code, "message": error.message}
            if getattr(error, "data", None) is not None:
                body["data"] = error.data
            self._send_data({"jsonrpc": self.VERSION, "id": msg_id, "error": body})
        else:
            self._send_data({"jsonrpc": self.VERSION, "id": msg_id, "result": result})

    def _send_handler_result(self, future: Any, *, msg_id: Any) -> None:
        # pygls puts the whole traceback (with absolute paths) into -32603 answers; the host
        # gets one line, stderr gets the traceback.
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self.send_error(msg_id, -32800, f'Request with id "{msg_id}" was cancelled.')
            return
        error = future.exception()
        if error is None:
            self._send_response(msg_id, result=future.result())
        elif isinstance(error, JsonRpcException):
            self._send_response(msg_id, error=error)
        else:
            logger.error("Request %s failed", msg_id, exc_info=error)
            self.send_error(msg_id, INTERNAL_ERROR, f"Internal error: {type(error).__name__}: {error}"[:1000])
            self.bridge.log("error", f"Internal error in request {msg_id}: {type(error).__name__}: {error}"[:1000])

    def send_error(self, msg_id: Any, code: int, message: str) -> None:
        self._send_data({"jsonrpc": self.VERSION, "id": msg_id, "error": {"code": code, "message": message}})

    def notify(self, method: str, params: Any = None) -> None:
        self._send_data({"jsonrpc": self.VERSION, "method": method, "params": params})


class BridgeServer(JsonRPCServer):
    def __init__(self, cli_overrides: Mapping[str, Any] | None = None,
                 environ: Mapping[str, str] | None = None):
        super().__init__(protocol_cls=BridgeProtocol, converter_factory=lambda: m.CONVERTER)
        self.protocol: BridgeProtocol
        self.cli_overrides = dict(cli_overrides or {})
        self.environ = environ
        self.config: BridgeConfig | None = None
        self.store: Store | None = None
        self.journal: Journal | None = None
        self.service: TrackingService | None = None
        self.shutdown_requested = False
        self.exit_code: int | None = None
        self.recorder: Recorder | None = recorder_from_env()
        self._main_task: asyncio.Task[Any] | None = None
        self._flush_task: asyncio.Task[Any] | None = None
        self._told_topics: set[str] = set()  # what the host was told once (shared by all services)
        self._finalized = False
        for method in m.METHODS:
            self.feature(method)(self._dispatcher(method))

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

    def _parse_error(self, error: Exception) -> None:
        """The body was not JSON (or not UTF-8, or nested too deep): answer -32700, go on."""
        self.protocol.send_error(None, PARSE_ERROR, f"Parse error: {error}"[:500])

    def report_server_error(self, error: Exception, source: Any) -> None:
        if isinstance(error, JsonRpcException):
            return  # already answered to the requester with this error
        self.log("error", f"Internal error: {type(error).__name__}: {error}"[:1000])

    # -- dispatch -------------------------------------------------------------------------------

    def _dispatcher(self, method: str):
        handler = getattr(self, "_on_" + method.replace(".", "_"), None)

        def dispatch(raw_params: Any) -> Any:
            # pygls sets this context variable only while handling a request.
            is_request = self.protocol._ctx_msg_id.get() is not None
            try:
                params = m.structure_params(method, raw_params)
            except m.InvalidParams as exc:
                if is_request:
                    raise JsonRpcInvalidParams(message=str(exc)) from None
                self.log("warning", f"Dropped {method} notification: {exc}")
                return None
            if handler is not None:
                return handler(params)
            return self._on_event(method, params, is_request, raw_params)

        dispatch.__name__ = f"handle_{method}"
        return dispatch

    def _require_service(self, method: str) -> TrackingService:
        if self.service is None:
            raise JsonRpcServerNotInitialized(message=f"{method} before initialize: send initialize first.")
        return self.service

    def _on_event(self, method: str, params: Any, is_request: bool, raw_params: Any) -> Any:
        if self.service is None:
            if is_request:
                raise JsonRpcServerNotInitialized(message=f"{method} before initialize: send initialize first.")
            self.log("warning", f"Dropped {method} notification: received before initialize.")
            return None
        try:
            result = self.service.handle(method, params, raw=raw_params)
        except EventRejected as exc:
            if is_request:
                raise JsonRpcInvalidParams(message=str(exc)) from None
            self.log("warning", f"Dropped {method} notification: {exc}")
            return None
        if self.service.flush_requested:
            self._flush()
        return result if result is not None else {}

    def _flush(self) -> dict[str, Any]:
        assert self.service is not None
        return self.service.flush().to_wire()

    # -- lifecycle ------------------------------------------------------------------------------

    def _on_initialize(self, params: m.InitializeParams) -> dict[str, Any]:
        if self.service is not None:
            raise JsonRpcInvalidRequest(message="initialize was already received.")
        try:
            config = load_config(params.config, self.cli_overrides, self.environ)
        except ConfigError as exc:
            raise JsonRpcInvalidParams(message=str(exc)) from None
        self.config = config
        directory = params.project.directory if params.project else None
        self.store = Store.open(config)
        migration = self._migrate(directory)
        recovered = self._recover_journals()
        self.journal = self._open_journal(directory)
        self.service = TrackingService(self.store, config.scoring, journal=self.journal,
                                       default_directory=directory, notify=self._notify,
                                       told=self._told_topics)
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

    def _migrate(self, directory: str | None) -> dict[str, Any] | None:
        """Import the old TypeScript plugin's databases (bridge.migration), never blocking start-up."""
        assert self.store is not None and self.config is not None
        try:
            from .migration import migrate_on_initialize
        except ImportError:
            return None
        try:
            self.store, result = migrate_on_initialize(self.store, self.config, directory)
        except Exception as exc:  # a migration problem must never stop tracking
            self.log("error", f"Migration failed: {exc}")
            return {"error": str(exc)}
        if result and (result.get("imported") or result.get("errors")):
            self.log("info", result.get("message", "Migration finished."), result)
            self.protocol.notify("toast", {"message": result.get("message", "Migration finished."),
                                           "variant": "warning" if result.get("errors") else "success"})
        return result

    def _open_journal(self, directory: str | None) -> Journal | None:
        assert self.store is not None
        try:
            return Journal(journal_dir_for(self.store.path), header={"directory": directory})
        except OSError as exc:
            self.log("warning", f"Crash journal unavailable ({exc}); events since the last flush "
                                f"would be lost if the bridge were killed.")
            return None

    def _recover_journals(self) -> dict[str, int]:
        """Replay journals left by bridges that died, each exactly once, before accepting events."""
        assert self.store is not None and self.config is not None
        recovered = {"journals": 0, "events": 0}
        if not self.store.available or self.store.read_only:
            return recovered
        for orphan in find_orphans(journal_dir_for(self.store.path)):
            marker_key = f"journal:{orphan.journal_id}"
            with self.store.read() as view:
                applied = (view.get("meta", marker_key) or 0)
            service = TrackingService(self.store, self.config.scoring, journal_id=orphan.journal_id,
                                      default_directory=orphan.header().get("directory"),
                                      notify=self._notify, told=self._told_topics)
            events = service.replay(orphan, applied)
            result = service.flush()
            if result.errors:
                orphan.release()
                self.log("error", f"Could not apply journal {orphan.path.name}: {result.errors[0]}")
                continue
            orphan.remove()
            try:
                self.store.write(lambda view: view.delete("meta", marker_key))
            except StoreError:
                pass
            recovered["journals"] += 1
            recovered["events"] += events
        if recovered["events"]:
            self.log("info", f"Recovered {recovered['events']} events from "
                             f"{recovered['journals']} interrupted session(s).")
        return recovered

    def _on_shutdown(self, params: m.NoParams) -> dict[str, Any]:
        self.shutdown_requested = True
        if self.service is None:
            return {"entriesWritten": 0, "durationMs": 0, "errors": [], "transactions": 0}
        return self._flush()

    def _on_exit(self, params: m.NoParams) -> None:
        self.exit_code = 0 if self.shutdown_requested else 1
        self._stop()

    def _on_flush(self, params: m.NoParams) -> dict[str, Any]:
        self._require_service("flush")
        return self._flush()

    def _on_agent_status(self, params: m.StatusQuery) -> dict[str, Any]:
        service = self._require_service("agent.status")
        if not params.agent_id and not params.session_id:
            raise JsonRpcInvalidParams(message="agent.status: give params.agentId or params.sessionID")
        return service.status(params)

    def _on_report(self, params: m.ReportQuery) -> dict[str, Any]:
        service = self._require_service("report")
        from .report import ReportError, build_report, render_text  # not needed at start-up
        if service.pending:
            self._flush()
        try:
            report = build_report(service.store, project=params.project_path, stack=params.stack,
                                  since=params.since, min_sessions=params.min_sessions)
        except ReportError as exc:
            raise JsonRpcInvalidParams(message=f"report: {exc}") from None
        except StoreError as exc:
            raise JsonRpcServerError(message=f"report: the database is unavailable: {exc}",
                                     code=DATABASE_UNAVAILABLE) from None
        return {**report.to_wire(), "text": render_text(report)}

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
            if self.service is not None and self.service.pending:
                self._flush()

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
        self.finalize()
        return self.exit_code if self.exit_code is not None else 0

    def _on_signal(self, signum: int) -> None:
        self.log("info", f"Received {signal.Signals(signum).name}: flushing and exiting.")
        self.exit_code = 0
        self._stop()

    def finalize(self) -> None:
        """Flush and close. The journal is removed only once everything reached the database."""
        if self._finalized:
            return
        self._finalized = True
        if self._flush_task is not None:
            self._flush_task.cancel()
        flushed = True
        if self.service is not None:
            flushed = not self.service.flush().errors
        if self.journal is not None:
            self.journal.close(remove=flushed)
            if flushed and self.store is not None and self.store.available and not self.store.read_only:
                marker = f"journal:{self.journal.journal_id}"
                try:  # the journal is gone, so its replay marker is no longer needed
                    self.store.write(lambda view: view.delete("meta", marker))
                except StoreError:
                    pass
        if self.store is not None:
            self.store.close()
        if self.recorder is not None:
            self.recorder.close()


def serve(cli_overrides: Mapping[str, Any] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="agent-tracker %(levelname)s %(name)s: %(message)s")
    # pygls logs every handled error with a traceback at ERROR; our own log() says it once.
    logging.getLogger("pygls").setLevel(logging.CRITICAL)
    server = BridgeServer(cli_overrides)
    return asyncio.run(server.serve())
