"""The JSON-RPC layer between the read loop and the bridge: validate, dispatch, answer.

What pygls does here, and what we replaced (measured with the replay and Node-client benches,
bench/README.md):
  * kept: handler registration by method name (``JsonRPCServer.feature``) and request execution
    (``JsonRPCProtocol._handle_request``: plain, coroutine and thread handlers, a future per
    request, JsonRpcException → its error answer, unknown method → -32601); added: a plain
    handler may return an asyncio future, answered when it completes (a flush: its batch is taken
    when the request arrives, its answer sent once the worker thread committed it);
  * replaced ``handle_message``: pygls structures every message into attrs classes and checks
    runtime Protocols with ``isinstance``, which cost 2 s of 5.7 s for 30,000 notifications; here
    messages stay parsed JSON and params are structured only for their own method;
  * replaced notification execution: pygls makes a uuid4 and a Future per notification, most of
    the per-notification cost; our handlers are called directly;
  * replaced the output: plain dicts written with orjson (StdoutWriter), and -32603 answers
    without pygls' traceback (it carries absolute paths; stderr gets the traceback instead).
The private pygls names this relies on are listed in PYGLS_PRIVATE; tests/test_pygls_surface.py
fails with the name if an upgrade changes one. pyproject.toml pins the minor version tested.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from functools import partial
from typing import Any, Protocol, cast

from pygls.exceptions import JsonRpcException
from pygls.protocol.json_rpc import JsonRPCProtocol

from .transport import StdoutWriter

logger = logging.getLogger(__name__)

PARSE_ERROR, INVALID_REQUEST, INTERNAL_ERROR, REQUEST_CANCELLED = -32700, -32600, -32603, -32800
# (class, attribute): what BridgeProtocol calls, overrides or reads that pygls does not document.
PYGLS_PRIVATE = (
    (JsonRPCProtocol, "_handle_request"),        # called: runs a request's handler
    (JsonRPCProtocol, "_send_handler_result"),   # overridden: answers a finished request
    (JsonRPCProtocol, "_send_response"),         # overridden: pygls' error paths answer through it
    (JsonRPCProtocol, "_send_data"),             # overridden: every answer goes out through it
    (JsonRPCProtocol, "_request_futures"),       # read: the futures of running requests
)


def valid_id(msg_id: Any) -> bool:
    """A string or a number. The read loop's stdlib fallback parses NaN and Infinity, which JSON
    has no way to write: such a request was executed and answered with id null, so the host could
    not match the answer. It is an invalid request, not executed."""
    if isinstance(msg_id, float):
        return math.isfinite(msg_id)
    return isinstance(msg_id, (str, int)) and not isinstance(msg_id, bool)


class Bridge(Protocol):
    """What the protocol needs of the server it serves (rpc.server.BridgeServer)."""

    def knows(self, method: str) -> bool: ...

    def dispatch(self, method: str, raw_params: Any, *, is_request: bool) -> Any: ...

    def log(self, level: str, message: str, data: Any = None) -> None: ...

    def report_server_error(self, error: Exception, source: Any) -> None: ...


class BridgeProtocol(JsonRPCProtocol):
    """JSON-RPC protocol with fast message dispatch and plain-dict output."""

    def __init__(self, server: Any, converter: Any):
        super().__init__(server, converter)
        self.bridge: Bridge = server
        self.sender: StdoutWriter | None = None
        self._unknown_notified: set[str] = set()

    # -- input ---------------------------------------------------------------------------------

    def handle_message(self, message: Any) -> None:
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
            # pygls runs each request in its own context, as its own handle_message does.
            # (pygls types ids as str | int; JSON-RPC numbers may be floats, answered as sent.)
            contextvars.copy_context().run(self._handle_request, cast(Any, msg_id), method, params)

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
        if not self.bridge.knows(method_name):
            if method_name not in self._unknown_notified:
                self._unknown_notified.add(method_name)
                self.bridge.log("warning", f"Ignoring unknown notification {method_name!r} "
                                           f"(logged once per method).")
            return
        try:
            self.bridge.dispatch(method_name, params, is_request=False)
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
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self.send_error(msg_id, REQUEST_CANCELLED, f'Request with id "{msg_id}" was cancelled.')
            return
        error = future.exception()
        if error is None and isinstance(future.result(), asyncio.Future):
            # A handler's answer that comes later (a flush written in a worker thread): sent when it
            # is done, at once if it already is; requests behind it are answered meanwhile.
            answer = future.result()
            if not answer.done():
                self._request_futures[msg_id] = answer
                answer.add_done_callback(partial(self._send_handler_result, msg_id=msg_id))
                return
            self._send_handler_result(answer, msg_id=msg_id)
            return
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
