"""What the bridge relies on in pygls beyond its documented API is still there, by name.

bridge/rpc/protocol.py lists those names (PYGLS_PRIVATE) and pyproject.toml pins the pygls minor
version they were tested with; an upgrade that renames or drops one fails here with its name
instead of somewhere inside a running bridge.
"""

from __future__ import annotations

import inspect

import pytest
from pygls.protocol.json_rpc import JsonRPCProtocol

from bridge.rpc.protocol import PYGLS_PRIVATE, BridgeProtocol
from bridge.rpc.server import BridgeServer


@pytest.mark.parametrize("owner, name", PYGLS_PRIVATE, ids=lambda value: getattr(value, "__name__", value))
def test_pygls_still_has(owner: type, name: str) -> None:
    server = BridgeServer()
    # Set in __init__ (an attribute of every protocol) or defined on the class (a method).
    assert name in vars(owner) or name in vars(server.protocol), \
        f"pygls {owner.__name__}.{name} is gone: bridge/rpc/protocol.py relies on it"


@pytest.mark.parametrize("name", ["_send_handler_result", "_send_response", "_send_data"])
def test_overrides_keep_pygls_signatures(name: str) -> None:
    """pygls calls these on our protocol: the parameters it passes must still be the ones we take."""
    ours = inspect.signature(getattr(BridgeProtocol, name)).parameters
    theirs = inspect.signature(getattr(JsonRPCProtocol, name)).parameters
    assert list(ours) == list(theirs), f"pygls changed the parameters of {name}"


def test_requests_reach_our_dispatch_through_pygls() -> None:
    """pygls looks request handlers up by method name among the registered features."""
    server = BridgeServer()
    assert set(server.protocol.fm.features) >= {"initialize", "grade", "report"}
