"""A flush in flight (taken, not yet committed) while events keep coming: nothing lost, nothing twice.

The bridge writes a batch in a worker thread while the event loop goes on (tests/reliability/
test_write_lock.py does it through the real process); here the same three steps of the real
TrackingService (take_batch, write_batch, finish_batch) are run in an order chosen by the test, on a
real LMDB store, with a second service standing for another bridge.
"""

from __future__ import annotations

from pathlib import Path

from support.tracking import FULL_HASH, bash_commit, close_harness, make_harness, open_store, tool

from bridge.store import StoreError, key


def test_events_during_a_flush_see_its_batch_and_are_flushed_once(tmp_path: Path) -> None:
    harness = make_harness(open_store(tmp_path / "db.lmdb"), directory="/p")
    service = harness.service
    try:
        harness.send("session.created", {"sessionID": "s", "directory": "/p", "agent": {"id": "build"}})
        harness.send("tool.executed", bash_commit("s", "c1", "abc1234"))
        batch = service.take_batch()
        # While it is written: the same commit (full hash), a grade of it, one more call.
        assert harness.send("commit.completed", {"sessionID": "s", "commitHash": FULL_HASH}) == {
            "counted": False, "commitHash": FULL_HASH, "reason": "already recorded"}
        assert harness.send("grade", {"sessionID": "s", "grade": 5, "grader": "user"})["communicationScore"] == 65.0
        harness.send("tool.executed", tool("s", "c2"))
        assert harness.status("build")["experiencePoints"] == 7.0  # 2 calls + the commit, once
        result = service.finish_batch(batch, service.write_batch(batch))
        assert result.errors == [] and result.transactions == 1
        assert harness.status("build") == {**harness.status("build"), "experiencePoints": 7.0, "pendingChanges": 2}
        assert service.flush().transactions == 1
        assert harness.count("commits") == 1 and harness.count("communication") == 1
        [(_, commit)] = harness.all("commits")
        assert commit["hash"] == FULL_HASH
        agent = harness.stored("agents", "build")
        assert agent is not None and (agent["experiencePoints"], agent["totalCommits"]) == (7.0, 1)
    finally:
        close_harness(harness)


def test_a_failed_batch_goes_back_in_front_of_what_came_meanwhile(tmp_path: Path) -> None:
    """A bug then a grade: applied in that order even when the bug's batch failed and came back."""
    harness = make_harness(open_store(tmp_path / "db.lmdb"), directory="/p")
    service = harness.service
    try:
        harness.send("session.created", {"sessionID": "s", "directory": "/p", "agent": {"id": "build"}})
        harness.send("tool.executed", bash_commit("s", "c1", "abc1234"))
        harness.send("bug.reported", {"sessionID": "s"})  # SP 0: CS ceiling 0
        batch = service.take_batch()
        harness.send("agent.reinstate", {"agentId": "build"})  # SP 1 again
        harness.send("grade", {"sessionID": "s", "grade": 5, "grader": "user"})
        result = service.finish_batch(batch, error=StoreError("refused"))
        assert result.errors == ["refused"] and result.transactions == 0
        assert service.flush().transactions == 1
        agent = harness.stored("agents", "build")
        assert agent is not None
        # In order: the bug clamps CS to 0, reinstatement, then +5: CS 5 (not 60 + 5 clamped later).
        assert (agent["skillPoints"], agent["communicationScore"], agent["totalBugs"]) == (1.0, 5.0, 1)
    finally:
        close_harness(harness)


def test_an_update_of_a_commit_another_bridge_stored_first_makes_no_second_row(tmp_path: Path) -> None:
    """A's batch holds commit abc1234; B stores the full hash first; A's update lands on B's row."""
    store = open_store(tmp_path / "db.lmdb")
    first, other = make_harness(store, directory="/p"), make_harness(store, directory="/p")
    try:
        first.send("tool.executed", bash_commit("s", "c1", "abc1234", message="feat: x") | {"agentId": "build"})
        batch = first.service.take_batch()
        other.send("commit.completed", {"commitHash": FULL_HASH, "projectPath": "/p", "agentId": "build"})
        assert other.service.flush().transactions == 1
        first.send("commit.completed", {"commitHash": FULL_HASH, "projectPath": "/p", "agentId": "build",
                                        "taskDescription": "the task"})
        first.service.finish_batch(batch, first.service.write_batch(batch))
        assert first.service.flush().errors == []
        commits = first.all("commits")
        assert [k for k, _ in commits] == [key("/p", FULL_HASH)], "one row, the one stored first"
        assert commits[0][1]["hash"] == FULL_HASH
        assert first.stored("agents", "build")["totalCommits"] == 1  # type: ignore[index]
    finally:
        close_harness(first)
        other.service.journal.close(remove=True)  # type: ignore[union-attr]
