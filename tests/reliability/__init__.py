"""Reliability suite helpers: scale, figures, an independent database reader and reference model.

Everything here is written independently of bridge/: the database is read with py-lmdb directly,
the scoring rules are re-implemented from protocol/README.md, and the workload generator knows
only the wire contract. A bug in the bridge therefore cannot hide behind the same bug here.

Scale: ``AGENT_TRACKER_SOAK=1`` turns the CI counts into the soak counts (see ``scaled``).
Figures: tests call ``record(name, **figures)``; the folder's conftest writes them to
``bench/results/reliability-latest.json`` (git-ignored) and to the pytest temp dir at session end.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import lmdb
from support.bridges import ROOT, BridgeProcess, bridge_env, start_bridge  # noqa: F401  (re-exported to the suite)

SOAK = os.environ.get("AGENT_TRACKER_SOAK", "").strip().lower() not in ("", "0", "false", "no")
MODE = "soak" if SOAK else "ci"
MiB = 1024 * 1024


def scaled(ci: int, soak: int) -> int:
    """The CI count, or the soak count when AGENT_TRACKER_SOAK=1."""
    return soak if SOAK else ci


# Read at import: tests/conftest.py removes AGENT_TRACKER_* variables from each test's environment.
_SEED = int(os.environ.get("AGENT_TRACKER_SEED", "20261126"))


def base_seed() -> int:
    """Seeded randomness: AGENT_TRACKER_SEED=<int> reproduces a run (printed on failure)."""
    return _SEED


# -- figures ---------------------------------------------------------------------------------------

FIGURES: dict[str, dict[str, Any]] = {}


def record(name: str, **figures: Any) -> None:
    FIGURES.setdefault(name, {}).update(figures)


def bump(name: str, figure: str, by: int = 1) -> None:
    entry = FIGURES.setdefault(name, {})
    entry[figure] = entry.get(figure, 0) + by


# -- reading the database independently ---------------------------------------------------------------

SUB_DATABASES = ("agents", "sessions", "commits", "communication", "retrospectives",
                 "activities", "projects", "migrations", "meta")


def open_reader(path: Path) -> lmdb.Environment:
    """A read-only py-lmdb environment (with the lock file: readers register, snapshots are safe)."""
    return lmdb.open(str(path), subdir=False, readonly=True, lock=True, max_dbs=len(SUB_DATABASES) + 2,
                     map_size=MiB)


def read_snapshot(env: lmdb.Environment, dbs: Iterable[str] = SUB_DATABASES) -> dict[str, dict[str, Any]]:
    """Every record of the named sub-databases, all in ONE read transaction (a consistent snapshot)."""
    out: dict[str, dict[str, Any]] = {}
    try:
        txn = env.begin(write=False)
    except lmdb.MapResizedError:  # a writer's map is larger than ours: adopt its size
        env.set_mapsize(0)
        txn = env.begin(write=False)
    with txn:
        names = {k for k, _ in txn.cursor()}
        for name in dbs:
            if name.encode() not in names:
                out[name] = {}
                continue
            handle = env.open_db(name.encode(), txn=txn, create=False)
            out[name] = {k.decode(): json.loads(v) for k, v in txn.cursor(db=handle)}
    return out


def read_db(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {name: {} for name in SUB_DATABASES}
    env = open_reader(path)
    try:
        return read_snapshot(env)
    finally:
        env.close()


LEVEL_COST = 1000.0


def level(earned: float) -> tuple[float, float]:
    """(SP, XP) of a never-halted agent that earned ``earned`` XP in total (README scoring rules)."""
    sp, xp = 1.0, float(earned)
    while xp >= LEVEL_COST * sp:
        xp -= LEVEL_COST * sp
        sp += 1
    return sp, xp


def earned_of(agent: dict[str, Any]) -> float:
    """Inverse of ``level``: the total XP an agent record stands for (SP 1 + n paid 1000+...+1000n)."""
    sp = agent["skillPoints"]
    n = int(sp) - 1
    return LEVEL_COST * n * (n + 1) / 2 + agent["experiencePoints"]


SESSION_COUNTERS = ("toolCalls", "failedToolCalls", "commands", "commits", "pushes", "xpEarned")


def invariant_violations(data: dict[str, dict[str, Any]]) -> list[str]:
    """Cross-record rules that hold in every committed state (so in every read snapshot).

    * an agent's totalCommits equals its commit rows (both written by the same operation);
    * for workloads where every XP/commit/push is attributed to a session of that agent, the
      agent record and its sessions were written by the same transactions: totals match exactly;
    * CS within [0, 100 x SP], XP below the next level's cost (never halted here).
    """
    problems = []
    rows = Counter(record.get("agentId") for record in data["commits"].values())
    by_agent: dict[str, Counter] = {}
    for session in data["sessions"].values():
        counters = by_agent.setdefault(session.get("agentId") or "unknown", Counter())
        for name in SESSION_COUNTERS:
            counters[name] += session.get(name, 0)
    for agent_id, agent in data["agents"].items():
        if agent["totalCommits"] != rows.get(agent_id, 0):
            problems.append(f"{agent_id}: totalCommits {agent['totalCommits']} != {rows.get(agent_id, 0)} commit rows")
        sessions = by_agent.get(agent_id, Counter())
        if earned_of(agent) != sessions["xpEarned"]:
            problems.append(f"{agent_id}: earned {earned_of(agent)} != sessions' xpEarned {sessions['xpEarned']}")
        if agent["totalCommits"] != sessions["commits"]:
            problems.append(f"{agent_id}: totalCommits {agent['totalCommits']} != sessions' commits {sessions['commits']}")
        if agent["totalPushes"] != sessions["pushes"]:
            problems.append(f"{agent_id}: totalPushes {agent['totalPushes']} != sessions' pushes {sessions['pushes']}")
        if not 0 <= agent["communicationScore"] <= 100 * agent["skillPoints"]:
            problems.append(f"{agent_id}: CS {agent['communicationScore']} outside [0, 100 x SP]")
        if not (agent["skillPoints"] >= 1 and agent["experiencePoints"] < LEVEL_COST * agent["skillPoints"]):
            problems.append(f"{agent_id}: SP/XP {agent['skillPoints']}/{agent['experiencePoints']} not levelled")
    return problems


def totals_view(data: dict[str, dict[str, Any]], agents: Iterable[str] | None = None) -> dict[str, Any]:
    """The figures the reference model predicts, taken from a database snapshot."""
    wanted = set(agents) if agents is not None else None
    return {
        "agents": {a: {"skillPoints": r["skillPoints"], "experiencePoints": r["experiencePoints"],
                       "communicationScore": r["communicationScore"], "totalCommits": r["totalCommits"],
                       "totalPushes": r["totalPushes"], "totalBugs": r["totalBugs"]}
                   for a, r in data["agents"].items() if wanted is None or a in wanted},
        "sessions": {s: {n: r.get(n, 0) for n in SESSION_COUNTERS} for s, r in data["sessions"].items()},
        "rows": {db: len(data[db]) if db != "activities" else sum(1 for r in data[db].values() if not summary(r))
                 for db in ("commits", "communication", "activities", "retrospectives")},
    }


def summary(activity: dict[str, Any]) -> bool:
    """A session's end-of-session summary: written when the session ends (deleted, or open at a
    bridge's clean exit), not by a workload event, so the model counts them apart (session_ends)."""
    return activity.get("kind") == "session"


def session_ends(data: dict[str, dict[str, Any]]) -> Counter:
    """How many summaries each session got."""
    return Counter(r.get("sessionID") for r in data["activities"].values() if summary(r))


# -- the reference model -------------------------------------------------------------------------------


@dataclass
class AgentModel:
    earned: float = 0.0
    commits: int = 0
    pushes: int = 0
    cs: float = 60.0
    touched: bool = False  # has an operation: the bridge writes agent records only then

    def view(self) -> dict[str, Any]:
        sp, xp = level(self.earned)
        return {"skillPoints": sp, "experiencePoints": xp, "communicationScore": self.cs,
                "totalCommits": self.commits, "totalPushes": self.pushes, "totalBugs": 0}


@dataclass
class Model:
    """What the database must hold after a given sequence of accepted events (README rules)."""

    agents: dict[str, AgentModel] = field(default_factory=dict)
    sessions: dict[str, Counter] = field(default_factory=dict)
    rows: Counter = field(default_factory=Counter)
    events: int = 0

    def copy(self) -> "Model":
        return copy.deepcopy(self)

    def agent(self, agent_id: str) -> AgentModel:
        return self.agents.setdefault(agent_id, AgentModel())

    def apply(self, deltas: list[tuple]) -> None:
        self.events += 1
        for delta in deltas:
            kind = delta[0]
            if kind == "session":
                self.sessions.setdefault(delta[1], Counter())
                self.agent(delta[2])
            elif kind == "xp":  # ("xp", agent, session, amount, counter)
                _, agent_id, session, amount, counter = delta
                self.agent(agent_id).earned += amount
                self.agent(agent_id).touched = True
                self.sessions[session][counter] += 1
                self.sessions[session]["xpEarned"] += amount
            elif kind == "count":  # ("count", session, counter)
                self.sessions[delta[1]][delta[2]] += 1
            elif kind == "commit":  # ("commit", agent, session)
                agent = self.agent(delta[1])
                agent.touched = True
                agent.earned += 5.0
                agent.commits += 1
                self.sessions[delta[2]]["commits"] += 1
                self.sessions[delta[2]]["xpEarned"] += 5.0
                self.rows["commits"] += 1
            elif kind == "push":  # ("push", agent, session)
                agent = self.agent(delta[1])
                agent.touched = True
                agent.earned += 10.0
                agent.pushes += 1
                self.sessions[delta[2]]["pushes"] += 1
                self.sessions[delta[2]]["xpEarned"] += 10.0
            elif kind == "grade":  # ("grade", agent, grade): clamped to [0, 100 x SP] as it arrives
                agent = self.agent(delta[1])
                agent.touched = True
                sp, _ = level(agent.earned)
                agent.cs = min(max(agent.cs + delta[2], 0.0), 100.0 * sp)
                self.rows["communication"] += 1
            elif kind == "row":
                self.rows[delta[1]] += 1
            elif kind != "noop":
                raise ValueError(delta)

    def expected(self) -> dict[str, Any]:
        return {
            "agents": {a: m.view() for a, m in self.agents.items()},
            "sessions": {s: {n: c.get(n, 0) for n in SESSION_COUNTERS} for s, c in self.sessions.items()},
            "rows": {db: self.rows.get(db, 0) for db in ("commits", "communication", "activities", "retrospectives")},
        }


def hexhash(*parts: Any, length: int = 40) -> str:
    return hashlib.sha1("\0".join(map(str, parts)).encode()).hexdigest()[:length]


@dataclass
class Step:
    kind: str  # "event" (notification) | "request"
    method: str
    params: dict[str, Any]
    deltas: list[tuple] = field(default_factory=list)
    flush: bool = False  # this message makes the bridge flush


class Workload:
    """Valid, never-refused events for a few sessions of a few agents, with random flush points.

    Every XP, commit and push is attributed to a session whose agent is known, which makes the
    cross-record invariants of ``invariant_violations`` hold in every committed state.
    """

    def __init__(self, rng: random.Random, tag: str, project: str, agents: list[str], sessions: int = 3,
                 flush_rate: float = 0.03, push_rate: float = 0.02, status_rate: float = 0.03, payload: int = 0):
        self.rng = rng
        self.tag = tag
        self.project = project
        self.agents = agents
        self.session_agent = {f"{tag}-s{i}": rng.choice(agents) for i in range(sessions)}
        self.flush_rate, self.push_rate, self.status_rate = flush_rate, push_rate, status_rate
        self.payload = "x" * payload  # bulk in activities and retrospectives (to fill a small map)
        self.counter = 0
        self.commits: list[tuple[str, str]] = []  # (hash, agent)
        self.graded: set[tuple[str, str]] = set()

    def _next(self) -> int:
        self.counter += 1
        return self.counter

    def opening(self) -> list[Step]:
        return [Step("event", "session.created",
                     {"sessionID": sid, "directory": self.project, "title": f"run {self.tag}",
                      "agent": {"id": agent, "model": "model-x", "provider": "prov"}},
                     [("session", sid, agent)])
                for sid, agent in self.session_agent.items()]

    def steps(self, events: int) -> list[Step]:
        out = self.opening()
        while sum(1 for s in out if s.kind == "event") < events:
            out.append(self.one())
        return out

    def one(self) -> Step:
        rng = self.rng
        roll = rng.random()
        if roll < self.flush_rate:
            return Step("request", "flush", {}, flush=True)
        roll -= self.flush_rate
        if roll < self.status_rate:
            return Step("request", "agent.status", {"agentId": rng.choice(self.agents)})
        roll -= self.status_rate
        sid = rng.choice(list(self.session_agent))
        agent = self.session_agent[sid]
        n = self._next()
        if roll < self.push_rate:
            head = hexhash(self.tag, "push", n)
            if rng.random() < 0.5:
                return Step("event", "commit.pushed", {"sessionID": sid, "head": head},
                            [("push", agent, sid)], flush=True)
            return Step("event", "tool.executed", {
                "sessionID": sid, "callID": f"{self.tag}-c{n}", "tool": "bash", "success": True,
                "args": {"command": "git push origin main"},
                "output": f"To example.org:repo.git\n   {hexhash(self.tag, 'base', n, length=7)}..{head[:9]}  main -> main\n"},
                [("xp", agent, sid, 1.0, "toolCalls"), ("push", agent, sid)], flush=True)
        pick = rng.random()
        if pick < 0.45:
            return Step("event", "tool.executed", {"sessionID": sid, "callID": f"{self.tag}-c{n}",
                                                   "tool": rng.choice(["read", "edit", "grep", "bash"]),
                                                   "success": True, "title": "ok"},
                        [("xp", agent, sid, 1.0, "toolCalls")])
        if pick < 0.50:
            return Step("event", "tool.executed", {"sessionID": sid, "callID": f"{self.tag}-c{n}",
                                                   "tool": "edit", "success": False},
                        [("count", sid, "failedToolCalls")])
        if pick < 0.62:
            return Step("event", "command.executed", {"sessionID": sid, "command": "test", "success": True},
                        [("xp", agent, sid, 2.0, "commands")])
        if pick < 0.64:
            return Step("event", "command.executed", {"sessionID": sid, "command": "test", "success": False},
                        [("noop",)])
        if pick < 0.72:
            full = hexhash(self.tag, "commit", n)
            self.commits.append((full, agent))
            if rng.random() < 0.5:
                params = {"sessionID": sid, "commitHash": full, "taskDescription": f"task {n}"}
                if rng.random() < 0.5:
                    params["projectPath"] = self.project
                return Step("event", "commit.completed", params, [("commit", agent, sid)])
            short = full[:12]
            self.commits[-1] = (short, agent)
            return Step("event", "tool.executed", {
                "sessionID": sid, "callID": f"{self.tag}-c{n}", "tool": "bash", "success": True,
                "args": {"command": f"git add -A && git commit -m 'change {n}'"},
                "output": f"[main {short}] change {n}\n 1 file changed, 1 insertion(+)\n"},
                [("xp", agent, sid, 1.0, "toolCalls"), ("commit", agent, sid)])
        if pick < 0.80:
            open_grades = [(h, a, g) for h, a in self.commits[-20:] for g in ("agent", "user")
                           if (h, g) not in self.graded]
            if open_grades:
                commit_hash, commit_agent, grader = rng.choice(open_grades)
                self.graded.add((commit_hash, grader))
                value = rng.choice([-1, 1, 2, 5, "bad", "neutral", "good", "excellence"])
                numeric = {"bad": -1, "neutral": 1, "good": 2, "excellence": 5}.get(value, value)
                return Step("event", "grade", {"grade": value, "grader": grader, "commitHash": commit_hash,
                                               "projectPath": self.project, "reason": "fuzzless"},
                            [("grade", commit_agent, numeric)])
            return Step("event", "session.idle", {"sessionID": sid}, [("noop",)])
        if pick < 0.88:
            return Step("event", "activity.logged", {"sessionID": sid, "kind": rng.choice(["note", "plan"]),
                                                     "description": f"activity {n}{self.payload}", "data": {"n": n}},
                        [("row", "activities")])
        if pick < 0.93:
            return Step("event", "retrospective.recorded", {"sessionID": sid, "summary": f"retro {n}{self.payload}",
                                                            "wentWell": ["a"], "lessons": ["b"]},
                        [("row", "retrospectives")])
        return Step("event", "session.idle", {"sessionID": sid}, [("noop",)])


def flush_boundaries(steps: list[Step]) -> list[tuple[int, int]]:
    """(step index, events received through that step) of every flush that writes something.

    A flush with an empty buffer opens no transaction (and passes no fault point), so it is not
    counted; every event of a Workload leaves something in the buffer.
    """
    out, pending, events = [], False, 0
    for index, step in enumerate(steps):
        if step.kind == "event":
            events += 1
            pending = True
        if step.flush and pending:
            out.append((index, events))
            pending = False
    return out


def models_between(base: Model, steps: list[Step], low: int, high: int):
    """(k, model after the first k events) for k = low..high, built incrementally (do not keep them)."""
    model = model_through(base, steps, low)
    yield low, model
    seen = 0
    for step in steps:
        if step.kind != "event":
            continue
        seen += 1
        if seen <= low:
            continue
        if seen > high:
            return
        model.apply(step.deltas)
        yield seen, model


def model_through(base: Model, steps: list[Step], events: int) -> Model:
    """The base model plus the first ``events`` events of ``steps``."""
    model = base.copy()
    seen = 0
    for step in steps:
        if seen >= events:
            break
        if step.kind == "event":
            model.apply(step.deltas)
            seen += 1
    return model


def comparable(view: dict[str, Any], touched: set[str] | None = None) -> dict[str, Any]:
    """Drop sessions without any counted activity (written or not depending on flush timing)."""
    out = dict(view)
    out["sessions"] = {s: c for s, c in view["sessions"].items() if any(c.values())}
    if touched is not None:
        out["agents"] = {a: v for a, v in view["agents"].items() if a in touched}
    return out


def expected_view(model: Model) -> dict[str, Any]:
    return comparable(model.expected(), touched={a for a, m in model.agents.items() if m.touched})


def actual_view(data: dict[str, Any]) -> dict[str, Any]:
    return comparable(totals_view(data))


def lost_and_double_counted(expected: dict[str, Any], actual: dict[str, Any]) -> tuple[int, int]:
    """(events missing, events counted more than once): the session counters and stored rows of two views."""
    def counts(view: dict[str, Any]) -> Counter:
        total: Counter = Counter()
        for counters in view["sessions"].values():
            total.update({name: value for name, value in counters.items() if name != "xpEarned"})
        total.update(view["rows"])
        return total

    want, got = counts(expected), counts(actual)
    kinds = set(want) | set(got)
    return (sum(max(0, want[k] - got[k]) for k in kinds), sum(max(0, got[k] - want[k]) for k in kinds))


def events_before(steps: list[Step], index: int) -> int:
    return sum(1 for step in steps[:index] if step.kind == "event")


# -- driving real bridges --------------------------------------------------------------------------------


def drain_stderr(bridge: BridgeProcess) -> asyncio.Task:
    """Keep reading the bridge's stderr (a full pipe would block its log writes); result = all text."""
    async def pump() -> str:
        assert bridge.process.stderr is not None
        chunks = []
        while True:
            chunk = await bridge.process.stderr.read(65536)
            if not chunk:
                return b"".join(chunks).decode(errors="replace")
            chunks.append(chunk)
    return asyncio.ensure_future(pump())


async def spawn(home: Path, directory: Path | str | None = None, *, env: dict[str, str] | None = None,
                args: tuple[str, ...] = (), **config: Any) -> tuple[BridgeProcess, dict[str, Any], asyncio.Task]:
    bridge = await start_bridge(home, *args, env=env or bridge_env(home))
    stderr = drain_stderr(bridge)
    try:
        init = await bridge.initialize(directory, **config)
    except BaseException:
        bridge.kill()
        raise
    return bridge, init, stderr


async def safe_drain(bridge: BridgeProcess) -> bool:
    """Flow control toward a bridge that may have died (kill -9): False once the pipe is gone."""
    assert bridge.process.stdin is not None
    try:
        await bridge.process.stdin.drain()
        return True
    except (ConnectionResetError, BrokenPipeError):
        return False


def send_request_nowait(bridge: BridgeProcess, msg_id: Any, method: str, params: Any) -> asyncio.Future:
    future: asyncio.Future = asyncio.get_running_loop().create_future()
    bridge.responses[msg_id] = future
    bridge.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return future


async def send_steps(bridge: BridgeProcess, steps: list[Step], start: int = 0, stop: int | None = None,
                     id_prefix: str = "r") -> dict[int, asyncio.Future]:
    """Pipeline the steps (no waiting for answers); returns the futures of the requests by step index."""
    futures: dict[int, asyncio.Future] = {}
    stop = len(steps) if stop is None else stop
    for index in range(start, stop):
        step = steps[index]
        if bridge.process.returncode is not None:
            break
        if step.kind == "event":
            bridge.notify(step.method, step.params)
        else:
            futures[index] = send_request_nowait(bridge, f"{id_prefix}{index}", step.method, step.params)
        if index % 32 == 31 and not await safe_drain(bridge):
            break
    await safe_drain(bridge)
    return futures


async def wait_exit(bridge: BridgeProcess, timeout: float = 120) -> int:
    code = await asyncio.wait_for(bridge.process.wait(), timeout)
    await asyncio.wait_for(bridge._reader_task, timeout)
    return code


def answered(future: asyncio.Future) -> dict[str, Any] | None:
    return future.result() if future.done() and not future.cancelled() else None


def journal_events(path: Path) -> list[dict[str, Any]]:
    """The events in a crash journal file (its seq-0 header line, if any, is not an event)."""
    entries = [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [entry for entry in entries if entry.get("s", 0) > 0]


class Timer:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 2)
