"""Input that once froze or fooled the spawned bridge: scoring values without a ceiling, a request id
JSON cannot write (NaN), and a repository's AGENTS.md built to make a regular expression backtrack.

Everything goes through the real bridge over stdio; the numbers are exact. "Answered" means answered
within the client's patience (30 s), against freezes measured in minutes to hours before the fixes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability import (
    bridge_env,
    drain_stderr,
    read_db,
    record,
    spawn,
    start_bridge,
)

pytestmark = pytest.mark.reliability


# -- scoring values have a ceiling, level-ups are computed in closed form --------------------------------

async def test_an_unbounded_scoring_value_is_refused_at_initialize(isolated_home: Path, tmp_path: Path) -> None:
    """pushXp 1e30 was accepted, and the first push spun the level-up loop for ever (no answer, no flush)."""
    bridge = await start_bridge(isolated_home, env=bridge_env(isolated_home))
    drain_stderr(bridge)
    try:
        database = tmp_path / "db.lmdb"
        answer = await bridge.request_raw("initialize", {"clientInfo": {"name": "t"}, "config": {
            "databasePath": str(database), "scoring": {"pushXp": 1e30}}})
        assert answer["error"] == {"code": -32602,
                                   "message": "scoring.pushXp must be a number from 0 to 1000000; got 1e+30."}
        assert not database.exists(), "a refused configuration opens nothing"
        # The host can fix its options and initialize again on the same bridge.
        init = await bridge.initialize(tmp_path, databasePath=str(database),
                                       scoring={"pushXp": 1_000_000, "levelCost": 1})
        assert init["database"]["available"] is True
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(tmp_path), "agent": {"id": "build"}})
        pushed = await bridge.request("commit.pushed", {"sessionID": "s1", "projectPath": str(tmp_path),
                                                         "head": "a" * 40})
        assert pushed is not None
        # The largest gain the ceilings allow, at the cheapest level: 1 + 2 + ... + 1413 = 998,991 XP
        # pays for 1413 levels at once, 1009 XP are left.
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert (status["skillPoints"], status["experiencePoints"], status["totalPushes"]) == (1414.0, 1009.0, 1)
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    agent = read_db(database)["agents"]["build"]
    assert (agent["skillPoints"], agent["experiencePoints"]) == (1414.0, 1009.0)
    record("limits", scoring_refused="pushXp 1e30 -> -32602", largest_push_levels=1413)


# -- a request id JSON cannot write ----------------------------------------------------------------------

@pytest.mark.parametrize("raw_id", [b"NaN", b"Infinity", b"-Infinity"])
async def test_a_request_with_a_nan_id_is_refused_and_not_executed(isolated_home: Path, tmp_path: Path,
                                                                   raw_id: bytes) -> None:
    """The stdlib JSON fallback parses NaN; the request was executed (XP counted) and answered with
    id null, which no host can match. Now: -32600 with id null, nothing executed or journaled."""
    bridge, init, _ = await spawn(isolated_home, tmp_path, databasePath=str(tmp_path / "db.lmdb"))
    try:
        body = (b'{"jsonrpc": "2.0", "id": %s, "method": "tool.executed", "params": {"sessionID": "s1", '
                b'"callID": "c1", "tool": "read", "success": true, "agentId": "build"}}' % raw_id)
        bridge.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert bridge.unmatched == [{"jsonrpc": "2.0", "id": None, "error": {
            "code": -32600, "message": "Invalid Request: id must be a string or a number."}}]
        assert (status["experiencePoints"], status["pendingChanges"]) == (0.0, 0)
        journal = Path(init["journal"]["path"])
        assert [line for line in journal.read_text().splitlines() if '"tool.executed"' in line] == []
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert read_db(tmp_path / "db.lmdb")["sessions"] == {}
    record("limits", nan_ids_refused=3)


# -- a repository's AGENTS.md cannot freeze the bridge ----------------------------------------------------

HOSTILE_AGENTS_MD = {
    # 200,000 blank lines, a heading, then the stack line: the old pattern's leading \s* ran over
    # every blank line from every line start (quadratic: 5,000 lines took 1.5 s, this many 40 min).
    "blank-lines": ("\n" * 200_000 + "# Agents\n\nStack: go/gin\n", "go/gin", ("AGENTS.md",)),
    # "stack:" and 200,000 spaces: quadratic within one line (100,000 took 7 minutes).
    "spaces": ("stack:" + " " * 200_000 + "!\n", "python/fastapi", ("pyproject.toml",)),
    # 262,144 blank lines (all the classifier reads) and no stack line: the manifest decides.
    "only-blank-lines": ("\n" * 262_144, "python/fastapi", ("pyproject.toml",)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_AGENTS_MD))
async def test_a_hostile_agents_md_does_not_freeze_the_bridge(isolated_home: Path, tmp_path: Path,
                                                              case: str) -> None:
    text, stack, sources = HOSTILE_AGENTS_MD[case]
    project = tmp_path / "cloned-repo"
    project.mkdir()
    (project / "AGENTS.md").write_text(text)
    (project / "pyproject.toml").write_text('[project]\ndependencies = ["fastapi"]\n')
    database = tmp_path / "db.lmdb"
    bridge, _, _ = await spawn(isolated_home, project, databasePath=str(database))
    try:
        for number in range(3):  # each session in the project used to classify it again
            bridge.notify("session.created", {"sessionID": f"s{number}", "directory": str(project),
                                              "agent": {"id": "build"}})
            bridge.notify("tool.executed", {"sessionID": f"s{number}", "callID": f"c{number}", "tool": "read",
                                            "success": True})
            status = await bridge.request("agent.status", {"agentId": "build"})
            assert status["experiencePoints"] == number + 1.0
        assert (await bridge.request("flush"))["errors"] == []
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    stored = read_db(database)
    assert {k: stored["projects"][str(project)][k] for k in ("stack", "sources")} == {"stack": stack,
                                                                                      "sources": list(sources)}
    assert sorted(stored["sessions"]) == ["s0", "s1", "s2"]
    record("limits", **{f"agents_md_{case.replace('-', '_')}_bytes": len(text)})
