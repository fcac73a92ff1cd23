"""A JSON-RPC 2.0 client for the bridge process: `agent-tracker demo` and the tests drive it with this.

It shares no code with the server side (bridge.rpc.transport, protocol, server): framing, ids
and matching are written here again, so a bug in the bridge's transport cannot hide behind the
same bug in the client. (The plugin side is tested with vscode-jsonrpc; bench/ keeps its own
client, which sends pre-encoded frames to time the bridge and nothing else.)
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import IO, Any, Mapping


class RpcError(Exception):
    """An error answer: ``code`` and ``message`` as the bridge sent them."""

    def __init__(self, error: dict[str, Any]):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message", "")
        self.error = error


class BridgeProcess:
    """A running bridge subprocess (``python -m bridge serve``), its stdin and stdout piped to us."""

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.notifications: list[dict[str, Any]] = []
        self.responses: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self.unmatched: list[dict[str, Any]] = []
        self.received: list[dict[str, Any]] = []
        self._next_id = 0
        self._reader_task = asyncio.ensure_future(self._read_loop())
        self._notification_event = asyncio.Event()

    @classmethod
    async def spawn(cls, *args: str, env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
                    stderr: int | IO[bytes] = asyncio.subprocess.PIPE) -> "BridgeProcess":
        """Start ``python -m bridge serve ARGS`` with this Python.

        Its stderr is piped by default (read it with ``stderr`` once it ended); a long run should
        pass a file instead, as the bridge logs every warning there.
        """
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge", "serve", *args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=stderr, env=env, cwd=None if cwd is None else str(cwd),
        )
        return cls(process)

    async def _read_loop(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            length = None
            while True:
                line = await stdout.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            assert length is not None, "frame without Content-Length"
            message = json.loads(await stdout.readexactly(length))
            self.received.append(message)
            if "method" in message:
                self.notifications.append(message)
                self._notification_event.set()
            elif message.get("id") in self.responses and not self.responses[message["id"]].done():
                self.responses[message["id"]].set_result(message)
            else:
                self.unmatched.append(message)

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def notify(self, method: str, params: Any = None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, **({"params": params} if params is not None else {})})

    async def request_raw(self, method: str, params: Any = None, timeout: float = 30) -> dict[str, Any]:
        self._next_id += 1
        msg_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.responses[msg_id] = future
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method,
                   **({"params": params} if params is not None else {})})
        assert self.process.stdin is not None
        await self.process.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def send_request(self, message: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        """Send a prepared request (its own id) and wait for the response with that id."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.responses[message["id"]] = future
        self.send(message)
        assert self.process.stdin is not None
        await self.process.stdin.drain()
        return await asyncio.wait_for(future, timeout)

    async def request(self, method: str, params: Any = None, timeout: float = 30) -> Any:
        response = await self.request_raw(method, params, timeout)
        if "error" in response:
            raise RpcError(response["error"])
        return response["result"]

    async def initialize(self, directory: str | Path | None = None, *, client: str = "tests",
                         **config: Any) -> dict[str, Any]:
        """``initialize`` with ``config`` as the plugin options and ``directory`` as the project."""
        params: dict[str, Any] = {"clientInfo": {"name": client, "version": "0"}, "config": config}
        if directory is not None:
            params["project"] = {"directory": str(directory)}
        result: dict[str, Any] = await self.request("initialize", params)
        return result

    def notifications_of(self, method: str) -> list[dict[str, Any]]:
        return [n["params"] for n in self.notifications if n["method"] == method]

    async def wait_for_notification(self, method: str, timeout: float = 10) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            found = self.notifications_of(method)
            if found:
                return found[-1]
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"no {method} notification; got {self.notifications}")
            self._notification_event.clear()
            try:
                await asyncio.wait_for(self._notification_event.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def close_stdin(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    async def wait(self, timeout: float = 30) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.wait_for(self._reader_task, timeout)
        return code

    async def stderr(self) -> str:
        assert self.process.stderr is not None
        return (await self.process.stderr.read()).decode(errors="replace")

    async def shutdown_and_exit(self) -> int:
        await self.request("shutdown")
        self.notify("exit")
        return await self.wait()

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
