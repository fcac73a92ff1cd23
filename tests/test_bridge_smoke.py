"""The real bridge as a subprocess: a short session end to end."""

from __future__ import annotations

from pathlib import Path

from support.bridges import RpcError, start_bridge


async def test_session_counts_tools_commit_grade_and_push(isolated_home: Path, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    bridge = await start_bridge(isolated_home)
    try:
        result = await bridge.initialize(project)
        assert result["database"] == {
            "path": str(isolated_home / ".config/opencode/agent-tracker.lmdb"),
            "mapSize": 512 * 1024 * 1024, "available": True, "readOnly": False}
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(project),
                                          "agent": {"id": "build", "model": "m", "provider": "p"}})
        for call in range(3):
            bridge.notify("tool.executed", {"sessionID": "s1", "callID": f"c{call}", "tool": "read",
                                            "success": True})
        bridge.notify("tool.executed", {"sessionID": "s1", "callID": "c0", "tool": "read", "success": True})
        bridge.notify("tool.executed", {
            "sessionID": "s1", "callID": "c9", "tool": "bash", "success": True,
            "args": {"command": "git commit -m 'feat: x'"},
            "output": "[main (root-commit) abc1234] feat: x\n 1 file changed\n"})
        graded = await bridge.request("grade", {"sessionID": "s1", "grade": 5, "grader": "agent"})
        assert graded == {"agentId": "build", "commitHash": "abc1234", "grade": 5, "communicationScore": 65.0}
        try:
            await bridge.request("grade", {"sessionID": "s1", "grade": "2", "grader": "user"})
            raise AssertionError("a string grade must be rejected")
        except RpcError as error:
            assert error.code == -32602 and "-1 (bad), 1 (neutral), 2 (good) or 5 (excellence)" in error.message
        bridge.notify("commit.pushed", {"sessionID": "s1", "projectPath": str(project)})
        status = await bridge.request("agent.status", {"agentId": "build"})
        # 4 distinct tool calls (the repeated callID counts once) + commit 5 + push 10.
        assert status == {"agentId": "build", "skillPoints": 1.0, "experiencePoints": 19.0,
                          "communicationScore": 65.0, "totalCommits": 1, "totalBugs": 0,
                          "totalPushes": 1, "halted": False, "pendingChanges": 0}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
