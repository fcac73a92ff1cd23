"""Issue 3: the crash journal — kill -9, a crash between commit and truncation, a full map.

Every bridge here is a real subprocess killed with SIGKILL (no flush, no cleanup), and every
restart is a fresh bridge on the same LMDB file that must replay the orphan journal exactly once.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.bridges import BridgeProcess
from support.tracking import (
    FULL_HASH,
    bash_commit,
    close_harness,
    make_harness,
    new_agent_status,
    open_store,
    read_database,
    spawn_bridge,
    tool,
)

from bridge.config import MiB
from bridge.store import full_message
from bridge.tracking.journal import (
    Journal,
    OrphanJournal,
    find_orphans,
    journal_dir_for,
)

pytestmark = pytest.mark.reliability


def event_lines(journal: Path) -> list[bytes]:
    """The journal's event lines (the seq-0 header line carries context, not an event)."""
    return [line for line in journal.read_bytes().splitlines() if orjson.loads(line)["s"] > 0]


async def _kill(bridge: BridgeProcess) -> None:
    bridge.process.send_signal(signal.SIGKILL)
    assert await bridge.wait() == -signal.SIGKILL


def _agent_numbers(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                   "totalBugs", "totalPushes", "halted")}


def _send_session(bridge: BridgeProcess, project: Path, calls: int, prefix: str = "c") -> int:
    """A realistic burst of events (none of which triggers a flush); returns how many were sent."""
    sent = [("session.created", {"sessionID": "s1", "directory": str(project),
                                 "agent": {"id": "build", "model": "m", "provider": "p"}})]
    sent += [("tool.executed", tool("s1", f"{prefix}{i}")) for i in range(calls)]
    sent += [("tool.executed", tool("s1", f"{prefix}0")),                      # duplicate callID
             ("tool.executed", tool("s1", "failed", success=False)),
             ("command.executed", {"sessionID": "s1", "command": "test"}),
             ("command.executed", {"sessionID": "s1", "command": "lint"}),
             ("tool.executed", bash_commit("s1", "commit-call", "abc1234")),
             ("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH}),  # same commit
             ("grade", {"sessionID": "s1", "grade": "excellence", "grader": "agent"}),
             ("grade", {"sessionID": "s1", "grade": -1, "grader": "user"}),
             ("retrospective.recorded", {"sessionID": "s1", "summary": "ok", "lessons": ["a", "b"]}),
             ("activity.logged", {"sessionID": "s1", "kind": "note", "description": "hello"})]
    for method, params in sent:
        bridge.notify(method, params)
    return len(sent)


# XP: calls + 1 (bash commit call) + 2 x 2 (commands) + 5 (the commit, once); CS 60 + 5 - 1.
def _expected(calls: int) -> dict[str, Any]:
    return {"skillPoints": 1.0, "experiencePoints": float(calls + 1 + 4 + 5), "communicationScore": 64.0,
            "totalCommits": 1, "totalBugs": 0, "totalPushes": 0, "halted": False}


async def test_kill_9_before_any_flush_loses_nothing_and_counts_nothing_twice(
        isolated_home: Path, tmp_path: Path) -> None:
    project, db = tmp_path / "project", tmp_path / "kill.lmdb"
    project.mkdir()
    bridge, init = await spawn_bridge(isolated_home, db, directory=project)
    try:
        assert init["recovered"] == {"journals": 0, "events": 0}
        journal = Path(init["journal"]["path"])
        assert journal.parent == journal_dir_for(db)
        sent = _send_session(bridge, project, 300)
        # The answer to a request proves every earlier notification was received and handled.
        status = await bridge.request("agent.status", {"agentId": "build"})
        expected = _expected(300)
        assert status == {"agentId": "build", **expected, "pendingChanges": 300 + 1 + 2 + 1 + 2 + 1 + 1}
        with open_store(db) as store:  # nothing was flushed: the agent is only in memory and the journal
            with store.read() as view:
                assert (view.count("agents"), view.count("sessions"), view.count("commits")) == (0, 0, 0)
        assert len(event_lines(journal)) == sent - 1  # the repeated callID is answered, not journaled
        await _kill(bridge)
    finally:
        bridge.kill()
    assert journal.exists()

    for restart in (1, 2):
        bridge, init = await spawn_bridge(isolated_home, db, directory=project)
        try:
            assert init["recovered"] == ({"journals": 1, "events": sent - 1} if restart == 1
                                         else {"journals": 0, "events": 0})
            assert await bridge.request("agent.status", {"agentId": "build"}) == {
                "agentId": "build", **expected, "pendingChanges": 0}
            assert await bridge.shutdown_and_exit() == 0
        finally:
            bridge.kill()
        assert not journal.exists()
        data = read_database(db)
        assert _agent_numbers(data["agents"]["build"]) == expected
        session = data["sessions"]["s1"]
        assert {k: session[k] for k in ("toolCalls", "failedToolCalls", "commands", "commits", "xpEarned")} == {
            "toolCalls": 301, "failedToolCalls": 1, "commands": 2, "commits": 1, "xpEarned": 310.0}
        assert [c["hash"] for c in data["commits"].values()] == [FULL_HASH]
        assert sorted((g["grader"], g["grade"]) for g in data["communication"].values()) == [("agent", 5), ("user", -1)]
        assert (len(data["retrospectives"]), len(data["activities"])) == (1, 1)
        assert not any(name.startswith(f"journal:{journal.stem}") for name in data["meta"])
    assert list(journal_dir_for(db).glob("*.jsonl")) == []


async def test_crash_between_flush_commit_and_journal_truncation(isolated_home: Path, tmp_path: Path) -> None:
    """Simulated by restoring the pre-flush journal after the kill: the journal:<id> marker stops a replay."""
    project, db = tmp_path / "project", tmp_path / "crash.lmdb"
    project.mkdir()
    bridge, init = await spawn_bridge(isolated_home, db, directory=project)
    try:
        journal = Path(init["journal"]["path"])
        flushed_events = _send_session(bridge, project, 120)
        await bridge.request("agent.status", {"agentId": "build"})
        before_flush = journal.read_bytes()
        assert len(event_lines(journal)) == flushed_events - 1  # the repeated callID is not journaled
        result = await bridge.request("flush")
        assert (result["errors"], result["transactions"]) == ([], 1)
        assert event_lines(journal) == []
        with open_store(db) as store:
            with store.read() as view:
                assert view.get("meta", f"journal:{journal.stem}") == flushed_events - 1
        # 40 more events after the flush, received but never flushed.
        for i in range(40):
            bridge.notify("tool.executed", tool("s1", f"late{i}"))
        assert (await bridge.request("agent.status", {"agentId": "build"}))["pendingChanges"] == 40
        after_flush = journal.read_bytes()
        assert len(event_lines(journal)) == 40
        await _kill(bridge)
    finally:
        bridge.kill()
    # As if the process had died after the commit but before ftruncate: old lines still there.
    journal.write_bytes(before_flush + after_flush)

    bridge, init = await spawn_bridge(isolated_home, db, directory=project)
    try:
        assert init["recovered"] == {"journals": 1, "events": 40}
        expected = {**_expected(120), "experiencePoints": _expected(120)["experiencePoints"] + 40}
        assert await bridge.request("agent.status", {"agentId": "build"}) == {
            "agentId": "build", **expected, "pendingChanges": 0}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    data = read_database(db)
    assert _agent_numbers(data["agents"]["build"]) == expected
    assert data["sessions"]["s1"]["toolCalls"] == 121 + 40
    assert (len(data["commits"]), len(data["communication"]), len(data["retrospectives"])) == (1, 2, 1)
    assert f"journal:{journal.stem}" not in data["meta"]


async def test_crash_right_after_the_flush_commit_replays_nothing(isolated_home: Path, tmp_path: Path) -> None:
    project, db = tmp_path / "project", tmp_path / "crash0.lmdb"
    project.mkdir()
    bridge, init = await spawn_bridge(isolated_home, db, directory=project)
    try:
        journal = Path(init["journal"]["path"])
        _send_session(bridge, project, 10)
        await bridge.request("agent.status", {"agentId": "build"})
        before_flush = journal.read_bytes()
        assert (await bridge.request("flush"))["transactions"] == 1
        await _kill(bridge)
    finally:
        bridge.kill()
    journal.write_bytes(before_flush)
    bridge, init = await spawn_bridge(isolated_home, db, directory=project)
    try:
        assert init["recovered"] == {"journals": 1, "events": 0}
        assert await bridge.request("agent.status", {"agentId": "build"}) == {
            "agentId": "build", **_expected(10), "pendingChanges": 0}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert _agent_numbers(read_database(db)["agents"]["build"]) == _expected(10)


async def test_kill_9_replays_an_adopted_session_like_the_live_bridge(isolated_home: Path, tmp_path: Path) -> None:
    project, db = tmp_path / "project", tmp_path / "adopted.lmdb"
    project.mkdir()
    bridge, init = await spawn_bridge(isolated_home, db, directory=project)
    try:
        # No session.created: the bridge adopts the session into its initialize project.
        bridge.notify("tool.executed", bash_commit("s9", "c1", "abc1234") | {"agentId": "build"})
        bridge.notify("grade", {"sessionID": "s9", "agentId": "build", "grade": 5, "grader": "agent"})
        live = await bridge.request("agent.status", {"agentId": "build"})
        assert live == new_agent_status("build", experiencePoints=6.0, totalCommits=1, communicationScore=65.0,
                                        pendingChanges=3)
        await _kill(bridge)
    finally:
        bridge.kill()
    bridge, init = await spawn_bridge(isolated_home, db, directory=project)
    try:
        assert await bridge.request("agent.status", {"agentId": "build"}) == {**live, "pendingChanges": 0}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()


async def test_map_full_keeps_everything_pending_until_a_bigger_map(isolated_home: Path, tmp_path: Path) -> None:
    project, db = tmp_path / "project", tmp_path / "full.lmdb"
    project.mkdir()
    texts = [f"{i}" * 400_000 for i in range(3)]  # 1.2 MB of retrospectives > 1 MiB map
    bridge, init = await spawn_bridge(isolated_home, db, directory=project, maxDatabaseSize="1MiB")
    try:
        assert init["database"] == {"path": str(db), "mapSize": MiB, "available": True, "readOnly": False}
        journal = Path(init["journal"]["path"])
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(project), "agent": {"id": "build"}})
        for i in range(25):
            bridge.notify("tool.executed", tool("s1", f"c{i}"))
        for text in texts:
            bridge.notify("retrospective.recorded", {"sessionID": "s1", "summary": text})
        bridge.notify("activity.logged", {"sessionID": "s1", "kind": "note", "description": "d" * 100_000})
        message = full_message(MiB)
        assert "maxDatabaseSize = 1048576 bytes" in message
        for _ in range(2):
            result = await bridge.request("flush")
            assert (result["entriesWritten"], result["errors"], result["transactions"]) == (0, [message], 0)
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert status == new_agent_status("build", experiencePoints=25.0, pendingChanges=25 + 3 + 1)
        shutdown = await bridge.request("shutdown")
        assert shutdown["errors"] == [message]
        bridge.notify("exit")
        assert await bridge.wait() == 0
    finally:
        bridge.kill()
    toasts = [t for t in bridge.notifications_of("toast") if "maxDatabaseSize" in t["message"]]
    assert toasts == [{"message": message, "variant": "error"}]  # told once, however many flushes fail
    # ... and the end of the session that was open at shutdown (its summary is applied with the rest)
    assert journal.exists() and len(event_lines(journal)) == 1 + 25 + 3 + 1 + 1
    assert orjson.loads(event_lines(journal)[-1])["m"] == "session.ended"
    with open_store(db, max_size=MiB) as store:
        with store.read() as view:
            assert (view.count("agents"), view.count("retrospectives"), view.count("activities")) == (0, 0, 0)

    bridge, init = await spawn_bridge(isolated_home, db, directory=project, maxDatabaseSize="64MiB")
    try:
        assert init["database"] == {"path": str(db), "mapSize": 64 * MiB, "available": True, "readOnly": False}
        assert init["recovered"] == {"journals": 1, "events": 31}
        assert await bridge.request("agent.status", {"agentId": "build"}) == new_agent_status(
            "build", experiencePoints=25.0)
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    data = read_database(db)
    assert _agent_numbers(data["agents"]["build"]) == {**_agent_numbers({**new_agent_status("build")}),
                                                       "experiencePoints": 25.0}
    assert sorted(r["summary"] for r in data["retrospectives"].values()) == texts
    activities = {a["kind"]: a for a in data["activities"].values()}
    assert sorted(activities) == ["note", "session"] and len(activities["note"]["description"]) == 100_000
    summary = activities["session"]
    assert summary["description"].startswith("25 tool calls (0 failed), 0 commits in ")
    assert (summary["data"]["toolCalls"], summary["data"]["reason"]) == (25, "shutdown")
    assert data["sessions"]["s1"]["toolCalls"] == 25
    assert not journal.exists()


# -- the journal file itself ---------------------------------------------------------------------------


def test_journal_lines_truncate_and_orphans(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    live = Journal(directory, "live", header={"directory": "/p"})
    assert live.append("2026-01-01T00:00:00.000Z", "tool.executed", orjson.dumps({"sessionID": "s"})) == 1
    assert live.append("2026-01-01T00:00:00.001Z", "grade", orjson.dumps({"grade": 5})) == 2
    assert [orjson.loads(line) for line in live.path.read_bytes().splitlines()] == [
        {"s": 0, "t": "", "m": "journal.opened", "p": {"directory": "/p"}},
        {"s": 1, "t": "2026-01-01T00:00:00.000Z", "m": "tool.executed", "p": {"sessionID": "s"}},
        {"s": 2, "t": "2026-01-01T00:00:00.001Z", "m": "grade", "p": {"grade": 5}}]
    # Held by a live bridge: not an orphan. Claiming files are never orphans either.
    (directory / "other.claiming").write_bytes(b"")
    assert find_orphans(directory) == []
    live.truncate()
    assert event_lines(live.path) == []
    assert live.append("2026-01-01T00:00:01.000Z", "flush-free", b"{}") == 3
    live.close(remove=False)
    [orphan] = find_orphans(directory)
    assert orphan.journal_id == "live"
    assert orphan.header() == {"directory": "/p"}
    assert [entry.seq for entry in orphan.entries()] == [3]
    # Locked by whoever found it: a second scan does not hand it out again.
    assert find_orphans(directory) == []
    orphan.remove()
    assert not (directory / "live.jsonl").exists()
    assert find_orphans(directory) == []


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    directory.mkdir()
    lines = [orjson.dumps({"s": i, "t": "2026-01-01T00:00:00.000Z", "m": "tool.executed",
                           "p": tool("s1", f"c{i}")}) for i in (1, 2, 3)]
    (directory / "dead.jsonl").write_bytes(b"\n".join(lines) + b"\n" + lines[0][:17])
    [orphan] = find_orphans(directory)
    assert [entry.seq for entry in orphan.entries()] == [1, 2, 3]
    orphan.release()


def test_replay_applies_only_entries_after_the_marker(tmp_path: Path) -> None:
    db = tmp_path / "r.lmdb"
    directory = journal_dir_for(db)
    directory.mkdir()
    lines = [orjson.dumps({"s": i, "t": f"2026-01-01T00:00:0{i}.000Z", "m": "tool.executed",
                           "p": {**tool("s1", f"c{i}"), "agentId": "build"}}) for i in range(1, 6)]
    (directory / "dead.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    harness = make_harness(open_store(db), journal=False)
    try:
        [orphan] = find_orphans(directory)
        assert isinstance(orphan, OrphanJournal)
        assert harness.service.replay(orphan, after_seq=2) == 3
        assert harness.status("build")["experiencePoints"] == 3.0
        orphan.release()
    finally:
        close_harness(harness)


def test_killed_process_leaves_an_orphan_that_a_live_one_does_not(tmp_path: Path) -> None:
    directory = tmp_path / "j"
    ready_read, ready_write = os.pipe()   # child -> parent: "journal written"
    hold_read, hold_write = os.pipe()     # parent never writes: the child blocks here until killed
    pid = os.fork()
    if pid == 0:
        try:
            os.close(ready_read)
            os.close(hold_write)
            journal = Journal(directory, "child")
            journal.append("2026-01-01T00:00:00.000Z", "tool.executed", b"{\"n\":1}")
            os.write(ready_write, b"x")
            os.read(hold_read, 1)
        finally:
            os._exit(0)
    os.close(ready_write)
    os.close(hold_read)
    try:
        assert os.read(ready_read, 1) == b"x"
        assert find_orphans(directory) == []  # the child is alive and holds its lock
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_read)
        os.close(hold_write)
    [orphan] = find_orphans(directory)
    assert [entry.seq for entry in orphan.entries()] == [1]
    orphan.release()


async def test_a_starting_bridge_recovers_dead_journals_only(isolated_home: Path, tmp_path: Path) -> None:
    """Two bridges killed, one alive with unflushed events: a new bridge replays the two dead journals."""
    db = tmp_path / "shared.lmdb"
    bridges = [(await spawn_bridge(isolated_home, db))[0] for _ in range(3)]
    alive, dead = bridges[0], bridges[1:]
    try:
        for index, (bridge, calls) in enumerate(zip(bridges, (50, 30, 20))):
            for call in range(calls):
                bridge.notify("tool.executed", {**tool(f"s{index}", f"c{call}"), "agentId": "build"})
            assert (await bridge.request("agent.status", {"agentId": "build"}))["pendingChanges"] == calls
        for bridge in dead:
            await _kill(bridge)
        starter, init = await spawn_bridge(isolated_home, db)
        try:
            assert init["recovered"] == {"journals": 2, "events": 50}
            assert (await starter.request("agent.status", {"agentId": "build"}))["experiencePoints"] == 50.0
            # The live bridge's events are still its own: flushed by it, exactly once.
            assert (await alive.request("flush"))["transactions"] == 1
            assert (await alive.request("agent.status", {"agentId": "build"}))["experiencePoints"] == 100.0
            assert await starter.shutdown_and_exit() == 0
            assert await alive.shutdown_and_exit() == 0
        finally:
            starter.kill()
    finally:
        for bridge in bridges:
            bridge.kill()
    data = read_database(db)
    assert data["agents"]["build"]["experiencePoints"] == 100.0
    assert [data["sessions"][f"s{i}"]["toolCalls"] for i in range(3)] == [50, 30, 20]
    assert list(journal_dir_for(db).glob("*.jsonl")) == []
