"""Issue 18, items 2, 3 and 4: the journal and the database file under changes behind the bridge's back.

* item 2: the database file moved or deleted while a bridge runs. On main the bridge kept
  "successfully" flushing into the detached file and truncating its journal; the file at the path
  (a new one, maybe another bridge's) never saw those events. Now each flush first checks that the
  path still leads to the open file and reopens what is there if not.
* item 3: the journal folder becomes read-only mid-session. On main ``exit`` died with a traceback
  (exit 1), a header-only journal stayed behind and every later ``initialize`` failed with -32603.
  Now the bridge goes on without a journal after one warning.
* item 4: a journal is replayed with the scoring rules that accepted its events, not the replaying
  bridge's (on main 10 tool calls at 1 XP replayed at 100 XP became 1,000 XP and a level-up).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.bridges import bridge_env
from support.mounts import Mounts

from reliability import drain_stderr, journal_events, read_db, record, spawn

pytestmark = pytest.mark.reliability


def tool(call: str, agent: str = "build", session: str = "s") -> dict[str, Any]:
    return {"sessionID": session, "callID": call, "tool": "read", "success": True, "agentId": agent}


def calls(bridge: Any, prefix: str, count: int, agent: str = "build") -> None:
    for i in range(count):
        bridge.notify("tool.executed", tool(f"{prefix}{i}", agent))


def xp(db: Path, agent: str = "build") -> float | None:
    record = read_db(db)["agents"].get(agent)
    return None if record is None else record["experiencePoints"]


# -- item 2: the database file moved or deleted ---------------------------------------------------


async def test_a_deleted_database_file_is_reopened_not_written_into_the_void(isolated_home: Path,
                                                                            tmp_path: Path) -> None:
    db = tmp_path / "data" / "agent-tracker.lmdb"
    bridge, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(db))
    try:
        calls(bridge, "a", 10)
        assert (await bridge.request("flush"))["transactions"] == 1
        db.unlink()  # the lock file stays, as after an `rm agent-tracker.lmdb`
        calls(bridge, "b", 5)
        flushed = await bridge.request("flush")
        assert flushed["errors"] == [] and flushed["transactions"] == 1
        message = (f"The database file {db} was moved or deleted while this bridge ran; the bridge reopened "
                   f"{db} (a new, empty database) and writes there from now on.")
        assert {"message": message, "variant": "warning"} in bridge.notifications_of("toast")
        assert xp(db) == 5.0, "the 5 events after the deletion must be in the file at the path"
        assert journal_events(Path(init["journal"]["path"])) == []
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert xp(db) == 5.0
    record("database-moved", deleted_then_events=5, events_in_file_at_path=5)


async def test_a_moved_database_file_gives_way_to_the_new_one_at_the_path(isolated_home: Path,
                                                                          tmp_path: Path) -> None:
    """A moves the file aside; B starts and creates a new one at the path; both end up in B's file."""
    db = tmp_path / "data" / "agent-tracker.lmdb"
    moved = db.with_name("moved-away.lmdb")
    first, _, _ = await spawn(isolated_home, tmp_path, databasePath=str(db))
    second = None
    try:
        calls(first, "a", 10)
        assert (await first.request("flush"))["transactions"] == 1
        calls(first, "b", 5)
        db.rename(moved)
        second, _, _ = await spawn(isolated_home, tmp_path, databasePath=str(db))
        calls(second, "c", 7, agent="plan")
        assert (await second.request("flush"))["transactions"] == 1
        flushed = await first.request("flush")
        assert flushed["errors"] == [] and flushed["transactions"] == 1
        message = (f"The database file {db} was moved or deleted while this bridge ran; the bridge reopened "
                   f"{db} (the database now at that path) and writes there from now on.")
        assert {"message": message, "variant": "warning"} in first.notifications_of("toast")
        assert await first.shutdown_and_exit() == 0
        assert await second.shutdown_and_exit() == 0
    finally:
        first.kill()
        if second is not None:
            second.kill()
    assert (xp(db, "build"), xp(db, "plan")) == (5.0, 7.0)
    assert xp(moved, "build") == 10.0, "the moved file keeps what was flushed before the move, nothing after"
    record("database-moved", moved_then_new_bridge="5 + 7 events in the file at the path, 10 left in the moved one")


# -- item 3: a read-only journal folder -------------------------------------------------------------


async def test_a_journal_folder_that_becomes_read_only_degrades_to_no_journal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = tmp_path / "data" / "agent-tracker.lmdb"
    journal_folder = db.with_name(db.name + "-journal")
    journal_folder.mkdir(parents=True)
    mounts = await Mounts.start({})  # a mount namespace of our own: a read-only bind mount, even for root

    async def bridge_in_namespace() -> tuple[Any, dict[str, Any], Any]:
        bridge = await mounts.spawn_bridge(bridge_env(home))
        stderr = drain_stderr(bridge)
        return bridge, await bridge.initialize(tmp_path, databasePath=str(db)), stderr

    try:
        bridge, init, stderr = await bridge_in_namespace()
        journal = Path(init["journal"]["path"])
        calls(bridge, "a", 10)
        assert (await bridge.request("flush"))["transactions"] == 1
        mounts.bind_read_only(journal_folder)
        calls(bridge, "b", 5)
        assert (await bridge.request("flush"))["errors"] == []
        calls(bridge, "c", 3)
        assert await bridge.shutdown_and_exit() == 0, "exit must not fail on a read-only journal folder"
        assert "Traceback" not in await stderr
        warnings = [log["message"] for log in bridge.notifications_of("log") if "journal" in log["message"]]
        assert warnings == [
            f"The journal folder {journal_folder} became read-only; the bridge goes on without a crash journal: "
            f"events wait in memory until the next flush, and a bridge killed before it would lose them."]
        left = mounts.outside(journal)
        assert not left.exists() or left.stat().st_size == 0, "no journal with content (not even a header) is left"

        # Later bridges, the folder still read-only: initialize works, events are written.
        bridge, init, stderr = await bridge_in_namespace()
        assert init["recovered"] == {"journals": 0, "events": 0} and init["journal"]["path"] is None
        calls(bridge, "d", 4)
        assert await bridge.shutdown_and_exit() == 0
        assert "Traceback" not in await stderr
        mounts.unbind(journal_folder)
        bridge, init, _ = await bridge_in_namespace()
        assert init["recovered"]["events"] == 0
        assert await bridge.shutdown_and_exit() == 0
    finally:
        await mounts.close()
    data = read_db(db)
    assert data["agents"]["build"]["experiencePoints"] == 22.0 and data["sessions"]["s"]["toolCalls"] == 22
    assert [p.name for p in journal_folder.glob("*.jsonl")] == []
    record("read-only-journal-folder", events=22, events_lost=0, warnings=1, later_initialize_errors=0)


# -- item 4: a replay scores with the rules that accepted the events --------------------------------


async def test_a_journal_is_replayed_with_the_rules_that_accepted_it(isolated_home: Path, tmp_path: Path) -> None:
    db = tmp_path / "data" / "agent-tracker.lmdb"
    cheap, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(db), scoring={"toolCallXp": 1})
    try:
        calls(cheap, "a", 10)
        status = await cheap.request("agent.status", {"agentId": "build"})
        assert (status["experiencePoints"], status["skillPoints"]) == (10.0, 1.0)
        cheap.kill()
        assert await cheap.wait() == -9
    finally:
        cheap.kill()
    rich, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(db), scoring={"toolCallXp": 100})
    try:
        assert init["recovered"] == {"journals": 1, "events": 10}
        status = await rich.request("agent.status", {"agentId": "build"})
        assert (status["experiencePoints"], status["skillPoints"]) == (10.0, 1.0), \
            "replayed at the rules that accepted the events: 10 x 1 XP, no level-up"
        calls(rich, "b", 3)  # its own events: its own rules
        assert await rich.shutdown_and_exit() == 0
    finally:
        rich.kill()
    agent = read_db(db)["agents"]["build"]
    assert (agent["experiencePoints"], agent["skillPoints"]) == (310.0, 1.0)
    record("replay-rules", replayed_events=10, xp_after_replay=10, xp_on_main=1000)
