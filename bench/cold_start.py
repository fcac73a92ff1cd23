"""Cold start: spawn → ``initialize`` result, and the bridge's idle memory.

Three commands, interleaved run by run: ``python -c pass`` (spawn → exit: the interpreter
floor), a bare stock pygls JsonRPCServer answering ``initialize`` (bench/stock_pygls_server.py)
and the bridge as OpenCode's plugin spawns it (``agent-tracker serve``) on an existing
database (the steady state: the first start that creates it is done beforehand). The
bridge's VmRSS is read from /proc after it answered ``initialize`` and sat idle for 0.5 s.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from . import (
    BENCH_DIR,
    PYTHON,
    RpcProcess,
    bench_env,
    check,
    console_script,
    figure,
    median,
    temp_home,
    vm_rss_kib,
)

SECTION = "cold start"


async def spawn_to_initialize(command: list[str], env: dict[str, str], params: dict[str, Any],
                              home: Path, rss_after: float | None = None) -> tuple[float, int | None]:
    started = time.perf_counter()
    proc = await RpcProcess.spawn(command, env, stderr_path=home / "stderr")
    try:
        await proc.call("initialize", params)
        elapsed = time.perf_counter() - started
        rss = None
        if rss_after is not None:
            await asyncio.sleep(rss_after)
            rss = vm_rss_kib(proc.pid)
        code = await proc.shutdown_and_exit()
        if code != 0:
            raise RuntimeError(f"{command} exited with {code}: {(home / 'stderr').read_text()[-2000:]}")
    finally:
        proc.kill()
    return elapsed, rss


async def spawn_to_exit(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*command, env=env)
    await process.wait()
    return time.perf_counter() - started


async def measure(reps: int) -> dict[str, Any]:
    with temp_home("cold-") as home:
        env = bench_env(home)
        project = home / "project"
        project.mkdir()
        params = {"clientInfo": {"name": "bench", "version": "0"},
                  "config": {"databasePath": str(home / ".config" / "opencode" / "agent-tracker.lmdb")},
                  "project": {"directory": str(project)}}
        bridge, pygls = console_script(), [PYTHON, str(BENCH_DIR / "stock_pygls_server.py")]
        # Warm-up (not timed): creates the database, fills the OS page cache and .pyc files.
        await spawn_to_initialize(bridge, env, params, home)
        await spawn_to_initialize(pygls, env, params, home)
        times: dict[str, list[float]] = {"pass": [], "pygls": [], "bridge": []}
        rss: list[int] = []
        for _ in range(reps):
            times["pass"].append(await spawn_to_exit([PYTHON, "-c", "pass"], env))
            times["pygls"].append((await spawn_to_initialize(pygls, env, params, home))[0])
            elapsed, kib = await spawn_to_initialize(bridge, env, params, home, rss_after=0.5)
            times["bridge"].append(elapsed)
            if kib is not None:
                rss.append(kib)
        return {"times": times, "rss_kib": rss, "command": bridge}


def run(quick: bool, log) -> list[dict[str, Any]]:
    reps = 3 if quick else 15
    result = asyncio.run(measure(reps))
    ms = {name: median(values) * 1000 for name, values in result["times"].items()}
    ratio = ms["bridge"] / ms["pygls"]
    rss_mib = median(result["rss_kib"]) / 1024 if result["rss_kib"] else None
    log(f"cold start: bridge {ms['bridge']:.0f} ms, bare pygls {ms['pygls']:.0f} ms, "
        f"python -c pass {ms['pass']:.0f} ms, bridge RSS {rss_mib or 0:.1f} MiB")
    command = " ".join(Path(result["command"][0]).name if i == 0 else part
                       for i, part in enumerate(result["command"]))
    return [
        figure("cold_bridge_ms", SECTION, "cold start: bridge, spawn to initialize result", ms["bridge"], "ms",
               better="lower", detail=f"`{command}` on an existing database; median of {reps}"),
        figure("cold_pygls_ms", SECTION, "cold start: bare pygls JsonRPCServer, spawn to initialize result",
               ms["pygls"], "ms", better="lower"),
        figure("cold_python_ms", SECTION, "cold start: python -c pass, spawn to exit", ms["pass"], "ms",
               better="lower"),
        figure("cold_bridge_vs_pygls", SECTION, "cold start: bridge / bare pygls", ratio, "x",
               target="<= 1.3x", holds=check(ratio, "<=", 1.3), better="lower"),
        figure("idle_rss_mib", SECTION, "bridge idle RSS after initialize", rss_mib, "MiB",
               target="<= 50 MiB", holds=check(rss_mib, "<=", 50), better="lower",
               detail="VmRSS from /proc/<pid>/status, 0.5 s after the initialize result"),
    ]
