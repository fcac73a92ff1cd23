"""kill -9 at random points: during intake, inside a flush, between the flush commit and the journal
truncation, at a random moment from outside, and again during the recovery itself.

"Received" is defined precisely, per kind of fault, from the wire contract alone:

* ``event:N`` (AGENT_TRACKER_CRASH_AT): the bridge dies right after journaling its N-th event, so it
  received exactly the first N events of the stream;
* ``in-flush:N`` / ``after-commit:N``: it dies inside / right after the N-th flush that writes
  something; that flush was triggered by a known message (a ``flush`` request or a push), so it
  received exactly the events up to that message;
* external SIGKILL at a random moment: it received some prefix of the stream, at least every event
  followed by an answered request and at most every event sent. After the restart the database
  must equal the reference model of exactly one such prefix (nothing lost, nothing twice).

Before the restart the database must hold exactly the flushes that committed (no half-applied
flush); after the restart replays the journal it must hold exactly the received events.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import pytest

from reliability import (
    Model,
    Step,
    Timer,
    Workload,
    actual_view,
    answered,
    base_seed,
    bridge_env,
    events_before,
    expected_view,
    flush_boundaries,
    invariant_violations,
    journal_events,
    lost_and_double_counted,
    model_through,
    models_between,
    read_db,
    record,
    scaled,
    send_request_nowait,
    send_steps,
    spawn,
    start_bridge,
    wait_exit,
)

pytestmark = pytest.mark.reliability

RUNS = scaled(25, 200)
AGENTS = ["build", "plan", "réviseur-🚀"]
MODES = ("event", "in-flush", "after-commit", "external")


def check_answers(steps: list[Step], futures: dict[int, asyncio.Future], base: Model,
                  crash_step: int | None) -> int:
    """Requests before the crash point were answered correctly, none after it; returns the number of
    events known to be received (those before the last answered request)."""
    bounds = {index for index, _ in flush_boundaries(steps)}
    known = 0
    last_answered = -1
    for index in sorted(futures):
        response = answered(futures[index])
        if crash_step is not None:
            if index < crash_step:
                assert response is not None, f"request at step {index} ({steps[index].method}) before the crash was not answered"
            else:
                assert response is None, f"request at step {index} after the crash point was answered: {response}"
        if response is None:
            continue
        # In order, except that a flush is answered when its transaction committed (in a worker thread):
        # requests behind it may be answered first. (Fault injection writes inline: strictly in order.)
        assert last_answered < index and all(answered(futures[i]) is not None for i in futures
                                             if i < index and (crash_step is not None or steps[i].method != "flush")), \
            "answers out of order"
        last_answered = index
        assert "result" in response, response
        received = events_before(steps, index)
        known = max(known, received)
        step = steps[index]
        if step.method == "flush":
            result = response["result"]
            assert result["errors"] == [] and result["transactions"] == (1 if index in bounds else 0), result
        elif step.method == "agent.status":
            agent_id = step.params["agentId"]
            live = dict(response["result"])
            live.pop("pendingChanges")
            model = model_through(base, steps, received)
            want = model.agents[agent_id].view() if agent_id in model.agents else Model().agent(agent_id).view()
            assert live == {"agentId": agent_id, **want, "halted": False}, f"read-your-writes at step {index}"
    return known


async def crash_run(run: int, rng: random.Random, home: Path, project: Path, db: Path, base: Model,
                    stats: Counter) -> Model:
    workload = Workload(rng, f"r{run}", str(project), AGENTS, sessions=rng.randint(1, 3),
                        flush_rate=rng.choice([0.01, 0.03, 0.08]), push_rate=rng.choice([0.0, 0.02, 0.05]))
    steps = workload.steps(rng.randint(10, 250))
    total_events = sum(1 for s in steps if s.kind == "event")
    bounds = flush_boundaries(steps)
    mode = rng.choice(MODES)
    if mode in ("in-flush", "after-commit") and not bounds:
        mode = "event"
    crash_env: dict[str, str] = {}
    crash_step: int | None = None
    if mode == "event":
        nth = rng.randint(1, total_events)
        crash_env["AGENT_TRACKER_CRASH_AT"] = f"event:{nth}"
        crash_step = [i for i, s in enumerate(steps) if s.kind == "event"][nth - 1]
        received = nth
        committed = [b for b in bounds if b[0] < crash_step]
    elif mode in ("in-flush", "after-commit"):
        nth = rng.randint(1, len(bounds))
        crash_env["AGENT_TRACKER_CRASH_AT"] = f"{mode}:{nth}"
        crash_step, received = bounds[nth - 1]
        committed = bounds[:nth - 1] if mode == "in-flush" else bounds[:nth]
    else:
        stop = rng.randint(len(workload.session_agent), len(steps))
        received = -1  # found below
        committed = []
    stats[mode] += 1
    context = f"run {run}: {mode} {crash_env.get('AGENT_TRACKER_CRASH_AT', '')}, {total_events} events, " \
              f"{len(bounds)} flushes"

    bridge, init, _ = await spawn(home, project, env=bridge_env(home, **crash_env))
    journal = Path(init["journal"]["path"])
    try:
        if mode == "external":
            futures = await send_steps(bridge, steps, 0, stop)
            await asyncio.sleep(rng.choice([0, 0, 0.001, 0.005, 0.02, 0.05]))
            bridge.kill()
        else:
            futures = await send_steps(bridge, steps)
        code = await wait_exit(bridge)
    finally:
        bridge.kill()
    assert code == -9, f"{context}: the bridge exited with {code}, not SIGKILL"

    # Answers: exactly the requests before the crash point, each one right (read-your-writes included).
    known = check_answers(steps, futures, base, crash_step)

    # Before the restart: exactly the committed flushes, nothing half-applied.
    data = read_db(db)
    assert invariant_violations(data) == [], context
    before = actual_view(data)
    if mode == "external":
        candidates = [0] + [events for index, events in bounds if index < stop]
        matches = [events for events in candidates if expected_view(model_through(base, steps, events)) == before]
        assert matches, f"{context}: the database after kill -9 matches no committed flush"
        committed_events = max(matches)
        upper = events_before(steps, stop)
    else:
        committed_events = committed[-1][1] if committed else 0
        assert before == expected_view(model_through(base, steps, committed_events)), \
            f"{context}: database before the restart != the {len(committed)} committed flushes"
        lines = journal_events(journal)
        truncated_at = committed_events if mode != "after-commit" else (committed[-2][1] if len(committed) > 1 else 0)
        assert len(lines) == received - truncated_at, f"{context}: journal lines"

    # Sometimes the recovery itself is killed (inside its flush, or after its commit) before it finishes.
    if mode != "external" and received > committed_events and rng.random() < 0.3:
        fault = rng.choice(["in-flush:1", "after-commit:1"])
        stats["double-" + fault.split(":")[0]] += 1
        recovering = await start_bridge(home, env=bridge_env(home, AGENT_TRACKER_CRASH_AT=fault))
        try:
            init_future = send_request_nowait(recovering, "init", "initialize",
                                              {"clientInfo": {"name": "tests", "version": "0"}, "config": {}})
            code = await wait_exit(recovering)
        finally:
            recovering.kill()
        assert code == -9 and answered(init_future) is None, f"{context}: recovery fault {fault} did not fire"
        after_fault = actual_view(read_db(db))
        if fault == "in-flush:1":
            assert after_fault == before, f"{context}: an aborted recovery changed the database"
        else:
            assert after_fault == expected_view(model_through(base, steps, received)), context
            committed_events = received  # the recovery committed: the next one replays nothing

    # Restart: replay exactly once.
    bridge, init, _ = await spawn(home, project)
    try:
        recovered = init["recovered"]
        assert recovered["journals"] == 1, f"{context}: {recovered}"
        statuses = {agent_id: await bridge.request("agent.status", {"agentId": agent_id}) for agent_id in AGENTS}
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    data = read_db(db)
    assert invariant_violations(data) == [], context
    after = actual_view(data)
    if mode == "external":
        # Some prefix k of what was sent, at least what answered requests prove, replayed on top of
        # the flush that had committed: the only k consistent with the database and the recovery count.
        fits = [k for k, candidate in models_between(base, steps, known, upper) if expected_view(candidate) == after]
        pairs = [k for k in fits if k - recovered["events"] in matches]
        assert pairs, f"{context}: after the restart the database is no prefix of the stream " \
                      f"(known {known}, sent {upper}, recovered {recovered}, matching prefixes {fits})"
        received = pairs[-1]
        committed_events = received - recovered["events"]
    else:
        assert recovered["events"] == received - committed_events, f"{context}: {recovered}"
    model = model_through(base, steps, received)
    assert after == expected_view(model), f"{context}: events lost or counted twice"
    for agent_id, status in statuses.items():
        want = model.agents[agent_id].view() if agent_id in model.agents else Model().agent(agent_id).view()
        assert status == {"agentId": agent_id, **want, "halted": False, "pendingChanges": 0}, context
    assert not list(journal.parent.glob("*.jsonl")), f"{context}: journal left behind"
    assert f"journal:{journal.stem}" not in data["meta"], f"{context}: replay marker left behind"
    stats["events sent"] += total_events if mode != "external" else upper
    stats["events received"] += received
    stats["events replayed"] += received - committed_events
    return model


async def test_kill_9_at_random_points_loses_nothing_and_counts_nothing_twice(isolated_home: Path,
                                                                              tmp_path: Path) -> None:
    timer = Timer()
    project = tmp_path / "projet à l'essai"
    project.mkdir()
    db = isolated_home / ".config" / "opencode" / "agent-tracker.lmdb"
    rng = random.Random(base_seed())
    model, stats = Model(), Counter()
    for run in range(RUNS):
        seed = rng.randrange(2 ** 32)
        try:
            model = await crash_run(run, random.Random(seed), isolated_home, project, db, model, stats)
        except AssertionError as error:
            error.add_note(f"reproduce: run {run}, seed {seed} (AGENT_TRACKER_SEED={base_seed()})")
            raise
    final = read_db(db)
    lost, doubled = lost_and_double_counted(expected_view(model), actual_view(final))
    record("crash", runs=RUNS, faults_survived=RUNS + stats["double-in-flush"] + stats["double-after-commit"],
           by_fault={k: v for k, v in stats.items() if not k.startswith("events")},
           events_sent=stats["events sent"], events_received=stats["events received"],
           events_replayed=stats["events replayed"],
           commits_stored=len(final["commits"]), events_lost=lost, events_double_counted=doubled,
           seconds=timer.seconds)


async def test_a_repeated_call_id_after_a_flush_is_not_counted_again_by_the_replay(isolated_home: Path,
                                                                                 tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    call = {"sessionID": "s1", "callID": "call-1", "tool": "read", "success": True}
    bridge, init, _ = await spawn(isolated_home, project,
                                  env=bridge_env(isolated_home, AGENT_TRACKER_CRASH_AT="event:3"))
    try:
        bridge.notify("session.created", {"sessionID": "s1", "directory": str(project), "agent": {"id": "build"}})
        assert (await bridge.request("tool.executed", call))["counted"] is True       # event 2
        assert (await bridge.request("flush"))["transactions"] == 1
        assert (await bridge.request("tool.executed", call))["counted"] is False      # a repeat: not journaled
        live = await bridge.request("agent.status", {"agentId": "build"})
        assert live["experiencePoints"] == 1.0
        bridge.notify("session.idle", {"sessionID": "s1"})                             # event 3: kill -9
        assert await wait_exit(bridge) == -9
    finally:
        bridge.kill()
    bridge, init, _ = await spawn(isolated_home, project)
    try:
        assert init["recovered"] == {"journals": 1, "events": 1}  # session.idle; the repeat was never journaled
        status = await bridge.request("agent.status", {"agentId": "build"})
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    assert status == {**live, "pendingChanges": 0}, "the repeated call was counted by the replay"


async def test_three_bridges_killed_at_once_are_all_recovered_exactly_once(isolated_home: Path,
                                                                           tmp_path: Path) -> None:
    """Three bridges on one database die at three different fault points; one restart recovers all."""
    project = tmp_path / "project"
    project.mkdir()
    db = isolated_home / ".config" / "opencode" / "agent-tracker.lmdb"
    rng = random.Random(base_seed() + 3)
    faults = ["event:150", "in-flush:2", "after-commit:3"]
    runs = []
    for index, fault in enumerate(faults):
        workload = Workload(rng, f"m{index}", str(project), AGENTS, flush_rate=0.04, push_rate=0.02)
        steps = workload.steps(200)
        bounds = flush_boundaries(steps)
        point, nth = fault.split(":")
        received = int(nth) if point == "event" else bounds[int(nth) - 1][1]
        runs.append((fault, steps, received))
    bridges = [await spawn(isolated_home, project, env=bridge_env(isolated_home, AGENT_TRACKER_CRASH_AT=fault))
               for fault, _, _ in runs]
    try:
        await asyncio.gather(*(send_steps(bridge, steps) for (bridge, _, _), (_, steps, _) in zip(bridges, runs)))
        codes = [await wait_exit(bridge) for bridge, _, _ in bridges]
    finally:
        for bridge, _, _ in bridges:
            bridge.kill()
    assert codes == [-9, -9, -9]
    assert invariant_violations(read_db(db)) == []
    model = Model()
    for _, steps, received in runs:
        model = model_through(model, steps, received)
    bridge, init, _ = await spawn(isolated_home, project)
    try:
        assert init["recovered"]["journals"] == 3
        assert await bridge.shutdown_and_exit() == 0
    finally:
        bridge.kill()
    data = read_db(db)
    assert invariant_violations(data) == []
    assert actual_view(data) == expected_view(model)
    assert not list(db.with_name(db.name + "-journal").glob("*.jsonl"))
    lost, doubled = lost_and_double_counted(expected_view(model), actual_view(data))
    record("crash-three-at-once", bridges=3, faults=faults, events_received=sum(r for _, _, r in runs),
           events_lost=lost, events_double_counted=doubled)
