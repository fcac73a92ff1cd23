"""A stock pygls JsonRPCServer with its DEFAULT stdio reader (``start_io()``): the second baseline.

Features do the same minimal work as the floor server: ``tool.executed`` (and any other
event) appends its params to a list; ``initialize``, ``agent.status`` and ``shutdown``
answer a small result; ``exit`` stops. Used for the transport benches and, with only the
``initialize`` answer mattering, as the bare-pygls reference for cold start.
Run: ``python bench/stock_pygls_server.py``.
"""

from __future__ import annotations

import logging
import sys

from pygls.protocol import JsonRPCProtocol, default_converter
from pygls.server import JsonRPCServer

EVENTS = ("session.created", "tool.executed", "command.executed", "commit.completed",
          "commit.pushed", "grade", "session.deleted")


def build() -> JsonRPCServer:
    server = JsonRPCServer(protocol_cls=JsonRPCProtocol, converter_factory=default_converter)
    received: list = []

    @server.feature("initialize")
    def initialize(params):
        return {"serverInfo": {"name": "stock-pygls", "version": "0"}}

    def record(params):
        received.append(params)

    for event in EVENTS:
        server.feature(event)(record)

    @server.feature("agent.status")
    def status(params):
        return {"received": len(received)}

    @server.feature("shutdown")
    def shutdown(params):
        return {"received": len(received)}

    @server.feature("exit")
    def exit_(params):
        server.shutdown()  # the read loop ends at its next message or at EOF

    return server


if __name__ == "__main__":
    logging.getLogger("pygls").setLevel(logging.CRITICAL)
    build().start_io()
    sys.exit(0)
