"""Simulated users whose true setups are known: is P(best) calibrated, are confident answers right?

    .venv/bin/python -m bench.simulation              # the long run (about 3,000 worlds): prints its figures
    .venv/bin/python -m bench.simulation --worlds 200 # per scenario

A *world* is one user's setups on one stack, each with true parameters (user-grade shares,
abandon rate, extra commits per session, bug and tool-failure rates, an honest or an over-confident
self-grader). Sessions are drawn from them and recorded through the real TrackingService into ONE
real LMDB database, every world on a stack of its own (an AGENTS.md ``Stack:`` line), so one
build_report states P(best) for every world at once; the other-stacks worlds are asked through
recommend_for. The truth is the report's own formula (score.WEIGHTS) applied to the true
parameters, with the agentGrade part of an *honest* self-grade: a model that grades itself 5
while its users do not gains nothing in truth either. tests/test_simulation.py runs a small
version of the same worlds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import attrs

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.config import BridgeConfig, MiB, ScoringRules  # noqa: E402
from bridge.report.score import GRADE_VALUES, WEIGHTS  # noqa: E402
from bridge.store import Store  # noqa: E402
from bridge.tracking.service import TrackingService  # noqa: E402

READS = 2  # tool calls of a session besides its commits
SHARES_BASE = (1.0, 2.0, 2.0, 1.0)  # Dirichlet of a setup's true user-grade shares over (-1, 1, 2, 5)


@attrs.define
class TrueSetup:
    shares: tuple[float, ...]      # user-grade shares over GRADE_VALUES
    abandon: float                 # a session ends without a commit
    extra: float                   # a session not abandoned makes 1 + Poisson(extra) commits
    bug: float                     # a commit gets a bug report
    fail: float                    # a tool call fails
    overconfident: bool = False    # grades every commit 5, whatever it was

    @property
    def mean_grade(self) -> float:
        return sum(p * v for p, v in zip(self.shares, GRADE_VALUES))

    def score(self) -> float:
        per_session = (1 - self.abandon) * (1 + self.extra)
        grade = (self.mean_grade + 1) / 6
        honest = (sum(p * _honest_mean(v) for p, v in zip(self.shares, GRADE_VALUES)) + 1) / 6
        # Each session makes READS reads (they fail at ``fail``) and its commits (they do not).
        tool_success = 1 - READS * self.fail / (READS + per_session)
        parts = {"userGrade": grade, "agentGrade": honest, "productivity": per_session / (per_session + 1),
                 "reliability": 1 - min(1.0, self.bug), "completion": 1 - self.abandon,
                 "toolSuccess": tool_success, "cleanCommits": 1.0}
        return 100 * sum(WEIGHTS[name] * value for name, value in parts.items())


@attrs.define
class World:
    name: str
    scenario: str
    setups: list[TrueSetup]
    sessions: list[int]            # per setup, on the world's stack (other stacks: per stack each)
    user_share: float = 0.7        # of the commits the user grades
    # The other-stacks scenario: the setups' parameters on the stacks they were used on; the
    # project asked about is on a stack none of them was used on (its truth: ``setups``).
    history: list[list[TrueSetup]] = attrs.Factory(list)

    def truth(self) -> list[float]:
        return [setup.score() for setup in self.setups]

    @property
    def stack(self) -> str:
        return f"{self.name}/target"


def draw_setup(rng: random.Random, overconfident: bool = False) -> TrueSetup:
    gammas = [rng.gammavariate(a, 1.0) for a in SHARES_BASE]
    total = sum(gammas)
    return TrueSetup(tuple(g / total for g in gammas), rng.betavariate(2, 6), rng.gammavariate(2, 0.5),
                     rng.betavariate(1.2, 12), rng.betavariate(2, 18), overconfident)


def varied(rng: random.Random, base: TrueSetup, spread: float = 25.0) -> TrueSetup:
    """The same setup on another stack: its parameters moved by a stack's own difficulty."""
    gammas = [rng.gammavariate(spread * p + 0.05, 1.0) for p in base.shares]
    total = sum(gammas)

    def near(p: float) -> float:
        return min(0.95, max(0.01, rng.betavariate(spread * p + 0.5, spread * (1 - p) + 0.5)))

    return TrueSetup(tuple(g / total for g in gammas), near(base.abandon), rng.gammavariate(spread / 5, base.extra * 5 / spread),
                     near(base.bug), near(base.fail), base.overconfident)


SCENARIOS = ("balanced-3", "balanced-10", "balanced-50", "one-heavy", "close-race", "sparse-grades",
             "self-grader", "other-stacks")


def make_world(rng: random.Random, scenario: str, index: int) -> World:
    count = rng.randint(4, 8)
    name = f"{scenario.replace('-', '')}{index}"
    setups = [draw_setup(rng) for _ in range(count)]
    sessions = [10] * count
    user_share = rng.uniform(0.5, 1.0)
    if scenario.startswith("balanced-"):
        sessions = [int(scenario.split("-")[1])] * count
    elif scenario == "one-heavy":
        sessions = [40] + [rng.randint(3, 5) for _ in range(count - 1)]
    elif scenario == "close-race":
        while True:  # the two best within 2 points of each other
            truth = sorted((s.score() for s in setups), reverse=True)
            if truth[0] - truth[1] <= 2.0:
                break
            setups = [draw_setup(rng) for _ in range(count)]
    elif scenario == "sparse-grades":
        user_share = rng.uniform(0.1, 0.2)
    elif scenario == "self-grader":
        setups[rng.randrange(count)].overconfident = True
    world = World(name, scenario, setups, sessions, user_share)
    if scenario == "other-stacks":
        world.setups = [varied(rng, base) for base in setups]  # the project's own stack: never used
        world.history = [[varied(rng, base) for base in setups] for _ in range(2)]
        world.sessions = [rng.randint(5, 15) for _ in range(count)]
    return world


class Recorder:
    """Sessions through the real TrackingService, as the plugin would send them."""

    def __init__(self, database: Path, root: Path, max_size: int = 2048 * MiB):
        self.store = Store.open(BridgeConfig(database_path=str(database), max_database_size=max_size))
        self.service = TrackingService(self.store, ScoringRules(), journal_id="sim")
        self.root = root
        self.clock = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self.counter = 0
        self.folders: dict[str, Path] = {}
        self.since_flush = 0

    def folder(self, stack: str) -> Path:
        found = self.folders.get(stack)
        if found is None:
            found = self.folders[stack] = self.root / stack.replace("/", "-")
            found.mkdir(parents=True, exist_ok=True)
            (found / "AGENTS.md").write_text(f"Stack: {stack}\n")
        return found

    def send(self, method: str, params: dict[str, Any]) -> None:
        self.clock += timedelta(seconds=1)
        self.service.handle(method, params, self.clock.isoformat(timespec="milliseconds").replace("+00:00", "Z"))

    def session(self, rng: random.Random, stack: str, agent: str, provider: str, model: str, true: TrueSetup,
                user_share: float) -> None:
        self.counter += 1
        sid = f"s{self.counter}"
        directory = str(self.folder(stack))
        self.send("session.created", {"sessionID": sid, "directory": directory,
                                      "agent": {"id": agent, "provider": provider, "model": model}})
        for _ in range(READS):
            self.counter += 1
            self.send("tool.executed", {"sessionID": sid, "callID": f"t{self.counter}", "tool": "read",
                                        "success": rng.random() >= true.fail})
        commits = 0 if rng.random() < true.abandon else 1 + _poisson(rng, true.extra)
        for _ in range(commits):
            self.counter += 1
            short = hashlib.sha1(str(self.counter).encode()).hexdigest()[:7]  # spread out: prefix lookups stay short
            self.send("tool.executed", {"sessionID": sid, "callID": f"t{self.counter}", "tool": "bash",
                                        "success": True, "args": {"command": "git commit -am 'feat: x'"},
                                        "output": f"[main {short}] feat: x\n 1 file changed\n"})
            grade = rng.choices(GRADE_VALUES, true.shares)[0]
            self.send("grade", {"sessionID": sid, "grade": 5 if true.overconfident else _honest(rng, grade),
                                "grader": "agent"})
            if rng.random() < user_share:
                self.send("grade", {"sessionID": sid, "grade": grade, "grader": "user"})
            if rng.random() < true.bug:
                self.send("bug.reported", {"sessionID": sid, "description": "bug", "commitHash": short,
                                           "projectPath": directory})
                self.send("agent.reinstate", {"agentId": agent, "reason": "sim"})
        self.send("session.deleted", {"sessionID": sid})
        self.since_flush += 1
        if self.since_flush >= 40:  # the tracker looks commits up in its buffer: keep it short
            self.flush()

    def record(self, rng: random.Random, world: World) -> None:
        stacks = [(world.stack, world.setups)] if not world.history else [
            (f"{world.name}/s{n}", params) for n, params in enumerate(world.history)]
        for stack, params in stacks:
            for j, (true, count) in enumerate(zip(params, world.sessions)):
                for _ in range(count):
                    self.session(rng, stack, f"a{j}", world.name, f"m{j}", true, world.user_share)
        if world.history:
            self.folder(world.stack)  # the project asked about: its stack, no session

    def flush(self) -> None:
        self.since_flush = 0
        result = self.service.flush()
        assert not result.errors, result.errors

    def close(self) -> None:
        self.flush()
        self.store.close()


def _poisson(rng: random.Random, mean: float) -> int:
    threshold, k, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


HONEST_OFF = 0.25


def _step(grade: int, by: int) -> int:
    index = GRADE_VALUES.index(grade) + by
    return GRADE_VALUES[min(len(GRADE_VALUES) - 1, max(0, index))]


def _honest_mean(grade: int) -> float:
    """What an honest self-grade of a commit the user grades ``grade`` is on average."""
    return (1 - HONEST_OFF) * grade + HONEST_OFF / 2 * (_step(grade, -1) + _step(grade, 1))


def _honest(rng: random.Random, grade: int) -> int:
    """An honest self-grade: the user's, a step off a quarter of the time."""
    if rng.random() >= HONEST_OFF:
        return grade
    return _step(grade, rng.choice((-1, 1)))


@attrs.define
class Outcome:
    """What the product said about one world, beside the truth."""

    world: World
    probabilities: list[float]     # P(best) per setup (index = the world's setup)
    confident: bool
    pick: int
    try_next: list[int]
    rows: dict[str, Any] = attrs.Factory(dict)  # agent ("a0"...) → its SetupRow as the product judged it
    level: Any = None                            # the other-stacks worlds: recommend's answering Level

    @property
    def best(self) -> int:
        truth = self.world.truth()
        return max(range(len(truth)), key=truth.__getitem__)

    @property
    def lead(self) -> float:
        truth = sorted(self.world.truth(), reverse=True)
        return truth[0] - truth[1]


def simulate(worlds_per_scenario: dict[str, int], seed: int = 23, workdir: Path | None = None) -> list[Outcome]:
    """Record every world into one database, then ask the product about each one."""
    from bridge.report.build import build_report
    from bridge.report.recommend import recommend_for

    rng = random.Random(seed)
    worlds = [make_world(rng, scenario, n) for scenario, count in worlds_per_scenario.items() for n in range(count)]
    outcomes: dict[str, Outcome] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as temp:
        root = Path(temp)
        recorder = Recorder(root / "sim.lmdb", root / "projects")
        for world in worlds:
            if not world.history:
                recorder.record(rng, world)
        recorder.close()
        with Store.open(BridgeConfig(database_path=str(root / "sim.lmdb")), readonly=True) as store:
            by_stack: dict[str, dict[str, Any]] = {}
            for row in build_report(store).setups:  # one report: every world is a stack of its own
                by_stack.setdefault(row.stack, {})[row.agent] = row
        for world in worlds:
            if not world.history:
                outcomes[world.name] = _outcome(world, by_stack[world.stack], None, None)
                continue
            # Answered from other stacks: recommend_for itself, on a database of its own (the
            # language level pools every stack of the language, here the world's).
            own = Recorder(root / f"{world.name}.lmdb", root / world.name, max_size=64 * MiB)
            own.record(rng, world)
            own.close()
            with Store.open(BridgeConfig(database_path=str(root / f"{world.name}.lmdb")), readonly=True) as store:
                advice = recommend_for(store, own.folders[world.stack])
            assert advice.answer is not None and advice.answer.name == "language", world.name
            rows = {row.agent: row for row in advice.answer.contenders}
            outcome = _outcome(world, rows, advice.confident, [int(r.agent[1:]) for r in advice.try_next])
            outcome.level = advice.answer
            outcomes[world.name] = outcome
    return [outcomes[world.name] for world in worlds]


def _outcome(world: World, rows: dict[str, Any], confident: bool | None, try_next: list[int] | None) -> Outcome:
    from bridge.report.recommend import CONFIDENT_AT, try_next_of

    probabilities = [rows[f"a{j}"].probability_best if f"a{j}" in rows else 0.0 for j in range(len(world.setups))]
    pick = max(range(len(probabilities)), key=probabilities.__getitem__)
    if confident is None:
        confident = probabilities[pick] >= CONFIDENT_AT
    if try_next is None:
        contenders = [rows[f"a{j}"] for j in range(len(world.setups)) if f"a{j}" in rows]
        try_next = [] if confident else [int(r.agent[1:]) for r in try_next_of(contenders)]
    return Outcome(world, probabilities, confident, pick, try_next, dict(rows))


BINS = ((0.0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.0001))


def calibration(outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    """Per bin of stated P(best): how many setups, their mean stated probability, and how often
    they were the true best."""
    table = []
    pairs = [(p, j == o.best) for o in outcomes for j, p in enumerate(o.probabilities)]
    for low, high in BINS:
        inside = [(p, hit) for p, hit in pairs if low <= p < high]
        if inside:
            table.append({"bin": [low, min(high, 1.0)], "setups": len(inside),
                          "stated": sum(p for p, _ in inside) / len(inside),
                          "observed": sum(hit for _, hit in inside) / len(inside)})
    return table


def figures(outcomes: list[Outcome]) -> dict[str, Any]:
    confident = [o for o in outcomes if o.confident]
    clear = [o for o in confident if o.lead >= 2.0]
    unsure = [o for o in outcomes if not o.confident]
    per_scenario = {}
    for scenario in dict.fromkeys(o.world.scenario for o in outcomes):
        mine = [o for o in outcomes if o.world.scenario == scenario]
        sure = [o for o in mine if o.confident]
        not_sure = [o for o in mine if not o.confident]
        per_scenario[scenario] = {
            "worlds": len(mine), "leaderIsBest": _share(o.pick == o.best for o in mine),
            "confident": _share(o.confident for o in mine),
            "confidentRight": _share(o.pick == o.best for o in sure),
            "tryNextHoldsBest": _share(o.best in o.try_next or o.pick == o.best for o in not_sure),
        }
    return {
        "worlds": len(outcomes), "calibration": calibration(outcomes),
        "confidentRight": _share(o.pick == o.best for o in confident),
        "confidentRightWhenLeadAtLeast2": _share(o.pick == o.best for o in clear),
        "tryNextHoldsBest": _share(o.best in o.try_next or o.pick == o.best for o in unsure),
        "scenarios": per_scenario,
    }


def _share(flags: Iterable[bool]) -> float | None:
    values = list(flags)
    return sum(values) / len(values) if values else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worlds", type=int, default=300, help="worlds per scenario (balanced-50: a fifth)")
    parser.add_argument("--seed", type=int, default=2023)
    args = parser.parse_args(argv)
    counts = {scenario: (max(1, args.worlds // 5) if scenario == "balanced-50" else args.worlds)
              for scenario in SCENARIOS}
    started = time.perf_counter()
    outcomes = simulate(counts, seed=args.seed)
    result = figures(outcomes)
    result["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
