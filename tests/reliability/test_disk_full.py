"""Issue 17: a full disk loses no accepted event; it is said once, with numbers, and once when it is over.

Every test runs real bridges on real, size-limited tmpfs mounts in a mount namespace of their own
(support/mounts.py; skipped where that is not permitted), fills the file system mid-session by
writing a file until ENOSPC, and frees space by remounting it larger:

* journal and database on one file system (the usual ~/.config/opencode): the journal keeps taking
  events into its 1 MiB reserve, past it they wait in memory; the database refuses the flush; after
  the remount one flush writes exactly every event, once;
* the same with a restart while the disk is still full: the first bridge's last log line counts what
  its journal holds and what could not be saved; the second one applies that journal as soon as the
  database takes writes again;
* journal and database on separate mounts, each filled in turn;
* past the memory bound (64 MiB of events the journal could not take) new events are dropped, and
  the count is told exactly.
On main the journal's ENOSPC was an "Internal error" that dropped the event.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from support.bridges import bridge_env
from support.locks import WriteLock
from support.mounts import Mounts

from reliability import Timer, drain_stderr, read_db, record

pytestmark = pytest.mark.reliability

OUTPUT = "o" * 1000  # ~1.2 KB journal lines: 200 fit in the reserve, 1,000 do not
TOOLS_DB = "~/.config/opencode"
RESERVE = 1024 * 1024  # the journal's space reserve (bridge.tracking.journal.Journal.RESERVE)


def tool(call: str, agent: str = "build") -> dict[str, Any]:
    return {"sessionID": "s", "callID": call, "tool": "read", "success": True, "agentId": agent,
            "output": OUTPUT}


def calls(bridge: Any, prefix: str, count: int) -> None:
    for i in range(count):
        bridge.notify("tool.executed", tool(f"{prefix}{i:05d}"))


def full(folder: str, events: int) -> str:
    return (f"No space left on the file system of {folder} (0 bytes free); {events:,} events are held in "
            f"memory and will be written when space returns.")


def back(folder: str, events: int) -> str:
    return f"Space returned on the file system of {folder}: the {events:,} events held in memory were written."


def exiting(in_journal: int, lost: int) -> str:
    return (f"Exiting before every event reached the database: {in_journal:,} events are in the journal "
            f"(the next start recovers them) and {lost:,} events could not be saved.")


def journaled(path: Path) -> int:
    """Events wholly in a journal file (the last line may be torn: the disk filled up inside it)."""
    lines = path.read_bytes().split(b"\n")
    complete = [json.loads(line) for line in lines[:-1]]
    return sum(1 for entry in complete if entry["s"] > 0)


def stored_calls(db: Path) -> tuple[float, int]:
    data = read_db(db)
    agent, session = data["agents"].get("build", {}), data["sessions"].get("s", {})
    return agent.get("experiencePoints", 0.0), session.get("toolCalls", 0)


class Setup:
    """A home whose ~/.config/opencode (and maybe the journal folder) are small tmpfs mounts."""

    def __init__(self, tmp: Path, mounts: Mounts):
        self.home = tmp / "home"
        self.data = self.home / ".config" / "opencode"
        self.db = self.data / "agent-tracker.lmdb"
        self.journals = self.data / "agent-tracker.lmdb-journal"
        self.project = tmp / "project"
        self.project.mkdir(exist_ok=True)
        self.mounts = mounts

    @classmethod
    async def start(cls, tmp: Path, separate_journal: bool = False) -> "Setup":
        data = tmp / "home" / ".config" / "opencode"
        sizes = {data: "4m"}
        if separate_journal:
            sizes[data / "agent-tracker.lmdb-journal"] = "2m"
        return cls(tmp, await Mounts.start(sizes))

    async def bridge(self) -> tuple[Any, dict[str, Any], Any]:
        bridge = await self.mounts.spawn_bridge(bridge_env(self.home))
        stderr = drain_stderr(bridge)
        # No level-ups: XP then equals the number of tool calls.
        init = await bridge.initialize(self.project, scoring={"levelCost": 1_000_000})
        return bridge, init, stderr

    async def reserved(self, journal: Path) -> bool:
        """Wait (bounded) until the bridge took its journal's 1 MiB space reserve (a worker thread does).

        Not asserted here: a bridge without one must fail on the events it loses, not on this."""
        outside = self.mounts.outside(journal)
        for _ in range(400):
            if outside.stat().st_blocks * 512 >= RESERVE:
                return True
            await asyncio.sleep(0.05)
        return False

    def outside_db(self) -> Path:
        return self.mounts.outside(self.db)


def toasts(bridge: Any) -> list[str]:
    return [t["message"] for t in bridge.notifications_of("toast")]


async def test_a_full_disk_holds_every_event_and_writes_them_once_when_space_returns(tmp_path: Path) -> None:
    timer = Timer()
    setup = await Setup.start(tmp_path)
    try:
        bridge, init, stderr = await setup.bridge()
        journal = Path(init["journal"]["path"])
        reserved = await setup.reserved(journal)
        setup.mounts.fill(setup.data)
        calls(bridge, "a", 200)  # into the journal's reserve
        flushed = await bridge.request("flush")
        assert flushed["errors"] == [full(TOOLS_DB, 200)] and flushed["transactions"] == 0
        assert toasts(bridge) == [full(TOOLS_DB, 200)]
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert (status["experiencePoints"], status["pendingChanges"]) == (200.0, 200)
        calls(bridge, "b", 1000)  # past the reserve: these wait in memory
        flushed = await bridge.request("flush")
        assert flushed["errors"] == [full(TOOLS_DB, 1200)]
        in_journal = journaled(setup.mounts.outside(journal))
        assert 200 < in_journal < 1200, in_journal
        assert toasts(bridge) == [full(TOOLS_DB, 200)], "one toast for the whole episode"
        setup.mounts.resize(setup.data, "16m")
        flushed = await bridge.request("flush")  # (a retry on the timer may have written it already)
        assert flushed["errors"] == []
        assert toasts(bridge) == [full(TOOLS_DB, 200), back(TOOLS_DB, 1200)]
        assert stored_calls(setup.outside_db()) == (1200.0, 1200)
        assert await bridge.shutdown_and_exit() == 0
        assert "Traceback" not in await stderr
        assert stored_calls(setup.outside_db()) == (1200.0, 1200)
        assert not setup.mounts.outside(journal).exists()
        assert reserved, "the journal took no space reserve"
    finally:
        await setup.mounts.close()
    record("disk-full", tmpfs="4 MiB, filled mid-session", events=1200, in_journal_reserve=in_journal,
           held_only_in_memory=1200 - in_journal, toasts=2, events_lost=0, counted_twice=0,
           seconds=timer.seconds)


@pytest.mark.parametrize("own", [50, 0], ids=["with-new-events", "without"])
async def test_a_restart_while_the_disk_is_full_loses_nothing_the_journal_took(tmp_path: Path, own: int) -> None:
    setup = await Setup.start(tmp_path)
    try:
        bridge, init, stderr = await setup.bridge()
        await setup.reserved(Path(init["journal"]["path"]))
        setup.mounts.fill(setup.data)
        calls(bridge, "a", 200)
        shutdown = await bridge.request("shutdown")  # 201 events: shutdown ends the open session
        assert shutdown["errors"] == [full(TOOLS_DB, 201)]
        bridge.notify("exit")
        assert await bridge.wait() == 0
        logs = [log["message"] for log in bridge.notifications_of("log")]
        assert logs[-1] == exiting(201, 0)
        assert (await stderr).rstrip().splitlines()[-1] == f"agent-tracker [warning] {exiting(201, 0)}"

        # The disk is still full: the next bridge cannot apply that journal yet, nor journal its own events.
        bridge, init, stderr = await setup.bridge()
        assert init["recovered"] == {"journals": 0, "events": 0}
        assert toasts(bridge) == [full(TOOLS_DB, 201)]
        calls(bridge, "b", own)
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert status["pendingChanges"] == own
        setup.mounts.resize(setup.data, "16m")
        assert (await bridge.request("flush"))["errors"] == []
        assert toasts(bridge) == [full(TOOLS_DB, 201), back(TOOLS_DB, 201 + own)]
        assert stored_calls(setup.outside_db()) == (200.0 + own, 200 + own)
        assert await bridge.shutdown_and_exit() == 0
        assert "Traceback" not in await stderr
        assert list(setup.mounts.outside(setup.journals).glob("*.jsonl")) == []
    finally:
        await setup.mounts.close()
    record("disk-full-restart", **{f"journaled before the restart, events after, stored ({own})": [201, own, 200 + own]},
           events_lost=0, counted_twice=0)


async def test_the_exit_line_counts_what_the_journal_could_not_take(tmp_path: Path) -> None:
    """Past the reserve on a still-full disk, some events are only in memory at exit: counted exactly."""
    setup = await Setup.start(tmp_path)
    try:
        bridge, init, stderr = await setup.bridge()
        journal = Path(init["journal"]["path"])
        await setup.reserved(journal)
        setup.mounts.fill(setup.data)
        calls(bridge, "a", 1200)
        assert await bridge.shutdown_and_exit() == 0  # 1,201 events: shutdown ends the open session
        in_journal = journaled(setup.mounts.outside(journal))
        assert 0 < in_journal < 1200
        assert [log["message"] for log in bridge.notifications_of("log")][-1] == exiting(in_journal, 1201 - in_journal)
        await stderr
        setup.mounts.resize(setup.data, "16m")
        bridge, init, _ = await setup.bridge()
        assert init["recovered"] == {"journals": 1, "events": in_journal}
        assert await bridge.shutdown_and_exit() == 0
        assert stored_calls(setup.outside_db()) == (float(in_journal), in_journal)
    finally:
        await setup.mounts.close()
    record("disk-full-exit-count", sent=1201, in_journal=in_journal, could_not_be_saved=1201 - in_journal)


async def test_journal_and_database_on_separate_file_systems_each_filled_in_turn(tmp_path: Path) -> None:
    setup = await Setup.start(tmp_path, separate_journal=True)
    journals = "~/.config/opencode/agent-tracker.lmdb-journal"
    try:
        bridge, init, stderr = await setup.bridge()
        journal = Path(init["journal"]["path"])
        await setup.reserved(journal)

        # 1. The database's file system fills up; the journal (elsewhere) takes every event.
        setup.mounts.fill(setup.data)
        calls(bridge, "a", 300)
        assert (await bridge.request("flush"))["errors"] == [full(TOOLS_DB, 300)]
        assert journaled(setup.mounts.outside(journal)) == 300
        setup.mounts.resize(setup.data, "16m")
        assert (await bridge.request("flush"))["errors"] == []
        assert toasts(bridge) == [full(TOOLS_DB, 300), back(TOOLS_DB, 300)]
        assert stored_calls(setup.outside_db()) == (300.0, 300)

        # 2. The journal's file system fills up past its reserve; the database (elsewhere) takes the
        # events. While another process holds the database's write lock, nothing is flushed: the
        # journal's state can be read as it was when it failed.
        await setup.reserved(journal)
        setup.mounts.fill(setup.journals)
        lock = await WriteLock.take(setup.db, enter=setup.mounts.enter)
        try:
            calls(bridge, "b", 1500)
            await bridge.request("agent.status", {"agentId": "build"})
            first_refused = journaled(setup.mounts.outside(journal)) + 1
            assert 1 < first_refused <= 1500
            assert toasts(bridge)[2:] == [full(journals, first_refused)]
        finally:
            await lock.release()
        assert (await bridge.request("flush"))["errors"] == []
        assert toasts(bridge)[2:] == [full(journals, first_refused), back(journals, 1500)]
        assert stored_calls(setup.outside_db()) == (1800.0, 1800)
        assert await bridge.shutdown_and_exit() == 0
        assert "Traceback" not in await stderr
    finally:
        await setup.mounts.close()
    record("disk-full-separate-mounts", database_filled_events=300, journal_filled_events=1500,
           journal_refused_from_event=first_refused, stored=1800, events_lost=0)


async def test_past_the_memory_bound_new_events_are_dropped_and_counted_exactly(tmp_path: Path) -> None:
    """Both the journal and the database refuse writes: events wait in memory up to 64 MiB, then new
    ones are refused (-32001 for a request) and counted; the counts are told exactly."""
    setup = await Setup.start(tmp_path)
    description = "d" * 60_000
    try:
        bridge, init, stderr = await setup.bridge()
        journal = Path(init["journal"]["path"])
        await setup.reserved(journal)
        setup.mounts.fill(setup.data)
        answers: list[dict[str, Any]] = []
        for first in range(0, 1200, 100):  # pipelined, 100 requests at a time
            pending = [bridge.request_raw("activity.logged", {"kind": "note", "agentId": "build",
                                                              "description": f"{i:05d}{description}"})
                       for i in range(first, first + 100)]
            answers += await asyncio.gather(*pending)
        accepted = sum(1 for answer in answers if "result" in answer)
        dropped = [answer["error"] for answer in answers if "error" in answer]
        assert accepted + len(dropped) == 1200 and dropped, "the bound was never reached"
        assert all(answer["result"] == {} for answer in answers[:accepted]), "accepted, then dropped: in order"
        assert {(error["code"], error["message"]) for error in dropped} == {
            (-32001, f"activity.logged dropped: {accepted - journaled(setup.mounts.outside(journal)):,} events wait "
                     f"in memory for a file system that refuses writes, the limit.")}
        held_in_memory = accepted - journaled(setup.mounts.outside(journal))
        limit = [m for m in toasts(bridge) if "the limit" in m]
        assert len(limit) == 1 and limit[0].startswith(
            f"{held_in_memory:,} events (") and limit[0].endswith(
            " MiB) that no file could take are held in memory, the limit (100,000 events or 64 MiB): new "
            "events are dropped and counted until space returns.")
        assert float(limit[0].split("(")[1].split(" ")[0]) >= 64.0
        setup.mounts.resize(setup.data, "256m")
        assert (await bridge.request("flush", timeout=120))["errors"] == []
        assert toasts(bridge)[-1] == (f"Space returned on the file system of {TOOLS_DB}: the {accepted:,} events "
                                      f"held in memory were written; {len(dropped):,} events that arrived while "
                                      f"memory was full were dropped.")
        assert len(read_db(setup.outside_db())["activities"]) == accepted
        assert await bridge.shutdown_and_exit() == 0
        assert [log["message"] for log in bridge.notifications_of("log")][-1] == exiting(0, len(dropped))
        assert "Traceback" not in await stderr
    finally:
        await setup.mounts.close()
    record("disk-full-memory-bound", accepted=accepted, held_only_in_memory=held_in_memory,
           dropped_and_counted=len(dropped), stored=accepted)


async def test_reinstate_on_a_full_disk_says_nothing_was_written(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI holds nothing in memory: one sentence, exit code 5, and the agent stays halted."""
    from bridge.cli import main

    setup = await Setup.start(tmp_path)
    try:
        bridge, _, _ = await setup.bridge()
        bridge.notify("bug.reported", {"agentId": "build", "description": "broke it"})  # a halt: stored at once
        assert (await bridge.request("flush"))["errors"] == []
        assert await bridge.shutdown_and_exit() == 0
        setup.mounts.fill(setup.data)
        database = setup.outside_db()  # the CLI runs here, outside the namespace: through /proc
        code = main(["reinstate", "build", "--database", str(database)])
        err = capsys.readouterr().err
        assert code == 5
        assert err.strip().endswith(
            f"The database refused the write: no space is left on the file system of {database.parent} "
            f"(0 bytes free).\nhint: Nothing was written."), err
        assert read_db(database)["agents"]["build"]["halted"] is True
    finally:
        await setup.mounts.close()
