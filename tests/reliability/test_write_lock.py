"""Issue 18, item 15: while another process holds LMDB's write lock, the bridge keeps answering.

A flush waits for the lock in a worker thread: intake, ``agent.status`` and every other request go
on meanwhile, and nothing is lost or counted twice, whether the lock is then released, the bridge
shuts down while waiting, or it is killed (-9) while waiting. On main the whole event loop blocked:
the ``agent.status`` below was not answered until the lock was released.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from support.locks import WriteLock

from reliability import journal_events, read_db, record, send_request_nowait, spawn

pytestmark = pytest.mark.reliability

PATIENCE = 20  # seconds an answer may take on a loaded machine; the lock is held far longer


def tool(session: str, call: str) -> dict[str, Any]:
    return {"sessionID": session, "callID": call, "tool": "read", "success": True, "agentId": "build"}


def send_calls(bridge: Any, session: str, first: int, count: int) -> None:
    for i in range(first, first + count):
        bridge.notify("tool.executed", tool(session, f"c{i}"))


def stored_agent(db: Path) -> dict[str, Any]:
    agent = read_db(db)["agents"]["build"]
    return {k: agent[k] for k in ("experiencePoints", "totalCommits", "communicationScore")}


async def start(home: Path, project: Path, db: Path) -> tuple[Any, dict[str, Any]]:
    bridge, init, _ = await spawn(home, project, databasePath=str(db))
    bridge.notify("session.created", {"sessionID": "s", "directory": str(project), "agent": {"id": "build"}})
    send_calls(bridge, "s", 0, 10)
    assert (await bridge.request("flush"))["transactions"] == 1
    return bridge, init


async def test_requests_and_intake_go_on_while_another_process_holds_the_write_lock(
        isolated_home: Path, tmp_path: Path) -> None:
    project, db = tmp_path / "project", tmp_path / "db" / "agent-tracker.lmdb"
    project.mkdir()
    bridge, init = await start(isolated_home, project, db)
    lock = await WriteLock.take(db)
    try:
        send_calls(bridge, "s", 10, 20)
        bridge.notify("commit.completed", {"sessionID": "s", "commitHash": "abc1234def5678abc1234def5678abc1234def56"})
        flushing = send_request_nowait(bridge, "waiting", "flush", {})  # written now; waits for the lock
        # While that flush waits: the same commit again (short hash), a grade of it, more calls.
        send_calls(bridge, "s", 30, 30)
        again = await bridge.request("commit.completed", {"sessionID": "s", "commitHash": "abc1234"},
                                     timeout=PATIENCE)
        graded = await bridge.request("grade", {"sessionID": "s", "grade": 5, "grader": "agent"}, timeout=PATIENCE)
        status = await bridge.request("agent.status", {"agentId": "build"}, timeout=PATIENCE)
        assert not flushing.done(), "the flush finished although the write lock is held"
        assert again == {"counted": False, "commitHash": "abc1234def5678abc1234def5678abc1234def56",
                         "reason": "already recorded"}
        assert graded["communicationScore"] == 65.0
        # Read-your-writes: 60 calls + the commit; the 30 calls and the grade are not taken by a flush yet
        # (the repeated commit changes nothing).
        assert (status["experiencePoints"], status["totalCommits"], status["pendingChanges"]) == (65.0, 1, 31)
        assert stored_agent(db) == {"experiencePoints": 10.0, "totalCommits": 0, "communicationScore": 60.0}
        await lock.release()
        first = (await asyncio.wait_for(flushing, 120))["result"]
        assert first["errors"] == [] and first["transactions"] == 1
        second = await bridge.request("flush")
        assert second["errors"] == [] and second["transactions"] == 1
        assert stored_agent(db) == {"experiencePoints": 65.0, "totalCommits": 1, "communicationScore": 65.0}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        lock.kill()
        bridge.kill()
    data = read_db(db)
    assert data["sessions"]["s"]["toolCalls"] == 60 and data["sessions"]["s"]["commits"] == 1
    assert len(data["commits"]) == 1 and len(data["communication"]) == 1
    assert not list(Path(init["journal"]["path"]).parent.glob("*.jsonl"))
    record("write-lock", requests_answered_while_locked=4, events_during_the_wait=32, events_lost=0,
           counted_twice=0)


async def test_shutdown_waits_for_the_lock_and_writes_everything(isolated_home: Path, tmp_path: Path) -> None:
    project, db = tmp_path / "project", tmp_path / "db" / "agent-tracker.lmdb"
    project.mkdir()
    bridge, _ = await start(isolated_home, project, db)
    lock = await WriteLock.take(db)
    try:
        send_calls(bridge, "s", 10, 40)
        shutting = send_request_nowait(bridge, "waiting", "shutdown", {})
        status = await bridge.request("agent.status", {"agentId": "build"}, timeout=PATIENCE)
        assert status["experiencePoints"] == 50.0 and not shutting.done()
        await lock.release()
        assert (await asyncio.wait_for(shutting, 120))["result"]["transactions"] == 1
        bridge.notify("exit")
        assert await bridge.wait() == 0
    finally:
        lock.kill()
        bridge.kill()
    assert stored_agent(db)["experiencePoints"] == 50.0


async def test_killed_while_waiting_for_the_lock_the_restart_replays_exactly_once(
        isolated_home: Path, tmp_path: Path) -> None:
    project, db = tmp_path / "project", tmp_path / "db" / "agent-tracker.lmdb"
    project.mkdir()
    bridge, init = await start(isolated_home, project, db)
    journal = Path(init["journal"]["path"])
    lock = await WriteLock.take(db)
    try:
        send_calls(bridge, "s", 10, 25)
        send_request_nowait(bridge, "waiting", "flush", {})
        send_calls(bridge, "s", 35, 15)
        status = await bridge.request("agent.status", {"agentId": "build"}, timeout=PATIENCE)
        assert status["experiencePoints"] == 50.0
        assert len(journal_events(journal)) == 40  # every event since the last flush
        bridge.kill()
        assert await bridge.wait() == -9
    finally:
        await lock.release()
        bridge.kill()
    assert stored_agent(db)["experiencePoints"] == 10.0  # the waiting flush never began its transaction
    restarted, init, _ = await spawn(isolated_home, project, databasePath=str(db))
    try:
        assert init["recovered"] == {"journals": 1, "events": 40}
        assert await restarted.shutdown_and_exit() == 0
    finally:
        restarted.kill()
    data = read_db(db)
    assert data["agents"]["build"]["experiencePoints"] == 50.0 and data["sessions"]["s"]["toolCalls"] == 50
