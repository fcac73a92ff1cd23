"""Issue 14: usage per message (idempotent per messageID) and tool calls counted once per callID,
whichever process saw them: real TrackingServices on real LMDB stores."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import lmdb
import orjson
import pytest
from support.tracking import (
    ServiceHarness,
    bash_commit,
    close_harness,
    make_harness,
    open_store,
    tool,
)

from bridge.config import BridgeConfig
from bridge.protocol.structure import InvalidParams
from bridge.store import SUB_DATABASES, Store, key

T0 = "2026-11-26T05:00:00.000Z"
BUILD = {"id": "build", "model": "claude-sonnet-4-5", "provider": "anthropic"}
SETUP = "build|anthropic/claude-sonnet-4-5"


def usage(session: str, message: str, cost: float, tokens: dict[str, int], duration: int | None = 1000,
          agent: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"sessionID": session, "messageID": message, "cost": cost, "tokens": tokens}
    if duration is not None:
        params["durationMs"] = duration
    if agent is not None:
        params["agent"] = agent
    return params


@pytest.fixture
def h(tmp_path: Path, project: Path):
    harness = make_harness(open_store(tmp_path / "t.lmdb"), directory=str(project))
    harness.send("session.created", {"sessionID": "s1", "directory": str(project), "agent": BUILD})
    yield harness
    close_harness(harness)


def flush(h: ServiceHarness) -> None:
    result = h.service.flush()
    assert result.errors == []


def session_usage(h: ServiceHarness, session: str = "s1") -> dict[str, Any]:
    record = h.stored("sessions", session)
    assert record is not None
    return record.get("usage", {})


# -- usage ------------------------------------------------------------------------------------------


def test_usage_is_summed_per_setup_and_a_resent_message_replaces(h: ServiceHarness) -> None:
    assert h.send("usage.recorded", usage("s1", "m1", 0.00396, {"input": 800, "output": 80, "reasoning": 20,
                                                                "cacheRead": 200}, 4722)) == {"recorded": True}
    h.send("usage.recorded", usage("s1", "m2", 0.0018, {"input": 300, "output": 40, "cacheRead": 1000}, 2000))
    flush(h)
    assert session_usage(h) == {SETUP: {"messages": 2, "cost": 0.00396 + 0.0018, "input": 1100, "output": 120,
                                        "reasoning": 20, "cacheRead": 1200, "cacheWrite": 0, "durationMs": 6722}}
    # m2 again, later and with other numbers (OpenCode repeats message.updated): replaced, not added
    h.send("usage.recorded", usage("s1", "m2", 0.002, {"input": 310, "output": 40, "cacheRead": 1000}, 2100))
    h.send("usage.recorded", usage("s1", "m2", 0.002, {"input": 310, "output": 40, "cacheRead": 1000}, 2100))
    flush(h)
    assert session_usage(h)[SETUP] == {"messages": 2, "cost": 0.00396 + 0.002, "input": 1110, "output": 120,
                                       "reasoning": 20, "cacheRead": 1200, "cacheWrite": 0, "durationMs": 6822}
    assert h.count("usage") == 2
    assert h.stored("usage", key("s1", "m2")) == {
        "sessionID": "s1", "messageID": "m2", "agentId": "build", "provider": "anthropic",
        "model": "claude-sonnet-4-5", "setup": SETUP, "cost": 0.002,
        "tokens": {"input": 310, "output": 40, "reasoning": 0, "cacheRead": 1000, "cacheWrite": 0},
        "durationMs": 2100, "recordedAt": h.stored("usage", key("s1", "m2"))["recordedAt"]}


def test_a_message_sent_again_by_another_process_replaces_too(h: ServiceHarness, tmp_path: Path) -> None:
    h.send("usage.recorded", usage("s1", "m1", 0.1, {"input": 10}))
    flush(h)
    other = make_harness(h.store, journal=False)
    other.send("usage.recorded", usage("s1", "m1", 0.1, {"input": 10}))
    other.service.flush()
    assert session_usage(h)[SETUP]["messages"] == 1 and session_usage(h)[SETUP]["cost"] == 0.1


def test_the_messages_own_setup_counts_else_the_sessions(h: ServiceHarness) -> None:
    plan = {"id": "plan", "model": "gpt-5", "provider": "openai"}
    h.send("usage.recorded", usage("s1", "m1", 0.5, {"output": 5}))  # no agent: the session's
    h.send("usage.recorded", usage("s1", "m2", 0.25, {"output": 7}, agent=plan))
    h.send("usage.recorded", usage("s1", "m3", 0.0, {"output": 1}, duration=None, agent={"id": "general"}))
    flush(h)
    found = session_usage(h)
    assert sorted(found) == [SETUP, "general|unknown-model", "plan|openai/gpt-5"]
    assert (found[SETUP]["cost"], found["plan|openai/gpt-5"]["output"]) == (0.5, 7)
    assert found["general|unknown-model"] == {"messages": 1, "cost": 0.0, "input": 0, "output": 1, "reasoning": 0,
                                              "cacheRead": 0, "cacheWrite": 0, "durationMs": 0}


COST_RULE = "must be a finite number from 0 to 1,000,000 (US dollars for one model call: a larger one would " \
            "make the sums overflow)"
COUNT_RULE = "must be a whole number from 0 to 10,000,000,000 (one model call)"


@pytest.mark.parametrize("bad, message", [
    ({"cost": -0.01}, f"params.cost {COST_RULE}; got -0.01"),
    ({"cost": True}, f"params.cost {COST_RULE}; got True"),
    # Each alone once passed, and two of them summed to inf (issue 27): refused at intake now.
    ({"cost": 1e308}, f"params.cost {COST_RULE}; got 1e+308"),
    ({"cost": 1_000_000.01}, f"params.cost {COST_RULE}; got 1000000.01"),
    ({"tokens": {"input": -1}}, f"params.tokens.input {COUNT_RULE}; got -1"),
    ({"tokens": {"output": 1.5}}, f"params.tokens.output {COUNT_RULE}; got 1.5"),
    ({"tokens": {"cacheRead": 10**10 + 1}}, f"params.tokens.cacheRead {COUNT_RULE}; got 10000000001"),
    ({"durationMs": -5}, f"params.durationMs {COUNT_RULE}; got -5"),
    ({"messageID": ""}, "params.messageID must be a non-empty string"),
])
def test_bad_usage_is_refused_and_changes_nothing(h: ServiceHarness, bad: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParams, match=re.escape(message)):
        h.send("usage.recorded", {**usage("s1", "m1", 0.1, {"input": 1}), **bad})
    flush(h)
    assert h.count("usage") == 0


# -- tool calls: once per session and callID, across processes --------------------------------------


def test_a_call_counted_and_flushed_elsewhere_is_not_counted_again(h: ServiceHarness, project: Path) -> None:
    h.send("tool.executed", tool("s1", "c1"))
    h.send("tool.executed", tool("s1", "c2", success=False))
    flush(h)
    importer = make_harness(h.store, journal=False)
    assert importer.send("tool.executed", tool("s1", "c1")) == {"counted": False, "reason": "duplicate callID"}
    assert importer.send("tool.executed", tool("s1", "c2", success=False))["counted"] is False
    assert importer.send("tool.executed", tool("s1", "c3"))["counted"] is True
    importer.service.flush()
    session = h.stored("sessions", "s1")
    assert (session["toolCalls"], session["failedToolCalls"], session["xpEarned"]) == (2, 1, 2)
    assert h.stored("agents", "build")["experiencePoints"] == 2
    # the ledger: one chunk per flush that counted something, with just what it counted
    assert h.all("calls") == [("s1\x0000000000", {"sessionID": "s1", "callIDs": ["c1", "c2"]}),
                              ("s1\x0000000001", {"sessionID": "s1", "callIDs": ["c3"]})]


def test_calls_both_processes_buffered_count_once_at_flush(h: ServiceHarness, project: Path) -> None:
    """A live bridge and an import both hold the same calls unflushed: the second flush finds them
    in the session's ledger and counts only what is new (XP, session counters, commits)."""
    other = make_harness(h.store, journal=False)
    other.send("session.created", {"sessionID": "s1", "directory": str(project), "agent": BUILD})
    for harness in (h, other):
        harness.send("tool.executed", tool("s1", "c1"))
        harness.send("tool.executed", tool("s1", "c2", success=False))
        harness.send("tool.executed", bash_commit("s1", "c3", "abc1234"))
    other.send("tool.executed", tool("s1", "c4"))
    flush(h)
    other.service.flush()
    session = h.stored("sessions", "s1")
    assert (session["toolCalls"], session["failedToolCalls"], session["commits"]) == (3, 1, 1)
    assert session["xpEarned"] == 3 + 5
    agent = h.stored("agents", "build")
    assert (agent["experiencePoints"], agent["totalCommits"]) == (8, 1)
    assert [chunk["callIDs"] for _, chunk in h.all("calls")] == [["c1", "c3", "c2"], ["c4"]]


def test_a_session_counted_before_calls_had_ids_is_marked(h: ServiceHarness, project: Path) -> None:
    """Counters without a ledger were written by a bridge that kept no callIDs: the ledger says
    from when on its callIDs are complete."""
    h.store.write(lambda view: view.put("sessions", "old", {"sessionID": "old", "projectPath": str(project),
                                                           "agentId": "build", "toolCalls": 4,
                                                           "failedToolCalls": 1, "createdAt": T0}))
    h.send("tool.executed", tool("old", "n1"), received_at="2026-11-27T00:00:00.000Z")
    flush(h)
    ledger = h.stored("calls", "old\x0000000000")
    assert ledger is not None and ledger["callIDs"] == ["n1"]
    assert ledger["countedWithoutIdsBefore"] > "2026-11-27"
    assert h.stored("sessions", "old")["toolCalls"] == 5


# -- the database layout: sub-databases added later --------------------------------------------------


def _old_database(path: Path) -> None:
    """A database as a bridge before issue 14 left it: the nine first sub-databases only."""
    env = lmdb.open(str(path), subdir=False, max_dbs=12, map_size=1 << 24)
    with env.begin(write=True) as txn:
        for name in SUB_DATABASES[:9]:
            db = env.open_db(name.encode(), txn=txn)
            if name == "meta":
                txn.put(b"schemaVersion", b"1", db=db)
            if name == "sessions":
                txn.put(b"s0", orjson.dumps({"sessionID": "s0", "agentId": "build", "model": "m",
                                             "createdAt": T0, "toolCalls": 2}), db=db)
    env.close()


def test_a_database_of_an_older_bridge_opens_read_only(tmp_path: Path) -> None:
    path = tmp_path / "old.lmdb"
    _old_database(path)
    store = Store.open(BridgeConfig(database_path=str(path)), readonly=True)
    assert store.available, store.error
    with store.read() as view:
        assert (view.get("usage", "s0\x00m"), view.count("calls"), list(view.scan("usage"))) == (None, 0, [])
        assert list(view.raw_values("calls")) == []
    from bridge.report.build import build_report
    report = build_report(store)
    assert [(row.agent, row.sessions, row.cost) for row in report.setups] == [("build", 1, None)]
    store.close()
    writable = open_store(path)  # a bridge adds the new sub-databases
    with writable.read() as view:
        assert view.count("usage") == 0
    writable.close()


def test_a_database_of_a_newer_agent_tracker_is_read_but_not_written(tmp_path: Path) -> None:
    path = tmp_path / "newer.lmdb"
    open_store(path).close()
    env = lmdb.open(str(path), subdir=False, max_dbs=20)
    with env.begin(write=True) as txn:
        env.open_db(b"future", txn=txn)
    env.close()
    reader = Store.open(BridgeConfig(database_path=str(path)), readonly=True)
    assert reader.available, reader.error
    reader.close()
    writer = Store.open(BridgeConfig(database_path=str(path)))
    assert not writer.available
    assert writer.error == (f"The database at {path} was written by a newer agent-tracker (it has the sub-databases "
                            f"future, which this one does not know); upgrade agent-tracker to record into it. Reading "
                            f"it (report, status, export) still works.")


# -- records that stay right when past sessions arrive ------------------------------------------------


def test_an_agent_named_before_its_model_is_one_setup(h: ServiceHarness, project: Path) -> None:
    """OpenCode's session.created of a subagent's session names the agent, its model comes next."""
    h.send("session.created", {"sessionID": "sub", "directory": str(project), "parentID": "s1",
                               "agent": {"id": "general"}})
    h.send("session.updated", {"sessionID": "sub", "agent": {"id": "general", "model": "m", "provider": "p"}})
    flush(h)
    assert h.stored("sessions", "sub")["setups"] == ["general|p/m"]
    h.send("session.updated", {"sessionID": "sub", "agent": {"id": "plan", "model": "n", "provider": "p"}})
    flush(h)  # another agent: another setup, as before
    assert h.stored("sessions", "sub")["setups"] == ["general|p/m", "plan|p/n"]


def test_latest_times_never_go_back(h: ServiceHarness, project: Path) -> None:
    """Events of the past (an import) leave what happened later as it is."""
    h.send("tool.executed", bash_commit("s1", "c1", "abc1234"), received_at="2026-11-27T10:00:00.000Z")
    flush(h)
    h.send("tool.executed", bash_commit("s1", "c0", "0ff0ff0"), received_at="2026-11-20T10:00:00.000Z")
    h.send("session.idle", {"sessionID": "s1"}, received_at="2026-11-20T10:00:01.000Z")
    flush(h)
    session, stored_project = h.stored("sessions", "s1"), h.stored("projects", str(project))
    assert session["updatedAt"] == "2026-11-27T10:00:00.000Z" and session["commits"] == 2
    assert (stored_project["lastCommit"], stored_project["lastCommitAt"]) == ("abc1234", "2026-11-27T10:00:00.000Z")
    assert session["lastIdleAt"] == "2026-11-20T10:00:01.000Z"  # the first: nothing later to keep
