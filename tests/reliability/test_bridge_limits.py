"""Input that once froze or fooled the spawned bridge: scoring values without a ceiling, a request id
JSON cannot write (NaN), and a repository's AGENTS.md built to make a regular expression backtrack.

Everything goes through the real bridge over stdio; the numbers are exact. "Answered" means answered
within the client's patience (30 s), against freezes measured in minutes to hours before the fixes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability import Bridge, bridge_env, drain_stderr, read_db, record, spawn, wait_exit

pytestmark = pytest.mark.reliability


# -- scoring values have a ceiling, level-ups are computed in closed form --------------------------------

async def test_an_unbounded_scoring_value_is_refused_at_initialize(isolated_home: Path, tmp_path: Path) -> None:
    """pushXp 1e30 was accepted, and the first push spun the level-up loop for ever (no answer, no flush)."""
    bridge = await Bridge.spawn(isolated_home, env=bridge_env(isolated_home))
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
