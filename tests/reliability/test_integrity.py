"""Integrity: one commit is one row, one grade per grader per commit, for the right agent, halts at once.

Each test drives real bridges (subprocesses) over their stdio and reads the database afterwards;
each was a defect of the hostile run (issue 18, items 5-10 and 14), reproduced here first.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.bridges import ROOT, BridgeProcess, RpcError, bridge_env
from support.tracking import FULL_HASH, bash_commit, read_database, spawn_bridge, tool

from reliability import record

pytestmark = pytest.mark.reliability

SHORT_HASH = FULL_HASH[:7]


async def _session(bridge: BridgeProcess, session: str, project: Path | str, agent: str = "build") -> None:
    bridge.notify("session.created", {"sessionID": session, "directory": str(project),
                                      "agent": {"id": agent, "model": "m", "provider": "p"}})


async def _close(*bridges: BridgeProcess) -> None:
    for bridge in bridges:
        assert await bridge.shutdown_and_exit() == 0


def _agent(db: Path, agent: str) -> dict[str, Any]:
    record_ = read_database(db)["agents"][agent]
    return {k: record_[k] for k in ("skillPoints", "experiencePoints", "communicationScore", "totalCommits",
                                    "totalPushes", "totalBugs")}


async def test_a_halt_is_stored_at_once_so_reinstate_finds_it(isolated_home: Path, tmp_path: Path) -> None:
    """Item 5: the toast says `agent-tracker reinstate build`; it must find the halt with no other flush."""
    db = tmp_path / "db.lmdb"
    bridge, _ = await spawn_bridge(isolated_home, db, directory=tmp_path)
    try:
        await _session(bridge, "s1", tmp_path)
        bridge.notify("bug.reported", {"sessionID": "s1", "description": "broke the build"})
        assert (await bridge.request("agent.status", {"agentId": "build"}))["halted"] is True
        # Another process, while the bridge runs and has flushed nothing on its own accord.
        reinstate = subprocess.run([sys.executable, "-m", "bridge", "reinstate", "build", "--database", str(db)],
                                   capture_output=True, text=True, timeout=60, env=bridge_env(isolated_home),
                                   cwd=str(ROOT))
        assert reinstate.returncode == 0, reinstate.stderr
        assert reinstate.stdout == f"build reinstated in {db}: SP 0 -> 1, active again.\n"
    finally:
        await _close(bridge)
    assert _agent(db, "build")["skillPoints"] == 1.0
    record("integrity-halt-flushed", bug_then_cli_reinstate_exit_code=reinstate.returncode)


async def test_a_short_and_a_full_hash_in_two_bridges_are_one_commit(isolated_home: Path, tmp_path: Path) -> None:
    """Item 6: bash output (short hash) in one bridge, commit.completed (full hash) in another."""
    db = tmp_path / "db.lmdb"
    (a, _), (b, _) = await asyncio.gather(spawn_bridge(isolated_home, db, directory=tmp_path),
                                          spawn_bridge(isolated_home, db, directory=tmp_path))
    try:
        await _session(a, "s1", tmp_path)
        await _session(b, "s2", tmp_path)
        a.notify("tool.executed", bash_commit("s1", "c1", SHORT_HASH))
        b.notify("commit.completed", {"sessionID": "s2", "commitHash": FULL_HASH})
        assert (await a.request("flush"))["errors"] == [] and (await b.request("flush"))["errors"] == []
    finally:
        await _close(a, b)
    commits = read_database(db)["commits"]
    assert [commit["hash"] for commit in commits.values()] == [FULL_HASH]
    assert _agent(db, "build")["totalCommits"] == 1
    record("integrity-short-full-hash", commit_rows=len(commits))


async def test_one_project_under_four_spellings_is_one_project(isolated_home: Path, tmp_path: Path) -> None:
    """Item 6: /p, /p/, /p/. and a symlink to /p name one project (one commit, one project record)."""
    db = tmp_path / "db.lmdb"
    project = tmp_path / "p"
    project.mkdir()
    link = tmp_path / "link-to-p"
    link.symlink_to(project)
    bridge, _ = await spawn_bridge(isolated_home, db, directory=tmp_path)
    try:
        await _session(bridge, "s1", project)
        for spelling in (str(project), f"{project}/", f"{project}/.", str(link)):
            bridge.notify("commit.completed", {"sessionID": "s1", "projectPath": spelling, "commitHash": FULL_HASH})
        assert (await bridge.request("flush"))["errors"] == []
    finally:
        await _close(bridge)
    data = read_database(db)
    assert [commit["projectPath"] for commit in data["commits"].values()] == [str(project)]
    # every spelling of p is the one record of p (the bridge's own folder, tmp_path, has its record
    # too: since issue 27 the stack of a folder the bridge works in is recorded at intake)
    assert sorted(data["projects"]) == sorted({str(tmp_path), str(project)})
    assert _agent(db, "build")["totalCommits"] == 1
    record("integrity-project-spellings", spellings=4, commit_rows=len(data["commits"]))


async def test_one_grader_grades_one_commit_once_even_after_its_hash_grew(isolated_home: Path,
                                                                        tmp_path: Path) -> None:
    """Item 7: a user grade while the commit is known by its short hash, the full hash arrives, a
    second user grade: refused (CS 60 -> 65, never 70; one grade row)."""
    db = tmp_path / "db.lmdb"
    bridge, _ = await spawn_bridge(isolated_home, db, directory=tmp_path)
    try:
        await _session(bridge, "s1", tmp_path)
        bridge.notify("tool.executed", bash_commit("s1", "c1", SHORT_HASH))
        assert (await bridge.request("grade", {"sessionID": "s1", "grade": 5, "grader": "user"}))[
            "communicationScore"] == 65.0
        assert (await bridge.request("flush"))["errors"] == []
        bridge.notify("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH})
        with pytest.raises(RpcError) as refused:
            await bridge.request("grade", {"sessionID": "s1", "commitHash": FULL_HASH, "grade": 5, "grader": "user"})
        assert (refused.value.code, refused.value.message) == (-32602, (
            f"Commit {FULL_HASH[:12]} was already graded by the user: each commit gets one agent grade "
            f"and one user grade."))
    finally:
        await _close(bridge)
    data = read_database(db)
    assert len(data["communication"]) == 1
    assert _agent(db, "build")["communicationScore"] == 65.0
    record("integrity-grade-after-hash-upgrade", grade_rows=len(data["communication"]))


async def test_a_grade_belongs_to_the_commits_author_not_the_sessions_current_agent(isolated_home: Path,
                                                                                   tmp_path: Path) -> None:
    """Item 8: build commits, the user switches the session to plan, then /grade (which names plan)."""
    db = tmp_path / "db.lmdb"
    bridge, _ = await spawn_bridge(isolated_home, db, directory=tmp_path)
    try:
        await _session(bridge, "s1", tmp_path)
        bridge.notify("commit.completed", {"sessionID": "s1", "commitHash": FULL_HASH})
        bridge.notify("session.updated", {"sessionID": "s1", "agent": {"id": "plan", "model": "m", "provider": "p"}})
        result = await bridge.request("grade", {"sessionID": "s1", "agentId": "plan", "projectPath": str(tmp_path),
                                                "grade": 5, "grader": "user"})
        assert result == {"agentId": "build", "commitHash": FULL_HASH, "grade": 5, "communicationScore": 65.0}
        plan = await bridge.request("agent.status", {"agentId": "plan"})
    finally:
        await _close(bridge)
    assert _agent(db, "build")["communicationScore"] == 65.0
    assert plan["communicationScore"] == 60.0
    grade = next(iter(read_database(db)["communication"].values()))
    assert (grade["agentId"], grade["model"], grade["provider"]) == ("build", "m", "p")


async def test_a_grade_for_an_unknown_commit_is_refused(isolated_home: Path, tmp_path: Path) -> None:
    """Item 9: the contract says a grade needs a recorded commit; it used to raise `unknown`'s CS."""
    db = tmp_path / "db.lmdb"
    bridge, _ = await spawn_bridge(isolated_home, db, directory=tmp_path)
    try:
        with pytest.raises(RpcError) as refused:
            await bridge.request("grade", {"projectPath": str(tmp_path), "commitHash": "deadbeef", "grade": 5,
                                           "grader": "user"})
        assert refused.value.code == -32602
        assert refused.value.message == (
            f"There is no commit deadbeef in {tmp_path} to grade: grades are given to commits the tracker "
            f"recorded (see `agent-tracker export`).")
    finally:
        await _close(bridge)
    data = read_database(db)
    assert data["communication"] == {} and "unknown" not in data["agents"]


def _headless_push(session: str, call: str) -> dict[str, Any]:
    return tool(session, call, tool_name="bash", args={"command": "git push"}, output="")


async def test_pushes_count_once_per_head_or_per_session_and_branch(isolated_home: Path, tmp_path: Path) -> None:
    """Item 10: pushes with no head and no known commit (3 in each of two sessions), a head pushed by
    two bridges (one with a stale cache), and an earlier head pushed again."""
    db = tmp_path / "db.lmdb"
    (a, _), (b, _) = await asyncio.gather(spawn_bridge(isolated_home, db, directory=tmp_path),
                                          spawn_bridge(isolated_home, db, directory=tmp_path))
    head_1, head_2 = "1" * 40, "2" * 40
    try:
        await _session(a, "s1", tmp_path)
        await _session(b, "s2", tmp_path)
        for call in ("p1", "p2", "p3"):
            a.notify("tool.executed", _headless_push("s1", call))
            b.notify("tool.executed", _headless_push("s2", call))
        assert (await a.request("flush"))["errors"] == [] and (await b.request("flush"))["errors"] == []
        without_head = _agent(db, "build")["totalPushes"]
        # B learns of head_1 by pushing it; A pushes head_1 too, then head_2, then head_1 again.
        await b.request("commit.pushed", {"sessionID": "s2", "head": head_1})
        await a.request("commit.pushed", {"sessionID": "s1", "head": head_1})
        await a.request("commit.pushed", {"sessionID": "s1", "head": head_2})
        await a.request("commit.pushed", {"sessionID": "s1", "head": head_1[:7]})
    finally:
        await _close(a, b)
    build = _agent(db, "build")
    assert without_head == 2
    assert (build["totalPushes"], build["experiencePoints"]) == (4, 6 * 1.0 + 4 * 10.0)
    sessions = read_database(db)["sessions"]
    assert (sessions["s1"]["pushes"], sessions["s2"]["pushes"]) == (2, 2)
    record("integrity-pushes", pushes_sent=10, pushes_counted=build["totalPushes"])


async def test_lone_surrogates_in_identifiers_are_replaced_and_kept(isolated_home: Path, tmp_path: Path) -> None:
    """Item 14: the contract says lone surrogates become U+FFFD and the event is kept, not -32603."""
    db = tmp_path / "db.lmdb"
    bridge, _ = await spawn_bridge(isolated_home, db, directory=tmp_path)
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": "x", "method": "tool.executed", "params": {
            "sessionID": "s\ud800", "callID": "c1", "tool": "read", "success": True, "agentId": "a\udfff"}})
        answer = await bridge.send_request(json.loads(body))
        assert answer == {"jsonrpc": "2.0", "id": "x", "result": {"counted": True, "xp": 1.0}}
        commit = await bridge.request("commit.completed", {"sessionID": "s\ud800", "commitHash": FULL_HASH,
                                                           "projectPath": f"{tmp_path}/p\udc00"})
        assert commit == {"counted": True, "commitHash": FULL_HASH}
    finally:
        await _close(bridge)
    data = read_database(db)
    assert "s\ufffd" in data["sessions"] and "a\ufffd" in data["agents"]
    assert [c["projectPath"] for c in data["commits"].values()] == [f"{tmp_path}/p\ufffd"]
