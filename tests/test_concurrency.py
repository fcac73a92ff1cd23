"""Several processes on one LMDB file: Store.write counters and real bridges flushing concurrently."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.bridges import ROOT, BridgeProcess
from support.tracking import (
    FULL_HASH,
    new_agent_status,
    open_store,
    read_database,
    spawn_bridge,
    tool,
)

from bridge.config import MiB

pytestmark = pytest.mark.reliability

_INCREMENTER = """
import json, sys
from bridge.config import BridgeConfig
from bridge.store import Store
store = Store.open(BridgeConfig(database_path=sys.argv[1], max_database_size=64 * 1024 * 1024))
assert store.available, store.error
print("ready", flush=True)
sys.stdin.readline()  # start together
seen = []
def increment(view):
    value = (view.get("meta", "counter") or 0) + 1
    view.put("meta", "counter", value)
    return value
for _ in range(int(sys.argv[2])):
    seen.append(store.write(increment))
store.close()
print(json.dumps(seen))
"""


def test_two_processes_increment_one_counter_exactly(tmp_path: Path) -> None:
    db = tmp_path / "counter.lmdb"
    open_store(db).close()
    workers = [subprocess.Popen([sys.executable, "-c", _INCREMENTER, str(db), "5000"], cwd=ROOT,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for worker in workers:
            assert worker.stdout.readline() == "ready\n"
        for worker in workers:
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    assert [worker.returncode for worker in workers] == [0, 0]
    seen = [json.loads(output) for output in outputs]
    # Every increment saw a distinct value: no lost update, no value written twice.
    assert [len(values) for values in seen] == [5000, 5000]
    assert sorted(seen[0] + seen[1]) == list(range(1, 10001))
    with open_store(db) as store:
        with store.read() as view:
            assert view.get("meta", "counter") == 10000


async def _feed(bridge: BridgeProcess, index: int, events: int, rounds: int) -> list[dict]:
    bridge.notify("session.created", {"sessionID": f"s{index}", "directory": str(ROOT),
                                      "agent": {"id": "build", "model": f"m{index}", "provider": "p"}})
    results = []
    per_round = events // rounds
    for round_ in range(rounds):
        for call in range(per_round):
            bridge.notify("tool.executed", tool(f"s{index}", f"r{round_}c{call}"))
        results.append(await bridge.request("flush", timeout=120))
    return results


async def test_four_bridges_flushing_concurrently_on_one_agent(isolated_home: Path, tmp_path: Path) -> None:
    db = tmp_path / "shared.lmdb"
    spawned = await asyncio.gather(*(spawn_bridge(isolated_home, db) for _ in range(4)))
    bridges = [bridge for bridge, _ in spawned]
    try:
        assert [init["database"]["available"] for _, init in spawned] == [True] * 4
        flushes = await asyncio.gather(*(_feed(bridge, i, 2000, 10) for i, bridge in enumerate(bridges)))
        for results in flushes:
            assert [(r["errors"], r["transactions"]) for r in results] == [([], 1)] * 10
        # 8,000 XP from SP 1: 1000 -> SP 2, 2000 -> SP 3, 3000 -> SP 4, 2000 left (SP 5 would cost 4000).
        for bridge in bridges:
            assert await bridge.request("agent.status", {"agentId": "build"}) == new_agent_status(
                "build", skillPoints=4.0, experiencePoints=2000.0)
        codes = await asyncio.gather(*(bridge.shutdown_and_exit() for bridge in bridges))
        assert codes == [0, 0, 0, 0]
    finally:
        for bridge in bridges:
            bridge.kill()
    data = read_database(db)
    agent = data["agents"]["build"]
    assert (agent["skillPoints"], agent["experiencePoints"], agent["halted"]) == (4.0, 2000.0, False)
    assert [(data["sessions"][f"s{i}"]["toolCalls"], data["sessions"][f"s{i}"]["xpEarned"]) for i in range(4)] \
        == [(2000, 2000.0)] * 4


async def test_two_bridges_report_the_same_commit_and_grade_it_once(isolated_home: Path, tmp_path: Path) -> None:
    """Each bridge accepts the events (nothing stored yet); the flush-time checks keep one of each."""
    project, db = tmp_path / "project", tmp_path / "dup.lmdb"
    project.mkdir()
    (a, _), (b, _) = await asyncio.gather(spawn_bridge(isolated_home, db, directory=project),
                                          spawn_bridge(isolated_home, db, directory=project))
    try:
        for bridge, session in ((a, "sa"), (b, "sb")):
            bridge.notify("session.created", {"sessionID": session, "directory": str(project), "agent": {"id": "build"}})
            assert (await bridge.request("commit.completed", {"sessionID": session, "commitHash": FULL_HASH})) == {
                "counted": True, "commitHash": FULL_HASH}
            graded = await bridge.request("grade", {"sessionID": session, "grade": 5, "grader": "agent"})
            assert graded["communicationScore"] == 65.0
        first = await a.request("flush")
        second = await b.request("flush")
        assert (first["errors"], first["transactions"], second["errors"], second["transactions"]) == ([], 1, [], 1)
        expected = new_agent_status("build", experiencePoints=5.0, totalCommits=1, communicationScore=65.0)
        assert await a.request("agent.status", {"agentId": "build"}) == expected
        assert await b.request("agent.status", {"agentId": "build"}) == expected
        assert await a.shutdown_and_exit() == 0
        assert await b.shutdown_and_exit() == 0
    finally:
        a.kill()
        b.kill()
    data = read_database(db)
    assert (len(data["commits"]), len(data["communication"])) == (1, 1)


async def test_bridges_with_different_map_sizes_share_one_file(isolated_home: Path, tmp_path: Path) -> None:
    db = tmp_path / "sizes.lmdb"
    small, _ = await spawn_bridge(isolated_home, db, maxDatabaseSize="2MiB")
    big, init = await spawn_bridge(isolated_home, db, maxDatabaseSize="64MiB")
    try:
        assert init["database"]["mapSize"] == 64 * MiB
        for i in range(50):
            big.notify("retrospective.recorded", {"agentId": "build", "summary": f"{i}" * 60_000})
        assert (await big.request("flush"))["errors"] == []
        small.notify("tool.executed", {**tool("s", "c"), "agentId": "build"})
        result = await small.request("flush")
        assert (result["errors"], result["transactions"]) == ([], 1)
        assert await small.request("agent.status", {"agentId": "build"}) == new_agent_status(
            "build", experiencePoints=1.0)
        assert await small.shutdown_and_exit() == 0
        assert await big.shutdown_and_exit() == 0
    finally:
        small.kill()
        big.kill()
    assert len(read_database(db)["retrospectives"]) == 50


async def test_a_halt_from_another_bridge_is_notified_to_this_host(isolated_home: Path, tmp_path: Path) -> None:
    db = tmp_path / "halt.lmdb"
    (a, _), (b, _) = await asyncio.gather(spawn_bridge(isolated_home, db), spawn_bridge(isolated_home, db))
    try:
        assert (await a.request("agent.status", {"agentId": "build"}))["halted"] is False
        await b.request("bug.reported", {"agentId": "build"})
        # A halt is stored at once: nothing is left for an explicit flush.
        assert (await b.request("flush"))["transactions"] == 0
        a.notify("tool.executed", {**tool("s", "c"), "agentId": "build"})
        assert (await a.request("flush"))["transactions"] == 1
        assert (await a.request("agent.status", {"agentId": "build"}))["halted"] is True
        # The host of bridge A blocks the agent's tools only when told so.
        assert [state["halted"] for state in a.notifications_of("agent.state")] == [True]
    finally:
        for bridge in (a, b):
            bridge.kill()
            await bridge.wait()
