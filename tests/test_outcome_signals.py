"""Issue 15: the signals nobody has to type, bugs by hand, retrospectives, session summaries, subagents.

Each signal goes through the real bridge (spawned, JSON-RPC over stdio) and is checked with exact
numbers in its `report` answer, the stored records and the CLI: tool-call failure rate, reverted
commits (a bug against the agent that made them), abandoned sessions, fix-up commits, and a
subagent's session credited to its root session's setup.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from support.bridges import BridgeProcess, RpcError
from support.tracking import make_harness, open_store, read_database, spawn_bridge, tool

from bridge.cli import main
from bridge.report.build import build_report
from bridge.tracking.git_commands import FIXUP_WINDOW

CLAUDE = {"id": "build", "provider": "anthropic", "model": "claude-x"}
GPT = {"id": "plan", "provider": "openai", "model": "gpt-5"}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "pyproject.toml").write_text('[project]\ndependencies = ["fastapi"]\n')
    return folder


def bash(session: str, call: str, command: str, output: str, success: bool = True) -> dict[str, Any]:
    return tool(session, call, tool_name="bash", success=success, args={"command": command}, output=output)


def commit_line(short_hash: str, subject: str) -> str:
    return f"[main {short_hash}] {subject}\n 1 file changed, 1 insertion(+)\n"


def row(report: dict[str, Any], agent: str, model: str) -> dict[str, Any]:
    found = [r for r in report["setups"] if (r["agent"], r["model"]) == (agent, model)]
    assert len(found) == 1, report["setups"]
    return found[0]


async def started(home: Path, tmp_path: Path, shop: Path) -> BridgeProcess:
    bridge, _ = await spawn_bridge(home, tmp_path / "db.lmdb", directory=shop)
    return bridge


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- tool-call failure rate --------------------------------------------------------------------------------

async def test_tool_failure_rate(isolated_home: Path, tmp_path: Path, shop: Path) -> None:
    bridge = await started(isolated_home, tmp_path, shop)
    try:
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(shop), "agent": CLAUDE})
        for call in ("r1", "r2", "r3"):
            bridge.notify("tool.executed", tool("s1", call))
        bridge.notify("tool.executed", tool("s1", "e1", tool_name="edit", success=False))
        bridge.notify("tool.executed", tool("s1", "e1", tool_name="edit", success=False))  # the same call: once
        bridge.notify("tool.executed", bash("s1", "b1", "npm test", "1 failing", success=False))
        bridge.notify("session.created", {"sessionID": "s2", "directory": str(shop), "agent": CLAUDE})
        bridge.notify("tool.executed", tool("s2", "r1"))  # another session, the same callID: counted
        report = await bridge.request("report", {})
        claude = row(report, "build", "anthropic/claude-x")
        assert (claude["toolCalls"], claude["failedToolCalls"], claude["toolFailureRate"]) == (6, 2, 2 / 6)
        assert claude["scoreParts"]["toolSuccess"] == 1 - 2 / 6
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    sessions = read_database(tmp_path / "db.lmdb")["sessions"]
    assert (sessions["s1"]["toolCalls"], sessions["s1"]["failedToolCalls"]) == (3, 2)


# -- a reverted commit is a bug of the agent that made it ------------------------------------------------

async def test_reverted_commits_are_bugs_of_the_agent_that_made_them(isolated_home: Path, tmp_path: Path,
                                                                      shop: Path) -> None:
    bridge = await started(isolated_home, tmp_path, shop)
    try:
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(shop), "agent": CLAUDE})
        bridge.notify("tool.executed", bash("s1", "c1", "git commit -am 'feat: a'", commit_line("aaa1111", "feat: a")))
        bridge.notify("tool.executed", bash("s1", "c2", "git commit -am 'feat: b'", commit_line("bbb2222", "feat: b")))
        bridge.notify("session.created", {"sessionID": "s2", "directory": str(shop), "agent": GPT})
        # `git revert <hash>`: a bug for build (SP 1 -> 0: halted)
        bridge.notify("tool.executed", bash("s2", "r1", "git revert --no-edit aaa1111",
                                            commit_line("ccc3333", 'Revert "feat: a"')))
        halted = await bridge.wait_for_notification("agent.state")
        assert (halted["agentId"], halted["halted"], halted["totalBugs"]) == ("build", True, 1)
        assert halted["haltReason"] == "skill points 0 after 1 bug; the latest: its commit aaa1111 was reverted by ccc3333"
        # the same revert reported again with its full message: still one bug
        full = "ccc3333" + "0" * 33
        counted = await bridge.request("commit.completed", {
            "sessionID": "s2", "projectPath": str(shop), "commitHash": full,
            "taskDescription": 'Revert "feat: a"\n\nThis reverts commit aaa1111.'})
        assert counted == {"counted": False, "commitHash": full, "reason": "already recorded"}
        # a commit whose message says it reverts one: a second bug for build
        bridge.notify("tool.executed", bash("s2", "r2", "git commit -am 'Revert \"feat: b\"' -m 'This reverts commit bbb2222.'",
                                            commit_line("ddd4444", 'Revert "feat: b"')))
        # reverting a commit nobody recorded (made by hand): no bug for anyone
        bridge.notify("tool.executed", bash("s2", "r3", "git revert --no-edit 0123abc",
                                            commit_line("eee5555", 'Revert "by hand"')))
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert (status["skillPoints"], status["totalBugs"], status["halted"]) == (-1.0, 2, True)
        assert status["haltReason"].endswith("its commit bbb2222 was reverted by ddd4444")
        plan = await bridge.request("agent.status", {"agentId": "plan"})
        assert (plan["skillPoints"], plan["totalBugs"], plan["totalCommits"]) == (1.0, 0, 3)
        report = await bridge.request("report", {})
        claude, gpt = row(report, "build", "anthropic/claude-x"), row(report, "plan", "openai/gpt-5")
        assert (claude["commits"], claude["bugs"], claude["revertedCommits"], claude["bugsPerCommit"]) == (2, 2, 2, 1.0)
        assert claude["scoreParts"]["reliability"] == 0.0
        assert (gpt["commits"], gpt["bugs"], gpt["revertedCommits"]) == (3, 0, 0)
        announced = [n["commitHash"] for n in bridge.notifications_of("commit.recorded")]
        assert announced == ["aaa1111", "bbb2222", "ccc3333", "ddd4444", "eee5555"]  # each once
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    data = read_database(tmp_path / "db.lmdb")
    reverted = {record["hash"]: record.get("revertedBy") for record in data["commits"].values()}
    assert reverted == {"aaa1111": "ccc3333", "bbb2222": "ddd4444", full: None, "ddd4444": None, "eee5555": None}
    bugs = [a for a in data["activities"].values() if a["kind"] == "bug"]
    assert sorted((b["agentId"], b["commitHash"], b["revertedBy"], b["source"], b["model"]) for b in bugs) == [
        ("build", "aaa1111", "ccc3333", "revert", "claude-x"), ("build", "bbb2222", "ddd4444", "revert", "claude-x")]


async def test_git_revert_head_reverts_the_latest_commit(isolated_home: Path, tmp_path: Path, shop: Path) -> None:
    bridge = await started(isolated_home, tmp_path, shop)
    try:
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(shop), "agent": CLAUDE})
        bridge.notify("tool.executed", bash("s1", "c1", "git commit -am x", commit_line("aaa1111", "feat: a")))
        bridge.notify("tool.executed", bash("s1", "c2", "git revert HEAD --no-edit", commit_line("bbb2222", 'Revert "feat: a"')))
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert (status["totalBugs"], status["totalCommits"], status["halted"]) == (1, 2, True)
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    commits = {r["hash"]: r for r in read_database(tmp_path / "db.lmdb")["commits"].values()}
    assert commits["aaa1111"]["revertedBy"] == "bbb2222" and "revertedBy" not in commits["bbb2222"]


# -- abandoned sessions, and the summary each session leaves when it ends ------------------------------------

async def test_abandoned_sessions_and_session_summaries(isolated_home: Path, tmp_path: Path, shop: Path) -> None:
    bridge = await started(isolated_home, tmp_path, shop)
    try:
        for sid in ("done", "dropped", "open", "delegated"):
            bridge.notify("session.created", {"sessionID": sid, "directory": str(shop), "agent": CLAUDE})
        bridge.notify("tool.executed", bash("done", "c1", "git commit -am x", commit_line("aaa1111", "feat: a")))
        bridge.notify("session.deleted", {"sessionID": "done"})
        bridge.notify("tool.executed", tool("dropped", "t1"))
        bridge.notify("tool.executed", tool("dropped", "t2", success=False))
        bridge.notify("session.deleted", {"sessionID": "dropped"})
        bridge.notify("tool.executed", tool("open", "t1"))
        # a root without a commit of its own whose subagent committed: not abandoned
        bridge.notify("session.created", {"sessionID": "helper", "directory": str(shop), "parentID": "delegated",
                                          "agent": {"id": "general", "provider": "anthropic", "model": "claude-x"}})
        bridge.notify("tool.executed", bash("helper", "c1", "git commit -am y", commit_line("bbb2222", "feat: b")))
        report = await bridge.request("report", {})
        claude = row(report, "build", "anthropic/claude-x")
        # while the bridge runs, only the deleted sessions have ended
        assert (claude["sessions"], claude["endedSessions"], claude["abandonedSessions"], claude["abandonRate"]) == (
            4, 2, 1, 0.5)
        assert await bridge.shutdown_and_exit() == 0  # the three open sessions (and the subagent's) end
    finally:
        bridge.kill()
    store = open_store(tmp_path / "db.lmdb")
    try:
        rows = {(r.agent, r.model): r for r in build_report(store).setups}
    finally:
        store.close()
    claude_row = rows[("build", "anthropic/claude-x")]
    assert (claude_row.sessions, claude_row.ended_sessions, claude_row.abandoned_sessions) == (4, 4, 2)
    assert claude_row.parts["completion"] == 0.5
    assert list(rows) == [("build", "anthropic/claude-x")]  # the subagent's session is never a setup of its own

    data = read_database(tmp_path / "db.lmdb")
    assert all(data["sessions"][sid].get("endedAt") for sid in ("done", "dropped", "open", "delegated", "helper"))
    summaries = {a["sessionID"]: a for a in data["activities"].values() if a["kind"] == "session"}
    assert sorted(summaries) == ["delegated", "done", "dropped", "helper", "open"]
    numbers = {sid: {k: a["data"][k] for k in ("toolCalls", "failedToolCalls", "commits", "reason")}
               for sid, a in summaries.items()}
    assert numbers == {
        "done": {"toolCalls": 1, "failedToolCalls": 0, "commits": 1, "reason": "deleted"},
        "dropped": {"toolCalls": 1, "failedToolCalls": 1, "commits": 0, "reason": "deleted"},
        "open": {"toolCalls": 1, "failedToolCalls": 0, "commits": 0, "reason": "shutdown"},
        "delegated": {"toolCalls": 0, "failedToolCalls": 0, "commits": 0, "reason": "shutdown"},
        "helper": {"toolCalls": 1, "failedToolCalls": 0, "commits": 1, "reason": "shutdown"},
    }
    assert summaries["helper"]["agentId"] == "general" and summaries["helper"]["data"]["parentID"] == "delegated"
    assert summaries["dropped"]["description"].startswith("2 tool calls (1 failed), 0 commits in ")
    assert all(isinstance(a["data"]["durationMs"], int) and a["data"]["durationMs"] >= 0 for a in summaries.values())


# -- fix-up commits soon after, in the same session ----------------------------------------------------------

async def test_fixup_commits(isolated_home: Path, tmp_path: Path, shop: Path) -> None:
    bridge = await started(isolated_home, tmp_path, shop)
    try:
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(shop), "agent": CLAUDE})
        steps = [
            ("git commit -am 'feat: a'", "aaa1111", "feat: a"),
            ("git add -A && git commit --amend --no-edit", "aaa2222", "feat: a"),  # amends aaa1111
            ("git commit -am 'feat: b'", "bbb1111", "feat: b"),
            ("git commit -am 'feat: c'", "ccc1111", "feat: c"),
            ("git commit --fixup=bbb1111", "ddd1111", "fixup! feat: b"),  # fixes bbb1111, not the latest
            ("git commit --fixup=bbb1111", "eee1111", "fixup! feat: b"),  # bbb1111 is counted once
        ]
        for number, (command, short_hash, subject) in enumerate(steps):
            bridge.notify("tool.executed", bash("s1", f"c{number}", command, commit_line(short_hash, subject)))
        # an amend in another session does not count against the first session's commit
        bridge.notify("session.created", {"sessionID": "s2", "directory": str(shop), "agent": CLAUDE})
        bridge.notify("tool.executed", bash("s2", "c1", "git commit --amend -m 'feat: c2'", commit_line("fff1111", "feat: c2")))
        report = await bridge.request("report", {})
        claude = row(report, "build", "anthropic/claude-x")
        assert (claude["commits"], claude["fixedUpCommits"], claude["fixupRate"]) == (7, 2, 2 / 7)
        assert claude["scoreParts"]["cleanCommits"] == 1 - 2 / 7
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    commits = {r["hash"]: r for r in read_database(tmp_path / "db.lmdb")["commits"].values()}
    assert {h: (c.get("fixedUpBy"), c.get("fixupKind")) for h, c in commits.items() if c.get("fixedUpBy")} == {
        "aaa1111": ("aaa2222", "amend"), "bbb1111": ("ddd1111", "fixup")}
    assert (commits["eee1111"]["fixupOf"], commits["aaa2222"]["fixupOf"]) == ("bbb1111", "aaa1111")
    assert "fixupOf" not in commits["fff1111"]


def test_a_fixup_later_than_the_window_does_not_count(tmp_path: Path, shop: Path) -> None:
    harness = make_harness(open_store(tmp_path / "db.lmdb"), directory=str(shop))
    start = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)

    def at(delta: timedelta) -> str:
        return (start + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    harness.send("session.created", {"sessionID": "s1", "directory": str(shop), "agent": CLAUDE}, at(timedelta()))
    harness.send("tool.executed", bash("s1", "c1", "git commit -m a", commit_line("aaa1111", "feat: a")), at(timedelta()))
    harness.send("tool.executed", bash("s1", "c2", "git commit --amend", commit_line("aaa2222", "feat: a")),
                 at(FIXUP_WINDOW + timedelta(seconds=1)))
    harness.send("tool.executed", bash("s1", "c3", "git commit --amend", commit_line("aaa3333", "feat: a")),
                 at(FIXUP_WINDOW + timedelta(minutes=5)))  # 5 minutes after aaa2222: fixes it
    assert not harness.service.flush().errors
    commits = {r["hash"]: r.get("fixedUpBy") for _, r in harness.all("commits")}
    assert commits == {"aaa1111": None, "aaa2222": "aaa3333", "aaa3333": None}
    harness.service.journal.close(remove=True)  # type: ignore[union-attr]
    harness.store.close()


# -- subagents: a child session counts for its root session's setup ------------------------------------------

async def test_subagent_sessions_count_for_the_root_sessions_setup(isolated_home: Path, tmp_path: Path,
                                                                    shop: Path) -> None:
    bridge = await started(isolated_home, tmp_path, shop)
    try:
        bridge.notify("session.created", {"sessionID": "root", "directory": str(shop), "agent": CLAUDE})
        bridge.notify("tool.executed", tool("root", "t1"))
        bridge.notify("session.created", {"sessionID": "child", "directory": str(shop), "parentID": "root",
                                          "title": "Inspect (@general subagent)"})
        bridge.notify("session.updated", {"sessionID": "child",
                                          "agent": {"id": "general", "provider": "openai", "model": "gpt-5-mini"}})
        bridge.notify("tool.executed", tool("child", "t1"))
        bridge.notify("tool.executed", tool("child", "t2", success=False))
        bridge.notify("tool.executed", bash("child", "t3", "git commit -am 'feat: x'", commit_line("fff1111", "feat: x")))
        # a subagent of the subagent
        bridge.notify("session.created", {"sessionID": "grandchild", "directory": str(shop), "parentID": "child",
                                          "agent": {"id": "explore", "provider": "openai", "model": "gpt-5-mini"}})
        bridge.notify("tool.executed", tool("grandchild", "t1"))
        # the user grades in the root session: the subagent's commit is the latest there
        graded = await bridge.request("grade", {"sessionID": "root", "grade": 5, "grader": "user"})
        assert (graded["agentId"], graded["commitHash"]) == ("general", "fff1111")
        await bridge.request("grade", {"sessionID": "child", "grade": 2, "grader": "agent"})
        report = await bridge.request("report", {})
        assert (report["totals"]["sessions"], report["totals"]["subagentSessions"]) == (1, 2)
        assert [(r["agent"], r["model"]) for r in report["setups"]] == [("build", "anthropic/claude-x")]
        claude = report["setups"][0]
        assert claude["workflow"] == "build → explore, general"
        assert (claude["sessions"], claude["commits"], claude["commitsPerSession"]) == (1, 1, 1.0)
        assert (claude["toolCalls"], claude["failedToolCalls"]) == (5, 1)
        assert (claude["userGrades"], claude["meanUserGrade"], claude["agentGrades"], claude["meanAgentGrade"]) == (
            1, 5.0, 1, 2.0)
        # XP: root 1 (a read); general 1 + 1 + 5 (a read, the bash commit, the commit); explore 1
        assert claude["xpPerSession"] == 9.0
        assert claude["subagents"] == [
            {"agent": "general", "sessions": 1, "toolCalls": 3, "failedToolCalls": 1, "commits": 1, "xp": 7.0,
             "workShare": 3 / 5},
            {"agent": "explore", "sessions": 1, "toolCalls": 1, "failedToolCalls": 0, "commits": 0, "xp": 1.0,
             "workShare": 1 / 5},
        ]
        assert claude["subagentWorkShare"] == 4 / 5
        assert "build → explore, general" in report["text"]
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    store = open_store(tmp_path / "db.lmdb")
    try:
        fast, careful = build_report(store), build_report(store, _force_slow=True)
        assert [r.to_wire() for r in fast.setups] == [r.to_wire() for r in careful.setups]
        assert fast.totals == careful.totals
        # the subagent's own numbers stay on its agent's sheet
        with store.read() as view:
            general = view.get("agents", "general")
            commit = next(r for _, r in view.scan("commits"))
        assert (general["totalCommits"], general["communicationScore"]) == (1, 60 + 5 + 2)
        assert (commit["sessionID"], commit["parentID"]) == ("child", "root")
    finally:
        store.close()


# -- retrospectives -------------------------------------------------------------------------------------------

async def test_retrospectives_for_the_latest_commit_and_status(isolated_home: Path, tmp_path: Path, shop: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    bridge = await started(isolated_home, tmp_path, shop)
    try:
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(shop), "agent": CLAUDE})
        unattached = await bridge.request("retrospective.recorded", {"sessionID": "s1", "summary": "planning only"})
        assert unattached == {"agentId": "build", "commitHash": None}
        bridge.notify("tool.executed", bash("s1", "c1", "git commit -am x", commit_line("aaa1111", "feat: a")))
        by_agent = await bridge.request("retrospective.recorded", {
            "sessionID": "s1", "author": "agent", "summary": "small change, tested",
            "wentWell": ["tests first"], "toImprove": ["smaller commits"], "lessons": ["run the linter"]})
        assert by_agent == {"agentId": "build", "commitHash": "aaa1111"}
        by_user = await bridge.request("retrospective.recorded", {"sessionID": "s1", "author": "user",
                                                                  "summary": "good, but slow"})
        assert by_user == {"agentId": "build", "commitHash": "aaa1111"}
        with pytest.raises(RpcError) as refused:
            await bridge.request("retrospective.recorded", {"sessionID": "s1", "commitHash": "deadbeef"})
        assert refused.value.code == -32602
        assert "There is no commit deadbeef in" in refused.value.message
        bridge.notify("session.deleted", {"sessionID": "s1"})
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    code, out, err = cli(capsys, "status", "build", "--json", "--database", str(tmp_path / "db.lmdb"))
    assert code == 0, err
    status = json.loads(out)
    assert [(r.get("author"), r["summary"], r.get("commitHash")) for r in status["retrospectives"]] == [
        (None, "planning only", None), ("agent", "small change, tested", "aaa1111"),
        ("user", "good, but slow", "aaa1111")]  # the latest 3, oldest first
    assert status["retrospectives"][1]["toImprove"] == ["smaller commits"]
    (summary,) = status["activities"]
    assert (summary["kind"], summary["sessionID"], summary["data"]["commits"]) == ("session", "s1", 1)
    code, out, _ = cli(capsys, "status", "build", "--database", str(tmp_path / "db.lmdb"))
    assert code == 0
    assert "Latest retrospectives" in out and "good, but slow" in out and "lessons: run the linter" in out
    assert "Latest activity" in out and "1 tool call (0 failed), 1 commit in" in out


# -- bugs by hand, and the halt a running bridge sees ----------------------------------------------------------

async def test_bug_command_halts_an_agent_that_a_running_bridge_then_blocks(
        isolated_home: Path, tmp_path: Path, shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "db.lmdb"
    bridge = await started(isolated_home, tmp_path, shop)
    try:
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(shop), "agent": CLAUDE})
        bridge.notify("tool.executed", bash("s1", "c1", "git commit -am x", commit_line("aaa1111", "feat: a")))
        bridge.notify("session.created", {"sessionID": "s2", "directory": str(shop), "agent": GPT})
        bridge.notify("tool.executed", bash("s2", "c1", "git commit -am y", commit_line("bbb2222", "feat: b")))
        await bridge.request("flush")
        assert (await bridge.request("agent.status", {"agentId": "build"}))["halted"] is False

        code, _, err = cli(capsys, "bug", "build", "--commit", "bbb2222", "--database", str(database))
        assert code == 1 and f"Commit bbb2222 in {shop} was made by plan, not build" in err
        code, _, err = cli(capsys, "bug", "build", "--commit", "abcdef9", "--database", str(database))
        assert code == 1 and "No commit abcdef9 was recorded" in err
        code, _, err = cli(capsys, "bug", "build", "--commit", "xyz", "--database", str(database))
        assert code == 2 and "is not a commit hash" in err
        code, _, err = cli(capsys, "bug", "ghost", "--database", str(database))
        assert code == 1 and "No agent named 'ghost'" in err

        code, out, err = cli(capsys, "bug", "build", "--commit", "aaa1111", "--reason", "breaks checkout",
                             "--database", str(database))
        assert code == 0, err
        assert out.strip() == (f"Bug recorded for build for commit aaa1111 in {database}: SP 1 -> 0, halted: its tools "
                               f"are blocked until `agent-tracker reinstate build` (reason: breaks checkout).")
        # the running bridge reads the halt when asked (the plugin asks before blocking a call)
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert (status["skillPoints"], status["totalBugs"], status["halted"]) == (0.0, 1, True)
        assert status["haltReason"] == ("skill points 0 after 1 bug; the latest: a bug was reported for commit "
                                        "aaa1111: breaks checkout")
        assert (await bridge.wait_for_notification("agent.state"))["halted"] is True
        code, out, _ = cli(capsys, "bug", "plan", "--json", "--database", str(database))
        assert code == 0
        assert json.loads(out)["agent"]["skillPoints"] == 0.0 and json.loads(out)["bug"] == {}

        code, _, _ = cli(capsys, "reinstate", "build", "--database", str(database))
        assert code == 0
        assert (await bridge.request("agent.status", {"agentId": "build"}))["halted"] is False
        assert [s["halted"] for s in bridge.notifications_of("agent.state") if s["agentId"] == "build"] == [True, False]
        report = await bridge.request("report", {})
        assert row(report, "build", "anthropic/claude-x")["bugs"] == 1
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    bugs = [a for a in read_database(database)["activities"].values() if a["kind"] == "bug"]
    assert sorted((b["agentId"], b.get("commitHash"), b.get("description")) for b in bugs) == [
        ("build", "aaa1111", "breaks checkout"), ("plan", None, None)]


# -- the rules on their own ----------------------------------------------------------------------------------

def test_git_recognition_of_reverts_amends_and_fixups() -> None:
    from bridge.tracking.git_commands import GitCommit, fixup_subject, recognise_commit, revert_operands

    out = commit_line("5d6e7f8", 'Revert "feat: x"')
    assert recognise_commit("git revert --no-edit ABC1234 HEAD~1 HEAD", out) == GitCommit(
        "5d6e7f8", 'Revert "feat: x"', reverts=("abc1234", "HEAD"))  # HEAD~1 cannot be resolved here
    assert revert_operands("git -C repo revert -m 1 deadbeef && git push") == ["deadbeef"]  # -m takes a value
    assert recognise_commit("git revert --no-commit abc1234", "") is None  # nothing committed yet
    assert recognise_commit("git commit -m 'Revert' -m 'This reverts commit abc1234def.'",
                            commit_line("1111111", "Revert")).reverts == ("abc1234def",)
    assert recognise_commit("git add -A && git commit --amend --no-edit", commit_line("2222222", "feat: x")).amend
    assert not recognise_commit("git commit -m 'mention --amend'", commit_line("3333333", "x")).amend
    assert fixup_subject("fixup! fixup! feat: x") == ("fixup", "feat: x")
    assert fixup_subject("squash! feat: y\n\nbody") == ("squash", "feat: y")
    assert fixup_subject("feat: fixup! not one") is None


def test_a_subagent_whose_parent_is_unknown_or_a_cycle_counts_for_itself(tmp_path: Path, shop: Path) -> None:
    harness = make_harness(open_store(tmp_path / "db.lmdb"), directory=str(shop))
    harness.send("session.created", {"sessionID": "orphan", "directory": str(shop), "parentID": "never-seen",
                                     "agent": CLAUDE})
    harness.send("tool.executed", tool("orphan", "t1"))
    for sid, parent in (("a", "b"), ("b", "a")):  # foreign data: a loop of parents
        harness.send("session.created", {"sessionID": sid, "directory": str(shop), "parentID": parent, "agent": GPT})
    assert not harness.service.flush().errors
    report = build_report(harness.store)
    rows = {(r.agent, r.model): r for r in report.setups}
    # the orphan is its own root; in the loop, each session's root is the other one
    assert rows[("build", "anthropic/claude-x")].sessions == 1
    assert rows[("plan", "openai/gpt-5")].sessions == 0 and report.totals["subagentSessions"] == 2
    harness.service.journal.close(remove=True)  # type: ignore[union-attr]
    harness.store.close()


def test_a_session_ends_once_however_its_end_is_told(tmp_path: Path, shop: Path) -> None:
    """OpenCode sends session.idle after a delete: the session stays ended (no second end at
    shutdown); work after an end opens it again, and it ends again with a second summary."""
    harness = make_harness(open_store(tmp_path / "db.lmdb"), directory=str(shop))
    service = harness.service
    harness.send("session.created", {"sessionID": "s1", "directory": str(shop), "agent": CLAUDE})
    harness.send("tool.executed", tool("s1", "t1"))
    harness.send("session.deleted", {"sessionID": "s1"})
    harness.send("session.idle", {"sessionID": "s1"})
    harness.send("session.ended", {"sessionID": "s1", "reason": "shutdown"})  # told again: nothing new
    assert service.open_sessions() == []
    harness.send("session.created", {"sessionID": "s2", "directory": str(shop), "agent": CLAUDE})
    harness.send("session.ended", {"sessionID": "s2"})
    harness.send("tool.executed", tool("s2", "t1"))  # work again: open again
    assert service.open_sessions() == ["s2"]
    harness.send("session.ended", {"sessionID": "s2", "reason": "shutdown"})
    assert not service.flush().errors
    summaries = sorted((a["sessionID"], a["data"]["reason"], a["data"]["toolCalls"])
                       for _, a in harness.all("activities") if a["kind"] == "session")
    # a summary holds the session's totals as the flush after its end left them (here one flush)
    assert summaries == [("s1", "deleted", 1), ("s2", "ended", 1), ("s2", "shutdown", 1)]
    service.journal.close(remove=True)  # type: ignore[union-attr]
    harness.store.close()
