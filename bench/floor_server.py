"""The floor: a minimal hand-written asyncio + orjson JSON-RPC server over stdio.

Same framing as the bridge (LSP Content-Length headers), minimal work per message: parse
the body with orjson and append notifications to a list; answer every request with a small
result (``initialize``, ``agent.status``, ``shutdown``...), stop on ``exit`` or EOF. It is
what a transport cannot beat in this language, so the bridge is measured against it.
Run: ``python bench/floor_server.py`` (speaks on stdin/stdout).
"""

from __future__ import annotations

import asyncio
import os
import sys

import orjson


def send(message: dict) -> None:
    body = orjson.dumps(message)
    data = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


async def main() -> int:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    received: list = []
    readuntil, readexactly, loads, append = reader.readuntil, reader.readexactly, orjson.loads, received.append
    while True:
        try:
            head = await readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return 0
        length = -1
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        if length < 0:
            continue
        try:
            message = loads(await readexactly(length))
        except asyncio.IncompleteReadError:
            return 0
        if "id" in message:
            method = message.get("method")
            if method == "initialize":
                result = {"serverInfo": {"name": "floor", "version": "0"}}
            else:
                result = {"received": len(received)}
            send({"jsonrpc": "2.0", "id": message["id"], "result": result})
        elif message.get("method") == "exit":
            return 0
        else:
            append(message)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
