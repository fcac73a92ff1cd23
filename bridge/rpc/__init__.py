"""rpc: the bridge process on stdio, JSON-RPC 2.0 with LSP framing, built on pygls.

Owns: the server and its lifecycle (server), framing and the read loop (transport), the optional
session recorder (recorder). May import protocol, tracking, store, config, migration, summaries
(enabled at start: every flush keeps them) and, lazily for the ``report`` request, report. Nothing
imports rpc but cli.
"""
