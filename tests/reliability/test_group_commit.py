"""Issue 17, group commit: the journal is fdatasync'd while events arrive, never when it is turned off.

The bridge runs under ``strace -f -y`` (skipped where strace is missing or not permitted), which
prints every fdatasync with the path of its file: with ``journalSyncMilliseconds`` at its default the
journal is synced during a burst of events; at 0 it never is (LMDB's own syncs of the database file
are not the journal's). On main the journal was never synced: a power cut lost every event since the
last flush.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.bridges import ROOT, bridge_env

from bridge.rpc.client import BridgeProcess
from reliability import drain_stderr, record

pytestmark = pytest.mark.reliability


def strace_works() -> str | None:
    if shutil.which("strace") is None:
        return "strace is not installed"
    probe = subprocess.run(["strace", "-f", "-qq", "-e", "trace=none", "true"], capture_output=True, text=True,
                           timeout=30)
    return None if probe.returncode == 0 else f"strace cannot trace here: {probe.stderr.strip()[:200]}"


async def journal_syncs(tmp_path: Path, **config: Any) -> tuple[int, int]:
    """(fdatasyncs of the journal, of the database file) over a session of 2,000 events."""
    why = strace_works()
    if why:
        pytest.skip(why)
    home, trace = tmp_path / "home", tmp_path / "strace.txt"
    home.mkdir()
    process = await asyncio.create_subprocess_exec(
        "strace", "-f", "-qq", "-y", "-o", str(trace), "-e", "trace=fdatasync,fsync",
        sys.executable, "-m", "bridge", "serve", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=bridge_env(home), cwd=str(ROOT))
    bridge = BridgeProcess(process)
    drain_stderr(bridge)
    try:
        init = await bridge.initialize(tmp_path, **config)
        for burst in range(10):  # events keep arriving for a while: several sync periods
            for i in range(200):
                bridge.notify("tool.executed", {"sessionID": "s", "callID": f"c{burst}-{i}", "tool": "read",
                                                "success": True, "agentId": "build"})
            await bridge.request("agent.status", {"agentId": "build"})
            await asyncio.sleep(0.06)
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    journal, database = init["journal"]["path"], init["database"]["path"]
    lines = trace.read_text().splitlines()
    return (sum(1 for line in lines if "fdatasync(" in line and f"<{journal}>" in line),
            sum(1 for line in lines if f"<{database}>" in line))


async def test_the_journal_is_synced_while_events_arrive(tmp_path: Path) -> None:
    journal, database = await journal_syncs(tmp_path)
    assert journal >= 1, "group commit never synced the journal"
    record("group-commit", journal_fdatasyncs_default=journal, database_syncs=database)


async def test_group_commit_off_never_syncs_the_journal(tmp_path: Path) -> None:
    journal, database = await journal_syncs(tmp_path, journalSyncMilliseconds=0)
    assert journal == 0 and database >= 1  # the flush at shutdown still syncs the database
    record("group-commit", journal_fdatasyncs_off=journal)
