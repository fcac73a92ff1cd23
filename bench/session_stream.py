"""Session stream: the realistic session the older plugin was measured with, three ways.

The session: 1 agent, 5,000 tool calls, 200 commands, 50 commits each followed by an agent
and a user grade, a push every 10 commits, then session.deleted (5,357 events).

* Ours: through the real bridge over stdio (notifications, as the plugin sends them). After
  each run of buffered events and after each flushing event (push, session.deleted) the
  client sends one ``agent.status`` request as a marker; its response time-stamps the phase.
  "Flush" is therefore client-observed (flushing event + flush + one round trip): it can
  only overstate our flush. Write transactions: LMDB ``last_txnid`` read after the bridge
  exited, minus the value after an initialize-only run on the same database.
* (a) old write pattern: one durable LMDB transaction per event, writing the very rows our
  tracking service writes for that event when flushed after every event (captured once).
* (b) the older plugin's flush pattern: at each of our flush points, every buffered row in
  its own durable transaction (the same rows our flushes write, captured once).

(a) and (b) are bare py-lmdb + orjson loops (no service logic), so they are the cheapest
these write patterns can be: the ratios below are lower bounds.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import lmdb
import orjson

from . import (
    PYTHON,
    RpcProcess,
    bench_env,
    bridge_command,
    check,
    figure,
    median,
    notification,
    request,
    temp_home,
)

SECTION = "session"
AGENT = "build"
SESSION_ID = "bench-session"
TOOLS = ("read", "edit", "bash", "grep", "glob", "write", "read", "edit", "list", "bash")

# The Store's sub-databases and open flags (bridge/store.py), for the bare baselines.
SUB_DATABASES = ("agents", "sessions", "commits", "communication", "retrospectives",
                 "activities", "projects", "migrations", "meta", "usage", "calls")
MAP_SIZE = 512 * 1024 * 1024
# Idle time before each baseline flush, like the bridge's stretch of buffering before a push.
FLUSH_GAP_S = 0.05

Event = tuple[str, dict[str, Any]]
Row = tuple[str, str, str, Any]  # (op "put"|"insert", db, key, value)


def commit_hash(k: int) -> str:
    return hashlib.sha1(f"bench-commit-{k}".encode()).hexdigest()


def tool_event(i: int) -> dict[str, Any]:
    tool = TOOLS[i % len(TOOLS)]
    if tool == "bash":
        args: dict[str, Any] = {"command": "pytest -q tests/test_api.py", "description": "run the tests"}
        output = "........................................ [100%]\n40 passed in 1.32s"
    elif tool in ("read", "edit", "write"):
        args = {"filePath": f"/bench/project/src/module_{i % 53}.py"}
        output = "x" * 160
    else:
        args = {"pattern": f"def handler_{i % 31}", "path": "/bench/project/src"}
        output = "src/api.py:12: def handler()"
    return {"sessionID": SESSION_ID, "callID": f"call_{i:06d}", "tool": tool, "success": i % 37 != 0,
            "args": args, "output": output}


def session_events(project: str, commits: int = 50, tools_per_commit: int = 100,
                   commands_per_commit: int = 4, push_every: int = 10) -> list[Event]:
    """5,357 events with the defaults, in the order a real session produces them."""
    events: list[Event] = [("session.created", {
        "sessionID": SESSION_ID, "directory": project,
        "agent": {"id": AGENT, "model": "claude-sonnet-4-5", "provider": "anthropic"}})]
    tool_no = 0
    for k in range(1, commits + 1):
        for j in range(tools_per_commit):
            events.append(("tool.executed", tool_event(tool_no)))
            tool_no += 1
            if j % (tools_per_commit // commands_per_commit) == 0:
                events.append(("command.executed", {"sessionID": SESSION_ID, "command": "/test",
                                                    "success": True}))
        sha = commit_hash(k)
        events.append(("commit.completed", {"sessionID": SESSION_ID, "agentId": AGENT, "commitHash": sha,
                                            "projectPath": project}))
        for grader, grade in (("agent", 2), ("user", (5, 2, 1, -1)[k % 4])):
            events.append(("grade", {"sessionID": SESSION_ID, "commitHash": sha, "projectPath": project,
                                     "grade": grade, "grader": grader}))
        if k % push_every == 0:
            events.append(("commit.pushed", {"sessionID": SESSION_ID, "projectPath": project}))
    events.append(("session.deleted", {"sessionID": SESSION_ID}))
    return events


def is_flush_point(method: str) -> bool:
    return method in ("commit.pushed", "session.deleted")


def segments(events: list[Event]) -> list[tuple[list[Event], Event]]:
    """(buffered events, flushing event) pairs; every event belongs to exactly one."""
    out: list[tuple[list[Event], Event]] = []
    buffered: list[Event] = []
    for event in events:
        if is_flush_point(event[0]):
            out.append((buffered, event))
            buffered = []
        else:
            buffered.append(event)
    assert not buffered, "the session must end with a flushing event"
    return out


def make_project(base: Path) -> Path:
    project = base / "project"
    project.mkdir(exist_ok=True)
    (project / "pyproject.toml").write_text('[project]\nname = "shop"\ndependencies = ["fastapi"]\n')
    return project


def initialize_params(db_path: Path, project: Path) -> dict[str, Any]:
    return {"clientInfo": {"name": "bench", "version": "0"}, "config": {"databasePath": str(db_path)},
            "project": {"directory": str(project)}}


def last_txnid(db_path: Path) -> int:
    env = lmdb.open(str(db_path), subdir=False, readonly=True, lock=True, max_dbs=16)
    try:
        return env.info()["last_txnid"]
    finally:
        env.close()


# -- ours: the real bridge ----------------------------------------------------------------------------

async def bridge_session(home: Path) -> dict[str, Any]:
    project = make_project(home)
    db_path = home / ".config" / "opencode" / "agent-tracker.lmdb"
    env = bench_env(home)
    params = initialize_params(db_path, project)
    # An initialize-only run creates the database: its txnid is "before".
    warm = await RpcProcess.spawn(bridge_command(), env, stderr_path=home / "warm.stderr")
    await warm.call("initialize", params)
    if await warm.shutdown_and_exit() != 0:
        raise RuntimeError("initialize-only bridge run failed: " + (home / "warm.stderr").read_text()[-2000:])
    before = last_txnid(db_path)

    events = session_events(str(project))
    encoded = [(b"".join(notification(m, p) for m, p in buffered), len(buffered),
                notification(*flushing)) for buffered, flushing in segments(events)]
    proc = await RpcProcess.spawn(bridge_command(), env, stderr_path=home / "stderr")
    try:
        await proc.call("initialize", params)
        await proc.call("agent.status", {"agentId": AGENT})  # warm the request path
        loop = asyncio.get_running_loop()
        buffer_seconds, buffered_events, flush_ms = 0.0, 0, []
        started = loop.time()
        for data, count, flushing in encoded:
            msg_id = proc.next_id()
            marker = proc.expect(msg_id)
            t0 = loop.time()
            await proc.write(data + request(msg_id, "agent.status", {"agentId": AGENT}))
            t1, _ = await asyncio.wait_for(marker, 120)
            buffer_seconds += t1 - t0
            buffered_events += count
            msg_id = proc.next_id()
            marker = proc.expect(msg_id)
            t1 = loop.time()
            await proc.write(flushing + request(msg_id, "agent.status", {"agentId": AGENT}))
            t2, _ = await asyncio.wait_for(marker, 120)
            flush_ms.append((t2 - t1) * 1000)
        total = loop.time() - started
        status = await proc.call("agent.status", {"agentId": AGENT})
        code = await proc.shutdown_and_exit()
        if code != 0:
            raise RuntimeError(f"bridge exited with {code}: {(home / 'stderr').read_text()[-2000:]}")
    finally:
        proc.kill()
    after = last_txnid(db_path)
    return {"events": len(events), "buffer_rate": buffered_events / buffer_seconds,
            "flush_ms": flush_ms, "flush_total_ms": sum(flush_ms), "total_s": total,
            "transactions": after - before, "status": status}


async def floor_session(home: Path) -> float:
    """The same session stream through the floor server (parse + append, no storage): seconds."""
    from . import BENCH_DIR
    project = make_project(home)
    events = session_events(str(project))
    data = b"".join(notification(m, p) for m, p in events)
    proc = await RpcProcess.spawn([PYTHON, str(BENCH_DIR / "floor_server.py")], bench_env(home))
    try:
        await proc.call("initialize", {})
        await proc.call("agent.status", {"agentId": AGENT})
        loop = asyncio.get_running_loop()
        msg_id = proc.next_id()
        marker = proc.expect(msg_id)
        started = loop.time()
        await proc.write(data + request(msg_id, "agent.status", {"agentId": AGENT}))
        arrived, _ = await asyncio.wait_for(marker, 120)
        await proc.shutdown_and_exit()
    finally:
        proc.kill()
    return arrived - started


# -- capturing the rows our service writes (for the bare baselines) -------------------------------------

class _RecordingView:
    """Proxies a WriteView, recording every row it writes."""

    def __init__(self, view: Any, rows: list[Row]):
        self._view = view
        self._rows = rows

    def get(self, db: str, k: str) -> Any:
        return self._view.get(db, k)

    def scan(self, db: str, prefix: str = ""):
        return self._view.scan(db, prefix)

    def count(self, db: str) -> int:
        return self._view.count(db)

    def cursor(self, db: str) -> Any:  # reads only (the tracking service counts ledger chunks)
        return self._view.cursor(db)

    def put(self, db: str, k: str, value: Any) -> None:
        self._rows.append(("put", db, k, value))
        self._view.put(db, k, value)

    def insert(self, db: str, k: str, value: Any) -> bool:
        written = self._view.insert(db, k, value)
        if written:
            self._rows.append(("insert", db, k, value))
        return written

    def delete(self, db: str, k: str) -> bool:
        return self._view.delete(db, k)


def capture_rows(events: list[Event], flush_after: Callable[[str], bool]) -> tuple[list[list[Row]], list[float]]:
    """Run the tracking service in-process; return the rows of each flush and its durationMs."""
    from bridge.config import BridgeConfig
    from bridge.store import Store
    from bridge.tracking.service import TrackingService

    groups: list[list[Row]] = []

    class RecordingStore(Store):
        def write(self, apply):  # type: ignore[override]
            rows: list[Row] = []
            groups.append(rows)
            return super().write(lambda view: apply(_RecordingView(view, rows)))

    # Capturing is not timed: on tmpfs (where fsync is free) when there is one.
    shm = Path("/dev/shm")
    tmp = Path(tempfile.mkdtemp(prefix="agent-tracker-capture-", dir=shm if shm.is_dir() else None))
    try:
        store = RecordingStore.open(BridgeConfig(database_path=str(tmp / "capture.lmdb")))
        assert store.available, store.error
        groups.clear()
        project = str(make_project(tmp))
        events = [(method, {**params, **({"projectPath": project} if "projectPath" in params else {}),
                            **({"directory": project} if "directory" in params else {})})
                  for method, params in events]
        service = TrackingService(store, BridgeConfig().scoring, default_directory=project)
        durations: list[float] = []
        for method, params in events:
            service.handle(method, params)
            if flush_after(method) or service.flush_requested:
                result = service.flush()
                durations.append(result.duration_ms)
        store.close()
        return [g for g in groups if g], durations
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bare_env(path: Path) -> tuple[lmdb.Environment, dict[str, Any]]:
    env = lmdb.open(str(path), subdir=False, map_size=MAP_SIZE, max_dbs=len(SUB_DATABASES) + 2,
                    lock=True, readahead=False, meminit=False)
    with env.begin(write=True) as txn:
        dbs = {name: env.open_db(name.encode(), txn=txn, create=True) for name in SUB_DATABASES}
    return env, dbs


def write_rows_one_txn_each(groups: list[list[Row]], per_row: bool, limit: int | None = None,
                            gap_s: float = 0.0) -> dict[str, Any]:
    """Durable transactions: one per group (per_row False) or one per row; time per group.

    With ``limit``, only the first ``limit`` groups are written and the total is scaled up
    to all of them (--quick: the old pattern's cost is linear in the number of events).
    ``gap_s`` idles before each group (not timed): on this VM a commit after an idle disk
    costs several times one right after another, and the bridge's flushes come after a
    stretch of buffering, so flush-vs-flush comparisons give every pattern the same gap.
    """
    import time
    tmp = Path(tempfile.mkdtemp(prefix="agent-tracker-baseline-"))
    try:
        env, dbs = bare_env(tmp / "baseline.lmdb")
        before = env.info()["last_txnid"]
        per_group: list[float] = []
        for rows in groups[:limit]:
            if gap_s:
                time.sleep(gap_s)
            started = time.perf_counter()
            chunks = [[row] for row in rows] if per_row else [rows]
            for chunk in chunks:
                with env.begin(write=True) as txn:
                    for op, db, k, value in chunk:
                        txn.put(k.encode(), orjson.dumps(value), db=dbs[db], overwrite=op == "put")
            per_group.append(time.perf_counter() - started)
        transactions = env.info()["last_txnid"] - before
        env.close()
        scale = len(groups) / len(per_group)
        return {"per_group_s": per_group, "total_s": sum(per_group) * scale,
                "transactions": round(transactions * scale), "rows": sum(map(len, groups)),
                "measured_groups": len(per_group), "groups": len(groups)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def durable_commit_ms(samples: int = 200) -> float:
    """The floor of any durable write: one tiny LMDB write transaction (fdatasync) here."""
    import time
    tmp = Path(tempfile.mkdtemp(prefix="agent-tracker-fsync-"))
    try:
        env, dbs = bare_env(tmp / "fsync.lmdb")
        times = []
        for i in range(samples):
            started = time.perf_counter()
            with env.begin(write=True) as txn:
                txn.put(b"k%d" % i, b"{}", db=dbs["meta"])
            times.append(time.perf_counter() - started)
        env.close()
        return median(times) * 1000
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(quick: bool, log) -> list[dict[str, Any]]:
    reps = 1 if quick else 5
    with temp_home("capture-") as base:
        events = session_events(str(base / "project"))
    n_events = len(events)
    log(f"session: {n_events:,} events; capturing the rows our service writes ...")
    flush_groups, inproc_flush_ms = capture_rows(events, lambda method: False)
    per_event_groups, _ = capture_rows(events, lambda method: True)
    # Per-flush comparisons use the push flushes (the delete flush only stamps the session).
    pushes = [i for i, (_, flushing) in enumerate(segments(events)) if flushing[0] == "commit.pushed"]

    ours: list[dict[str, Any]] = []
    base_a: list[dict[str, Any]] = []
    base_b: list[dict[str, Any]] = []
    floor_flush: list[dict[str, Any]] = []
    floor_stream: list[float] = []
    fsync: list[float] = []
    for rep in range(reps):  # side by side: each rep runs everything
        with temp_home("session-") as home:
            ours.append(asyncio.run(bridge_session(home)))
        base_b.append(write_rows_one_txn_each(flush_groups, per_row=True, gap_s=FLUSH_GAP_S))
        floor_flush.append(write_rows_one_txn_each(flush_groups, per_row=False, gap_s=FLUSH_GAP_S))
        with temp_home("session-floor-") as home:
            floor_stream.append(asyncio.run(floor_session(home)))
        base_a.append(write_rows_one_txn_each(per_event_groups, per_row=False,
                                              limit=len(per_event_groups) // 5 if quick else None))
        fsync.append(durable_commit_ms(50 if quick else 200))
        log(f"session rep {rep + 1}/{reps}: bridge total {ours[-1]['total_s'] * 1000:.0f} ms "
            f"({ours[-1]['transactions']} txns), (a) {base_a[-1]['total_s'] * 1000:.0f} ms "
            f"({base_a[-1]['transactions']} txns), (b) flushes {base_b[-1]['total_s'] * 1000:.1f} ms "
            f"({base_b[-1]['transactions']} txns)")

    def per_push(samples: list[list[float]], scale: float = 1.0) -> float:
        """Median over every push flush of every rep (robust to this disk's occasional stalls)."""
        return median([run[i] * scale for run in samples for i in pushes])

    buffer_rate = median([r["buffer_rate"] for r in ours])
    flush_ms = per_push([r["flush_ms"] for r in ours])
    b_flush_ms = per_push([r["per_group_s"] for r in base_b], 1000)
    floor_flush_ms = per_push([r["per_group_s"] for r in floor_flush], 1000)
    total_s = median([r["total_s"] for r in ours])
    txns = median([r["transactions"] for r in ours])
    a_total = median([r["total_s"] for r in base_a])
    floor_stream_ms = median(floor_stream) * 1000
    floor_total_ms = floor_stream_ms + median([r["total_s"] for r in floor_flush]) * 1000
    flush_ratio = b_flush_ms / flush_ms
    total_ratio = a_total / total_s
    n_flushes = len(flush_groups)
    rows_per_push = len(flush_groups[pushes[0]])
    samples = f"median over {len(pushes)} push flushes x {reps} run(s)"
    return [
        figure("session_events", SECTION, "session: events in the stream", n_events, "events",
               detail="1 agent, 5,000 tool calls, 200 commands, 50 commits + 100 grades, 5 pushes, delete"),
        figure("session_buffer_rate", SECTION, "session: bridge, events/s while buffering", buffer_rate,
               "events/s", better="higher", detail=f"stdio, journal on; median of {reps}"),
        figure("session_flush_ms", SECTION, "session: bridge flush per push (client-observed)",
               flush_ms, "ms", better="lower",
               detail=f"push notification + flush + marker round trip; {samples}; in-process "
                      f"TrackingService.flush durationMs median {median(inproc_flush_ms):.3f} ms"),
        figure("session_transactions", SECTION, "session: bridge write transactions", txns, "txns",
               target=f"<= {n_flushes + 1} ({n_flushes} flushes + exit)", holds=check(txns, "<=", n_flushes + 1),
               better="lower",
               detail=f"LMDB last_txnid delta over the bridge's life, read after it exited: one per flush "
                      f"({n_flushes}: 5 pushes + session.deleted), plus at most one at exit (the bridge "
                      f"deletes its journal's replay marker)"),
        figure("session_total_ms", SECTION, "session: bridge, whole session", total_s * 1000, "ms",
               better="lower", detail=f"{n_events / total_s:,.0f} events/s overall; median of {reps}"),
        figure("baseline_a_total_ms", SECTION, "(a) old write pattern: one durable txn per event, whole session",
               a_total * 1000, "ms", better="lower",
               detail=f"{base_a[0]['transactions']:,} txns, {base_a[0]['rows']:,} rows; median of {reps} "
                      f"(runs ranged {min(r['total_s'] for r in base_a) * 1000:,.0f}-"
                      f"{max(r['total_s'] for r in base_a) * 1000:,.0f} ms: this disk's fsync latency varies)"
                      + (f"; --quick: timed the first {base_a[0]['measured_groups']:,} events and scaled up"
                         if quick else "")),
        figure("baseline_b_flush_ms", SECTION, "(b) old flush pattern: one txn per buffered row, per push",
               b_flush_ms, "ms", better="lower",
               detail=f"{rows_per_push} rows = {rows_per_push} txns per push; {base_b[0]['transactions']} txns "
                      f"over the session's {n_flushes} flushes; {samples}; each flush after "
                      f"{FLUSH_GAP_S * 1000:.0f} ms idle, like ours"),
        figure("durable_commit_ms", SECTION, "one tiny durable LMDB commit on this disk", median(fsync), "ms",
               better="lower", detail="what (a) pays per event and (b) per row"),
        figure("floor_flush_ms", SECTION, "floor: the same rows in one bare txn, per push",
               floor_flush_ms, "ms", better="lower",
               detail=f"bare py-lmdb + orjson, {rows_per_push} rows; {samples}; after "
                      f"{FLUSH_GAP_S * 1000:.0f} ms idle"),
        figure("floor_session_ms", SECTION, "floor: session stream through floor server + floor flushes",
               floor_total_ms, "ms", better="lower",
               detail=f"floor server (parse + append) {floor_stream_ms:.1f} ms + bare flushes"),
        figure("session_flush_vs_b_ceiling", SECTION, "ceiling: flush speed-up vs (b) at the floor",
               b_flush_ms / floor_flush_ms, "x", better="higher",
               detail="(b) / floor flush: the best any one-transaction flush of these rows can do here"),
        figure("session_total_vs_a_ceiling", SECTION, "ceiling: whole-session speed-up vs (a) at the floor",
               a_total * 1000 / floor_total_ms, "x", better="higher",
               detail="(a) / (floor server + floor flushes): what no Python stdio bridge can beat here"),
        figure("session_flush_vs_b", SECTION, "session: flush speed-up vs (b)", flush_ratio, "x",
               target=">= 20x", holds=check(flush_ratio, ">=", 20), better="higher",
               detail=f"(b) {b_flush_ms:.2f} ms / ours {flush_ms:.2f} ms per push flush"),
        figure("session_total_vs_a", SECTION, "session: whole-session speed-up vs (a)", total_ratio, "x",
               target=">= 50x", holds=check(total_ratio, ">=", 50), better="higher",
               detail=f"(a) {a_total * 1000:.0f} ms / ours {total_s * 1000:.0f} ms; per run "
                      + ", ".join(f"{a['total_s'] / o['total_s']:.1f}x" for a, o in zip(base_a, ours))),
    ]
