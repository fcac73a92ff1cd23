"""Issue 3: the tracking service — write buffer, dedupe rules, identities, notifications.

Real TrackingService on real LMDB stores (temp dirs); the protocol-level checks use the real
bridge subprocess through tests/rpc_client.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from support.bridges import BridgeProcess, RpcError
from support.tracking import (
    FULL_HASH,
    GRADES_TEXT,
    OTHER_FULL_HASH,
    ServiceHarness,
    bash_commit,
    bash_push,
    close_harness,
    make_harness,
    new_agent_status,
    open_store,
    spawn_bridge,
    tool,
)

from bridge.tracking.service import EventRejected

T0 = "2026-11-26T05:00:00.123Z"


@pytest.fixture
def h(tmp_path: Path, project: Path):
    harness = make_harness(open_store(tmp_path / "t.lmdb"), directory=str(project))
    harness.send("session.created", {"sessionID": "s1", "directory": str(project),
                                     "agent": {"id": "build", "model": "claude-x", "provider": "anthropic"}})
    yield harness
    close_harness(harness)


def agent_record(h: ServiceHarness, agent: str = "build") -> dict[str, Any]:
    record = h.stored("agents", agent)
    assert record is not None
    return {k: record[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                   "totalBugs", "totalPushes", "halted")}


def flush_ok(h: ServiceHarness) -> None:
    result = h.service.flush()
    assert (result.errors, result.transactions) == ([], 1)


# -- the write buffer ---------------------------------------------------------------------------------


def test_intake_performs_zero_write_transactions_and_a_flush_exactly_one(h: ServiceHarness, project: Path) -> None:
    txn = h.store.last_txn_id()
    h.send("tool.executed", tool("s1", "c1"))
    h.send("tool.executed", tool("s1", "c2", success=False))
    h.send("command.executed", {"sessionID": "s1", "command": "test"})
    h.send("tool.executed", bash_commit("s1", "c3", "abc1234"))
    h.send("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH, "taskDescription": "add x"})
    h.send("commit.completed", {"sessionID": "s1", "commitHash": OTHER_FULL_HASH})
    h.send("grade", {"sessionID": "s1", "grade": "good", "grader": "agent"})
    h.send("grade", {"sessionID": "s1", "grade": 5, "grader": "user", "commitHash": FULL_HASH})
    h.send("bug.reported", {"sessionID": "s1", "description": "oops"})
    h.send("retrospective.recorded", {"sessionID": "s1", "summary": "fine", "wentWell": ["tests"]})
    h.send("activity.logged", {"sessionID": "s1", "kind": "note", "description": "n"})
    h.send("session.updated", {"sessionID": "s1", "title": "t"})
    h.send("session.idle", {"sessionID": "s1"})
    h.send("commit.pushed", {"sessionID": "s1", "head": OTHER_FULL_HASH})
    h.send("agent.reinstate", {"agentId": "build"})
    assert h.store.last_txn_id() == txn
    assert h.count("agents") == h.count("commits") == h.count("communication") == 0

    result = h.service.flush()
    assert (result.errors, result.transactions) == ([], 1)
    assert h.store.last_txn_id() == txn + 1
    assert (h.count("agents"), h.count("commits"), h.count("communication"), h.count("retrospectives"),
            h.count("activities"), h.count("sessions")) == (1, 2, 2, 1, 3, 1)
    # XP 1 + 2 + 1 (bash tool) + 5 (commit abc1234 = FULL_HASH, once) + 5 (second commit) = 14; grades take
    # CS to 67, the bug takes SP 1 -> 0 (halted: CS capped at 100 x 0 = 0, the push earns nothing),
    # the reinstate takes SP back to 1.
    assert agent_record(h) == {"skillPoints": 1.0, "experiencePoints": 14.0, "communicationScore": 0.0,
                               "totalCommits": 2, "totalBugs": 1, "totalPushes": 1, "halted": False}
    # Nothing pending: a second flush writes nothing.
    assert h.service.flush().transactions == 0
    assert h.store.last_txn_id() == txn + 1


def test_many_events_still_one_transaction(h: ServiceHarness) -> None:
    txn = h.store.last_txn_id()
    for call in range(2000):
        h.send("tool.executed", tool("s1", f"c{call}"))
    assert h.store.last_txn_id() == txn
    flush_ok(h)
    assert h.store.last_txn_id() == txn + 1
    assert agent_record(h)["skillPoints"] == 2.0 and agent_record(h)["experiencePoints"] == 1000.0
    assert h.stored("sessions", "s1")["toolCalls"] == 2000


def test_status_reads_its_own_pending_writes(h: ServiceHarness) -> None:
    for call in range(3):
        h.send("tool.executed", tool("s1", f"c{call}"))
    assert h.stored("agents", "build") is None
    assert h.status("build") == new_agent_status("build", experiencePoints=3.0, pendingChanges=3)
    flush_ok(h)
    assert h.status("build") == new_agent_status("build", experiencePoints=3.0)
    h.send("command.executed", {"sessionID": "s1", "command": "x"})
    # Stored 3 + pending 2.
    assert h.status("build") == new_agent_status("build", experiencePoints=5.0, pendingChanges=1)
    assert agent_record(h)["experiencePoints"] == 3.0


def test_status_by_session_resolves_the_agent(h: ServiceHarness) -> None:
    from bridge.protocol.structure import structure_params
    h.send("tool.executed", tool("s1", "c1"))
    assert h.service.status(structure_params("agent.status", {"sessionID": "s1"})) == \
        new_agent_status("build", experiencePoints=1.0, pendingChanges=1)


# -- one event, one count ---------------------------------------------------------------------------------


def test_a_tool_call_counts_once_per_call_id(h: ServiceHarness) -> None:
    assert h.send("tool.executed", tool("s1", "c1")) == {"counted": True, "xp": 1.0}
    assert h.send("tool.executed", tool("s1", "c1")) == {"counted": False, "reason": "duplicate callID"}
    flush_ok(h)
    assert h.send("tool.executed", tool("s1", "c1")) == {"counted": False, "reason": "duplicate callID"}
    assert h.send("tool.executed", tool("s1", "c2")) == {"counted": True, "xp": 1.0}
    flush_ok(h)
    assert agent_record(h)["experiencePoints"] == 2.0
    assert h.stored("sessions", "s1")["toolCalls"] == 2


@pytest.mark.parametrize("flush_between", [False, True])
def test_bash_commit_then_commit_completed_counts_once(h: ServiceHarness, project: Path,
                                                       flush_between: bool) -> None:
    assert h.send("tool.executed", bash_commit("s1", "c1", "abc1234", "feat: x")) == {"counted": True, "xp": 1.0}
    if flush_between:
        flush_ok(h)
    result = h.send("commit.completed", {"sessionID": "s1", "projectPath": str(project), "commitHash": FULL_HASH,
                                         "taskDescription": "add x"})
    assert result == {"counted": False, "commitHash": FULL_HASH, "reason": "already recorded"}
    assert h.status("build")["totalCommits"] == 1
    flush_ok(h)
    assert agent_record(h) == {"skillPoints": 1.0, "experiencePoints": 6.0, "communicationScore": 60.0,
                               "totalCommits": 1, "totalBugs": 0, "totalPushes": 0, "halted": False}
    [(record_key, record)] = h.all("commits")
    assert record_key == f"{project}\x00abc1234"
    assert {k: record[k] for k in ("hash", "projectPath", "agentId", "sessionID", "model", "provider",
                                   "taskDescription", "source")} == {
        "hash": FULL_HASH, "projectPath": str(project), "agentId": "build", "sessionID": "s1",
        "model": "claude-x", "provider": "anthropic", "source": "bash",
        "taskDescription": "feat: x"}  # the first description (the commit message) is kept
    assert h.stored("sessions", "s1")["commits"] == 1


@pytest.mark.parametrize("flush_between", [False, True])
def test_commit_completed_then_bash_commit_counts_once(h: ServiceHarness, project: Path,
                                                       flush_between: bool) -> None:
    h.send("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH.upper()})
    if flush_between:
        flush_ok(h)
    h.send("tool.executed", bash_commit("s1", "c1", "abc1234"))
    flush_ok(h)
    assert agent_record(h)["totalCommits"] == 1
    assert agent_record(h)["experiencePoints"] == 6.0
    [(record_key, record)] = h.all("commits")
    assert (record_key, record["hash"], record["source"]) == (f"{project}\x00{FULL_HASH}", FULL_HASH,
                                                              "commit.completed")


def test_the_same_hash_in_two_projects_is_two_commits(h: ServiceHarness, project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    h.send("commit.completed", {"sessionID": "s1", "projectPath": str(project), "commitHash": FULL_HASH})
    h.send("commit.completed", {"sessionID": "s1", "projectPath": str(other), "commitHash": FULL_HASH})
    flush_ok(h)
    assert agent_record(h)["totalCommits"] == 2
    assert h.count("commits") == 2


@pytest.mark.parametrize("flush_between", [False, True])
def test_bash_push_then_commit_pushed_counts_once(h: ServiceHarness, project: Path, flush_between: bool) -> None:
    h.send("tool.executed", bash_push("s1", "p1", "1111111", "abc1234"))
    if flush_between:
        flush_ok(h)
    assert h.send("commit.pushed", {"sessionID": "s1", "projectPath": str(project), "head": FULL_HASH}) == \
        {"counted": False, "reason": "this head was already pushed"}
    assert h.service.flush().errors == []
    assert agent_record(h) == {"skillPoints": 1.0, "experiencePoints": 11.0, "communicationScore": 60.0,
                               "totalCommits": 0, "totalBugs": 0, "totalPushes": 1, "halted": False}
    assert h.stored("projects", str(project))["lastPushedHead"] == "abc1234"
    # A new head is a new push.
    h.send("commit.pushed", {"sessionID": "s1", "projectPath": str(project), "head": OTHER_FULL_HASH})
    flush_ok(h)
    assert agent_record(h)["totalPushes"] == 2 and agent_record(h)["experiencePoints"] == 21.0


def test_commit_then_new_branch_push_then_commit_pushed_counts_once(h: ServiceHarness, project: Path) -> None:
    h.send("tool.executed", bash_commit("s1", "c1", "abc1234"))
    h.send("tool.executed", tool("s1", "p1", tool_name="bash", args={"command": "git push -u origin feat"},
                                 output=" * [new branch]      feat -> feat\n"))
    h.send("commit.pushed", {"sessionID": "s1", "projectPath": str(project), "head": FULL_HASH})
    flush_ok(h)
    assert agent_record(h) == {"skillPoints": 1.0, "experiencePoints": 17.0, "communicationScore": 60.0,
                               "totalCommits": 1, "totalBugs": 0, "totalPushes": 1, "halted": False}


def test_a_rejected_push_is_not_counted(h: ServiceHarness) -> None:
    h.send("tool.executed", tool("s1", "p1", tool_name="bash", args={"command": "git push"},
                                 output=" ! [rejected]        main -> main (fetch first)\n"))
    flush_ok(h)
    assert (agent_record(h)["totalPushes"], agent_record(h)["experiencePoints"]) == (0, 1.0)


# -- grades ------------------------------------------------------------------------------------------


def test_one_grade_per_grader_per_commit(h: ServiceHarness, project: Path) -> None:
    h.send("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH})
    assert h.send("grade", {"sessionID": "s1", "grade": 2, "grader": "agent"})["communicationScore"] == 62.0
    message = ("Commit abc1234def56 was already graded by the agent: each commit gets one agent grade and one "
               "user grade.")
    with pytest.raises(EventRejected) as caught:
        h.send("grade", {"sessionID": "s1", "grade": 5, "grader": "agent"})
    assert str(caught.value) == message
    assert h.send("grade", {"sessionID": "s1", "grade": -1, "grader": "user"})["communicationScore"] == 61.0
    flush_ok(h)
    # Also refused once the first grade is stored, whichever way the commit is named.
    for params in ({"sessionID": "s1", "grade": 5, "grader": "agent"},
                   {"projectPath": str(project), "commitHash": "abc1234", "grade": 5, "grader": "agent"},
                   {"projectPath": str(project), "commitHash": FULL_HASH, "grade": 1, "grader": "user"}):
        with pytest.raises(EventRejected, match="already graded"):
            h.send("grade", params)
    assert h.status("build")["communicationScore"] == 61.0
    assert not h.service.pending
    assert h.count("communication") == 2


def test_grade_without_a_commit_is_rejected(h: ServiceHarness) -> None:
    with pytest.raises(EventRejected) as caught:
        h.send("grade", {"sessionID": "s1", "grade": 2, "grader": "user"})
    assert str(caught.value) == ("There is no commit to grade: give commitHash (and projectPath), or grade in a "
                                 "session after its agent committed.")
    assert h.status("build") == new_agent_status("build")


def test_grade_goes_to_the_committing_agent(h: ServiceHarness, project: Path) -> None:
    h.send("session.created", {"sessionID": "s2", "directory": str(project), "agent": {"id": "plan"}})
    h.send("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH})
    flush_ok(h)
    # The user grades from another session: the grade belongs to the commit's agent.
    result = h.send("grade", {"sessionID": "s2", "commitHash": "abc1234", "grade": 5, "grader": "user"})
    assert result == {"agentId": "build", "commitHash": FULL_HASH, "grade": 5, "communicationScore": 65.0}
    assert h.status("plan") == new_agent_status("plan")


# -- identities ----------------------------------------------------------------------------------------


def test_agent_model_and_provider_are_recorded_per_session_and_commit(h: ServiceHarness, project: Path) -> None:
    h.send("tool.executed", tool("s1", "c1"))
    h.send("session.updated", {"sessionID": "s1", "agent": {"id": "build", "model": "gpt-y", "provider": "openai"}})
    h.send("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH})
    h.send("session.created", {"sessionID": "s2", "directory": str(project),
                               "agent": {"id": "plan", "model": "claude-x", "provider": "anthropic"}})
    h.send("tool.executed", tool("s2", "c1"))
    flush_ok(h)
    s1, s2 = h.stored("sessions", "s1"), h.stored("sessions", "s2")
    assert (s1["agentId"], s1["model"], s1["provider"], s1["projectPath"]) == ("build", "gpt-y", "openai", str(project))
    assert s1["setups"] == ["build|anthropic/claude-x", "build|openai/gpt-y"]
    assert (s2["agentId"], s2["model"], s2["provider"], s2["setups"]) == ("plan", "claude-x", "anthropic",
                                                                          ["plan|anthropic/claude-x"])
    [(_, commit)] = h.all("commits")
    assert (commit["agentId"], commit["model"], commit["provider"]) == ("build", "gpt-y", "openai")
    assert sorted(key for key, _ in h.all("agents")) == ["build", "plan"]
    assert agent_record(h, "plan")["experiencePoints"] == 1.0
    assert agent_record(h, "build")["experiencePoints"] == 6.0


# -- keys never collide -------------------------------------------------------------------------------------


def test_events_in_the_same_millisecond_are_all_stored(h: ServiceHarness, project: Path) -> None:
    h.send("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH}, received_at=T0)
    h.send("grade", {"sessionID": "s1", "grade": 2, "grader": "agent"}, received_at=T0)
    h.send("grade", {"sessionID": "s1", "grade": 5, "grader": "user"}, received_at=T0)
    for _ in range(2):
        h.send("bug.reported", {"sessionID": "s1", "description": "same ms"}, received_at=T0)
        h.send("retrospective.recorded", {"sessionID": "s1", "summary": "same ms"}, received_at=T0)
    flush_ok(h)
    h.send("bug.reported", {"sessionID": "s1", "description": "same ms, next flush"}, received_at=T0)
    flush_ok(h)
    assert (h.count("communication"), h.count("activities"), h.count("retrospectives")) == (2, 3, 2)
    grades = sorted((record["grader"], record["grade"], record["createdAt"]) for _, record in h.all("communication"))
    assert grades == [("agent", 2, T0), ("user", 5, T0)]
    assert agent_record(h)["totalBugs"] == 3


def test_same_millisecond_records_without_a_journal_do_not_collide(tmp_path: Path) -> None:
    harness = make_harness(open_store(tmp_path / "nj.lmdb"), journal=False)
    try:
        for round_ in range(2):
            harness.send("bug.reported", {"agentId": "build", "description": f"bug {round_}"}, received_at=T0)
            assert harness.service.flush().errors == []
        assert agent_record(harness)["totalBugs"] == 2
        assert sorted(r["description"] for _, r in harness.all("activities")) == ["bug 0", "bug 1"]
    finally:
        close_harness(harness)


# -- agent.state notifications ------------------------------------------------------------------------------


def test_agent_state_is_notified_on_halt_and_on_reinstate(h: ServiceHarness) -> None:
    h.send("tool.executed", tool("s1", "c1"))
    assert h.notifications == []
    h.send("bug.reported", {"sessionID": "s1"})
    halted = new_agent_status("build", skillPoints=0.0, experiencePoints=1.0, communicationScore=0.0, totalBugs=1,
                              halted=True, pendingChanges=2,
                              haltReason="skill points 0 after 1 bug; the latest: a bug was reported")
    assert h.notifications == [
        ("agent.state", halted),
        ("toast", {"message": "Agent build is halted (SP 0): its tools are blocked until "
                              "`agent-tracker reinstate build`.", "variant": "error"})]
    h.notifications.clear()
    h.send("tool.executed", tool("s1", "c2"))  # still halted: no new notification
    h.send("agent.reinstate", {"agentId": "build", "reason": "ok"})
    reinstated = {name: value for name, value in halted.items() if name != "haltReason"}
    assert h.notifications == [("agent.state", {**reinstated, "skillPoints": 1.0, "halted": False, "pendingChanges": 4})]


def test_reinstating_a_stored_halt_notifies_once(h: ServiceHarness) -> None:
    h.send("bug.reported", {"sessionID": "s1"})
    flush_ok(h)
    h.notifications.clear()
    h.send("agent.reinstate", {"agentId": "build"})
    flush_ok(h)
    assert [params["halted"] for method, params in h.notifications if method == "agent.state"] == [False]


# -- through the real bridge -----------------------------------------------------------------------------------


@pytest.fixture
async def bridge(isolated_home: Path, tmp_path: Path, project: Path):
    running, _ = await spawn_bridge(isolated_home, tmp_path / "bridge.lmdb", directory=project)
    running.notify("session.created", {"sessionID": "s1", "directory": str(project),
                                       "agent": {"id": "build", "model": "m", "provider": "p"}})
    yield running
    running.kill()
    await running.wait()


async def test_the_bridge_rejects_invalid_grades_with_invalid_params(bridge: BridgeProcess, project: Path) -> None:
    bridge.notify("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH})
    before = await bridge.request("agent.status", {"agentId": "build"})
    assert before == new_agent_status("build", experiencePoints=5.0, totalCommits=1, pendingChanges=1)
    for value in (3, "2", 2.5, None, math.nan, True, 0, "Good"):
        with pytest.raises(RpcError) as caught:
            await bridge.request("grade", {"sessionID": "s1", "grade": value, "grader": "agent"})
        assert caught.value.code == -32602
        assert GRADES_TEXT in caught.value.message
        # As a notification it is dropped, with a warning in the log.
        bridge.notify("grade", {"sessionID": "s1", "grade": value, "grader": "user"})
    assert await bridge.request("agent.status", {"agentId": "build"}) == before
    dropped = [log["message"] for log in bridge.notifications_of("log") if log["message"].startswith("Dropped grade")]
    assert len(dropped) == 8 and all(GRADES_TEXT in message for message in dropped)
    # A second grade by the same grader: -32602 as well, naming the rule.
    assert (await bridge.request("grade", {"sessionID": "s1", "grade": 2, "grader": "agent"}))["communicationScore"] == 62.0
    with pytest.raises(RpcError) as caught:
        await bridge.request("grade", {"sessionID": "s1", "grade": 5, "grader": "agent"})
    assert caught.value.code == -32602 and "already graded by the agent" in caught.value.message
    assert (await bridge.request("flush"))["transactions"] == 1
    assert (await bridge.request("agent.status", {"agentId": "build"}))["communicationScore"] == 62.0


async def test_the_bridge_notifies_agent_state_on_halt_and_reinstate(bridge: BridgeProcess) -> None:
    bridge.notify("tool.executed", tool("s1", "c1"))
    bridge.notify("bug.reported", {"sessionID": "s1", "description": "bad"})
    halted = await bridge.wait_for_notification("agent.state")
    assert halted == new_agent_status("build", skillPoints=0.0, experiencePoints=1.0, communicationScore=0.0,
                                      totalBugs=1, halted=True, pendingChanges=2,
                                      haltReason="skill points 0 after 1 bug; the latest: a bug was reported: bad")
    bridge.notify("tool.executed", tool("s1", "c2"))
    status = await bridge.request("agent.status", {"sessionID": "s1"})
    assert (status["experiencePoints"], status["halted"]) == (1.0, True)
    reinstated = await bridge.request("agent.reinstate", {"agentId": "build", "reason": "fixed"})
    # The bug was flushed at once (a halt must be visible everywhere); pending since: the halted
    # tool call (it earns nothing) and the reinstatement, which flushes at once too.
    assert reinstated == new_agent_status("build", experiencePoints=1.0, communicationScore=0.0, totalBugs=1,
                                          pendingChanges=2)
    states = bridge.notifications_of("agent.state")
    assert [state["halted"] for state in states] == [True, False]
    assert await bridge.request("agent.status", {"agentId": "build"}) == new_agent_status(
        "build", experiencePoints=1.0, communicationScore=0.0, totalBugs=1)


@pytest.mark.parametrize("output", [
    "fatal: 'origin' does not appear to be a git repository\nfatal: Could not read from remote repository.\n",
    "error: src refspec main does not match any\nerror: failed to push some refs to 'origin'\n",
], ids=["fatal", "failed-to-push"])
def test_a_failed_push_is_not_counted(h: ServiceHarness, output: str) -> None:
    for call in range(2):
        h.send("tool.executed", tool("s1", f"p{call}", tool_name="bash", args={"command": "git push 2>&1 | tee push.log"},
                                     output=output))
    flush_ok(h)
    assert (agent_record(h)["totalPushes"], agent_record(h)["experiencePoints"]) == (0, 2.0)
