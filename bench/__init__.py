"""Benchmarks of the agent-tracker bridge: `python -m bench` (see bench/README.md).

Shared helpers live here: the figure record every section returns, an isolated environment
for each spawned bridge (HOME and XDG_CONFIG_HOME in a temp dir, never the real home),
Content-Length framing, a small asyncio JSON-RPC client over a subprocess's pipes, and
medians/percentiles. Nothing here imports bridge/: the benches talk to the real bridge
as a separate process, exactly as OpenCode's plugin does.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PYTHON = sys.executable


def bridge_command() -> list[str]:
    """How the throughput benches start the bridge (same as `agent-tracker serve`)."""
    return [PYTHON, "-m", "bridge", "serve"]


def console_script() -> list[str]:
    """What OpenCode's plugin spawns: the `agent-tracker serve` console script."""
    script = Path(PYTHON).parent / "agent-tracker"
    return [str(script), "serve"] if script.exists() else bridge_command()


# -- figures ------------------------------------------------------------------------------------

def figure(key: str, section: str, name: str, value: float | None, unit: str, *,
           target: str = "", holds: bool | None = None, detail: str = "",
           better: str = "") -> dict[str, Any]:
    """One line of the results table.

    ``key`` is stable across runs (used by --compare and by the smoke test); ``holds`` is
    None when the figure has no target (informational) or could not be measured
    (``value`` None, ``detail`` says why). ``better`` is "higher"/"lower" for --compare.
    """
    return {"key": key, "section": section, "name": name, "value": value, "unit": unit,
            "target": target, "holds": holds, "detail": detail, "better": better}


def unavailable(key: str, section: str, name: str, unit: str, why: str, *,
                target: str = "", better: str = "") -> dict[str, Any]:
    return figure(key, section, name, None, unit, target=target, holds=None, detail=why,
                  better=better)


def check(value: float | None, op: str, limit: float) -> bool | None:
    if value is None:
        return None
    return value >= limit if op == ">=" else value <= limit


# -- statistics ---------------------------------------------------------------------------------

def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p50, p99) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(round(pct / 100 * len(ordered) + 0.5))))
    return ordered[rank - 1]


# -- isolation ------------------------------------------------------------------------------------

@contextmanager
def temp_home(prefix: str = "bench-") -> Iterator[Path]:
    """A throw-away HOME on the same disk as the real one (durable writes really sync)."""
    base = Path(tempfile.mkdtemp(prefix=f"agent-tracker-{prefix}"))
    try:
        (base / ".config").mkdir()
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def bench_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_TRACKER_")}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})
    # The bench's own package must be importable by its helper servers.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


# -- framing and a minimal client -----------------------------------------------------------------

def frame(message: dict[str, Any]) -> bytes:
    body = orjson.dumps(message)
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def notification(method: str, params: Any) -> bytes:
    return frame({"jsonrpc": "2.0", "method": method, "params": params})


def request(msg_id: int, method: str, params: Any = None) -> bytes:
    # Always with params: stock pygls refuses a request without them.
    return frame({"jsonrpc": "2.0", "id": msg_id, "method": method,
                  "params": {} if params is None else params})


class RpcProcess:
    """A spawned JSON-RPC server; responses are matched by id and time-stamped on arrival.

    Deliberately not bridge.rpc.client: the benchmarks drive three different servers (the bridge,
    stock pygls, the asyncio floor) with the same pre-encoded frames and time every arrival, so
    the client must add nothing of its own to the figures and must not depend on the bridge.
    """

    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.notifications = 0
        self.arrivals: dict[Any, tuple[float, dict[str, Any]]] = {}
        self._waiters: dict[Any, asyncio.Future[tuple[float, dict[str, Any]]]] = {}
        self._next_id = 1000000
        self._reader = asyncio.ensure_future(self._read_loop())

    @classmethod
    async def spawn(cls, command: Sequence[str], env: dict[str, str], cwd: Path | None = None,
                    stderr_path: Path | None = None) -> "RpcProcess":
        stderr = open(stderr_path, "wb") if stderr_path else asyncio.subprocess.DEVNULL
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=stderr, env=env, cwd=str(cwd or ROOT), limit=16 * 1024 * 1024)
        finally:
            if stderr_path:
                stderr.close()  # type: ignore[union-attr]
        return cls(process)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def _read_loop(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = await stdout.readuntil(b"\r\n\r\n")
                length = None
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length is None:
                    raise RuntimeError(f"frame without Content-Length: {head!r}")
                message = orjson.loads(await stdout.readexactly(length))
                now = loop.time()
                if "method" in message:
                    self.notifications += 1
                    continue
                msg_id = message.get("id")
                waiter = self._waiters.pop(msg_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result((now, message))
                else:
                    self.arrivals[msg_id] = (now, message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(EOFError("server closed its stdout"))

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def expect(self, msg_id: Any) -> asyncio.Future[tuple[float, dict[str, Any]]]:
        """Register interest in a response before sending its request."""
        future: asyncio.Future[tuple[float, dict[str, Any]]] = asyncio.get_running_loop().create_future()
        if msg_id in self.arrivals:
            future.set_result(self.arrivals.pop(msg_id))
        else:
            self._waiters[msg_id] = future
        return future

    async def write(self, data: bytes) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(data)
        await stdin.drain()

    async def call(self, method: str, params: Any = None, timeout: float = 60) -> dict[str, Any]:
        """Send a request and wait for its result (raises on an error response)."""
        msg_id = self.next_id()
        waiter = self.expect(msg_id)
        await self.write(request(msg_id, method, params))
        _, message = await asyncio.wait_for(waiter, timeout)
        if "error" in message:
            raise RuntimeError(f"{method}: {message['error']}")
        return message.get("result")

    async def close(self, timeout: float = 60) -> int:
        """Close stdin (EOF) and wait for the process to exit."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.is_closing():
            stdin.close()
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        await asyncio.wait_for(self._reader, timeout)
        return code

    async def shutdown_and_exit(self, timeout: float = 60) -> int:
        await self.call("shutdown", timeout=timeout)
        await self.write(notification("exit", {}))
        return await self.close(timeout)

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


def vm_rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def now() -> float:
    return time.perf_counter()
