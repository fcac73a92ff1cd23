"""A full 1 MiB map: one clear message, nothing lost, and a bigger limit applies everything exactly.

A realistic stream (sessions, tool calls, commits, grades, activities and retrospectives with a
few KB of text each) flushes successfully a few times and then fills a 1 MiB map. From then on:
every flush answers with the "database is full" error, the host gets exactly one toast, intake and
read-your-writes go on (agent.status includes everything pending), shutdown still exits 0, and the
journal keeps every event since the last successful flush. A bridge restarted with the same
limit recovers nothing (and says so once); a bridge with a larger limit applies everything, exactly.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from reliability import (
    MiB,
    Model,
    Step,
    Timer,
    Workload,
    actual_view,
    base_seed,
    events_before,
    expected_view,
    invariant_violations,
    journal_events,
    model_through,
    read_db,
    record,
    send_steps,
    spawn,
)

pytestmark = pytest.mark.reliability

AGENTS = ["build", "plan"]


def full_toasts(toasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in toasts if "full" in t["message"] or "maxDatabaseSize" in t["message"]]


async def fill(home: Path, project: Path, db: Path, seed: int) -> dict[str, Any]:
    """Run a bridge with a 1 MiB map past full; check everything it answered; return what it received."""
    rng = random.Random(seed)
    steps = Workload(rng, "full", str(project), AGENTS, sessions=3, flush_rate=0.02, push_rate=0.0,
                     status_rate=0.02, payload=5_000).steps(1_500)
    bridge, init, _ = await spawn(home, project, databasePath=str(db), maxDatabaseSize="1MiB")
    try:
        assert init["database"]["mapSize"] == MiB and init["database"]["available"] is True
        journal = Path(init["journal"]["path"])
        futures = await send_steps(bridge, steps)
        responses = {index: await future for index, future in futures.items()}
        shutdown = await bridge.request("shutdown")
        bridge.notify("exit")
        code = await bridge.wait()
    finally:
        bridge.kill()
    assert code == 0, "a full database must not make the bridge fail"
    received = sum(1 for s in steps if s.kind == "event")
    flushes: list[tuple[int, dict[str, Any]]] = []
    for index, response in sorted(responses.items()):
        assert "result" in response, response
        step = steps[index]
        if step.method == "flush":
            flushes.append((index, response["result"]))
        else:  # read-your-writes, before and after the map filled up: stored + pending = every event
            status = dict(response["result"])
            status.pop("pendingChanges")
            model = model_through(Model(), steps, events_before(steps, index))
            agent = step.params["agentId"]
            want = model.agents[agent].view() if agent in model.agents else Model().agent(agent).view()
            assert status == {"agentId": agent, **want, "halted": False}, f"agent.status at step {index}"
    full_at = next(i for i, (_, result) in enumerate(flushes) if result["errors"])
    ok, failed = flushes[:full_at], flushes[full_at:]
    message = failed[0][1]["errors"][0]
    assert "maxDatabaseSize" in message and "Nothing was lost" in message
    assert all(r["errors"] == [] for _, r in ok) and sum(r["transactions"] for _, r in ok) >= 2, \
        "the map filled up before two flushes succeeded: the scenario did not happen"
    assert all(r["errors"] == [message] and r["transactions"] == 0 for _, r in failed) and len(failed) >= 3
    assert shutdown["errors"] == [message]
    toasts = full_toasts(bridge.notifications_of("toast"))
    assert toasts == [{"message": message, "variant": "error"}], f"expected exactly one toast, got {toasts}"
    last_ok = max((events_before(steps, index) for index, r in ok if r["transactions"]), default=0)
    data = read_db(db)
    assert invariant_violations(data) == []
    assert actual_view(data) == expected_view(model_through(Model(), steps, last_ok)), \
        "the database must hold exactly the flushes that succeeded (the failed one left nothing)"
    # Kept in the journal: the events since the last flush that went through, and the end of each
    # session that was open at shutdown (the bridge journals those ends like any event).
    kept = journal_events(journal)
    ends = sum(1 for s in steps if s.method == "session.created")
    assert journal.exists() and len(kept) == received - last_ok + ends
    assert [e["m"] for e in kept[-ends:]] == ["session.ended"] * ends
    return {"steps": steps, "received": received, "last_ok": last_ok, "ends": ends, "message": message,
            "flushes_ok": len(ok), "flushes_refused": len(failed) + 1, "db_bytes": db.stat().st_size}


async def test_a_full_map_tells_once_loses_nothing_and_a_bigger_map_applies_it_all(isolated_home: Path,
                                                                                   tmp_path: Path) -> None:
    timer = Timer()
    project, db = tmp_path / "project", tmp_path / "small" / "agent-tracker.lmdb"
    project.mkdir()
    filled = await fill(isolated_home, project, db, base_seed() + 1)
    bridge, init, _ = await spawn(isolated_home, project, databasePath=str(db), maxDatabaseSize="8MiB")
    try:
        assert init["database"]["mapSize"] == 8 * MiB and init["database"]["readOnly"] is False
        assert init["recovered"] == {"journals": 1, "events": filled["received"] - filled["last_ok"] + filled["ends"]}
        assert full_toasts(bridge.notifications_of("toast")) == []
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    data = read_db(db)
    assert invariant_violations(data) == []
    assert actual_view(data) == expected_view(model_through(Model(), filled["steps"], filled["received"]))
    assert not list(db.with_name(db.name + "-journal").glob("*.jsonl"))
    record("full-disk", map_bytes=MiB, events=filled["received"], flushes_ok=filled["flushes_ok"],
           flushes_refused=filled["flushes_refused"], toasts=1, events_pending_when_full=filled["received"] - filled["last_ok"],
           applied_after_raising_limit=filled["received"] - filled["last_ok"], events_lost=0, seconds=timer.seconds)


async def restart_with_the_same_small_map(home: Path, tmp_path: Path, seed: int) -> list[dict[str, Any]]:
    """Fill, restart with the same 1 MiB limit (more events, a flush), then with 8 MiB: nothing lost.
    Returns the toasts of the second bridge."""
    isolated_home = home
    project, db = tmp_path / "project", tmp_path / "small" / "agent-tracker.lmdb"
    project.mkdir()
    filled = await fill(isolated_home, project, db, seed)
    more = Workload(random.Random(5), "again", str(project), AGENTS, sessions=1, flush_rate=0.0,
                    push_rate=0.0, status_rate=0.0).steps(30)
    more.append(Step("request", "flush", {}, flush=True))
    bridge, init, _ = await spawn(isolated_home, project, databasePath=str(db), maxDatabaseSize="1MiB")
    try:
        assert init["recovered"]["events"] == 0  # could not be applied: kept for a bigger map
        futures = await send_steps(bridge, more)
        result = await futures[len(more) - 1]
        assert result["result"]["errors"] and result["result"]["transactions"] == 0
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    toasts = full_toasts(bridge.notifications_of("toast"))
    journals = sorted(db.with_name(db.name + "-journal").glob("*.jsonl"))
    assert len(journals) == 2, "both the first and the second bridge's events must be kept"
    bridge, init, _ = await spawn(isolated_home, project, databasePath=str(db), maxDatabaseSize="8MiB")
    try:
        # ... and the ends of both bridges' open sessions (3, then 1)
        assert init["recovered"] == {"journals": 2,
                                     "events": filled["received"] - filled["last_ok"] + filled["ends"] + 30 + 1}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    model = model_through(model_through(Model(), filled["steps"], filled["received"]), more, 30)
    data = read_db(db)
    assert invariant_violations(data) == []
    assert actual_view(data) == expected_view(model)
    return toasts


async def test_a_restart_with_the_same_small_map_keeps_both_journals_then_applies_them(isolated_home: Path,
                                                                                       tmp_path: Path) -> None:
    toasts = await restart_with_the_same_small_map(isolated_home, tmp_path, base_seed() + 2)
    assert toasts and {t["variant"] for t in toasts} == {"error"}
    record("full-disk-same-limit-restart", toasts_in_second_bridge=len(toasts), events_lost=0)


async def test_a_restart_with_the_same_small_map_tells_the_host_once(isolated_home: Path, tmp_path: Path) -> None:
    toasts = await restart_with_the_same_small_map(isolated_home, tmp_path, base_seed() + 3)
    assert len(toasts) == 1, f"the second bridge told the host {len(toasts)} times: {toasts}"
