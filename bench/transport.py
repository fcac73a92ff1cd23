"""Transport benches: how fast notifications get through the bridge's stdio, against floors.

* Replay: a pre-encoded stream of framed ``tool.executed`` notifications followed by a
  ``shutdown`` request is piped into the server's stdin as fast as the pipe takes it; the
  clock runs from its first byte to the ``shutdown`` response (for the bridge that includes
  journaling every event and the final flush). Servers: the bridge (journal on), the floor
  (bench/floor_server.py: asyncio + orjson, parse + append) and stock pygls with its
  default reader (bench/stock_pygls_server.py).
* Node client: bench/node_client.mjs drives each server with vscode-jsonrpc (what the
  plugin uses): N notifications, then a request; then sequential ``agent.status`` round trips.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bridge.config import DEFAULT_JOURNAL_SYNC_MILLISECONDS

from . import (
    BENCH_DIR,
    PYTHON,
    RpcProcess,
    bench_env,
    bridge_command,
    check,
    figure,
    median,
    notification,
    request,
    temp_home,
    unavailable,
)

SECTION = "transport"
AGENT = "build"
SESSION = "bench-replay"

SERVERS = {
    "bridge": bridge_command(),
    "floor": [PYTHON, str(BENCH_DIR / "floor_server.py")],
    "pygls": [PYTHON, str(BENCH_DIR / "stock_pygls_server.py")],
}


def tool_params(i: int, session: str = SESSION) -> dict[str, Any]:
    """A realistic tool.executed payload (~300 bytes framed)."""
    return {"sessionID": session, "callID": f"call_{i:08d}", "tool": "read", "success": True,
            "args": {"filePath": f"/bench/project/src/module_{i % 97}.py"}, "output": "x" * 160}


def replay_stream(n: int, shutdown_id: int = 2) -> bytes:
    parts = [notification("tool.executed", tool_params(i)) for i in range(n)]
    parts.append(request(shutdown_id, "shutdown"))
    return b"".join(parts)


def initialize_params(home: Path, **config: Any) -> dict[str, Any]:
    project = home / "project"
    project.mkdir(exist_ok=True)
    return {"clientInfo": {"name": "bench", "version": "0"},
            "config": {"databasePath": str(home / ".config" / "opencode" / "agent-tracker.lmdb"), **config},
            "project": {"directory": str(project)}}


# The bridge's replay, with group commit at its default and off: what fdatasync'ing the journal costs.
REPLAY_CONFIG = {"bridge": {}, "bridge-nosync": {"journalSyncMilliseconds": 0}}


async def replay_once(server: str, stream: bytes, n: int, config: dict[str, Any] | None = None) -> dict[str, float]:
    with temp_home("replay-") as home:
        command = SERVERS["bridge" if server.startswith("bridge") else server]
        proc = await RpcProcess.spawn(command, bench_env(home), stderr_path=home / "stderr")
        try:
            await proc.call("initialize", initialize_params(home, **(config or REPLAY_CONFIG.get(server, {}))))
            await proc.write(notification("session.created", {
                "sessionID": SESSION, "directory": str(home / "project"),
                "agent": {"id": AGENT, "model": "claude-sonnet-4-5", "provider": "anthropic"}}))
            await proc.call("agent.status", {"agentId": AGENT})
            loop = asyncio.get_running_loop()
            done = proc.expect(2)
            started = loop.time()
            await proc.write(stream)
            arrived, message = await asyncio.wait_for(done, 600)
            elapsed = arrived - started
            if "error" in message:
                raise RuntimeError(f"{server}: shutdown failed: {message['error']}")
            await proc.write(notification("exit", {}))
            code = await proc.close()
            if code != 0:
                raise RuntimeError(f"{server} exited with {code}: {(home / 'stderr').read_text()[-2000:]}")
        finally:
            proc.kill()
    return {"seconds": elapsed, "rate": n / elapsed}


def node_available() -> tuple[bool, str]:
    if shutil.which("node") is None:
        return False, "node is not installed"
    if not (BENCH_DIR / "node_modules" / "vscode-jsonrpc").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            return False, "vscode-jsonrpc missing and npm not installed (run `npm ci` in bench/)"
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--silent"], cwd=BENCH_DIR,
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            return False, f"`npm ci` in bench/ failed: {result.stderr.strip()[-300:]}"
    return True, ""


def node_once(server: str, n: int, rtt: int) -> dict[str, Any]:
    with temp_home("node-") as home:
        command = ["node", str(BENCH_DIR / "node_client.mjs"), "--n", str(n), "--rtt", str(rtt),
                   "--init", json.dumps(initialize_params(home)), "--agent", AGENT, "--", *SERVERS[server]]
        result = subprocess.run(command, env=bench_env(home), capture_output=True, text=True,
                                timeout=600, cwd=str(BENCH_DIR.parent))
        if result.returncode != 0:
            raise RuntimeError(f"node client against {server} failed: {result.stderr.strip()[-1500:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def run(quick: bool, log) -> list[dict[str, Any]]:
    reps = 1 if quick else 3
    n = 20_000 if quick else 100_000
    n_slow = 2_000 if quick else 10_000  # stock pygls manages ~2,000/s: a smaller stream
    figures: list[dict[str, Any]] = []

    # -- replay ---------------------------------------------------------------------------------
    streams = {size: replay_stream(size) for size in {n, n_slow}}
    # Group commit on ("bridge") and off ("bridge-nosync") run back to back, in alternating order,
    # and are compared run by run; 5 pairs in a full run (one pair swings by 20 % on this machine).
    pairs = 1 if quick else 5
    rates: dict[str, list[float]] = {name: [] for name in ("bridge", "bridge-nosync", "floor", "pygls")}
    for rep in range(max(reps, pairs)):
        pair = ["bridge", "bridge-nosync"] if rep % 2 == 0 else ["bridge-nosync", "bridge"]
        for server in (pair if rep < pairs else []) + (["floor", "pygls"] if rep < reps else []):
            size = n_slow if server == "pygls" else n
            result = asyncio.run(replay_once(server, streams[size], size))
            rates[server].append(result["rate"])
            log(f"replay {server} rep {rep + 1}: {result['rate']:,.0f} notifications/s "
                f"({size:,} in {result['seconds']:.2f} s)")
    bridge, floor, pygls = (median(rates[s]) for s in ("bridge", "floor", "pygls"))
    nosync = median(rates["bridge-nosync"])
    paired = [on / off for on, off in zip(rates["bridge"], rates["bridge-nosync"])]
    kept = median(paired)
    figures += [
        figure("replay_bridge", SECTION, "replay: bridge (journal on, group commit on), notifications/s", bridge,
               "msg/s", target=">= 50,000/s", holds=check(bridge, ">=", 50_000), better="higher",
               detail=f"{n:,} framed tool.executed + shutdown; first byte to shutdown response; median of {pairs}; "
                      f"journalSyncMilliseconds at its default ({DEFAULT_JOURNAL_SYNC_MILLISECONDS:g})"),
        figure("replay_bridge_nosync", SECTION, "replay: bridge (journal on, group commit off), notifications/s",
               nosync, "msg/s", better="higher", detail="journalSyncMilliseconds 0: the journal is never fdatasync'd"),
        figure("replay_group_commit_cost", SECTION, "replay: group commit on / off", kept, "x",
               target=">= 0.9x", holds=check(kept, ">=", 0.9), better="higher",
               detail="the throughput group commit keeps: median of the per-run ratios "
                      + ", ".join(f"{r:.2f}" for r in paired) + " (on and off run back to back)"),
        figure("replay_floor", SECTION, "replay: floor (asyncio+orjson), notifications/s", floor, "msg/s",
               better="higher", detail="parse + append to a list"),
        figure("replay_pygls", SECTION, "replay: stock pygls (default reader), notifications/s", pygls, "msg/s",
               better="higher", detail=f"{n_slow:,} notifications (it is slow)"),
        figure("replay_bridge_vs_floor", SECTION, "replay: bridge / floor", bridge / floor, "x",
               better="higher", detail="informational: the bridge also journals and structures every event"),
        figure("replay_bridge_vs_pygls", SECTION, "replay: bridge / stock pygls", bridge / pygls, "x",
               better="higher"),
    ]

    # -- node client ----------------------------------------------------------------------------
    ok, why = node_available()
    # 20,000 notifications: larger unawaited batches only make vscode-jsonrpc's own queue (and
    # Node's GC) the bottleneck; more runs instead.
    node_reps = 1 if quick else 5
    node_n = 20_000
    node_n_slow = 2_000 if quick else 5_000
    rtt = 200 if quick else 1_000
    node_keys = [
        ("node_bridge", "node client: bridge, notifications/s", "msg/s", "higher"),
        ("node_floor", "node client: floor, notifications/s", "msg/s", "higher"),
        ("node_pygls", "node client: stock pygls, notifications/s", "msg/s", "higher"),
        ("node_bridge_vs_floor", "node client: bridge / floor", "x", "higher"),
        ("rtt_bridge_p50", "agent.status round trip p50: bridge", "ms", "lower"),
        ("rtt_bridge_p99", "agent.status round trip p99: bridge", "ms", "lower"),
        ("rtt_floor_p50", "request round trip p50: floor", "ms", "lower"),
        ("rtt_floor_p99", "request round trip p99: floor", "ms", "lower"),
        ("rtt_pygls_p50", "request round trip p50: stock pygls", "ms", "lower"),
        ("rtt_pygls_p99", "request round trip p99: stock pygls", "ms", "lower"),
    ]
    if not ok:
        for key, name, unit, better in node_keys:
            figures.append(unavailable(key, SECTION, name, unit, why, better=better,
                                       target=">= 0.8x floor" if key == "node_bridge_vs_floor" else ""))
        return figures
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVERS}
    for rep in range(node_reps):
        for server in SERVERS:
            if server == "pygls" and rep >= 3:
                continue  # slow and only a reference: 3 runs are enough
            size = node_n_slow if server == "pygls" else node_n
            result = node_once(server, size, rtt if server != "pygls" else min(rtt, 200))
            results[server].append(result)
            log(f"node {server} rep {rep + 1}/{node_reps}: {result['notificationsPerSecond']:,.0f} notifications/s, "
                f"rtt p50 {result['rttP50Ms']:.3f} ms p99 {result['rttP99Ms']:.3f} ms")

    def med(server: str, field: str) -> float:
        return median([r[field] for r in results[server]])

    node_bridge, node_floor = med("bridge", "notificationsPerSecond"), med("floor", "notificationsPerSecond")
    # Paired run by run (the two ran back to back), then the median: robust to load drifting
    # over the bench's minute.
    paired = [b["notificationsPerSecond"] / f["notificationsPerSecond"]
              for b, f in zip(results["bridge"], results["floor"])]
    ratio = median(paired)
    figures += [
        figure("node_bridge", SECTION, "node client: bridge, notifications/s", node_bridge, "msg/s",
               better="higher", detail=f"vscode-jsonrpc, {node_n:,} notifications then a request; median of {node_reps}"),
        figure("node_floor", SECTION, "node client: floor, notifications/s", node_floor, "msg/s", better="higher"),
        figure("node_pygls", SECTION, "node client: stock pygls, notifications/s",
               med("pygls", "notificationsPerSecond"), "msg/s", better="higher",
               detail=f"{node_n_slow:,} notifications"),
        figure("node_bridge_vs_floor", SECTION, "node client: bridge / floor", ratio, "x",
               target=">= 0.8x floor", holds=check(ratio, ">=", 0.8), better="higher",
               detail="median of the per-run ratios " + ", ".join(f"{r:.2f}" for r in paired)),
    ]
    for server in SERVERS:
        label = "agent.status round trip" if server == "bridge" else "request round trip"
        for pct in ("p50", "p99"):
            figures.append(figure(
                f"rtt_{server}_{pct}", SECTION, f"{label} {pct}: {'stock pygls' if server == 'pygls' else server}",
                med(server, f"rtt{pct.upper()}Ms"), "ms", better="lower",
                detail=f"{results[server][0]['rttSamples']} sequential requests after the stream; median of "
                       f"{len(results[server])} runs"))
    return figures
