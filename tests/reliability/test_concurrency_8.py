"""Eight bridges on one database, random flush points, readers during the writes: totals exact.

CI: 8 bridges x 2,500 events; soak (AGENT_TRACKER_SOAK=1): 8 x 10,000. The eight share three agents,
so every flush merges into agent records other processes are changing at the same time. A ninth
bridge is killed (-9) in the middle, and a tenth, started while the others still write, must
recover exactly that journal (never a live bridge's) and go on with its own events.

Readers, all while the writers run:
* this process, with py-lmdb directly: every snapshot (one read transaction) satisfies the
  cross-record invariants (an agent's totalCommits = its commit rows = its sessions' commits; its
  earned XP = its sessions' xpEarned; pushes likewise), and nothing ever decreases between
  successive snapshots;
* ``agent-tracker status --json`` and ``agent-tracker report --json`` as subprocesses: exit 0, and
  the agents' totals never decrease between successive runs.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reliability import (
    ROOT,
    Model,
    Timer,
    Workload,
    base_seed,
    bridge_env,
    earned_of,
    invariant_violations,
    model_through,
    open_reader,
    read_db,
    read_snapshot,
    record,
    scaled,
    send_steps,
    session_ends,
    spawn,
    totals_view,
    wait_exit,
)

pytestmark = pytest.mark.reliability

BRIDGES = 8
EVENTS = scaled(2_500, 10_000)
AGENTS = ["build", "plan", "général"]


def without_cs(view: dict[str, Any]) -> dict[str, Any]:
    """CS is clamped per grade, so its final value depends on the interleaving: compared as a range."""
    out = dict(view)
    out["agents"] = {a: {k: v for k, v in fields.items() if k != "communicationScore"}
                     for a, fields in view["agents"].items()}
    out["sessions"] = {s: c for s, c in view["sessions"].items() if any(c.values())}
    return out


class MonotonicReader:
    """Successive snapshots: consistent inside, never going backwards from one to the next."""

    def __init__(self) -> None:
        self.previous: dict[str, Any] | None = None
        self.snapshots = 0
        self.problems: list[str] = []

    def check(self, data: dict[str, Any]) -> None:
        self.snapshots += 1
        self.problems += [f"snapshot {self.snapshots}: {p}" for p in invariant_violations(data)]
        current = {
            "agents": {a: (earned_of(r), r["totalCommits"], r["totalPushes"]) for a, r in data["agents"].items()},
            "sessions": {s: tuple(r.get(n, 0) for n in ("toolCalls", "commands", "commits", "pushes", "xpEarned"))
                         for s, r in data["sessions"].items()},
            "rows": tuple(len(data[db]) for db in ("commits", "communication", "activities", "retrospectives")),
        }
        if self.previous is not None:
            for group in ("agents", "sessions"):
                for name, before in self.previous[group].items():
                    after = current[group].get(name)
                    if after is None or any(a < b for a, b in zip(after, before)):
                        self.problems.append(f"snapshot {self.snapshots}: {group} {name} went back {before} -> {after}")
            if any(a < b for a, b in zip(current["rows"], self.previous["rows"])):
                self.problems.append(f"snapshot {self.snapshots}: rows went back")
        self.previous = current


async def read_in_process(db: Path, stop: asyncio.Event, reader: MonotonicReader) -> None:
    while not db.exists():
        await asyncio.sleep(0.01)
    env = open_reader(db)
    try:
        while not stop.is_set():
            data = await asyncio.to_thread(read_snapshot, env, ("agents", "sessions", "commits", "communication",
                                                                "activities", "retrospectives"))
            reader.check(data)
            await asyncio.sleep(0.02)
    finally:
        env.close()


async def read_with_cli(db: Path, home: Path, stop: asyncio.Event, figures: Counter, problems: list[str]) -> None:
    previous: dict[str, tuple] = {}
    while not stop.is_set():
        for command in (["status", "--json"], ["report", "--json"]):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bridge", *command, "--database", str(db), cwd=str(ROOT),
                env=bridge_env(home), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await process.communicate()
            figures[command[0]] += 1
            if process.returncode != 0:
                problems.append(f"{' '.join(command)} exited {process.returncode}: {err.decode()[-500:]}")
                continue
            payload = json.loads(out)
            if command[0] != "status":
                continue
            for agent in payload["agents"]:
                now = (earned_of(agent), agent["totalCommits"], agent["totalPushes"])
                before = previous.get(agent["agentId"])
                if before and any(a < b for a, b in zip(now, before)):
                    problems.append(f"status --json: {agent['agentId']} went back {before} -> {now}")
                if not 0 <= agent["communicationScore"] <= 100 * agent["skillPoints"]:
                    problems.append(f"status --json: {agent['agentId']} CS out of range")
                previous[agent["agentId"]] = now


async def test_eight_bridges_one_database_totals_exact_and_readers_consistent(isolated_home: Path,
                                                                              tmp_path: Path) -> None:
    timer = Timer()
    project = tmp_path / "shared project"
    project.mkdir()
    db = tmp_path / "shared db" / "agent-tracker.lmdb"
    rng = random.Random(base_seed() + 8)
    workloads = []
    for index in range(BRIDGES):
        workload = Workload(rng, f"b{index}", str(project), AGENTS, sessions=3,
                            flush_rate=rng.choice([0.002, 0.005, 0.01]), push_rate=0.003, status_rate=0.002)
        workloads.append(workload.steps(EVENTS))
    crash_steps = Workload(rng, "killed", str(project), AGENTS, flush_rate=0.01).steps(EVENTS // 4)
    crash_at = rng.randint(EVENTS // 25, EVENTS // 8)
    late_steps = Workload(rng, "late", str(project), AGENTS, flush_rate=0.01).steps(EVENTS // 4)

    stop = asyncio.Event()
    reader, cli_figures, cli_problems = MonotonicReader(), Counter(), []
    # Half of the bridges also flush on a timer, at moments nobody chooses.
    bridges = [await spawn(isolated_home, project, databasePath=str(db),
                           **({"flushIntervalSeconds": 0.05} if index % 2 else {}))
               for index in range(BRIDGES)]
    killed = await spawn(isolated_home, project, databasePath=str(db),
                         env=bridge_env(isolated_home, AGENT_TRACKER_CRASH_AT=f"event:{crash_at}"))
    recovered: dict[str, Any] = {}
    # Readers start once the database exists (initialize created it).
    readers = [asyncio.ensure_future(read_in_process(db, stop, reader)),
               asyncio.ensure_future(read_with_cli(db, isolated_home, stop, cli_figures, cli_problems))]

    recovery_done = asyncio.Event()

    async def crash_and_recover() -> None:
        try:
            await send_steps(killed[0], crash_steps)
            assert await wait_exit(killed[0]) == -9
            late, init, _ = await spawn(isolated_home, project, databasePath=str(db))
        finally:
            recovery_done.set()
        try:
            recovered.update(init["recovered"])
            recovered["othersStillWriting"] = sum(b.process.returncode is None for b, _, _ in bridges)
            await send_steps(late, late_steps)
            assert await late.shutdown_and_exit() == 0
        finally:
            late.kill()

    async def drive(bridge, steps) -> int:
        # The first half, then (live journals holding unflushed events) the recovery, then the rest.
        futures = await send_steps(bridge, steps, 0, len(steps) // 2)
        await recovery_done.wait()
        futures.update(await send_steps(bridge, steps, len(steps) // 2))
        await asyncio.wait_for(asyncio.gather(*futures.values()), 300)
        assert all("result" in f.result() for f in futures.values())
        return await bridge.shutdown_and_exit()

    try:
        codes = await asyncio.gather(*(drive(b, steps) for (b, _, _), steps in zip(bridges, workloads)),
                                     crash_and_recover())
    finally:
        stop.set()
        for bridge, _, _ in [*bridges, killed]:
            bridge.kill()
        await asyncio.gather(*readers)
    assert codes[:BRIDGES] == [0] * BRIDGES
    assert recovered["journals"] == 1, f"the recovering bridge took {recovered['journals']} journals (live ones?)"

    model = Model()
    for steps in workloads:
        model = model_through(model, steps, EVENTS)
    model = model_through(model, crash_steps, crash_at)
    model = model_through(model, late_steps, EVENTS // 4)
    data = read_db(db)
    assert invariant_violations(data) == []
    assert without_cs(totals_view(data)) == without_cs(model.expected())
    # every session of a bridge that exited cleanly ended once, at its shutdown; the killed bridge's
    # sessions (replayed from its journal by another bridge) never ended
    clean = [sid for steps in [*workloads, late_steps] for step in steps if step.method == "session.created"
             for sid in [step.params["sessionID"]]]
    assert session_ends(data) == Counter(dict.fromkeys(clean, 1))
    assert not list(db.with_name(db.name + "-journal").glob("*.jsonl"))
    assert reader.problems == [], reader.problems[:10]
    assert cli_problems == [], cli_problems[:10]
    assert reader.snapshots > 0
    record("concurrency", bridges=BRIDGES, events_per_bridge=EVENTS,
           killed_bridge={"events_received": crash_at, "recovered": recovered["events"],
                          "others_still_writing_at_recovery": recovered["othersStillWriting"]},
           late_bridge_events=EVENTS // 4,
           events_total=BRIDGES * EVENTS + crash_at + EVENTS // 4,
           commits=len(data["commits"]), grades=len(data["communication"]),
           snapshots_checked=reader.snapshots, cli_reads=dict(cli_figures), events_lost=0, seconds=timer.seconds)
